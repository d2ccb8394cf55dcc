"""Answered calls with both legs recorded, as Asterisk's MixMonitor leaves them in the spool,
for the recordings' tests (the `service` fixture in tests/conftest.py files them)."""

from __future__ import annotations

import struct
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.calls import Call
from recordings.files import relative_name
from recordings.service import RecordingService

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


def mono(path: Path, samples: list[int], rate: int = 8000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(struct.pack(f"<{len(samples)}h", *samples))


def answered_call(svc: RecordingService, caller: str, at: datetime, talk_s: float = 2.0,
                  agent: str = "7001") -> Call:
    call = Call("1.1", "PJSIP/trunk-1", "city", "1000", caller, at)
    call.language, call.flow_path, call.queue = "ja", ["greeting", "to-queue"], "city"
    call.queued_at = at + timedelta(seconds=5)
    call.answered_at = at + timedelta(seconds=8)
    call.ended_at = call.answered_at + timedelta(seconds=talk_s)
    call.agent_id = agent
    call.recording = relative_name(call.id, at)
    n = int(8000 * talk_s)
    caller_leg, other_leg = svc.legs(call.recording)
    mono(caller_leg, [3000] * n)
    mono(other_leg, [-2000] * (n - 80))  # a few frames short: padded, never dropped
    return call
