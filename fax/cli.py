"""`madoguchi fax index | purge | export | erase`: the FAX data's own commands, run like the
recordings' (the deleting ones take the state folder's lock and refuse beside a running
engine). `madoguchi erase --all --confirm` runs `fax erase` first (madoguchi/cli.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from core.settings import load_settings
from core.statelock import StateLock, StateLocked
from store.db import Database

from .export import export
from .indexer import Indexer
from .lifecycle import erase_all, purge
from .service import FaxService
from .settings import fax_config

EXIT_ENGINE_RUNNING = 4
Job = Callable[[FaxService], Awaitable[tuple[dict[str, Any], int]]]


def _when(raw: str, end: bool = False) -> datetime:
    try:
        value = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{raw!r} is not an ISO 8601 date or time") from exc
    if len(raw) == 10:  # a plain date: that whole day, `--to` included
        value = datetime.combine(value.date(), time()) + timedelta(days=1 if end else 0)
    return value if value.tzinfo else value.astimezone()


def run(args: argparse.Namespace, job: Job, deletes: bool = False) -> int:
    settings = load_settings(Path(args.config), Path(args.state), args.env)
    if deletes:
        lock = StateLock(settings.state_dir)
        try:
            lock.acquire()
        except StateLocked as exc:
            name = f"fax {args.action}" if args.command == "fax" else args.command
            print(f"madoguchi: {name} refused: {exc}", file=sys.stderr)
            return EXIT_ENGINE_RUNNING
        try:
            return run(args, job)
        finally:
            lock.release()

    async def main() -> int:
        db = Database(settings.database_url)
        try:
            await db.create_schema()
            result, code = await job(FaxService(db, fax_config(settings)))
        finally:
            await db.close()
        print(json.dumps(result, ensure_ascii=False, indent=1))
        return code

    return asyncio.run(main())


async def _index(service: FaxService) -> tuple[dict[str, Any], int]:
    report = await Indexer(service).run()
    return ({"indexed": report.indexed, "waiting": report.waiting,
             "problems": report.problems}, 1 if report.problems else 0)


def erase_job(actor: str = "cli") -> Job:
    async def job(service: FaxService) -> tuple[dict[str, Any], int]:
        d = await erase_all(service, actor=actor)
        out = d.as_json(actor)
        out.pop("items")  # the list is in the report file
        out["report_file"] = str(d.report_file)
        return out, 0
    return job


def cmd_fax(args: argparse.Namespace) -> int:
    if args.action == "index":
        return run(args, _index)
    if args.action == "purge":
        async def purge_job(service: FaxService) -> tuple[dict[str, Any], int]:
            d = await purge(service, dry_run=args.dry_run, actor="cli")
            out = d.as_json("cli")
            out.update(dry_run=args.dry_run,
                       report_file=str(d.report_file) if d.report_file else None)
            return out, 0
        return run(args, purge_job, deletes=not args.dry_run)
    if args.action == "export":
        if args.start is None or args.end is None or args.out is None:
            print("madoguchi: fax export needs --from, --to and --out", file=sys.stderr)
            return 2
        if args.end <= args.start:
            print("madoguchi: --to must be after --from", file=sys.stderr)
            return 2

        async def export_job(service: FaxService) -> tuple[dict[str, Any], int]:
            s = await export(service, args.start, args.end, Path(args.out))
            return ({"out": str(s.out), "tables": s.tables, "files": s.files,
                     "bytes": s.bytes, "manifest_sha256": s.manifest_sha256,
                     "problems": s.problems}, 1 if s.problems else 0)
        return run(args, export_job)
    if not (args.all and args.confirm):
        print("madoguchi: fax erase deletes ALL FAX data for good; say "
              "`fax erase --all --confirm`", file=sys.stderr)
        return 2
    return run(args, erase_job(), deletes=True)


def add_commands(sub: Any) -> None:
    """Called by madoguchi.cli.build_parser with its sub-parser collection."""
    p = sub.add_parser("fax", help="FAX: index the spool now, purge past retention, export "
                       "(tar with PDFs and checksums), erase everything")
    p.add_argument("action", choices=["index", "purge", "export", "erase"])
    p.add_argument("--out", help="export: the tar file to write")
    p.add_argument("--dry-run", action="store_true", help="purge: list, delete nothing")
    p.add_argument("--from", dest="start", type=_when)
    p.add_argument("--to", dest="end", type=lambda s: _when(s, end=True))
    p.add_argument("--all", action="store_true")
    p.add_argument("--confirm", action="store_true")
    p.set_defaults(func=cmd_fax)
