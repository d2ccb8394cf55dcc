"""One real call: SIPp caller → IVR (DTMF 2, English) → ACD → SIPp operator, recorded,
indexed, searchable, streamable with Range, counted in /metrics."""

from __future__ import annotations

import io
import json
import math
import subprocess
import time
import wave
from array import array
from datetime import datetime

import pytest

from .conftest import (
    CALLER_MEDIA,
    CALLER_PORT,
    SIP_PORT,
    SIPP_DIR,
    Stack,
    phone_media,
    phone_port,
    sipp_caller,
    sipp_operator,
    sipp_register,
    sipp_short_caller,
)

pytestmark = pytest.mark.asterisk


def _rms(frames: bytes) -> float:
    samples = array("h", frames)
    if not samples:
        return 0.0
    return math.sqrt(sum(s * s for s in samples) / len(samples))


def _wait_for_recording(stack: Stack, caller: str, timeout: float = 20) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = stack.json(f"/api/recordings?caller={caller}")
        assert isinstance(data, dict)
        if data["items"]:
            assert len(data["items"]) == 1
            item = data["items"][0]
            assert isinstance(item, dict)
            return item
        time.sleep(0.3)
    raise AssertionError(f"no recording indexed for caller {caller}")


def test_call_reaches_operator_and_is_recorded(stack: Stack) -> None:
    stack.set_ready("7001")
    offered_before = stack.metric("madoguchi_calls_offered_total", service="city")
    answered_before = stack.metric("madoguchi_calls_answered_total", service="city")
    operator = sipp_operator(ring_ms=1500)
    try:
        caller = sipp_caller("1000", "0312345678", dtmf="2", talk_ms=7000)
        assert caller.returncode == 0, caller.stderr.decode(errors="replace")[-3000:]
        _, op_err = operator.communicate(timeout=30)
        assert operator.returncode == 0, f"operator did not get the call: {op_err!r}"
    finally:
        if operator.poll() is None:
            operator.kill()

    item = _wait_for_recording(stack, "0312345678")
    assert item["agent"] == "7001"
    assert item["caller"] == "0312345678"
    assert item["service"] == "city"
    assert item["did"] == "1000"
    assert item["language"] == "en"  # DTMF 2 chose English
    assert item["outcome"] == "answered"

    status, headers, body = stack.get(str(item["audio_url"]))
    assert status == 200
    assert headers["Content-Type"].startswith("audio/wav")
    with wave.open(io.BytesIO(body)) as wav:
        assert wav.getframerate() == 8000
        assert wav.getsampwidth() == 2
        duration = wav.getnframes() / wav.getframerate()
        frames = wav.readframes(wav.getnframes())
    talk = (datetime.fromisoformat(str(item["ended_at"]))
            - datetime.fromisoformat(str(item["answered_at"]))).total_seconds()
    assert 6.0 < talk < 14.0, talk
    assert abs(duration - talk) < 1.5, (duration, talk)
    assert abs(float(item["duration_s"]) - duration) < 0.01  # type: ignore[arg-type]
    assert _rms(frames) > 100, "recording is silence"

    status, headers, part = stack.get(str(item["audio_url"]), {"Range": "bytes=100-1099"})
    assert status == 206
    assert headers["Content-Range"] == f"bytes 100-1099/{len(body)}"
    assert part == body[100:1100]

    assert stack.metric("madoguchi_calls_offered_total", service="city") == offered_before + 1
    assert stack.metric("madoguchi_calls_answered_total", service="city") == answered_before + 1
    assert stack.metric("madoguchi_recordings_indexed_total") >= 1
    assert stack.metric("madoguchi_ami_connected") == 1


def test_api_refuses_without_or_with_a_wrong_token(stack: Stack) -> None:
    for path in ("/api/recordings", "/api/recordings/1/audio", "/metrics"):
        status, _, body = Stack(stack.config, stack.state, "wrong", stack.http).get(path)
        assert status == 401, path
        assert b'"unauthorized"' in body
    status, _, _ = stack.get("/api/recordings/..%2F..%2Fsecrets.json/audio")
    assert status == 404


