"""Sub-commands for recordings: reconcile, purge, export, erase.

They open the database and folders named by the config, like the engine does; reconcile
and export run beside a running engine (SQLite WAL and PostgreSQL both allow it). The ones
that delete, `erase` and `purge` (but not `purge --dry-run`), take the state folder's lock
and refuse while the engine holds it: the engine purges on its own timer, and erasure is for
the end of the contract, with the engine stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import IO, Any

from core.settings import load_settings
from core.statelock import StateLock, StateLocked
from store.db import Database

from .export import export
from .lifecycle import erase_all, purge
from .reconcile import Reconciler
from .service import RecordingService


class ProgressBar:
    """A one-line progress bar on a terminal; silent when output is not a terminal."""

    def __init__(self, label: str, stream: IO[str] | None = None, width: int = 30) -> None:
        self.label = label
        self.stream = stream or sys.stderr  # looked up now: sys.stderr may have been replaced
        self.width = width
        self.tty = self.stream.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.tty:
            return
        filled = self.width * done // max(total, 1)
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] "
                          f"{done}/{total}")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def parse_when(raw: str, end: bool = False) -> datetime:
    """ISO 8601 time, or a date meaning that day in this machine's time zone (`--to` a date
    includes the whole day)."""
    try:
        value = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{raw!r} is not an ISO 8601 date or time") from exc
    if len(raw) == 10:  # a plain date
        value = datetime.combine(value.date(), time())
        if end:
            value += timedelta(days=1)
    return value if value.tzinfo else value.astimezone()


EXIT_ENGINE_RUNNING = 4


def _run(args: argparse.Namespace,
         job: Callable[[RecordingService], Awaitable[tuple[dict[str, Any], int]]],
         deletes: bool = False) -> int:
    settings = load_settings(Path(args.config), Path(args.state), args.env)
    if deletes:
        lock = StateLock(settings.state_dir)
        try:
            lock.acquire()
        except StateLocked as exc:
            print(f"madoguchi: {args.command} refused: {exc}", file=sys.stderr)
            return EXIT_ENGINE_RUNNING
        try:  # held while deleting: an engine started meanwhile refuses to run
            return _run(args, job)
        finally:
            lock.release()

    async def main() -> int:
        db = Database(settings.database_url)
        try:
            await db.create_schema()
            service = RecordingService.for_settings(db, settings.recordings_dir, settings)
            result, code = await job(service)
        finally:
            await db.close()
        print(json.dumps(result, ensure_ascii=False, indent=1))
        return code

    return asyncio.run(main())


def cmd_reconcile(args: argparse.Namespace) -> int:
    async def job(service: RecordingService) -> tuple[dict[str, Any], int]:
        # the engine's live calls are unknown here: the stale-age rule protects them
        report = await Reconciler(service).run()
        problems = report.counts()
        return ({"repaired": report.repaired, "problems": report.problems},
                1 if any(problems.values()) else 0)
    return _run(args, job)


def cmd_purge(args: argparse.Namespace) -> int:
    async def job(service: RecordingService) -> tuple[dict[str, Any], int]:
        d = await purge(service, dry_run=args.dry_run, actor="cli")
        out = d.as_json("cli")
        out["dry_run"] = args.dry_run
        out["report_file"] = str(d.report_file) if d.report_file else None
        if args.dry_run:
            out["would_delete"] = out.pop("recordings")
        return out, 0
    return _run(args, job, deletes=not args.dry_run)


def cmd_export(args: argparse.Namespace) -> int:
    start, end = args.start, args.end
    if end <= start:
        print("madoguchi: --to must be after --from", file=sys.stderr)
        return 2

    async def job(service: RecordingService) -> tuple[dict[str, Any], int]:
        s = await export(service, start, end, Path(args.out), ProgressBar("export"))
        for bad in s.mismatched:
            print(f"madoguchi: export: {bad['member']} differs from its checksum in the index "
                  f"(recording {bad['id']}); SHA256SUMS holds the index's checksum, so "
                  "`sha256sum -c` fails on it", file=sys.stderr)
        return ({"out": str(s.out), "tables": s.tables, "recordings": s.recordings,
                 "bytes": s.bytes, "manifest_sha256": s.manifest_sha256,
                 "mismatched": s.mismatched, "problems": s.problems},
                1 if s.problems else 0)
    return _run(args, job)


def cmd_erase(args: argparse.Namespace) -> int:
    if not (args.all and args.confirm):
        print("madoguchi: erase deletes ALL personal data for good; "
              "say `erase --all --confirm`", file=sys.stderr)
        return 2

    async def job(service: RecordingService) -> tuple[dict[str, Any], int]:
        d = await erase_all(service, actor="cli")
        out = d.as_json("cli")
        out.pop("recordings")  # the list is in the report file
        out["report_file"] = str(d.report_file)
        return out, 0
    return _run(args, job, deletes=True)


def add_commands(sub: Any) -> None:
    """Called by madoguchi.cli.build_parser with its sub-parser collection."""
    sub.add_parser("reconcile", help="recordings: find and repair files without rows and "
                   "rows without files").set_defaults(func=cmd_reconcile)
    p = sub.add_parser("purge", help="recordings: delete calls and recordings past retention")
    p.add_argument("--dry-run", action="store_true", help="list what would go, delete nothing")
    p.set_defaults(func=cmd_purge)
    p = sub.add_parser("export", help="recordings: write a handover archive (tar)")
    p.add_argument("--from", dest="start", required=True, type=parse_when)
    p.add_argument("--to", dest="end", required=True, type=lambda s: parse_when(s, end=True))
    p.add_argument("out", help="the tar file to write")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("erase", help="delete ALL personal data irrecoverably, with a report")
    p.add_argument("--all", action="store_true")
    p.add_argument("--confirm", action="store_true")
    p.set_defaults(func=cmd_erase)
