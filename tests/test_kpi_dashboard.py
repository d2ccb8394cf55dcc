"""The Grafana dashboard queries only metrics the engine's /metrics exposes, and the
Prometheus/Grafana files in docker/ fit together."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from madoguchi.engine import Engine

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
DASHBOARD = DOCKER / "grafana" / "dashboards" / "madoguchi.json"
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum",
                                                             "_created"),
            "gauge": ("",)}


def dashboard_queries() -> list[str]:
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exprs += [v["query"] for v in dash["templating"]["list"]]
    return exprs


async def test_every_dashboard_metric_is_exposed(
        api: tuple[TestClient, Engine, dict[str, str]]) -> None:
    client, engine, auth = api
    engine.metrics.time_to_answer.labels("city").observe(4)
    resp = await client.get("/metrics", headers=auth)
    assert resp.status == 200
    text = await resp.text()
    series = {f.name + suffix for f in text_string_to_metric_families(text)
              for suffix in SUFFIXES.get(f.type, ("",))}
    queried = {name for e in dashboard_queries() for name in re.findall(r"madoguchi_\w+", e)}
    assert len(queried) >= 12
    assert queried - series == set()
    # the quick-answer panel selects the 9 s bucket by its exact label value
    assert any('le="9.0"' in e for e in dashboard_queries())
    assert 'madoguchi_time_to_answer_seconds_bucket{le="9.0",service="city"} 1.0' in text


def test_prometheus_and_grafana_files_fit_together() -> None:
    prom = yaml.safe_load((DOCKER / "prometheus.yml").read_text(encoding="utf-8"))
    job = prom["scrape_configs"][0]
    engine_cfg = yaml.safe_load((ROOT / "config" / "madoguchi.yaml").read_text(encoding="utf-8"))
    port = engine_cfg["engine"]["http"]["port"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == [f"127.0.0.1:{port}"]
    token_file = job["authorization"]["credentials_file"]
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert token_file in services["monitoring-secrets"]["command"][-1]
    mounts = services["prometheus"]["volumes"] + services["grafana"]["volumes"]
    for mount in mounts:
        source = mount.split(":")[0]
        if source.startswith("./"):
            assert (DOCKER / source).exists(), source
    ds = yaml.safe_load((DOCKER / "grafana" / "provisioning" / "datasources" /
                         "prometheus.yaml").read_text(encoding="utf-8"))["datasources"][0]
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert {p["datasource"]["uid"] for p in dash["panels"]} == {ds["uid"]}
    provider = yaml.safe_load((DOCKER / "grafana" / "provisioning" / "dashboards" /
                               "madoguchi.yaml").read_text(encoding="utf-8"))["providers"][0]
    assert any(m.endswith(":" + provider["options"]["path"] + ":ro") for m in mounts)
