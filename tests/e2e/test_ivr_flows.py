"""IVR end to end: real Asterisk, SIPp callers, and Asterisk's own AMI events (AGIExecEnd) as
the witness of what a caller heard.

Each test puts back what it changed (override, schedules, flows) so later tests see the
always-open test configuration.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from ivr.tts import Tts

from .conftest import Stack, ami_watch, sipp_keys

pytestmark = pytest.mark.asterisk
TOKYO = ZoneInfo("Asia/Tokyo")
ROOT = Path(__file__).resolve().parents[2]


def _call(stack: Stack, caller: str, timeout: float = 20) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = stack.call_rows(caller)
        if rows:
            return rows[-1]
        time.sleep(0.3)
    raise AssertionError(f"no call record for {caller}")


def _flows(stack: Stack) -> dict[str, object]:
    data = stack.json("/api/flows")
    assert isinstance(data, dict)
    return data


def _prompt_file(stack: Stack, prompt: str, lang: str) -> str:
    texts = yaml.safe_load((stack.config / "prompts.yaml").read_text(encoding="utf-8"))
    key = Tts(Path("/nonexistent")).key(texts["prompts"][prompt][lang], lang)
    assert key is not None, f"no TTS for {lang}"
    return f"tts/{key}"


def test_caller_pressing_2_then_1_after_hours_hears_the_english_event_board(
        stack: Stack) -> None:
    now = datetime.now(TOKYO)
    status, body = stack.post("/api/schedules/city/override", {"mode": "closed",
                                                               "minutes": 30})
    assert status == 200 and isinstance(body, dict) and body["state"] == "closed", body
    try:
        events = stack.json("/api/board")
        assert isinstance(events, dict)
        for ev in events["items"]:
            assert stack.post(f"/api/board/events/{ev['id']}/delete", {})[0] == 200
        window = {"publish_from": (now - timedelta(hours=1)).isoformat(),
                  "publish_until": (now + timedelta(hours=2)).isoformat()}
        for ev in (
            {"id": "e2e-festival", "date": now.date().isoformat(), "time": "10:00",
             "status": "held", "title": {"ja": "市民まつり", "en": "the city festival"},
             "venue": {"ja": "中央公園", "en": "Central Park"}, **window},
            {"id": "e2e-market", "date": now.date().isoformat(), "time": "08:00",
             "status": "cancelled", "title": {"ja": "朝市", "en": "the morning market"},
             "venue": {"ja": "駅前", "en": "the station square"}, **window},
            {"id": "e2e-hidden", "date": now.date().isoformat(), "status": "full",
             "title": {"ja": "昨日の講座", "en": "yesterday's class"},
             "venue": {"ja": "図書館", "en": "the library"},
             "publish_until": (now - timedelta(minutes=5)).isoformat()},
        ):
            status, body = stack.post("/api/board/events", ev)
            assert status == 200, body
        board = stack.json("/api/board/now?lang=en")
        assert isinstance(board, dict)
        items = board["items"]
        assert [i["key"] for i in items] == ["event:e2e-market", "event:e2e-festival"]
        assert items[1]["text"].startswith("The city festival on ")
        assert all(i["sound"] and "/tts/en/" in i["sound"] for i in items)

        with ami_watch(stack) as watch:
            result = sipp_keys("1000", "0355550001", "2", "1")
            assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
            time.sleep(0.5)
        played = watch.played("0355550001")
    finally:
        stack.post("/api/schedules/city/override", {"mode": "normal"})

    files = [f for f, _ in played]
    board_files = [str(i["sound"]) for i in items]
    # the English board, in order, each announcement played to its end (result=0)
    assert board_files[0] in files, played
    at = files.index(board_files[0])
    assert files[at:at + 2] == board_files, played
    for f, res in played[at:at + 2]:
        assert res.startswith("200 Success"), (f, res)
    assert not any("e2e-hidden" in f for f in files)
    assert files[-1].endswith(_prompt_file(stack, "goodbye", "en"))
    call = _call(stack, "0355550001")
    assert call["flow_path"] == ("greeting,choose-language,english,hours,closed,"
                                 "after-hours-menu,events,goodbye")
    assert call["language"] == "en"
    assert call["flow_version"] == _flows(stack)["version"]
    assert call["outcome"] == "ended_in_ivr"


@contextmanager
def _edited(stack: Stack, path: Path, text: str) -> Iterator[None]:
    old = path.read_text(encoding="utf-8")
    path.write_text(text, encoding="utf-8")
    try:
        yield
    finally:
        path.write_text(old, encoding="utf-8")
        status, body = stack.post("/api/flows/reload", {})
        assert status == 200, body


def test_a_holiday_routes_to_the_closed_message(stack: Stack) -> None:
    today = datetime.now(TOKYO).date().isoformat()
    sched_file = stack.config / "schedules.yaml"
    sched = yaml.safe_load(sched_file.read_text(encoding="utf-8"))
    sched["closures"] = [{"name": "臨時休業", "date": today}]
    before = _flows(stack)["version"]
    with _edited(stack, sched_file, yaml.safe_dump(sched, allow_unicode=True)):
        status, body = stack.post("/api/flows/reload", {})
        assert status == 200 and isinstance(body, dict), body
        assert body["version"] != before
        status_now = stack.json("/api/schedules/water")
        assert isinstance(status_now, dict) and status_now["state"] == "holiday"
        with ami_watch(stack) as watch:
            result = sipp_keys("2000", "0355550002", "1", "5")
            assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
            time.sleep(0.5)
        call = _call(stack, "0355550002")
        assert call["flow_path"] == "greeting,choose-language,japanese,hours,holiday"
        assert call["flow_version"] == body["version"]
        assert call["queued_at"] is None
        files = [f for f, _ in watch.played("0355550002")]
        assert files[-1].endswith(_prompt_file(stack, "holiday-water", "ja")), files
    assert _flows(stack)["version"] == before


def test_an_invalid_flow_is_refused_and_the_last_good_version_keeps_serving(
        stack: Stack) -> None:
    city = stack.config / "flows" / "city.yaml"
    text = city.read_text(encoding="utf-8")
    before = _flows(stack)["version"]
    broken = text.replace("next: after-hours-menu", "next: nowhere", 1)
    with _edited(stack, city, broken):
        status, body = stack.post("/api/flows/reload", {})
        assert status == 422 and isinstance(body, dict), body
        line = broken.splitlines().index("    next: nowhere") + 1
        assert f"{city}:{line}:11: node 'closed' goes to missing node 'nowhere'" \
            in body["errors"], body
        assert body["version"] == before
        assert _flows(stack)["version"] == before
        # calls still run on the last good version
        result = sipp_keys("3000", "0355550003", "2", "5")
        assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
        call = _call(stack, "0355550003")
        assert call["flow_version"] == before
        assert call["flow_path"] == "greeting,choose-language,english,board,goodbye"


def test_sighup_reloads_the_flows(stack: Stack) -> None:
    assert stack.engine is not None
    city = stack.config / "flows" / "city.yaml"
    before = _flows(stack)["version"]
    text = city.read_text(encoding="utf-8")
    with _edited(stack, city, text + "# edited\n"):
        stack.engine.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 15
        while _flows(stack)["version"] == before:
            assert time.monotonic() < deadline, "SIGHUP did not reload"
            time.sleep(0.2)
    assert _flows(stack)["version"] == before
