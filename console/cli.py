"""`madoguchi users add | list`: the first admin (and any user) is made here, never by a
default password. The password is read from the terminal, or from stdin with
--password-stdin (for scripts); it is stored only as an argon2 hash."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from pathlib import Path
from typing import Any

from madoguchi.settings import load_settings
from store.db import Database

from .auth import ROLES, UserError, Users
from .directory import MAX_CSV_BYTES, CsvError, Directory


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise UserError("the two passwords differ")
    return first


async def _with_users(args: argparse.Namespace, password: str | None) -> int:
    settings = load_settings(Path(args.config), Path(args.state))
    settings.state_dir.mkdir(parents=True, exist_ok=True)  # the first command on a new host
    db = Database(settings.database_url)
    try:
        await db.create_schema()
        users = Users(db)
        if args.users_action == "add":
            assert password is not None
            await users.add(args.name, args.role, password, args.agent, replace=args.replace)
            print(f"user {args.name} ({args.role}) saved")
        else:
            for u in await users.all():
                print(f"{u.name}\t{u.role}\t{u.agent_id or ''}")
        return 0
    finally:
        await db.close()


def cmd_users(args: argparse.Namespace) -> int:
    try:
        password = _password(args) if args.users_action == "add" else None
        return asyncio.run(_with_users(args, password))
    except UserError as exc:
        print(f"madoguchi: {exc}", file=sys.stderr)
        return 2


async def _import(args: argparse.Namespace, data: bytes) -> int:
    settings = load_settings(Path(args.config), Path(args.state))
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.database_url)
    try:
        await db.create_schema()
        directory = Directory(db)
        done = await (directory.import_directory(data) if args.kind == "directory"
                      else directory.import_faq(data))
        print(f"{args.kind}: {done.rows} rows imported")
        return 0
    finally:
        await db.close()


def cmd_import(args: argparse.Namespace) -> int:
    try:
        with open(args.csv, "rb") as fh:
            data = fh.read(MAX_CSV_BYTES + 1)
        if len(data) > MAX_CSV_BYTES:
            raise CsvError(f"the file is over {MAX_CSV_BYTES // (1024 * 1024)} MiB")
        return asyncio.run(_import(args, data))
    except (CsvError, OSError) as exc:
        print(f"madoguchi: {args.csv}: {exc}", file=sys.stderr)
        return 2


def add_parser(sub: Any) -> None:
    imp = sub.add_parser("import", help="replace the staff directory or the FAQ from a CSV")
    imp.add_argument("kind", choices=["directory", "faq"])
    imp.add_argument("csv", help="UTF-8 CSV; directory: section,name,extension[,note]; "
                     "faq: id,question,answer[,keywords]")
    imp.set_defaults(func=cmd_import)
    users = sub.add_parser("users", help="console users: add | list")
    actions = users.add_subparsers(dest="users_action", required=True)
    add = actions.add_parser("add", help="create a user (or --replace its password and role)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--agent", help="an operator's extension (required for operators)")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of stdin")
    add.add_argument("--replace", action="store_true", help="overwrite an existing user")
    actions.add_parser("list", help="users and their roles")
    users.set_defaults(func=cmd_users)
