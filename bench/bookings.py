"""Bookings per second through the public page, on SQLite and PostgreSQL.

  .venv/bin/python -m bench.bookings [--seconds 4] [--sqlite-only]

The engine's web app (without Asterisk, harness/offline_engine.py) serves in a child
process, on its SQLite file or on a throwaway PostgreSQL cluster (tests/pg.py). This process
offers bookings at rising rates, open loop (each request sent at its time, whether the
previous ones have answered or not), each a real POST /book/events/{id} with the page's
CSRF cookie and token, a distinct phone number, one seat of a session large enough for all.
For each rate: bookings answered 201 per second, p50 and p99 latency. The figure kept is the
highest rate whose p99 stays within 200 ms, the next step being where it passes.
Not a test: numbers depend on the machine; run it on a quiet one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import os
import re
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import aiohttp
import yaml
from aiohttp import web

from core.clock import now_utc
from harness.ports import free_port

RATES = (10, 20, 40, 60, 80, 100, 130, 160, 200, 250, 320)
P99_LIMIT_MS = 200.0
GIVE_UP_MS = 2000.0  # past this p99, higher rates only take longer to say the same


@dataclass
class Step:
    backend: str
    offered: int
    sent: int
    ok: int
    failed: int
    per_s: float
    p50_ms: float
    p99_ms: float


def _serve(config: str, state: str, port: int, url: str | None) -> None:
    """The child process: the engine's app on `port` until terminated."""
    logging.basicConfig(level=logging.CRITICAL)  # no AMI here: its retries are expected
    if url is not None:
        os.environ["MADOGUCHI_DATABASE_URL"] = url
    from ami_bridge.pbx.confgen import layout_for
    from console.auth import ConsoleConfig
    from core.secrets import load_or_create
    from core.settings import load_settings
    from madoguchi.engine import Engine
    from madoguchi.web import make_app

    settings = load_settings(Path(config), Path(state))
    secrets = load_or_create(settings.state_dir, [a.id for a in settings.agents])
    engine = Engine(settings, secrets, layout_for(settings, chroot=False))
    web.run_app(make_app(engine, ConsoleConfig()), host="127.0.0.1", port=port,
                print=None, handle_signals=True)


def _config(tmp: Path) -> Path:
    from harness.offline_engine import offline_config

    config = offline_config(tmp)
    main_file = config / "madoguchi.yaml"
    data = yaml.safe_load(main_file.read_text(encoding="utf-8"))
    # the bench is one client address sending hundreds a second: no limit in the way
    data["bookings"]["public_writes_per_minute"] = 100_000
    data["bookings"]["public_reads_per_minute"] = 100_000
    main_file.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return config


async def _wait_up(http: aiohttp.ClientSession, base: str) -> None:
    for _ in range(300):
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(base + "/book/") as resp:
                if resp.status == 200:
                    return
        await asyncio.sleep(0.1)
    raise RuntimeError("the engine did not start")


async def _catalogue(http: aiohttp.ClientSession, base: str, token: str) -> int:
    now = now_utc()
    event = {"id": "bench", "title_ja": "負荷試験", "rule": "first_come", "max_party": 1,
             "duplicates": "flag", "opens_at": (now - timedelta(hours=1)).isoformat(),
             "closes_at": (now + timedelta(days=1)).isoformat(),
             "sessions": [{"starts_at": (now + timedelta(days=2)).isoformat(),
                           "ends_at": (now + timedelta(days=2, hours=2)).isoformat(),
                           "venue_ja": "会館", "capacity": 100_000}]}
    async with http.post(base + "/api/bookings/events", json=event,
                         headers={"Authorization": f"Bearer {token}"}) as resp:
        body = await resp.json()
        if resp.status != 201:
            raise RuntimeError(f"catalogue: {resp.status} {body}")
        return int(body["sessions"][0]["id"])


