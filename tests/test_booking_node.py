"""The booking flow node around its dialogue: validation with file:line:column, the
interpreter handing the dialogue to the adapter and going on at `next`, `flows simulate`
against the labelled sample, the dialogue loop with an unreachable port, and the
application's port over a real BookingService (the call's id kept with the booking)."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bookings.service import BookingService
from core.clock import CITY_TZ
from core.settings import load_settings
from ivr.booking_call import run_dialogue
from ivr.booking_dialogue import BookingDialogue, Speak, number_sentence
from ivr.booking_port import BookOutcome, CancelOutcome
from ivr.booking_sample import SAMPLE_NUMBER, SampleBookings
from ivr.events import Board
from ivr.flow import BookingNode
from ivr.flowset import CallWorld, Sources, check, read_flow_set
from ivr.interpreter import CallInfo, Collect, Digits, End, Interpreter, Played, RunBooking
from ivr.keypad import keypad_digits
from ivr.tts import Tts
from madoguchi.cli import main
from madoguchi.ports import BookingsForIvr
from store.db import Database
from tests.bookings_data import ADMIN, NOW, event

ROOT = Path(__file__).resolve().parents[1]
TZ = CITY_TZ


@pytest.fixture
def config(tmp_path: Path) -> Path:
    dest = tmp_path / "config"
    shutil.copytree(ROOT / "config", dest)
    return dest


def errors_for(config: Path, text: str) -> tuple[str, list[str]]:
    path = config / "flows" / "book.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    settings = load_settings(config, config.parent / "state")
    return str(path), [str(e) for e in check(Sources.from_settings(settings))]


def test_a_booking_node_is_checked_like_the_others(config: Path) -> None:
    p, errors = errors_for(config, """\
        start: a
        nodes:
          a:
            type: booking
            category: Kouza!
            next: z
          b:
            type: booking
            category: kouza
            max_events: 10
            next: z
          c:
            type: booking
            next: nowhere
          d:
            type: booking
            category: kouza
            colour: red
            next: z
          z:
            type: hangup
        """)
    assert f"{p}:5:15: category 'Kouza!' must be 1-32 of a-z, 0-9, - or _" in errors
    assert f"{p}:10:17: 'max_events' must be between 1 and 9, got 10" in errors
    assert f"{p}:13:5: missing required field 'category'" in errors
    assert any(e.startswith(f"{p}:18:13: unknown field 'colour' for a booking node")
               for e in errors), errors


def test_a_loop_through_a_booking_node_waits_for_keys(config: Path) -> None:
    p, errors = errors_for(config, """\
        start: a
        nodes:
          a:
            type: booking
            category: kouza
            next: b
          b:
            type: play
            prompt: goodbye
            next: a
        """)
    assert not any("never waits for a key" in e for e in errors), errors
    assert any(e.startswith(f"{p}:4:5: node 'a' is in a loop with no way out") for e in errors)


def fs_and_interp(tmp_path: Path, config: Path) -> Interpreter:
    settings = load_settings(config, tmp_path / "state")
    fs = read_flow_set(Sources.from_settings(settings), Tts(tmp_path / "tts"),
                       tmp_path / "sounds", dry=True)
    node = fs.flows["events"].nodes["course-booking"]
    assert node == BookingNode("course-booking", "kouza", "goodbye", 9)
    world = CallWorld(fs, {}, Board((), {}))
    return Interpreter(fs.flows["events"], world, CallInfo("0312345678", "3000", "events"),
                       lambda: NOW)


def test_the_interpreter_hands_the_dialogue_over_and_goes_on_at_next(
        tmp_path: Path, config: Path) -> None:
    ivr = fs_and_interp(tmp_path, config)
    ivr.start()
    menu = ivr.feed(Played())
    assert isinstance(menu, Collect)
    assert ivr.feed(Digits("4")) == RunBooking("kouza", 9, "en")
    assert ivr.path == ["greeting", "choose-language", "book-english", "course-booking"]
    goodbye = ivr.feed(Played())
    assert ivr.path[-1] == "goodbye" and not isinstance(goodbye, End | RunBooking)
    assert ivr.feed(Played()) == End("hangup")


def simulate(config: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> Any:
    args = ["--config", str(config), "--state", str(config.parent / "state")]
    assert main([*args, "flows", "simulate", "events", "--at", "2026-12-30T19:00",
                 *extra]) == 0
    out = capsys.readouterr().out
    return json.loads(out) if "--json" in extra else out


def test_flows_simulate_books_against_the_labelled_sample(
        config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = simulate(config, capsys, "--dtmf", "4,1,2,1", "--json")
    assert result["path"] == ["greeting", "choose-language", "book-english", "course-booking",
                              "goodbye"]
    steps = [s for s in result["steps"] if s["node"] == "course-booking"]
    assert steps[0]["say"] == ["[bookings: simulated sample (no database is read or written)]"]
    assert steps[2]["say"][1] == ("«1: [simulated] Yoga class, January 6 at 10:00 AM, "
                                  "8 seats left.»")
    assert [s.get("keys") for s in steps[1:]] == ["1", "2", "1", "(timeout)"]
    assert steps[4]["say"][:2] == ["«The session is full: you are on the waiting list.»",
                                   f"«{number_sentence(SAMPLE_NUMBER, 'en')}»"]
    assert result["bookings"] == ["open_sessions(kouza)", "book(session 2, phone 0312345678)"]
    assert result["end"] == "hang up (hangup)"


def test_flows_simulate_cancels_in_japanese(config: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    # # alone at the booking number: the caller's bookings one per key
    out = simulate(config, capsys, "--dtmf", "3,2,#,1,1", "--caller", "03-5555-0000")
    assert "path: greeting -> choose-language -> book-japanese -> course-booking -> goodbye" \
        in out
    assert "[keys: #]" in out
    assert "«1番、【模擬】ヨガ教室、1月6日、10時。»" in out
    assert "«お申し込みを取り消しました。»" in out
    assert ("bookings: simulated sample (no database is read or written): "
            "bookings_of(phone 0355550000), cancel(SAMP23456, phone 0355550000)") in out
    # the sample's number keyed (SAMP23456: S, A, M, P on 7, 2, 6, 7), read back, cancelled
    keyed = simulate(config, capsys, "--dtmf", f"3,2,{keypad_digits(SAMPLE_NUMBER)}#,1")
    assert "[keys: 726723456#]" in keyed
    assert f"«{number_sentence(SAMPLE_NUMBER, 'ja')}»" in keyed
    assert "1番" not in keyed.split("[keys: 726723456#]")[1]  # no list: the one match
    assert "«お申し込みを取り消しました。»" in keyed
    assert "cancel(SAMP23456, phone 0312345678)" in keyed
    plain = simulate(config, capsys, "--dtmf", "2")  # the board, as before: no booking
    assert "simulated sample" not in plain


class Silent:
    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        self.said: list[str] = []

    async def speak(self, step: Speak) -> Played | Digits:
        self.said += step.texts
        return Digits(self.keys.pop(0) if self.keys else "") if step.collect else Played()


class Broken(SampleBookings):
    async def book(self, session_id: int, phone: str, call_id: str) -> Any:
        raise OSError("database unreachable")


async def test_a_failing_port_is_apologised_for_and_the_node_ends() -> None:
    io = Silent(["1", "1", "1"])
    dialogue = BookingDialogue("kouza", "en", "0312345678", TZ, 9)
    how = await run_dialogue(dialogue, Broken(NOW, TZ), io, "c1")
    assert how == "failed"
    assert io.said[-1].startswith("We are sorry: bookings are not available right now.")
    io = Silent(["1"])
    dialogue = BookingDialogue("kouza", "ja", "0312345678", TZ, 9)
    assert await run_dialogue(dialogue, None, io, "c2") == "failed"


@pytest.fixture
async def bookings(database_url: str) -> AsyncIterator[BookingService]:
    db = Database(database_url)
    await db.create_schema()
    board: dict[str, str] = {}
    svc = BookingService(db, lambda: NOW, board.get)
    try:
        yield svc
    finally:
        await db.close()


async def test_the_port_books_lists_and_cancels_with_the_calls_id(
        bookings: BookingService) -> None:
    await bookings.save_event(event("yoga", capacity=1, waiting_list=True), ADMIN)
    await bookings.save_event(event("full", capacity=1, waiting_list=False,
                                    title_en="Full class"), ADMIN)
    await bookings.save_event(event("tea", category="other"), ADMIN)
    port = BookingsForIvr(bookings)
    full = (await bookings.event("full")).sessions[0].row.id
    await bookings.book_for_caller(full, "0399990000")
    sessions = await port.open_sessions("kouza", "en", 9)
    assert [(s.title, s.free, s.waiting_list) for s in sessions] == [("Yoga class", 1, True)]
    assert sessions[0].starts_at == NOW + timedelta(days=20)
    sid = sessions[0].session_id
    first = await port.book(sid, "03-1234-5678", "call-1")
    assert first.outcome is BookOutcome.CONFIRMED and first.number
    second = await port.book(sid, "0311112222", "call-2")
    assert second.outcome is BookOutcome.WAITING
    assert (await port.book(sid, "0312345678", "call-3")).outcome is BookOutcome.DUPLICATE
    assert (await port.book(full, "0311112222", "call-4")).outcome is BookOutcome.FULL
    found = await bookings.lookup(first.number, "0312345678")
    assert found.booking.call_id == "call-1" and found.booking.channel == "ivr"
    mine = await port.bookings_of("0312345678", "ja", "call-5", 9)
    assert [(b.number, b.title, b.status) for b in mine] == [(first.number, "ヨガ教室",
                                                              "confirmed")]
    assert await port.cancel(first.number, "0312345678", "call-5") is CancelOutcome.CANCELLED
    assert await port.cancel(first.number, "0312345678", "call-5") is CancelOutcome.ALREADY
    assert await port.cancel(first.number, "0399999999", "call-5") is CancelOutcome.NOT_FOUND
    assert await port.bookings_of("0312345678", "ja", "call-5", 9) == []
    promoted = await bookings.lookup(str(second.number), "0311112222")
    assert promoted.booking.status == "confirmed"  # the freed seat went to the waiting list
