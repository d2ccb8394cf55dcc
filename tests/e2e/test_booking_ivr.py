"""Course booking by phone against real Asterisk and SIPp: a caller to the event line
(DID 3000) presses 3 (booking, in Japanese), 1 (book), 1 (the first date read out), 1
(confirm); the booking exists for the caller's number, taken on that call, and the booking
number Asterisk played is the one stored, read character by character. A second call from
the same number presses 3, 2 (cancel), keys that booking number on the keypad (letters by the
key that carries them) and #, hears it read back, presses 1 (confirm) and cancels it.

The event is seeded through the bookings API with a window opened long ago, so it is the
first date read out, and removed afterwards; the callers' numbers are this file's own.
What the caller heard is read from Asterisk's own AGIExec events on the monitor login.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.clock import CITY_TZ
from ivr.booking_dialogue import number_sentence
from ivr.keypad import keypad_digits

from .conftest import CALLER_MEDIA, CALLER_PORT, SIP_PORT, SIPP_DIR, Stack, ami_watch, tts_sound

pytestmark = pytest.mark.asterisk
EVENT = "e2e-ivr-yoga"
CALLER = "0355550461"
KEY_GAP_MS = 10_000  # between two keys: each lands while the dialogue waits for it


def _call(keys: str) -> subprocess.CompletedProcess[bytes]:
    first, rest = keys[0], keys[1:]
    return subprocess.run(
        ["sipp", f"127.0.0.1:{SIP_PORT}", "-sf", str(SIPP_DIR / "caller_booking.xml"), "-s",
         "3000", "-i", "127.0.0.1", "-p", str(CALLER_PORT), "-mp", str(CALLER_MEDIA),
         "-m", "1", "-d", str(KEY_GAP_MS), "-key", "caller", CALLER,
         "-key", "dtmf1", f"/usr/share/sip-tester/dtmf_2833_{first}.pcap",
         "-key", "key2", rest[0], "-key", "key3", rest[1], "-key", "key4", rest[2],
         "-nostdin", "-timeout", "120s"],
        cwd=SIPP_DIR, stdin=subprocess.DEVNULL, capture_output=True, timeout=150, check=False)


def _call_keying(number_keys: str) -> subprocess.CompletedProcess[bytes]:
    """3 (Japanese), 2 (cancel), the booking number's keys and #, 1 (confirm)."""
    digits = [arg for i, k in enumerate(number_keys, 1) for arg in ("-key", f"n{i}", k)]
    return subprocess.run(
        ["sipp", f"127.0.0.1:{SIP_PORT}", "-sf", str(SIPP_DIR / "caller_booking_number.xml"),
         "-s", "3000", "-i", "127.0.0.1", "-p", str(CALLER_PORT), "-mp", str(CALLER_MEDIA),
         "-m", "1", "-d", str(KEY_GAP_MS), "-key", "caller", CALLER,
         "-key", "dtmf1", "/usr/share/sip-tester/dtmf_2833_3.pcap",
         "-key", "key2", "2", *digits, "-key", "key3", "1", "-nostdin", "-timeout", "120s"],
        cwd=SIPP_DIR, stdin=subprocess.DEVNULL, capture_output=True, timeout=150, check=False)


def _bookings(stack: Stack) -> list[dict[str, Any]]:
    data = stack.json(f"/api/bookings/search?phone={CALLER}")
    assert isinstance(data, dict)
    return [b for b in data["bookings"] if b["event"] == EVENT]


def _calls(stack: Stack, count: int) -> list[dict[str, object]]:
    deadline = time.monotonic() + 20
    while True:
        rows = stack.call_rows(CALLER)
        if len(rows) >= count or time.monotonic() > deadline:
            return sorted(rows, key=lambda r: str(r["offered_at"]))
        time.sleep(0.3)


@pytest.fixture
def course(stack: Stack) -> Iterator[int]:
    """A first-come course of the `kouza` category, the shipped flow's; its session id."""
    now = datetime.now(CITY_TZ)
    starts = (now + timedelta(days=30)).replace(hour=10, minute=0, second=0, microsecond=0)
    status, body = stack.post("/api/bookings/events", {
        "id": EVENT, "category": "kouza", "title_ja": "電話予約の試験教室",
        "title_en": "Phone booking test class",
        "opens_at": "2020-01-01T00:00:00+09:00",
        "closes_at": (now + timedelta(days=20)).isoformat(),
        "sessions": [{"starts_at": starts.isoformat(),
                      "ends_at": (starts + timedelta(hours=2)).isoformat(),
                      "venue_ja": "市民会館", "venue_en": "Civic hall", "capacity": 5}]})
    assert status == 201, body
    assert isinstance(body, dict)
    try:
        yield int(body["sessions"][0]["id"])
    finally:
        for b in _bookings(stack):
            if b["status"] in ("confirmed", "waiting", "applied"):
                stack.post(f"/api/bookings/{b['number']}/cancel", {})
        status, body = stack.post(f"/api/bookings/events/{EVENT}/delete", {})
        assert status in (200, 204), body


def test_a_caller_books_and_cancels_a_course_by_keys(stack: Stack, course: int,
                                                     tmp_path: Path) -> None:
    with ami_watch(stack) as watch:
        result = _call("3111")
        assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
        heard = [f for f, _ in watch.played(CALLER)]
    booked = _bookings(stack)
    assert len(booked) == 1, booked
    booking = booked[0]
    assert booking["status"] == "confirmed" and booking["channel"] == "ivr"
    assert booking["phone"] == CALLER and booking["session_id"] == course
    call = _calls(stack, 1)[0]
    assert call["flow_path"] == "greeting,choose-language,book-japanese,course-booking,goodbye"
    assert booking["call_id"] == call["id"]  # the desk sees which call booked it
    # the number read back is the number stored, as one sentence spelt character by character
    said = tts_sound(tmp_path, number_sentence(booking["number"], "ja"))
    assert any(f.endswith(said) for f in heard), (said, heard)

    keys = keypad_digits(booking["number"])
    assert len(keys) == 9 and set(keys) <= set("23456789")
    with ami_watch(stack) as watch:
        result = _call_keying(keys)
        assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
        heard = [f for f, _ in watch.played(CALLER)]
    assert any(f.endswith(said) for f in heard), (said, heard)  # the match read back
    booking = _bookings(stack)[0]
    assert booking["status"] == "cancelled"
    assert len(_calls(stack, 2)) == 2
