"""The engine's web app on loopback: health follows AMI, the API needs the token, bad
parameters get JSON errors, and the CLI refuses a bad config with file:line."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from harness.ami_server import AmiTestServer
from harness.offline_engine import offline_engine
from harness.ports import free_port
from madoguchi.cli import main
from madoguchi.engine import Engine
from madoguchi.web import make_app

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
async def engine_client(tmp_path: Path, database_url: str
                        ) -> AsyncIterator[tuple[TestClient, Engine, int]]:
    ami_port = free_port()
    engine = offline_engine(tmp_path, ami_port)
    assert engine.db.url == database_url  # the backend this run is for
    client = TestClient(TestServer(make_app(engine)))
    await client.start_server()
    try:
        yield client, engine, ami_port
    finally:
        await client.close()


async def test_unhealthy_while_ami_is_down_then_healthy_when_it_appears(
        engine_client: tuple[TestClient, Engine, int]) -> None:
    client, engine, ami_port = engine_client
    resp = await client.get("/healthz")
    assert resp.status == 503
    assert await resp.json() == {"ok": False, "ami": False, "fastagi": True, "database": True}

    server = AmiTestServer(secret=engine.secrets.ami_secret, port=ami_port)
    server.lists["coreshowchannels"] = ([], "CoreShowChannelsComplete")
    server.lists["devicestatelist"] = ([{"Event": "DeviceStateChange", "Device": "PJSIP/7001",
                                         "State": "NOT_INUSE"},
                                        {"Event": "DeviceStateChange", "Device": "PJSIP/7002",
                                         "State": "UNAVAILABLE"}],
                                       "DeviceStateListComplete")
    await server.start()
    try:
        # the reconnect backoff and the rebuild take what they take on a busy machine: wait
        # for the state; 60 s only ends a run that would never get there
        for _ in range(600):
            resp = await client.get("/healthz")
            if resp.status == 200:
                break
            await asyncio.sleep(0.1)
        assert resp.status == 200
        assert engine.acd.agents["7001"].reachable  # state rebuilt from Asterisk on connect
        assert not engine.acd.agents["7002"].reachable
    finally:
        await server.stop()


async def test_api_needs_the_token_and_answers_errors_as_json(
        engine_client: tuple[TestClient, Engine, int]) -> None:
    client, engine, _ = engine_client
    auth = {"Authorization": f"Bearer {engine.secrets.api_token}"}
    for path in ("/api/recordings", "/metrics", "/api/recordings/1/audio"):
        resp = await client.get(path)
        assert resp.status == 401, path
        assert (await resp.json())["error"] == "unauthorized"
    resp = await client.get("/api/recordings", headers=auth)
    assert resp.status == 200
    assert await resp.json() == {"items": [], "limit": 100, "offset": 0}
    resp = await client.get("/api/recordings?from=yesterday", headers=auth)
    assert resp.status == 400 and (await resp.json())["error"] == "bad_time"
    resp = await client.get("/api/recordings?caller=03%27%20OR%201=1", headers=auth)
    assert resp.status == 400
    resp = await client.get("/api/recordings/999/audio", headers=auth)
    assert resp.status == 404 and (await resp.json())["error"] == "not_found"
    resp = await client.get("/metrics", headers=auth)
    assert resp.status == 200
    assert "madoguchi_ami_connected 0.0" in await resp.text()


def test_cli_refuses_a_bad_config_with_file_and_line(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    flow = config / "flows" / "city.yaml"
    flow.write_text(flow.read_text(encoding="utf-8").replace("queue: city", "queue: nowhere"),
                    encoding="utf-8")
    assert main(["--config", str(config), "--state", str(tmp_path / "state"), "check"]) == 2
    err = capsys.readouterr().err
    line = flow.read_text(encoding="utf-8").splitlines().index("    queue: nowhere") + 1
    assert f"{flow}:{line}:12: unknown queue 'nowhere'" in err


def test_json_errors_keep_their_status() -> None:
    from core.errors import json_error

    for status in (400, 401, 403, 404, 409, 416, 503):
        assert json_error(status, "x", "y").status == status
