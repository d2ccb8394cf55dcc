"""What a waiting caller is told (acd/announcements.py): the sentences in Japanese and
English, whole minutes, the 10-minute cap, position only without a figure, said again only
when changed, and the place in line across queues that share operators."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from acd.agents import Agent
from acd.announcements import (
    CAP_S,
    decide,
    language_of,
    positions,
    related_queues,
    text,
    wait_minutes,
)
from core.calls import Call

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def test_the_sentences() -> None:
    assert text(3, 4 * 60, "ja") == ("ただいま、あなたの順番は3番目です。"
                                     "お待ちいただく時間は、およそ4分です。")
    assert text(3, 4 * 60, "en") == ("You are number 3 in line. "
                                     "The expected waiting time is about 4 minutes.")
    assert text(1, 50, "en").endswith("about 1 minute.")


def test_above_the_cap_no_figure_is_said() -> None:
    assert text(12, CAP_S + 1, "ja") == ("ただいま、あなたの順番は12番目です。"
                                         "お待ちいただく時間は、10分以上の見込みです。")
    assert text(12, CAP_S + 1, "en") == ("You are number 12 in line. "
                                         "The expected waiting time is more than 10 minutes.")
    assert text(9, CAP_S, "ja").endswith("およそ10分です。")


def test_without_a_figure_only_the_position() -> None:
    # nobody serving the queue is logged in (or too few recent calls to measure)
    assert text(2, None, "ja") == "ただいま、あなたの順番は2番目です。"
    assert text(2, None, "en") == "You are number 2 in line."


@pytest.mark.parametrize(("seconds", "minutes"), [
    (0, 1), (29, 1), (89, 1), (90, 2), (151, 3), (569, 9), (570, 10), (600, 10),
    (601, None), (3600, None)])
def test_whole_minutes_at_least_one(seconds: float, minutes: int | None) -> None:
    assert wait_minutes(seconds) == minutes


def test_said_again_only_when_the_text_changed() -> None:
    first = decide(3, 250, "ja", None)
    assert first is not None and "およそ4分" in first
    assert decide(3, 230, "ja", first) is None  # still about 4 minutes: nothing new
    assert decide(2, 230, "ja", first) == text(2, 230, "ja")  # moved up
    assert decide(2, 230, "en", first) == text(2, 230, "en")
    assert decide(2, None, "ja", text(2, 200, "ja")) == "ただいま、あなたの順番は2番目です。"


def _call(n: int, queue: str, minutes_ago: int, priority: int = 0) -> Call:
    call = Call(f"1.{n}", f"PJSIP/trunk-{n}", "city", "1000", "0312345678", T0)
    call.queue, call.priority = queue, priority
    call.queued_at = T0 - timedelta(minutes=minutes_ago)
    return call


def test_position_counts_the_calls_the_same_operators_take_first() -> None:
    agents = [Agent("7001", ("city", "water"), T0), Agent("7002", ("city",), T0),
              Agent("7003", ("events",), T0)]
    assert related_queues("city", agents) == {"city", "water"}
    assert related_queues("water", agents) == {"city", "water"}
    assert related_queues("events", agents) == {"events"}
    a, b = _call(1, "city", 5), _call(2, "city", 1)
    w = _call(3, "water", 3)
    urgent = _call(4, "city", 0, priority=5)
    e = _call(5, "events", 9)
    lines = {"city": [urgent, a, b], "water": [w], "events": [e]}
    related = {q: related_queues(q, agents) for q in lines}
    places = positions(lines, related)
    assert [places[c.id] for c in (urgent, a, w, b, e)] == [1, 2, 3, 4, 1]
    # a queue no operator serves (yet) is a line of its own
    lonely = _call(6, "night", 2)
    assert positions({**lines, "night": [lonely]}, related)[lonely.id] == 1


def test_language_of_the_caller_defaults_to_japanese() -> None:
    call = _call(1, "city", 0)
    assert language_of(call) == "ja"
    call.language = "en"
    assert language_of(call) == "en"
    call.language = "fr"
    assert language_of(call) == "ja"