def _wait_idle(stack: Stack, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (stack.metric("madoguchi_queue_waiting", queue="city") == 0
                and stack.metric("madoguchi_agents", state="ringing") == 0
                and stack.metric("madoguchi_agents", state="on_call") == 0):
            return
        time.sleep(0.3)
    raise AssertionError("state left behind: a caller still waiting or an operator busy")


def test_caller_hanging_up_in_the_ivr_leaves_a_record_and_no_state(stack: Stack) -> None:
    result = sipp_short_caller("1000", "0311110000", hold_ms=1500)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    call = stack.call_row("0311110000", timeout=15)
    assert call["outcome"] == "ended_in_ivr"
    assert call["flow_path"] == "greeting"
    assert call["answered_at"] is None and call["queued_at"] is None
    assert call["recordings"] == 0
    _wait_idle(stack)


def test_caller_hanging_up_while_waiting_leaves_a_record_and_no_state(stack: Stack) -> None:
    stack.set_ready()  # nobody is logged in: the caller waits, then gives up
    result = sipp_caller("2000", "0322220000", dtmf="1", talk_ms=1000)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    call = stack.call_row("0322220000", timeout=15)
    assert call["outcome"] == "abandoned_waiting"
    assert call["service"] == "water" and call["did"] == "2000"
    assert call["language"] == "ja"
    assert call["queued_at"] is not None and call["answered_at"] is None
    assert call["recordings"] == 0
    _wait_idle(stack)
    data = stack.json("/api/recordings?caller=0322220000")
    assert data == {"items": [], "limit": 100, "offset": 0}


def test_registered_softphone_with_generated_password_gets_the_next_call(stack: Stack) -> None:
    secrets = json.loads((stack.state / "secrets.json").read_text(encoding="utf-8"))
    wrong = sipp_register("7002", "not-the-password", phone_port(2))
    assert wrong.returncode != 0, "a wrong SIP password must not register"
    reg = sipp_register("7002", secrets["sip_passwords"]["7002"], phone_port(2))
    assert reg.returncode == 0, reg.stderr.decode(errors="replace")[-2000:]
    stack.set_ready("7002", "7001")
    deadline = time.monotonic() + 5
    while stack.metric("madoguchi_agents", state="available") < 2:
        assert time.monotonic() < deadline, "registered operator not seen as reachable"
        time.sleep(0.2)
    # 7002 logged in first, so it has been idle longer than 7001 and gets this call
    operator = sipp_operator(ring_ms=500, port=phone_port(2), media_port=phone_media(2))
    try:
        caller = sipp_caller("1000", "0333330000", dtmf="1", talk_ms=7000)
        assert caller.returncode == 0, caller.stderr.decode(errors="replace")[-2000:]
        operator.communicate(timeout=30)
        assert operator.returncode == 0
    finally:
        if operator.poll() is None:
            operator.kill()
    item = _wait_for_recording(stack, "0333330000")
    assert item["agent"] == "7002"
    assert item["language"] == "ja"


def test_engine_down_fails_open_to_app_queue(stack: Stack) -> None:
    """Last on purpose: it stops the engine. Calls must still reach an operator."""
    assert stack.stop_engine() == 0, "engine did not shut down cleanly on SIGTERM"
    failopen = stack.state / "asterisk" / "recordings" / "failopen"
    before = set(failopen.glob("*.wav"))
    # both operator phones (7001 fixed, 7002 registered earlier) may be rung by app_queue
    phones = [sipp_operator(ring_ms=500),
              sipp_operator(ring_ms=500, port=phone_port(2), media_port=phone_media(2))]
    try:
        caller = sipp_caller("1000", "0344440000", dtmf="2", talk_ms=7000)
        assert caller.returncode == 0, caller.stderr.decode(errors="replace")[-2000:]
        deadline = time.monotonic() + 10
        while not any(p.poll() == 0 for p in phones) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert any(p.poll() == 0 for p in phones), "app_queue did not connect an operator"
    finally:
        for p in phones:
            if p.poll() is None:
                p.kill()
            p.communicate()  # reaps the process and closes its pipe
    new = set(failopen.glob("*.wav")) - before
    assert len(new) == 1
    with wave.open(str(new.pop())) as wav:
        frames = wav.readframes(wav.getnframes())
    assert _rms(frames) > 100


def test_engine_killed_during_a_burst_callers_still_reach_operators(stack: Stack) -> None:
    """Last of all: the engine is killed (SIGKILL) while callers are in the IVR, waiting and
    talking. Talking callers keep talking, waiting ones fall back to app_queue when the
    engine's heartbeat goes stale, new ones fail open at once: every caller is answered."""
    secrets = json.loads((stack.state / "secrets.json").read_text(encoding="utf-8"))
    # every operator app_queue knows gets a working phone: an unanswered member would only
    # slow the fail-open queue down (it rings members one at a time)
    for n in (2, 3, 4):
        ext = f"700{n}"
        reg = sipp_register(ext, secrets["sip_passwords"][ext], phone_port(n))
        assert reg.returncode == 0
    if stack.engine is None or stack.engine.poll() is not None:
        stack.start_engine()
    stack.set_ready("7001", "7002", "7003")
    phones = [subprocess.Popen(
        ["sipp", "-sf", str(SIPP_DIR / "operator_hangup.xml"), "-i", "127.0.0.1", "-p",
         str(phone_port(n)), "-mp", str(phone_media(n)), "-m", "20", "-d", "4000",
         "-nostdin", "-timeout", "200s"],
        cwd=SIPP_DIR, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL) for n in (1, 2, 3, 4)]
    callers = subprocess.Popen(
        ["sipp", f"127.0.0.1:{SIP_PORT}", "-sf", str(SIPP_DIR / "caller_wait.xml"), "-s",
         "1000", "-i", "127.0.0.1", "-p", str(CALLER_PORT + 300), "-mp",
         str(CALLER_MEDIA + 900), "-m", "8", "-r", "1", "-rp", "1500", "-key", "caller",
         "0345450000", "-key", "dtmf", "/usr/share/sip-tester/dtmf_2833_2.pcap", "-nostdin",
         "-timeout", "150s"],
        cwd=SIPP_DIR, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    try:
        time.sleep(11)  # some callers talk, some wait, some are in the IVR
        assert stack.engine is not None
        stack.engine.kill()
        stack.engine.wait()
        stack.engine = None  # killed on purpose: no clean exit to check
        _, err = callers.communicate(timeout=170)
        assert callers.returncode == 0, err.decode(errors="replace")[-2000:]
    finally:
        for p in [callers, *phones]:
            if p.poll() is None:
                p.kill()
            p.communicate()
    queue_log = (stack.state / "asterisk" / "log" / "queue_log").read_text()
    assert "|failopen-city|" in queue_log and "|CONNECT|" in queue_log
