"""A metric and a KPI with the same name count the same thing: `madoguchi_calls_offered_total`
is the answer rate's denominator (calls that reached the waiting line, once each); calls that
only went through the IVR count in `madoguchi_calls_received_total`."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.calls import Call
from harness.offline_engine import offline_engine


async def test_offered_counts_the_waiting_line_once_received_counts_the_ivr(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = offline_engine(tmp_path)
    queued: list[str] = []

    async def enqueue(call: Call) -> None:
        call.enter_queue(engine.tracker.clock())
        queued.append(call.id)

    monkeypatch.setattr(engine.acd, "enqueue", enqueue)
    self_service = engine.tracker.offer("u1.1", "PJSIP/trunk-00000001", "city", "1000", "0311")
    waiting = engine.tracker.offer("u2.1", "PJSIP/trunk-00000002", "city", "1000", "0322")
    for call in (self_service, waiting):
        engine._received(call)
    await engine._enqueue(waiting)
    await engine._enqueue(waiting)  # a re-queue (a transfer back) is not a new offer

    def value(name: str) -> float:
        found = engine.metrics.registry.get_sample_value(name, {"service": "city"})
        return found or 0.0

    assert value("madoguchi_calls_received_total") == 2
    assert value("madoguchi_calls_offered_total") == 1
    assert queued == [waiting.id, waiting.id]
