"""Sub-commands for bookings: `bookings purge` (past retention, with a deletion report) and
`bookings draw EVENT` (a lottery, after its window). Both take the state folder's lock, as
the recordings purge does: the engine purges on its own timer.

Importing this module also puts the bookings tables in the schema's metadata, so the
hand-over export and `erase` (recordings.cli) include them."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from core.errors import ApiError
from core.settings import load_settings
from core.statelock import StateLock, StateLocked
from store.db import Database

from . import models
from .retention import purge
from .service import BookingService, Channel, Who
from .settings import booking_settings

EXIT_ENGINE_RUNNING = 4  # as recordings purge and erase
assert models  # the tables, for export and erase


def _locked(args: argparse.Namespace, job: Any) -> int:
    settings = load_settings(Path(args.config), Path(args.state), args.env)
    lock = StateLock(settings.state_dir)
    try:
        lock.acquire()
    except StateLocked as exc:
        print(f"madoguchi: bookings {args.action} refused: {exc}", file=sys.stderr)
        return EXIT_ENGINE_RUNNING

    async def main() -> int:
        db = Database(settings.database_url)
        try:
            await db.create_schema()
            out = await job(BookingService(db), settings)
        finally:
            await db.close()
        print(json.dumps(out, ensure_ascii=False, indent=1))
        return 0
    try:
        return asyncio.run(main())
    finally:
        lock.release()


def cmd_bookings(args: argparse.Namespace) -> int:
    async def do_purge(service: BookingService, settings: Any) -> dict[str, Any]:
        result, report = await purge(service, booking_settings(settings),
                                     settings.state_dir, actor="cli")
        return {"bookings": result.bookings, "cutoff": result.cutoff.isoformat(),
                "report_file": str(report) if report else None}

    async def do_draw(service: BookingService, _settings: Any) -> dict[str, Any]:
        result = await service.draw(args.event, Who("cli", "local", Channel.SYSTEM),
                                    args.seed)
        return {"event": args.event, "sessions": {str(k): v for k, v in result.items()}}

    if args.action == "draw" and not args.event:
        print("madoguchi: bookings draw needs the event's id", file=sys.stderr)
        return 2
    try:
        return _locked(args, do_purge if args.action == "purge" else do_draw)
    except ApiError as exc:  # no such event, not a lottery, window still open
        print(f"madoguchi: bookings {args.action}: {exc.message}", file=sys.stderr)
        return 1


def add_commands(sub: Any) -> None:
    """Called by madoguchi.cli.build_parser with its sub-parser collection."""
    p = sub.add_parser("bookings", help="bookings: purge past retention | draw a lottery")
    p.add_argument("action", choices=["purge", "draw"])
    p.add_argument("event", nargs="?", help="the event to draw (draw)")
    p.add_argument("--seed", help="the draw's seed (default: a new random one)")
    p.set_defaults(func=cmd_bookings)
