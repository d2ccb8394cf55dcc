"""Login throttling under concurrency and password checks off the event loop: a burst of
attempts is counted before any password is checked, argon2 runs in the console's small
thread pool (opened and closed with the app), throttle keys are capped and pruned."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from console.auth import COOKIE, HASH_WORKERS, LOGIN_COOKIE, Console, ConsoleConfig, Throttle
from console.http import CONSOLE
from harness.offline_engine import offline_engine
from madoguchi.engine import Engine
from madoguchi.web import make_app

PASSWORD = "correct horse battery"
SAFETY = 60  # seconds: only reached when the behaviour under test is broken


@pytest.fixture
async def app_client(tmp_path: Path) -> AsyncIterator[tuple[TestClient, Console]]:
    engine = offline_engine(tmp_path)
    client = TestClient(TestServer(make_app(engine, ConsoleConfig())))
    await client.start_server()
    console = client.app[CONSOLE]
    await console.users.add("sv", "supervisor", PASSWORD)
    await console.users.add("op", "operator", PASSWORD, "7001")
    try:
        yield client, console
    finally:
        await client.close()


async def _post_login(client: TestClient, name: str, password: str) -> int:
    # the login form's CSRF check is a double submit: any token, the same in both places
    resp = await client.post("/console/login", data={
        "name": name, "password": password, "csrf": "t" * 32},
        headers={"Cookie": f"{LOGIN_COOKIE}={'t' * 32}"}, allow_redirects=False)
    await resp.read()
    return resp.status


class GatedVerifier:
    """Wraps the console's password check: records where it ran and holds every check
    until `gate` opens, so a burst is still in flight while the test looks at it."""

    def __init__(self, console: Console) -> None:
        self.real = console.users._check
        self.gate = threading.Event()
        self.lock = threading.Lock()
        self.calls = 0
        self.threads: set[str] = set()
        self.thread_ids: set[int] = set()
        console.users._check = self  # type: ignore[method-assign]

    def __call__(self, password_hash: str, password: str) -> bool:
        with self.lock:
            self.calls += 1
            self.threads.add(threading.current_thread().name)
            self.thread_ids.add(threading.get_ident())
        self.gate.wait(SAFETY)
        return self.real(password_hash, password)


async def test_a_concurrent_burst_is_counted_before_any_password_is_checked(
        app_client: tuple[TestClient, Console]) -> None:
    client, console = app_client
    verifier = GatedVerifier(console)
    tasks = [asyncio.create_task(_post_login(client, "sv", f"wrong password {i}"))
             for i in range(12)]
    try:
        # while the first attempts are still being checked, the rest are already refused
        async with asyncio.timeout(SAFETY):
            while sum(t.done() for t in tasks) < 7:
                await asyncio.wait([t for t in tasks if not t.done()],
                                   return_when=asyncio.FIRST_COMPLETED)
        assert sorted(t.result() for t in tasks if t.done()) == [429] * 7
    finally:
        verifier.gate.set()
    statuses = await asyncio.gather(*tasks)
    assert sorted(statuses) == [401] * 5 + [429] * 7
    assert verifier.calls == 5
    # the checks ran in the console's own bounded pool, never on the loop's thread
    assert verifier.threads and all(n.startswith("argon2") for n in verifier.threads)
    assert len(verifier.thread_ids) <= HASH_WORKERS
    assert threading.get_ident() not in verifier.thread_ids
    # the user stays locked, the right password included; another user is not
    assert await _post_login(client, "sv", PASSWORD) == 429
    assert await _post_login(client, "op", PASSWORD) == 303


async def test_the_loop_keeps_running_while_a_password_is_checked(
        app_client: tuple[TestClient, Console]) -> None:
    """A deliberately slow check that can only finish once a ticker on the event loop has
    ticked: if the check ran on the loop, the ticker could never tick and the check would
    see its gate closed."""
    client, console = app_client
    real = console.users._check
    started, ticked = threading.Event(), threading.Event()
    seen: list[bool] = []

    def slow_check(password_hash: str, password: str) -> bool:
        started.set()
        seen.append(ticked.wait(SAFETY))
        return real(password_hash, password)

    console.users._check = slow_check  # type: ignore[method-assign]

    async def ticker() -> int:
        await asyncio.to_thread(started.wait, SAFETY)
        ticks = 0
        for _ in range(3):
            await asyncio.sleep(0)
            ticks += 1
        ticked.set()
        return ticks

    tick_task = asyncio.create_task(ticker())
    try:
        assert await _post_login(client, "sv", PASSWORD) == 303
    finally:
        ticked.set()
    assert seen == [True] and await tick_task == 3


async def test_long_or_odd_user_names_are_capped_and_fail_cleanly(tmp_path: Path) -> None:
    engine = offline_engine(tmp_path)
    client = TestClient(TestServer(make_app(engine, ConsoleConfig(max_failures_per_client=99))))
    await client.start_server()
    try:
        await _odd_names(client, client.app[CONSOLE], engine)
    finally:
        await client.close()


async def _odd_names(client: TestClient, console: Console, engine: Engine) -> None:
    for name in ("x" * 10_000, "sv\x00", "sv\n", "../sv", ""):
        assert await _post_login(client, name, "wrong password!") == 401
    keys = list(console.user_throttle._failures)
    assert keys and all(len(k) <= len("user:") + 64 for k in keys)
    # names over the cap share one key: spraying lengths does not buy more attempts
    for _ in range(4):
        assert await _post_login(client, "x" * 20_000, "wrong password!") == 401
    assert await _post_login(client, "x" * 64, "wrong password!") == 429
    # what was typed reaches the audit log printable (no NUL, no line break) and capped
    actors = [r.actor for r in await engine.recordings.audit_rows(limit=1000)]
    assert "sv?" in actors and all(a.isprintable() and len(a) <= 64 for a in actors)


async def test_a_good_login_does_not_count_against_its_address(tmp_path: Path) -> None:
    engine = offline_engine(tmp_path)
    client = TestClient(TestServer(make_app(engine, ConsoleConfig(max_failures_per_client=3))))
    await client.start_server()
    try:
        console = client.app[CONSOLE]
        await console.users.add("sv", "supervisor", PASSWORD)
        for _ in range(5):
            assert await _post_login(client, "sv", PASSWORD) == 303
        for _ in range(3):
            assert await _post_login(client, "nobody", "wrong password!") == 401
        assert await _post_login(client, "sv", PASSWORD) == 429  # the address is locked
    finally:
        await client.close()


async def test_the_hash_pool_lives_with_the_app(tmp_path: Path) -> None:
    engine = offline_engine(tmp_path)
    client = TestClient(TestServer(make_app(engine, ConsoleConfig())))
    console = client.app[CONSOLE]
    assert console.users._pool is None
    await client.start_server()
    try:
        assert console.users._pool is not None
        await console.users.add("sv", "supervisor", PASSWORD)
        assert await _post_login(client, "sv", PASSWORD) == 303
        assert COOKIE in client.session.cookie_jar.filter_cookies(client.make_url("/"))
    finally:
        await client.close()
    assert console.users._pool is None


def test_throttle_prunes_old_keys_and_stays_bounded() -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    throttle = Throttle(5, timedelta(minutes=15), lambda: now[0], max_keys=100)
    for i in range(50):
        throttle.failed(f"user:a{i}")
    assert len(throttle) == 50
    now[0] += timedelta(minutes=16)
    throttle.failed("user:fresh")  # the first attempt after a window sweeps the old keys
    assert list(throttle._failures) == ["user:fresh"]
    for i in range(1000):  # a spray inside one window: bounded all the same
        throttle.failed(f"user:b{i}")
    assert len(throttle) <= 100
    assert throttle.blocked("user:b999") is False
    for _ in range(4):
        throttle.failed("user:b999")
    assert throttle.blocked("user:b999")
    throttle.forgive("user:b999")
    assert not throttle.blocked("user:b999")
