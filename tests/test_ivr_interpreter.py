"""The pure interpreter: every node type, retries, timeouts, barge-in, language fallback,
holiday and override branches, all with a fake clock and a dry world."""

from __future__ import annotations

import shutil
import textwrap
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.settings import load_settings
from ivr.events import Board, Event
from ivr.flowset import CallWorld, FlowSet, Sources, read_flow_set
from ivr.interpreter import (
    CallInfo,
    Collect,
    Digits,
    End,
    Enqueue,
    Interpreter,
    Played,
    Say,
    TransferTo,
)
from ivr.prompts import Audio, Prompt
from ivr.schedule import Override, OverrideMode
from ivr.tts import Tts
from madoguchi.cli import main

ROOT = Path(__file__).resolve().parents[1]
TOKYO = ZoneInfo("Asia/Tokyo")


def flow_set(tmp_path: Path, flows: dict[str, str] | None = None,
             prompts: str | None = None) -> FlowSet:
    config = tmp_path / "config"
    if not config.exists():
        shutil.copytree(ROOT / "config", config)
    for name, text in (flows or {}).items():
        (config / "flows" / f"{name}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    if prompts is not None:
        (config / "prompts.yaml").write_text(textwrap.dedent(prompts), encoding="utf-8")
    settings = load_settings(config, tmp_path / "state")
    # dry: nothing is synthesised; every language with a text and a voice gets a sound name
    return read_flow_set(Sources.from_settings(settings), Tts(tmp_path / "tts"),
                         tmp_path / "sounds", dry=True)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TOKYO)


def run(fs: FlowSet, flow: str, when: datetime, overrides: dict[str, Override] | None = None,
        board: Board | None = None) -> Interpreter:
    world = CallWorld(fs, overrides or {}, board or Board((), {}))
    return Interpreter(fs.flows[flow], world, CallInfo("0312345678", "1000", "city"),
                       lambda: when)


def texts(instruction: object) -> list[str]:
    assert isinstance(instruction, Say | Collect), instruction
    return [a.key for a in instruction.audio]


WEEKDAY_NOON = at("2026-11-25T12:00")  # a Wednesday


def test_city_english_in_hours_goes_to_the_queue_with_topic(tmp_path: Path) -> None:
    ivr = run(flow_set(tmp_path), "city", WEEKDAY_NOON)
    first = ivr.start()
    assert isinstance(first, Say) and first.barge_in and texts(first) == ["greeting-city"]
    assert texts(ivr.feed(Played())) == ["choose-language"]
    assert ivr.feed(Digits("2")) == Enqueue("city", "general", 0)
    assert ivr.language == "en"
    assert ivr.path == ["greeting", "choose-language", "english", "hours", "to-queue"]


def test_a_key_during_the_greeting_answers_the_menu(tmp_path: Path) -> None:
    ivr = run(flow_set(tmp_path), "city", WEEKDAY_NOON)
    ivr.start()
    assert ivr.feed(Played("2")) == Enqueue("city", "general", 0)
    assert ivr.path == ["greeting", "choose-language", "english", "hours", "to-queue"]


def test_invalid_key_and_timeout_retry_then_fall_back(tmp_path: Path) -> None:
    ivr = run(flow_set(tmp_path), "city", WEEKDAY_NOON)
    ivr.start()
    ivr.feed(Played())
    assert texts(ivr.feed(Digits("9"))) == ["choose-language"]  # the repeat (wrong key)
    assert ivr.feed(Digits("7")) == Enqueue("city", "general", 0)  # out of retries: on_invalid
    assert ivr.language == "ja"
    assert ivr.path[-3:] == ["japanese", "hours", "to-queue"]
    ivr = run(flow_set(tmp_path), "city", WEEKDAY_NOON)
    ivr.start()
    ivr.feed(Played())
    assert texts(ivr.feed(Digits("9"))) == ["choose-language"]
    assert ivr.feed(Digits("")) == Enqueue("city", "general", 0)  # then no key: on_timeout
    assert ivr.language == "ja"


@pytest.mark.parametrize("flow", ["city", "water", "events"])
def test_a_caller_pressing_nothing_goes_on_in_japanese_after_one_repeat(
        tmp_path: Path, flow: str) -> None:
    """The shipped flows' language menu: heard once, repeated once, then Japanese. Today
    that is the greeting and two rounds of the menu (about 22 s with the shipped prompts),
    instead of three rounds (about 31 s) before the caller reached the waiting line."""
    ivr = run(flow_set(tmp_path), flow, WEEKDAY_NOON)
    instruction = ivr.start()
    assert isinstance(instruction, Say)
    instruction = ivr.feed(Played())
    menus = []
    while isinstance(instruction, Collect):
        menus.append(instruction)
        instruction = ivr.feed(Digits(""))
    # the event line's menu also offers course booking (3, or 4 in English)
    prompt = "choose-language-events" if flow == "events" else "choose-language"
    assert [texts(m) for m in menus] == [[prompt], [prompt]]
    assert sum(m.timeout_ms for m in menus) <= 10_000
    assert ivr.language == "ja" and "japanese" in ivr.path
    assert all(a.language == "ja" for m in menus for a in m.audio)


