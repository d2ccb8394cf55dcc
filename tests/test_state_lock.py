"""One engine per state folder: the engine holds state/engine.lock while it runs, and erase
and purge refuse (clear message, non-zero exit, nothing deleted) while another process holds
it; `purge --dry-run` only reads and still runs."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from core.settings import load_settings
from core.statelock import LOCK_FILE, StateLock, StateLocked
from harness.offline_engine import offline_config, offline_engine
from harness.ports import free_port
from harness.stack_setup import madoguchi_cmd
from madoguchi.cli import main
from madoguchi.web import make_app
from store.db import Database
from store.models import CallRecord

# a second process that takes the lock the way the engine does, and keeps it until its
# stdin closes
HOLDER = """
import sys
from pathlib import Path
from core.statelock import StateLock
StateLock(Path(sys.argv[1])).acquire()
print("held", flush=True)
sys.stdin.read()
"""
# a second process that only asks: exit 0 if it got the lock, 1 if it is held elsewhere
PROBE = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    sys.exit(1)
"""


@contextmanager
def held_elsewhere(state: Path) -> Iterator[subprocess.Popen[str]]:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(state)], text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline() == "held\n"
        yield holder
    finally:
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
        holder.stdout.close()


def probe(state: Path) -> int:
    return subprocess.run([sys.executable, "-c", PROBE, str(state / LOCK_FILE)],
                          check=False).returncode


def calls_stored(url: str) -> int:
    async def count() -> int:
        db = Database(url)
        try:
            async with db.sessions() as s:
                return int(await s.scalar(select(func.count()).select_from(CallRecord)) or 0)
        finally:
            await db.close()
    return asyncio.run(count())


def test_erase_and_purge_refuse_while_another_process_holds_the_lock(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, state = offline_config(tmp_path), tmp_path / "state"
    state.mkdir()
    settings = load_settings(config, state)

    async def seed() -> None:
        db = Database(settings.database_url)
        await db.create_schema()
        now = datetime.now(UTC)
        await db.add(CallRecord(id="c1", asterisk_uniqueid="1.1", service="city", did="1000",
                                caller="0312345678", language="ja", offered_at=now,
                                ended_at=now, outcome="abandoned_ivr"), what="a call")
        await db.close()

    asyncio.run(seed())
    base = ["--config", str(config), "--state", str(state)]
    with held_elsewhere(state) as holder:
        for command in (["erase", "--all", "--confirm"], ["purge"]):
            assert main([*base, *command]) == 4, command
            err = capsys.readouterr().err
            assert f"madoguchi: {command[0]} refused: the engine is running on the state " \
                   f"folder {state} (pid {holder.pid}); stop it first" in err
        assert calls_stored(settings.database_url) == 1
        assert main([*base, "purge", "--dry-run"]) == 0  # reads only
        capsys.readouterr()
    assert main([*base, "erase", "--all", "--confirm"]) == 0
    assert calls_stored(settings.database_url) == 0
    assert probe(state) == 0  # erase let go of the lock when it finished


async def test_the_engine_holds_the_lock_for_its_whole_life(tmp_path: Path) -> None:
    engine = offline_engine(tmp_path)
    state = engine.settings.state_dir
    assert await asyncio.to_thread(probe, state) == 0
    async with TestClient(TestServer(make_app(engine))):
        assert await asyncio.to_thread(probe, state) == 1
        # a second engine (or erase) on the same folder in this process is refused too
        with pytest.raises(StateLocked, match="the engine is running on the state folder"):
            StateLock(state).acquire()
        assert (state / LOCK_FILE).stat().st_mode & 0o777 == 0o600
    assert await asyncio.to_thread(probe, state) == 0


def test_a_second_engine_on_the_folder_stops_with_a_clear_message(tmp_path: Path) -> None:
    config, state = offline_config(tmp_path), tmp_path / "state"
    main_file = config / "madoguchi.yaml"
    data = yaml.safe_load(main_file.read_text(encoding="utf-8"))
    data["engine"]["http"] = {"host": "127.0.0.1", "port": free_port()}
    main_file.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with held_elsewhere(state) as holder:
        run = subprocess.run(madoguchi_cmd(config, state, "run"), capture_output=True,
                             text=True, timeout=120, check=False)
    assert run.returncode == 4
    assert run.stderr.splitlines()[-1] == (
        f"madoguchi: the engine is running on the state folder {state} (pid {holder.pid}); "
        "stop it first")
    assert "Traceback" not in run.stderr
