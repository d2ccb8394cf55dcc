"""`madoguchi users add | list | disable | enable | remove`: the first admin (and any user)
is made here, never by a default password. The password is read from the terminal, or from
stdin with --password-stdin (for scripts); it is stored only as an argon2 hash. Every change
is audited like the admin page's, with the host account as the actor."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.access import ROLES
from core.identity import Actor
from core.settings import Settings, load_settings
from store.db import Database

from .auth import OPERATOR, UserError, Users, audit
from .directory import MAX_CSV_BYTES, CsvError, Directory


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise UserError("the two passwords differ")
    return first


def _cli_actor() -> Actor:
    """The audit log names the host account that ran the command; no console user is
    logged in, so user_id stays empty (as for the API token)."""
    try:
        login = getpass.getuser()
    except (OSError, KeyError):  # no name for this uid (a bare container)
        login = str(os.getuid())
    return Actor(f"cli:{login}"[:64], "cli")


def _check_agent(args: argparse.Namespace, settings: Settings) -> None:
    """An operator's extension is one configured in agents.yaml: the desk acts on it."""
    if args.agent is None:
        return
    if args.role != OPERATOR:
        raise UserError(f"--agent is for operators only, not the role {args.role}")
    known = [a.id for a in settings.agents]
    if args.agent not in known:
        raise UserError(f"--agent {args.agent!r}: no operator with that extension in "
                        f"{settings.config_dir / 'agents.yaml'} "
                        f"(configured: {', '.join(known) or 'none'})")


async def _with_users(args: argparse.Namespace, settings: Settings,
                      password: str | None) -> int:
    db = Database(settings.database_url)
    try:
        await db.create_schema()
        users = Users(db)
        action, name = args.users_action, getattr(args, "name", "")
        if action == "list":
            for u in await users.all():
                print(f"{u.name}\t{u.role}\t{u.agent_id or ''}"
                      + ("\tdisabled" if u.disabled else ""))
            return 0
        if action == "add":
            assert password is not None
            await users.add(name, args.role, password, args.agent, replace=args.replace)
            detail = (f"{name} role={args.role}" + (f" ext={args.agent}" if args.agent else "")
                      + (" (replaced)" if args.replace else ""))
            print(f"user {name} ({args.role}) saved")
        elif action == "remove":
            await users.remove(name)
            detail = name
            print(f"user {name} removed")
        else:
            await users.change(name, disabled=action == "disable")
            detail = name
            print(f"user {name} {action}d")
        await audit(db, datetime.now(UTC), _cli_actor(), f"user-{action}", detail)
        return 0
    finally:
        await db.close()


def cmd_users(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(Path(args.config), Path(args.state), args.env)
        settings.state_dir.mkdir(parents=True, exist_ok=True)  # the first command on a new host
        if args.users_action == "add":
            _check_agent(args, settings)  # before the password is asked for
        password = _password(args) if args.users_action == "add" else None
        return asyncio.run(_with_users(args, settings, password))
    except UserError as exc:
        print(f"madoguchi: {exc}", file=sys.stderr)
        return 2


async def _import(args: argparse.Namespace, data: bytes) -> int:
    settings = load_settings(Path(args.config), Path(args.state), args.env)
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
    users = sub.add_parser("users", help="console users: add | list | disable | enable | "
                           "remove")
    actions = users.add_subparsers(dest="users_action", required=True)
    add = actions.add_parser("add", help="create a user (or --replace its password and role)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--agent", help="an operator's extension (required for operators)")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of stdin")
    add.add_argument("--replace", action="store_true", help="overwrite an existing user")
    actions.add_parser("list", help="users and their roles")
    for action, what in (("disable", "refuse the user's logins (the account stays)"),
                         ("enable", "allow a disabled user's logins again"),
                         ("remove", "delete the user (no confirmation)")):
        actions.add_parser(action, help=what).add_argument("name")
    users.set_defaults(func=cmd_users)
