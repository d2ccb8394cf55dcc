"""`madoguchi db upgrade | current`: the database schema's revision, and bringing it to the
latest one ahead of a start (the engine also does so whenever it starts)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from core.settings import load_settings

from . import migrate
from .db import Database


async def _db(action: str, url: str) -> int:
    db = Database(url)
    try:
        before = await db.revision()
        if action == "upgrade":
            await db.upgrade()
            after = await db.revision()
            print(f"database schema at revision {after}"
                  + (" (already the latest)" if after == before
                     else f" (was {before or 'none'})"))
            return 0
        latest = migrate.head()
        if before == latest:
            print(f"{before} (the latest)")
        elif before is None and await db.unversioned_tables():
            print("none: tables made before schema migrations; "
                  "`madoguchi db upgrade` (or the engine's start) adopts them")
        else:
            print(f"{before or 'none'} (the latest is {latest}: `madoguchi db upgrade`)")
        return 0
    finally:
        await db.close()


def cmd_db(args: argparse.Namespace) -> int:
    # the overrides the command line read from the environment, if it handed them over
    settings = load_settings(Path(args.config), Path(args.state), getattr(args, "env", None))
    settings.state_dir.mkdir(parents=True, exist_ok=True)  # the SQLite file's folder
    return asyncio.run(_db(args.db_action, settings.database_url))


def add_parser(sub: Any) -> None:
    db = sub.add_parser("db", help="database schema: upgrade | current")
    db.add_argument("db_action", choices=["upgrade", "current"],
                    help="upgrade: migrate to the latest revision; current: show the revision")
    db.set_defaults(func=cmd_db)
