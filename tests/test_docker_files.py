"""Docker cannot run here; check the files are well formed and consistent with the project,
that the monitoring listens on loopback with generated secrets, and that the token Prometheus
gets opens /metrics and nothing else."""

from __future__ import annotations

import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient

from madoguchi.engine import Engine

ROOT = Path(__file__).resolve().parents[1]


def _instructions(path: Path) -> list[tuple[str, str]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#") and not line.startswith(" "):
            word, _, rest = line.partition(" ")
            out.append((word, rest))
    return out


def test_engine_dockerfile_copies_every_package_and_runs_unprivileged() -> None:
    instr = _instructions(ROOT / "docker" / "Dockerfile")
    assert instr[0][0] == "FROM"
    copied = {rest.split()[0] for word, rest in instr if word == "COPY"}
    # every package the project installs, so the image cannot drift from pyproject.toml
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = [p.rstrip("*") for p in
                pyproject["tool"]["setuptools"]["packages"]["find"]["include"]]
    for package in [*packages, "dialplans", "config"]:
        assert package in copied, package
        assert (ROOT / package).is_dir()
    assert ("USER", "madoguchi") in instr
    assert instr[-1] == ("CMD", '["madoguchi", "run"]')


def test_compose_services_share_state_and_loopback() -> None:
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert set(services) == {"config", "asterisk", "engine", "monitoring-secrets",
                             "prometheus", "grafana"}
    for name in ("asterisk", "engine"):
        assert services[name]["network_mode"] == "host"
        assert "state:/var/lib/madoguchi" in services[name]["volumes"]
        dockerfile = ROOT / "docker" / Path(services[name]["build"]["dockerfile"]).name
        assert dockerfile.exists()
    assert "state" in compose["volumes"]


def test_engine_image_speaks_japanese_like_the_host() -> None:
    # the packages the engine itself runs (TTS, audio, conversion), as `make deps` installs them
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    declared = makefile.split("DEB_PACKAGES :=", 1)[1].split("\n\n", 1)[0]
    host = set(declared.replace("\\", " ").split())
    runtime = {"sox", "espeak-ng", "ffmpeg", "open-jtalk", "open-jtalk-mecab-naist-jdic",
               "hts-voice-nitech-jp-atr503-m001", "fonts-ipaexfont-gothic"}
    assert runtime <= host
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
    installed = set(dockerfile.split("apt-get install -y --no-install-recommends", 1)[1]
                    .split("&&", 1)[0].replace("\\", " ").split())
    assert runtime <= installed, runtime - installed
    # the voice is in contrib: the image enables it with the project's own helper
    assert "COPY ivr/apt_contrib.py" in dockerfile and "python3 /tmp/apt_contrib.py" in dockerfile


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_monitoring_listens_on_loopback_only() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        # published ports, if any, bind loopback; host-network services set their address
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
    prometheus, grafana = services["prometheus"], services["grafana"]
    assert prometheus["network_mode"] == grafana["network_mode"] == "host"
    listen = [a for a in prometheus["command"] if a.startswith("--web.listen-address=")]
    assert listen == ["--web.listen-address=127.0.0.1:9090"]
    # the flags replace the image's defaults: configuration and storage stay where mounted
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    assert "--storage.tsdb.path=/prometheus" in prometheus["command"]
    assert "prometheus:/prometheus" in prometheus["volumes"]
    assert grafana["environment"]["GF_SERVER_HTTP_ADDR"] == "127.0.0.1"
    datasource = yaml.safe_load((ROOT / "docker" / "grafana" / "provisioning" / "datasources" /
                                 "prometheus.yaml").read_text(encoding="utf-8"))
    assert datasource["datasources"][0]["url"] == "http://127.0.0.1:9090"


def test_grafana_has_a_generated_password_and_prometheus_the_metrics_token() -> None:
    services = _compose()["services"]
    env = services["grafana"]["environment"]
    # no password in the file: Grafana reads the one generated at first run
    assert "GF_SECURITY_ADMIN_PASSWORD" not in env
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/grafana/admin_password"
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert "grafana-secret:/run/grafana:ro" in services["grafana"]["volumes"]
    prom = yaml.safe_load((ROOT / "docker" / "prometheus.yml").read_text(encoding="utf-8"))
    token_file = prom["scrape_configs"][0]["authorization"]["credentials_file"]
    assert token_file == "/run/madoguchi/metrics_token"
    assert "tokens:/run/madoguchi:ro" in services["prometheus"]["volumes"]
    for name in ("prometheus", "grafana"):
        assert services[name]["depends_on"]["monitoring-secrets"] == {
            "condition": "service_completed_successfully"}
    writer = services["monitoring-secrets"]
    assert {"state:/var/lib/madoguchi:ro", "tokens:/run/madoguchi",
            "grafana-secret:/run/grafana"} <= set(writer["volumes"])
    # no service is given a password, secret or token as a value, only as a file
    for name, service in services.items():
        for key in service.get("environment", {}):
            if re.search(r"PASSWORD|SECRET|TOKEN", key):
                assert key.endswith("__FILE"), (name, key)


def test_the_secrets_step_writes_each_file_for_its_one_reader(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The compose step's own script, run on folders standing for its three volumes."""
    script = _compose()["services"]["monitoring-secrets"]["command"][-1]
    state, tokens, grafana = (tmp_path / d for d in ("state", "tokens", "grafana"))
    for d in (state, tokens, grafana):
        d.mkdir()
    (state / "secrets.json").write_text('{"api_token": "full", "metrics_token": "scrape"}',
                                        encoding="utf-8")
    (tokens / "api_token").write_text("full", encoding="utf-8")  # left by an older version
    for volume, folder in (("/var/lib/madoguchi", state), ("/run/madoguchi", tokens),
                           ("/run/grafana", grafana)):
        script = script.replace(f'"{volume}/', f'"{folder}/')
    owners: dict[str, int] = {}
    monkeypatch.setattr(os, "chown", lambda p, uid, gid: owners.__setitem__(
        Path(p).name.removesuffix(".tmp"), uid))
    exec(compile(script, "compose.yaml", "exec"), {})
    assert (tokens / "metrics_token").read_text(encoding="utf-8") == "scrape"
    assert not (tokens / "api_token").exists()
    password = (grafana / "admin_password").read_text(encoding="utf-8")
    assert len(password) >= 32 and password != "admin"
    assert owners == {"metrics_token": 65534, "admin_password": 472}  # nobody, grafana
    for f in (tokens / "metrics_token", grafana / "admin_password"):
        assert stat.S_IMODE(f.stat().st_mode) == 0o400
    # a second run keeps Grafana's password: it was set in Grafana's database at first start
    exec(compile(script, "compose.yaml", "exec"), {})
    assert (grafana / "admin_password").read_text(encoding="utf-8") == password


async def test_the_metrics_token_opens_metrics_and_nothing_else(
        offline_client: tuple[TestClient, Engine]) -> None:
    client, engine = offline_client
    token = engine.secrets.metrics_token
    assert token and token != engine.secrets.api_token
    metrics = {"Authorization": f"Bearer {token}"}
    resp = await client.get("/metrics", headers=metrics)
    assert resp.status == 200 and "madoguchi_ami_connected" in await resp.text()
    for method, path in (("GET", "/api/recordings"), ("GET", "/api/agents"),
                         ("POST", "/api/flows/reload"), ("GET", "/api/audit"),
                         ("GET", "/console/admin")):
        resp = await client.request(method, path, headers=metrics, allow_redirects=False)
        assert resp.status == 403, (method, path)
        assert (await resp.json())["error"] == "forbidden"
    resp = await client.get("/metrics", headers={"Authorization": f"Bearer {token}x"})
    assert resp.status == 401
    # the full-rights token still reads the metrics too
    resp = await client.get("/metrics",
                            headers={"Authorization": f"Bearer {engine.secrets.api_token}"})
    assert resp.status == 200
