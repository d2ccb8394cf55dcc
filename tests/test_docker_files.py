"""Docker cannot run here; check the files are well formed and consistent with the project."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

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
    assert set(services) == {"config", "asterisk", "engine", "api-token", "prometheus",
                             "grafana"}
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