async def _step(http: aiohttp.ClientSession, base: str, backend: str, rate: int,
                seconds: float, form: dict[str, str], first_phone: int) -> Step:
    n = int(rate * seconds)
    latencies: list[float] = []
    statuses: list[int] = []

    async def one(i: int, at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        start = time.perf_counter()
        try:
            async with http.post(base + "/book/events/bench", data={
                    **form, "phone": f"090{first_phone + i:08d}"}) as resp:
                await resp.read()
                statuses.append(resp.status)
        except aiohttp.ClientError:
            statuses.append(0)
        latencies.append(time.perf_counter() - start)

    t0 = time.perf_counter() + 0.05
    await asyncio.gather(*(one(i, t0 + i / rate) for i in range(n)))
    elapsed = max(time.perf_counter() - t0, n / rate)
    latencies.sort()
    ok = statuses.count(201)
    return Step(backend, rate, n, ok, n - ok, ok / elapsed,
                latencies[len(latencies) // 2] * 1000,
                latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000)


async def _drive(backend: str, port: int, api_token: str, seconds: float,
                 rates: tuple[int, ...]) -> list[Step]:
    base = f"http://127.0.0.1:{port}"
    connector = aiohttp.TCPConnector(limit=0)
    # unsafe: the jar keeps cookies of an IP address host (the page's CSRF cookie)
    async with aiohttp.ClientSession(connector=connector,
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        await _wait_up(http, base)
        session_id = await _catalogue(http, base, api_token)
        async with http.get(base + "/book/events/bench") as resp:
            page = await resp.text()
        found = re.search(r'name="csrf" value="([^"]+)"', page)
        if found is None:
            raise RuntimeError("no form token on the booking page")
        form = {"csrf": found.group(1), "session_id": str(session_id), "name": "負荷 太郎",
                "furigana": "ふか たろう", "party": "1"}
        steps: list[Step] = []
        phone = 0
        for rate in rates:
            step = await _step(http, base, backend, rate, seconds, form, phone)
            phone += step.sent
            steps.append(step)
            if step.p99_ms > GIVE_UP_MS:
                break
    return steps


def run_backend(backend: str, seconds: float, url: str | None,
                rates: tuple[int, ...] = RATES) -> list[Step]:
    with tempfile.TemporaryDirectory() as tmp:
        config = _config(Path(tmp))
        state = Path(tmp) / "state"
        from core.secrets import load_or_create
        from core.settings import load_settings

        settings = load_settings(config, state)
        api_token = load_or_create(state, [a.id for a in settings.agents]).api_token
        port = free_port()
        ctx = multiprocessing.get_context("spawn")
        child = ctx.Process(target=_serve, args=(str(config), str(state), port, url))
        child.start()
        try:
            return asyncio.run(_drive(backend, port, api_token, seconds, rates))
        finally:
            child.terminate()
            child.join(30)


def knee(steps: list[Step]) -> str:
    within = [s for s in steps if s.p99_ms <= P99_LIMIT_MS and s.failed == 0]
    past = next((s for s in steps if s.p99_ms > P99_LIMIT_MS), None)
    best = f"{max(s.per_s for s in within):.0f} bookings/s" if within else "none"
    then = (f"p99 passes {P99_LIMIT_MS:.0f} ms at {past.offered}/s offered "
            f"({past.per_s:.0f}/s done, p99 {past.p99_ms:.0f} ms)" if past
            else "p99 stayed within the limit at every rate tried")
    return f"{best} with p99 <= {P99_LIMIT_MS:.0f} ms; {then}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="per rate step")
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--rates", help="offered rates, comma-separated (default: "
                        + ",".join(map(str, RATES)) + ")")
    args = parser.parse_args()
    rates = tuple(int(r) for r in args.rates.split(",")) if args.rates else RATES
    results: dict[str, list[Step]] = {"SQLite": run_backend("SQLite", args.seconds, None,
                                                            rates)}
    if not args.sqlite_only:
        from tests.pg import start_cluster

        cluster = start_cluster()
        try:
            url = cluster.create_database("bench")
            results["PostgreSQL"] = run_backend("PostgreSQL", args.seconds, url, rates)
        finally:
            cluster.stop()
    print(f"{'backend':10} {'offered/s':>9} {'sent':>6} {'201':>6} {'other':>6} "
          f"{'done/s':>7} {'p50 ms':>7} {'p99 ms':>7}")
    for steps in results.values():
        for s in steps:
            print(f"{s.backend:10} {s.offered:>9} {s.sent:>6} {s.ok:>6} {s.failed:>6} "
                  f"{s.per_s:>7.1f} {s.p50_ms:>7.1f} {s.p99_ms:>7.1f}")
    for backend, steps in results.items():
        print(f"{backend}: {knee(steps)}")


if __name__ == "__main__":
    main()