def test_flows_simulate_shows_the_one_repeat(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    args = ["--config", str(config), "--state", str(tmp_path / "state")]
    assert main([*args, "flows", "simulate", "city", "--at", "2026-11-25T12:00"]) == 0
    out = capsys.readouterr().out
    assert "path: greeting -> choose-language -> japanese -> hours -> to-queue" in out
    assert out.count("choose-language (ja)  [keys: (timeout)]") == 2


def test_after_hours_2_then_1_plays_the_english_board(tmp_path: Path) -> None:
    fs = flow_set(tmp_path)
    when = at("2026-12-30T19:00")
    ev = Event("fest", when.date(), "held", {"ja": "祭り", "en": "the festival"},
               {"ja": "公園", "en": "the park"}, "10:00",
               publish_until=when + timedelta(hours=1))
    old = Event("old", when.date(), "full", {"ja": "講座", "en": "the class"},
                {"ja": "館", "en": "the hall"}, publish_until=when - timedelta(minutes=1))
    board = Board((), {}).with_events((ev, old), {
        "fest": {"en": Audio("event:fest", "en", "The festival …", "tts/en/f"),
                 "ja": Audio("event:fest", "ja", "祭り…", "tts/ja/f")},
        "old": {"en": Audio("event:old", "en", "The class …", "tts/en/o")}})
    ivr = run(fs, "city", when, board=board)
    ivr.start()
    ivr.feed(Played())
    closed = ivr.feed(Digits("2"))
    assert texts(closed) == ["closed-city"] and ivr.language == "en"
    assert texts(ivr.feed(Played())) == ["after-hours-menu"]
    said = ivr.feed(Digits("1"))
    assert isinstance(said, Say)
    assert [(a.key, a.sound) for a in said.audio] == [("events-intro", said.audio[0].sound),
                                                      ("event:fest", "tts/en/f")]
    assert texts(ivr.feed(Played())) == ["goodbye"]
    assert ivr.feed(Played()) == End("hangup")
    assert ivr.path == ["greeting", "choose-language", "english", "hours", "closed",
                        "after-hours-menu", "events", "goodbye"]


def test_empty_board_plays_its_empty_prompt(tmp_path: Path) -> None:
    ivr = run(flow_set(tmp_path), "events", WEEKDAY_NOON)
    ivr.start()
    ivr.feed(Played())
    assert texts(ivr.feed(Digits("1"))) == ["events-none"]


@pytest.mark.parametrize(("when", "service_flow", "branch"), [
    ("2026-11-23T10:00", "water", "holiday"),  # Labour Thanksgiving Day (Monday)
    ("2026-05-06T10:00", "water", "holiday"),  # substitute holiday for May 3 (Sunday)
    ("2026-01-12T10:00", "water", "holiday"),  # Coming of Age Day, 2nd Monday (Happy Monday)
    ("2026-12-30T10:00", "water", "holiday"),  # city closure 12/29-1/3 (config)
    ("2026-11-28T10:00", "water", "closed"),  # a Saturday: water is shut, not a holiday
    ("2026-11-25T08:29", "water", "closed"),
    ("2026-11-25T08:30", "water", "to-queue"),
    ("2026-11-25T17:14", "water", "to-queue"),
    ("2026-11-25T17:15", "water", "closed"),
    ("2026-11-23T10:00", "city", "to-queue"),  # the city call center opens on holidays
    ("2026-11-23T16:00", "city", "closed"),  # ... until 16:00
    ("2026-11-28T15:59", "city", "to-queue"),
    ("2026-11-25T17:59", "city", "to-queue"),
    ("2026-11-25T18:00", "city", "closed"),
])
def test_hours_and_holidays_branch(tmp_path: Path, when: str, service_flow: str,
                                   branch: str) -> None:
    ivr = run(flow_set(tmp_path), service_flow, at(when))
    ivr.start()
    ivr.feed(Played("1"))
    assert branch in ivr.path, ivr.path


def test_overrides_closed_emergency_and_forward(tmp_path: Path) -> None:
    fs = flow_set(tmp_path)
    now = WEEKDAY_NOON
    closed = Override("city", OverrideMode.CLOSED, now, "t")
    ivr = run(fs, "city", now, {"city": closed})
    ivr.start()
    assert texts(ivr.feed(Played("1"))) == ["closed-city"]

    message = {"ja": "断水のため休止中です。", "en": "We are closed because of a water outage."}
    emergency = Override("city", OverrideMode.EMERGENCY, now, "t", message=message,
                         message_sounds={"ja": "tts/ja/x"})
    ivr = run(fs, "city", now, {"city": emergency})
    ivr.start()
    first = ivr.feed(Played("2"))  # English caller; the message exists only in Japanese audio
    assert isinstance(first, Say)
    audio = first.audio[0]
    assert (audio.text, audio.sound, audio.spoken) == (message["ja"], "tts/ja/x", "ja")
    assert texts(ivr.feed(Played())) == ["emergency"]
    assert ivr.feed(Played()) == End("hangup")

    forward = Override("city", OverrideMode.FORWARD, now, "t")
    ivr = run(fs, "city", now, {"city": forward})
    ivr.start()
    assert texts(ivr.feed(Played("1"))) == ["forward-city-hall"]
    assert ivr.feed(Played()) == TransferTo("1100", "PJSIP/811100@citypbx")

    expired = Override("city", OverrideMode.CLOSED, now - timedelta(hours=2), "t",
                       until=now - timedelta(hours=1))
    ivr = run(fs, "city", now, {"city": expired})
    ivr.start()
    assert isinstance(ivr.feed(Played("1")), Enqueue)


def test_language_fallback_is_reported() -> None:
    p = Prompt("only-ja", {"ja": "こんにちは", "en": "Hello"}, {"ja": "tts/ja/a"})
    a = p.audio("en")
    assert (a.sound, a.spoken, a.text) == ("tts/ja/a", "ja", "こんにちは")
    none = Prompt("nothing", {"en": "Hello"}, {}).audio("en")
    assert none.sound is None and none.text == "Hello"


GOTO_SET_FLOW = """\
start: route
nodes:
  route:
    type: goto
    switch: did
    cases: {"1000": tag-garbage}
    next: tag-other
  tag-garbage:
    type: set
    values: {topic: garbage, priority: "5", language: en, note: "from {caller}"}
    next: check
  tag-other:
    type: set
    values: {topic: "other-{did}"}
    next: check
  check:
    type: goto
    switch: note
    cases: {"from 0312345678": vip}
    next: to-queue
  vip:
    type: queue
    queue: city
    topic: "vip-{topic}"
    priority: 9
  to-queue:
    type: queue
    queue: city
"""


def test_goto_switch_set_variables_and_templates(tmp_path: Path) -> None:
    fs = flow_set(tmp_path, {"route": GOTO_SET_FLOW})
    ivr = run(fs, "route", WEEKDAY_NOON)
    assert ivr.start() == Enqueue("city", "vip-garbage", 9)
    assert ivr.language == "en"
    assert ivr.path == ["route", "tag-garbage", "check", "vip"]
    world = CallWorld(fs, {}, Board((), {}))
    other = Interpreter(fs.flows["route"], world, CallInfo("0399", "2000", "water"),
                        lambda: WEEKDAY_NOON)
    assert other.start() == Enqueue("city", "other-2000", 0)
    assert other.variables()["time"] == "12:00" and other.variables()["weekday"] == "wed"


def test_transfer_and_hangup_nodes(tmp_path: Path) -> None:
    fs = flow_set(tmp_path, {"xfer": """\
        start: menu
        nodes:
          menu:
            type: menu
            text: {ja: "1で転送、2で終了", en: "1 transfers, 2 hangs up"}
            choices: {"1": out, "2": bye}
            timeout: 3
            retries: 0
            on_timeout: bye
            on_invalid: bye
          out:
            type: transfer
            to: "09012345678"
          bye:
            type: hangup
        """})
    ivr = run(fs, "xfer", WEEKDAY_NOON)
    first = ivr.start()
    assert isinstance(first, Collect) and first.timeout_ms == 3000
    assert first.audio[0].text == "1で転送、2で終了"
    assert ivr.feed(Digits("1")) == TransferTo("09012345678", "PJSIP/09012345678@citypbx")
    ivr = run(fs, "xfer", WEEKDAY_NOON)
    ivr.start()
    assert ivr.feed(Digits("")) == End("hangup")  # no retries: timeout goes straight on


def test_outcome_that_does_not_fit_raises(tmp_path: Path) -> None:
    ivr = run(flow_set(tmp_path), "city", WEEKDAY_NOON)
    ivr.start()
    with pytest.raises(ValueError):
        ivr.feed(Digits("1"))


def test_menu_retry_prompts_come_before_the_menu(tmp_path: Path) -> None:
    fs = flow_set(tmp_path)
    ivr = run(fs, "city", at("2026-11-25T20:00"))
    ivr.start()
    ivr.feed(Played("1"))
    assert texts(ivr.feed(Played())) == ["after-hours-menu"]
    assert texts(ivr.feed(Digits("4"))) == ["invalid-key", "after-hours-menu"]
    assert texts(ivr.feed(Digits("9"))) == ["closed-city"]  # 9: hear it again
    assert texts(ivr.feed(Played())) == ["after-hours-menu"]
    assert texts(ivr.feed(Digits(""))) == ["after-hours-menu"]  # no timeout prompt set
    assert texts(ivr.feed(Digits(""))) == ["goodbye"]


def test_a_caller_kept_forever_in_menus_is_ended(tmp_path: Path) -> None:
    fs = flow_set(tmp_path)
    ivr = run(fs, "city", at("2026-11-25T20:00"))
    ivr.start()
    ivr.feed(Played("1"))
    ivr.feed(Played())
    instruction: object = None
    for _ in range(400):
        instruction = ivr.feed(Digits("9"))
        if isinstance(instruction, End):
            break
        instruction = ivr.feed(Played())
        if isinstance(instruction, End):
            break
    assert instruction == End("too long in the IVR")
