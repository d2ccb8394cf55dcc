"""The first run as the README tells it: the engine says it is ready (console, first admin,
services open or not) only once it is, logs no ERROR on a normal start, and the README's first
call works at night once the service is opened by the documented override."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from .conftest import HTTP_PORT, Stack, sipp_caller, sipp_operator

pytestmark = pytest.mark.asterisk


def test_a_normal_start_says_ready_once_it_is_and_logs_no_error(stack: Stack) -> None:
    assert stack.engine_log is not None
    log = Path(stack.engine_log.name)
    assert stack.stop_engine() == 0
    offset = log.stat().st_size
    stack.start_engine()
    deadline = time.monotonic() + 60
    text = ""
    while time.monotonic() < deadline:
        text = log.read_bytes()[offset:].decode("utf-8", errors="replace")
        if "madoguchi is ready" in text or "not ready yet" in text:
            break
        time.sleep(0.2)
    assert "madoguchi is ready: Asterisk's AMI is logged in and FastAGI listens." in text, text
    assert f"Console : http://127.0.0.1:{HTTP_PORT}/console/" in text
    assert "Services now (" in text and "(city, DID 1000): open" in text
    # printed once AMI is logged in, never before
    assert text.index("logged in as") < text.index("madoguchi is ready")
    problems = [line for line in text.splitlines()
                if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback")]
    assert problems == []


def test_the_readme_first_call_works_at_night_with_the_open_override(stack: Stack) -> None:
    schedules = stack.config / "schedules.yaml"
    original = schedules.read_text(encoding="utf-8")
    night = yaml.safe_load(original)
    # the city's hours as at 03:00: closed whatever the day
    night["services"]["city"].update(
        dict.fromkeys(("weekdays", "saturday", "sunday", "holidays"), "closed"))
    schedules.write_text(yaml.safe_dump(night, allow_unicode=True), encoding="utf-8")
    try:
        status, body = stack.post("/api/flows/reload", {})
        assert status == 200, body
        state = stack.json("/api/schedules/city")
        assert isinstance(state, dict) and state["state"] == "closed"
        stack.set_ready("7001")

        # the README's call without the override: the closed message, nobody rung
        sipp_caller("1000", "0355550000", dtmf="2", talk_ms=7000)
        closed = stack.call_row("0355550000")
        assert closed["outcome"] == "ended_in_ivr" and closed["answered_at"] is None

        # the README's override, then the same call reaches the operator
        status, body = stack.post("/api/schedules/city/override",
                                  {"mode": "open", "minutes": 60})
        assert status == 200 and isinstance(body, dict) and body["state"] == "open", body
        operator = sipp_operator(ring_ms=1500)
        try:
            caller = sipp_caller("1000", "0355551111", dtmf="2", talk_ms=7000)
            assert caller.returncode == 0, caller.stderr.decode(errors="replace")[-2000:]
            _, op_err = operator.communicate(timeout=30)
            assert operator.returncode == 0, f"operator did not get the call: {op_err!r}"
        finally:
            if operator.poll() is None:
                operator.kill()
        answered = stack.call_row("0355551111")
        assert answered["outcome"] == "answered" and answered["agent_id"] == "7001"
    finally:
        schedules.write_text(original, encoding="utf-8")
        status, body = stack.post("/api/flows/reload", {})
        assert status == 200, body
