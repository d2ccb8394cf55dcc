"""Login burst: how late the event loop runs while a burst of console logins is checked.

  .venv/bin/python -m bench.login_burst [--logins 20] [--rounds 3]

The web app runs in-process on an engine without Asterisk (harness/offline_engine.py), warmed
by one login first. A
ticker task asks to wake every millisecond and records how late each wake-up is: that
lateness is what AMI events, FastAGI sessions and the ACD would wait too. Then `--logins`
logins arrive at once (half with the right password, half wrong; one user each pair, so
no throttle answers instead of argon2) and are timed to the last answer. Each round runs
twice: argon2 on the event loop (the old behaviour, the baseline) and in the console's
thread pool (now); a third run without logins shows the machine's own lag over as long.
Not a test: numbers depend on the machine; run it on a quiet one.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp.test_utils import TestServer

from console.auth import HASH_WORKERS, LOGIN_COOKIE, ConsoleConfig
from console.http import CONSOLE
from harness.offline_engine import offline_engine
from madoguchi.web import make_app

PASSWORD = "correct horse battery"
TICK = 0.001
T = TypeVar("T")


@dataclass
class Result:
    mode: str
    logins: int
    accepted: int
    refused: int
    worst_ms: float
    p95_ms: float
    per_s: float


async def _on_loop(fn: Callable[..., T], *args: Any) -> T:
    return fn(*args)  # the old way: argon2 blocks the loop for its whole run


async def _ticker(stop: asyncio.Event, lags: list[float]) -> None:
    loop = asyncio.get_running_loop()
    due = loop.time() + TICK
    while not stop.is_set():
        await asyncio.sleep(TICK)
        now = loop.time()
        lags.append(max(0.0, now - due))
        due = now + TICK


async def _login(http: aiohttp.ClientSession, url: str, name: str, password: str) -> int:
    token = "b" * 32  # the login form's CSRF check is a double submit: cookie == field
    async with http.post(url, data={"name": name, "password": password, "csrf": token},
                         headers={"Cookie": f"{LOGIN_COOKIE}={token}"},
                         allow_redirects=False) as resp:
        await resp.read()
        return resp.status


async def run(mode: str, logins: int, idle_s: float = 0.0) -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        engine = offline_engine(Path(tmp))
        app = make_app(engine, ConsoleConfig())
        server = TestServer(app)
        await server.start_server()
        try:
            console = app[CONSOLE]
            users = (logins + 1) // 2
            for i in range(users):
                await console.users.add(f"user{i}", "supervisor", PASSWORD)
            if mode == "baseline":
                console.users._off_loop = _on_loop  # type: ignore[method-assign]
            url = str(server.make_url("/console/login"))
            await console.users.add("warmup", "supervisor", PASSWORD)
            attempts = [(f"user{i // 2}", PASSWORD if i % 2 == 0 else "wrong password!")
                        for i in range(logins)]
            lags: list[float] = []
            stop = asyncio.Event()
            async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
                # a running server: templates compiled, statements cached, pool started
                assert await _login(http, url, "warmup", PASSWORD) == 303
                ticker = asyncio.create_task(_ticker(stop, lags))
                await asyncio.sleep(0.05)  # the ticker's own baseline
                start = time.perf_counter()
                if mode == "idle":
                    statuses: list[int] = []
                    await asyncio.sleep(idle_s)
                else:
                    statuses = await asyncio.gather(*(_login(http, url, n, p)
                                                      for n, p in attempts))
                elapsed = time.perf_counter() - start
                stop.set()
                await ticker
        finally:
            await server.close()
    lags.sort()
    p95 = lags[min(len(lags) - 1, int(len(lags) * 0.95))] if lags else 0.0
    label = {"baseline": "argon2 on the event loop (old)", "idle": "no logins (reference)",
             "pool": f"argon2 in a {HASH_WORKERS}-thread pool"}[mode]
    return Result(label, len(statuses), statuses.count(303), statuses.count(401),
                  max(lags, default=0.0) * 1000, p95 * 1000, len(statuses) / elapsed)


async def main(logins: int, rounds: int) -> None:
    logging.basicConfig(level=logging.CRITICAL)  # no AMI here: its retries are expected
    results = []
    for _ in range(rounds):
        for mode in ("baseline", "pool"):
            results.append(await run(mode, logins))
        # as long as the pool's burst took
        results.append(await run("idle", 0, results[-1].logins / results[-1].per_s))
    print(f"{'mode':34} {'logins':>6} {'303/401':>8} {'worst lag':>10} {'p95 lag':>9} "
          f"{'logins/s':>9}")
    for r in results:
        print(f"{r.mode:34} {r.logins:>6} {f'{r.accepted}/{r.refused}':>8} "
              f"{r.worst_ms:>7.1f} ms {r.p95_ms:>6.1f} ms {r.per_s:>9.1f}")
    for label in dict.fromkeys(r.mode for r in results):
        mine = [r for r in results if r.mode == label]
        print(f"{label}: worst lag over {len(mine)} round(s) "
              f"{max(r.worst_ms for r in mine):.1f} ms, median logins/s "
              f"{statistics.median(r.per_s for r in mine):.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.logins, args.rounds))
