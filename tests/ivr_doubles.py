"""Stand-ins for the IVR's tests: a clock the test sets, an AGI session whose keys are
answered on cue, and the IVR service on a copy of the shipped config."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from core.settings import Settings, load_settings
from harness.stack_setup import seed_demo_board
from ivr.service import IvrService

ROOT = Path(__file__).resolve().parents[1]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class FakeSession:
    """Stands in for an AgiSession: keys are answered when `gate` opens."""

    def __init__(self, script: str, n: int, gate: asyncio.Event, keys: str = "2") -> None:
        self.script = script
        self.args = ["1000"]
        self.channel = f"PJSIP/trunk-{n:08x}"
        self.env: Mapping[str, str] = {"agi_uniqueid": f"u{n}", "agi_channel": self.channel,
                                       "agi_callerid": f"03{n:08d}"}
        self.gate = gate
        self.keys = keys
        self.vars: dict[str, str] = {}
        self.played: list[str] = []

    async def exec(self, app: str, args: str) -> None:
        return None

    async def set_variable(self, name: str, value: str) -> None:
        self.vars[name] = value

    async def stream_file(self, name: str, escape: str = "") -> str:
        self.played.append(name)
        return ""

    async def get_data(self, file: str, timeout_ms: int, max_digits: int) -> str:
        self.played.append(file)
        await self.gate.wait()
        return self.keys


def service(tmp_path: Path, clock: Clock) -> tuple[IvrService, Settings]:
    config = tmp_path / "config"
    if not config.exists():
        shutil.copytree(ROOT / "config", config)
        seed_demo_board(config)
    settings = load_settings(config, tmp_path / "state")
    ivr = IvrService(settings, tmp_path / "sounds", "/snd", tmp_path / "state", clock)
    ivr.load()  # what start() does first, without the background refresh
    return ivr, settings


NOON = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # 12:00 in Tokyo, a Wednesday
