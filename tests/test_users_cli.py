"""`madoguchi users add | disable | enable | remove` through the CLI's main(): extensions
checked against agents.yaml, the last enabled admin kept, every change in the audit log."""

from __future__ import annotations

import asyncio
import getpass
import io
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from console.auth import Users
from harness.offline_engine import offline_config
from madoguchi.cli import main
from store.db import Database

PASSWORD = "correct horse battery"


class Cli:
    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 capsys: pytest.CaptureFixture[str]) -> None:
        monkeypatch.delenv("MADOGUCHI_DATABASE_URL", raising=False)  # the state's SQLite file
        self.state = tmp_path / "state"
        self.base = ["--config", str(offline_config(tmp_path)), "--state", str(self.state),
                     "users"]
        self.monkeypatch = monkeypatch
        self.capsys = capsys
        self.stdin = io.StringIO()

    def run(self, *argv: str) -> tuple[int, str, str]:
        self.stdin = io.StringIO(PASSWORD + "\n")
        self.monkeypatch.setattr("sys.stdin", self.stdin)
        code = main([*self.base, *argv])
        out, err = self.capsys.readouterr()
        return code, out, err

    def add(self, name: str, role: str, *extra: str) -> int:
        return self.run("add", "--role", role, "--password-stdin", *extra, name)[0]

    def users(self) -> dict[str, list[str]]:
        code, out, _ = self.run("list")
        assert code == 0
        return {line.split("\t")[0]: line.split("\t")[1:] for line in out.splitlines()}

    def audit(self) -> list[tuple[str, str | None, str, str, str]]:
        with closing(sqlite3.connect(self.state / "madoguchi.db")) as conn:
            return list(conn.execute("SELECT actor, user_id, client, action, detail "
                                     "FROM audit_log ORDER BY id"))

    def can_log_in(self, name: str) -> bool:
        async def verify() -> bool:
            db = Database(f"sqlite+aiosqlite:///{self.state / 'madoguchi.db'}")
            try:
                return await Users(db).verify(name, PASSWORD) is not None
            finally:
                await db.close()
        return asyncio.run(verify())


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(tmp_path, monkeypatch, capsys)


def test_an_agent_must_be_a_configured_operator(cli: Cli) -> None:
    code, out, err = cli.run("add", "--role", "operator", "--agent", "7999",
                             "--password-stdin", "op")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "'7999'" in err and "agents.yaml" in err
    assert "7001" in err  # the configured ones are named
    assert cli.stdin.read() == PASSWORD + "\n"  # refused before the password is read
    code, _, err = cli.run("add", "--role", "supervisor", "--agent", "7001",
                           "--password-stdin", "sv")
    assert code == 2 and "operators only" in err and err.count("\n") == 1
    assert cli.users() == {}
    assert cli.audit() == []
    assert cli.add("op", "operator", "--agent", "7001") == 0
    assert cli.users() == {"op": ["operator", "7001"]}


def test_disable_enable_remove_round_trip(cli: Cli) -> None:
    assert cli.add("kanri", "admin") == 0
    assert cli.add("op", "operator", "--agent", "7002") == 0
    assert cli.can_log_in("op")
    code, out, _ = cli.run("disable", "op")
    assert code == 0 and "op disabled" in out
    assert cli.users()["op"] == ["operator", "7002", "disabled"]
    assert not cli.can_log_in("op")
    assert cli.run("enable", "op")[0] == 0
    assert cli.users()["op"] == ["operator", "7002"]
    assert cli.can_log_in("op")
    code, out, _ = cli.run("remove", "op")
    assert code == 0 and "op removed" in out
    assert cli.users() == {"kanri": ["admin", ""]}
    assert not cli.can_log_in("op")
    for action in ("disable", "enable", "remove"):
        code, _, err = cli.run(action, "op")
        assert code == 2 and err == "madoguchi: no user op\n"


def test_the_last_enabled_admin_stays(cli: Cli) -> None:
    assert cli.add("kanri", "admin") == 0
    for action in ("disable", "remove"):
        code, _, err = cli.run(action, "kanri")
        assert code == 2 and "kanri is the last enabled admin" in err
    code, _, err = cli.run("add", "--role", "supervisor", "--password-stdin", "--replace",
                           "kanri")
    assert code == 2 and "last enabled admin" in err
    assert cli.users() == {"kanri": ["admin", ""]}
    assert cli.add("kanri2", "admin") == 0
    assert cli.run("disable", "kanri")[0] == 0
    code, _, err = cli.run("remove", "kanri2")  # kanri is disabled: kanri2 is the last one
    assert code == 2 and "kanri2 is the last enabled admin" in err
    assert cli.run("remove", "kanri")[0] == 0  # a disabled admin can go
    assert cli.users() == {"kanri2": ["admin", ""]}
    assert cli.can_log_in("kanri2")


def test_every_change_is_audited_with_the_host_account(cli: Cli) -> None:
    assert cli.add("kanri", "admin") == 0
    assert cli.add("op", "operator", "--agent", "7001") == 0
    assert cli.run("disable", "op")[0] == 0
    assert cli.run("enable", "op")[0] == 0
    assert cli.run("remove", "kanri")[0] == 2  # refusals leave no row
    assert cli.run("remove", "op")[0] == 0
    actor = f"cli:{getpass.getuser()}"
    assert cli.audit() == [
        (actor, None, "cli", "user-add", "kanri role=admin"),
        (actor, None, "cli", "user-add", "op role=operator ext=7001"),
        (actor, None, "cli", "user-disable", "op"),
        (actor, None, "cli", "user-enable", "op"),
        (actor, None, "cli", "user-remove", "op"),
    ]
