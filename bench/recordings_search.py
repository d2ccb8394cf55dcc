"""Recording search at scale: fill N synthetic recordings (default 1,000,000, about two
months of a busy center) and time the searches the console makes, through the same code
the API uses (RecordingService.search). Prints a table of p50/p95/p99 in milliseconds.

  .venv/bin/python -m bench.recordings_search                 # SQLite, 1,000,000 rows
  .venv/bin/python -m bench.recordings_search --postgres      # also PostgreSQL, if found

PostgreSQL: a throwaway cluster is created under a temporary folder with initdb/pg_ctl
(Debian package postgresql), run as the `postgres` user when started as root.
Not a test: it asserts nothing and is not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert

from recordings.service import RecordingPaths, RecordingQuery, RecordingService
from store.db import Database
from store.models import Base, CallRecord, Recording, RecordingAgent

END = datetime(2026, 11, 1, tzinfo=UTC)
DAYS = 62
AGENTS = [str(7001 + i) for i in range(40)]
PREFIXES = ["03", "06", "045", "090", "080", "070", "0120", "011", "052"]


def synthetic(n: int, seed: int = 5) -> Iterator[tuple[dict[str, Any], dict[str, Any],
                                                       list[dict[str, Any]]]]:
    rnd = random.Random(seed)
    span = DAYS * 86400
    for i in range(n):
        started = END - timedelta(seconds=span * (n - i) / n)
        prefix = rnd.choice(PREFIXES)
        caller = prefix + "".join(rnd.choice("0123456789") for _ in range(10 - len(prefix)))
        wait = round(rnd.expovariate(1 / 20), 3)
        talk = round(min(rnd.lognormvariate(5.0, 0.7), 3600), 3)
        answered = started + timedelta(seconds=8 + wait)
        ended = answered + timedelta(seconds=talk)
        agent = rnd.choice(AGENTS)
        outcome = "answered" if rnd.random() > 0.001 else "recovered"
        call_id = f"{i:032x}"
        service = "city" if rnd.random() < 0.8 else "water"
        call = dict(id=call_id, asterisk_uniqueid=f"{i}.1", service=service, did="1000",
                    caller=caller, language="ja", flow_path="greeting,to-queue",
                    queue=service, agent_id=agent, offered_at=started,
                    queued_at=started + timedelta(seconds=8), ring_at=answered,
                    answered_at=answered, ended_at=ended, outcome=outcome, wait_s=wait,
                    talk_s=talk, transfers="[]")
        rec = dict(id=i + 1, call_id=call_id, service=service, did="1000", caller=caller,
                   language="ja", queue=service, agent_id=agent, started_at=started,
                   answered_at=answered, ended_at=ended, duration_s=talk, wait_s=wait,
                   talk_s=talk, outcome=outcome, file=f"{started:%Y/%m/%d}/{call_id}.wav",
                   channels=2, size_bytes=int(talk * 32000) + 44, sha256="0" * 64,
                   status="ok")
        agents = [dict(recording_id=i + 1, agent_id=agent, started_at=started)]
        if rnd.random() < 0.05:  # a transfer to a second operator
            other = rnd.choice([a for a in AGENTS if a != agent])
            agents.append(dict(recording_id=i + 1, agent_id=other, started_at=started))
        yield call, rec, agents


def fill_sqlite(path: Path, n: int) -> float:
    t = time.perf_counter()
    engine = create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        batch: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
        for call, rec, agents in synthetic(n):
            batch[0].append(call)
            batch[1].append(rec)
            batch[2].extend(agents)
            if len(batch[0]) >= 20000:
                _flush(conn, batch)
        _flush(conn, batch)
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return time.perf_counter() - t


def _flush(conn: Any, batch: tuple[list[Any], list[Any], list[Any]]) -> None:
    if batch[0]:
        conn.execute(insert(CallRecord), batch[0])
        conn.execute(insert(Recording), batch[1])
        conn.execute(insert(RecordingAgent), batch[2])
    for b in batch:
        b.clear()


async def fill_postgres(url: str, n: int) -> float:
    import asyncpg

    t = time.perf_counter()
    db = Database(url)
    await db.create_schema()
    await db.close()
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    tables = {CallRecord.__tablename__: [], Recording.__tablename__: [],
              RecordingAgent.__tablename__: []}  # type: dict[str, list[tuple[Any, ...]]]
    cols = {name: [c.name for c in Base.metadata.tables[name].columns] for name in tables}

    async def flush() -> None:
        for name, rows in tables.items():
            if rows:
                await conn.copy_records_to_table(name, records=rows, columns=cols[name])
                rows.clear()

    for call, rec, agents in synthetic(n):
        tables["calls"].append(tuple(call.get(c) for c in cols["calls"]))
        tables["recordings"].append(tuple(rec.get(c) for c in cols["recordings"]))
        for a in agents:
            tables["recording_agents"].append(tuple(a.get(c) for c in cols["recording_agents"]))
        if len(tables["calls"]) >= 50000:
            await flush()
    await flush()
    await conn.execute("SELECT setval('recordings_id_seq', (SELECT max(id) FROM recordings))")
    await conn.execute("ANALYZE")
    await conn.close()
    return time.perf_counter() - t


def queries(rnd: random.Random) -> list[tuple[str, Callable[[], RecordingQuery]]]:
    def day() -> datetime:
        return END - timedelta(days=rnd.randint(1, DAYS - 1), hours=rnd.randint(0, 23))

    def number() -> str:
        return rnd.choice(PREFIXES) + "".join(rnd.choice("0123456789") for _ in range(3))

    def digits(k: int) -> str:
        return "".join(rnd.choice("0123456789") for _ in range(k))

    def week() -> tuple[datetime, datetime]:
        d = day()
        return d - timedelta(days=7), d

    return [
        ("one day, newest first", lambda: RecordingQuery(start=(d := day()),
                                                         end=d + timedelta(days=1), limit=50)),
        ("operator + one day", lambda: RecordingQuery(agent=rnd.choice(AGENTS),
                                                      start=(d := day()),
                                                      end=d + timedelta(days=1), limit=50)),
        ("operator, all time", lambda: RecordingQuery(agent=rnd.choice(AGENTS), limit=50)),
        ("caller prefix (6 digits), all time", lambda: RecordingQuery(caller=number(),
                                                                       limit=50)),
        ("caller part (4 digits), one week", lambda: RecordingQuery(
            caller_contains=digits(4), start=(w := week())[0], end=w[1], limit=50)),
        ("caller part (6 digits), one day", lambda: RecordingQuery(
            caller_contains=digits(6), start=(d := day()), end=d + timedelta(days=1),
            limit=50)),
        ("caller part (4 digits), all time", lambda: RecordingQuery(
            caller_contains=digits(4), limit=50)),
        ("service + day + talk >= 5 min", lambda: RecordingQuery(
            service="water", start=(d := day()), end=d + timedelta(days=1),
            min_duration=300, limit=50)),
        ("outcome=recovered, all time", lambda: RecordingQuery(outcome="recovered", limit=50)),
        ("longest first, 30-60 min", lambda: RecordingQuery(
            min_duration=1800, max_duration=3600, sort="-duration", limit=50)),
        ("one week, page 20 (offset 1000)", lambda: RecordingQuery(
            start=(w := week())[0], end=w[1], limit=50, offset=1000)),
    ]


async def run_queries(url: str, repeat: int) -> list[tuple[str, list[float]]]:
    db = Database(url)
    service = RecordingService(db, RecordingPaths(*(Path("/nonexistent"),) * 4))
    rnd = random.Random(7)
    results = []
    for name, make in queries(rnd):
        await service.search(make())  # warm the cache and the statement cache
        times = []
        for _ in range(repeat):
            q = make()
            t = time.perf_counter()
            await service.search(q)
            times.append((time.perf_counter() - t) * 1000)
        results.append((name, times))
    await db.close()
    return results


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def table(title: str, results: list[tuple[str, list[float]]]) -> None:
    print(f"\n{title}")
    print("| search | p50 ms | p95 ms | p99 ms |\n|---|---:|---:|---:|")
    for name, times in results:
        print(f"| {name} | {pct(times, 50):.1f} | {pct(times, 95):.1f} | {pct(times, 99):.1f} |")


def start_postgres(base: Path) -> tuple[str, Callable[[], None]] | None:
    bindir = Path("/usr/lib/postgresql")
    versions = sorted(bindir.glob("*/bin/initdb")) if bindir.is_dir() else []
    initdb = str(versions[-1]) if versions else shutil.which("initdb")
    if initdb is None:
        return None
    pg_ctl = str(Path(initdb).with_name("pg_ctl"))
    data, port = base / "pgdata", 45432
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "bench",
                    "--no-sync"], check=True, capture_output=True)
    subprocess.run([*as_user, pg_ctl, "-D", str(data), "-w", "-l", str(base / "pg.log"),
                    "-o", f"-p {port} -k {base} -c listen_addresses='' -c fsync=off "
                    f"-c shared_buffers=512MB", "start"], check=True, capture_output=True)

    def stop() -> None:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "fast", "stop"],
                       check=False, capture_output=True)

    subprocess.run([*as_user, str(Path(initdb).with_name("createdb")), "-h", str(base), "-p",
                    str(port), "-U", "bench", "bench"], check=True, capture_output=True)
    return f"postgresql+asyncpg://bench@/bench?host={base}&port={port}", stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mado-bench-") as tmp:
        path = Path(tmp) / "bench.db"
        took = fill_sqlite(path, args.rows)
        print(f"SQLite: {args.rows:,} recordings filled in {took:.0f} s "
              f"({path.stat().st_size / 1e6:.0f} MB)")
        table(f"SQLite {args.rows:,} rows", asyncio.run(
            run_queries(f"sqlite+aiosqlite:///{path}", args.repeat)))
        if args.postgres:
            started = start_postgres(Path(tmp))
            if started is None:
                print("\nPostgreSQL: not installed (Debian package postgresql); skipped")
                return
            url, stop = started
            try:
                took = asyncio.run(fill_postgres(url, args.rows))
                print(f"\nPostgreSQL: {args.rows:,} recordings filled in {took:.0f} s")
                table(f"PostgreSQL {args.rows:,} rows",
                      asyncio.run(run_queries(url, args.repeat)))
            finally:
                stop()


if __name__ == "__main__":
    main()
