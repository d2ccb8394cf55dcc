"""Shared fixtures: the database every API test runs on, SQLite and PostgreSQL, and what is
built on it: the served engine app (with the console's users, and with the API token), the
recordings service.

PostgreSQL is a throwaway cluster (tests/pg.py) started once per session, the first time a
test asks for it. Where it is not installed those tests fail: it is a dependency.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from console.auth import Console, ConsoleConfig
from console.http import CONSOLE
from harness.offline_engine import offline_engine
from madoguchi.engine import Engine
from madoguchi.web import make_app
from recordings.service import RecordingPaths, RecordingService
from store.db import Database
from tests.console_users import PASSWORD, USERS
from tests.pg import PgCluster, PgUnavailable, start_cluster
from tests.recorded_calls import T0

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    try:
        cluster = start_cluster()
    except PgUnavailable as exc:  # a dependency of the tests (make deps installs it)
        pytest.fail(f"PostgreSQL missing: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def postgres_url(pg_cluster: PgCluster) -> str:
    """One PostgreSQL database for the whole session (postgresql+asyncpg://…)."""
    return pg_cluster.create_database("madoguchi")


@pytest.fixture(scope="session")
def e2e_database_url(request: pytest.FixtureRequest) -> str | None:
    """The database the end-to-end stack should use: the session's PostgreSQL database when
    MADOGUCHI_E2E_DATABASE=postgresql, else None (the engine's SQLite file in its state)."""
    wanted = os.environ.get("MADOGUCHI_E2E_DATABASE", "sqlite")
    if wanted not in BACKENDS:
        pytest.fail(f"MADOGUCHI_E2E_DATABASE must be one of {', '.join(BACKENDS)}, "
                    f"got {wanted!r}")
    if wanted == "sqlite":
        return None
    url = request.getfixturevalue("postgres_url")
    assert isinstance(url, str)
    return url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty database on each backend. MADOGUCHI_DATABASE_URL points at it, so an
    engine (and a CLI command) built from settings in this test uses it."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'madoguchi.db'}"
    else:
        cluster = request.getfixturevalue("pg_cluster")
        assert isinstance(cluster, PgCluster)
        url = cluster.create_database()
    monkeypatch.setenv("MADOGUCHI_DATABASE_URL", url)
    return url


@pytest.fixture
async def offline_client(tmp_path: Path) -> AsyncIterator[tuple[TestClient, Engine]]:
    """The web app of an engine without Asterisk (tests/offline_engine.py), served."""
    engine = offline_engine(tmp_path)
    client = TestClient(TestServer(make_app(engine)))
    await client.start_server()
    try:
        yield client, engine
    finally:
        await client.close()


@pytest.fixture
async def api(tmp_path: Path, database_url: str
              ) -> AsyncIterator[tuple[TestClient, Engine, dict[str, str]]]:
    """The engine's app served on each backend, with the API token's header."""
    engine = offline_engine(tmp_path)
    assert engine.db.url == database_url  # the backend this run is for
    client = TestClient(TestServer(make_app(engine)))
    await client.start_server()
    try:
        yield client, engine, {"Authorization": f"Bearer {engine.secrets.api_token}"}
    finally:
        await client.close()


@pytest.fixture
async def app_client(tmp_path: Path, database_url: str
                     ) -> AsyncIterator[tuple[TestClient, Engine, Console]]:
    """The engine's app with the console, served on each backend, with one user per role
    (tests/console_users.py)."""
    engine = offline_engine(tmp_path)
    assert engine.db.url == database_url  # the backend this run is for
    app = make_app(engine, ConsoleConfig())
    client = TestClient(TestServer(app))
    await client.start_server()
    console = app[CONSOLE]
    for name, (role, agent) in USERS.items():
        await console.users.add(name, role, PASSWORD, agent)
    try:
        yield client, engine, console
    finally:
        await client.close()


@pytest.fixture
async def service(tmp_path: Path, database_url: str) -> AsyncIterator[RecordingService]:
    """The recordings service on each backend, its clock a day after T0
    (tests/recorded_calls.py)."""
    db = Database(database_url)
    await db.create_schema()
    paths = RecordingPaths(tmp_path / "spool", tmp_path / "archive", tmp_path / "cache",
                           tmp_path / "reports")
    svc = RecordingService(db, paths, clock=lambda: T0 + timedelta(days=1),
                           known_agents=["7001", "7002"])
    try:
        yield svc
    finally:
        await db.close()
