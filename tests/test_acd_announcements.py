"""The ACD tells waiting callers their position and expected wait: it decides the sentence,
has it spoken through the Announcer port and puts the sound on the caller's channel with AMI
Setvar (MADO_POSITION_SOUND), only when it changed, before queueing returns (so the hold
loop says it at entry)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from datetime import timedelta
from pathlib import Path

from acd.agents import AgentState
from acd.announcements import text
from acd.service import Acd
from acd.wait_estimate import Handled
from ami_bridge.dialplan import Var
from core.calls import Call, CallTracker
from core.settings import load_settings

from .test_acd_service import Clock, ScriptedAmi, offer, settle

ROOT = Path(__file__).resolve().parents[1]
AGENTS = ("7001", "7002", "7003")


class Announcer:
    """Speaks nothing: names a sound per text, and remembers what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []
        self.texts: dict[str, str] = {}
        self.mute: set[str] = set()  # languages it cannot speak
        self.gate: asyncio.Event | None = None  # holds rendering until set

    async def render(self, said: str, language: str) -> str | None:
        self.asked.append((said, language))
        await asyncio.sleep(0)  # as the real one, which speaks in a thread
        if self.gate is not None:
            await self.gate.wait()
        if language in self.mute:
            return None
        sound = f"/sounds/tts/{language}/{hashlib.sha256(said.encode()).hexdigest()[:12]}"
        self.texts[sound] = said
        return sound


def make(tmp_path: Path) -> tuple[Acd, ScriptedAmi, CallTracker, Clock, Announcer]:
    clock = Clock()
    tracker = CallTracker(clock)
    ami = ScriptedAmi()
    settings = load_settings(ROOT / "config", tmp_path)
    settings = dataclasses.replace(settings, queues=(settings.queues[0],))
    announcer = Announcer()
    acd = Acd(settings, ami, tracker, announcer=announcer)
    for i, agent_id in enumerate(AGENTS):
        acd.agents[agent_id].idle_since = clock.now - timedelta(minutes=10 - i)
        acd.device_state(f"PJSIP/{agent_id}", "NOT_INUSE")
    acd.resync([], [])
    return acd, ami, tracker, clock, announcer


def told(ami: ScriptedAmi, announcer: Announcer) -> list[tuple[str, str]]:
    """(caller channel, sentence) of every position sound put on a channel, in order."""
    return [(a["Channel"], announcer.texts[a["Value"]]) for a in ami.sent_actions("Setvar")
            if a["Variable"] == Var.POSITION_SOUND]


async def busy_operators(acd: Acd, ami: ScriptedAmi, tracker: CallTracker) -> list[Call]:
    """Every reachable operator answers a call: whoever comes next waits."""
    calls = [offer(tracker, 90 + i) for i in range(len(AGENTS))]
    for call in calls:
        await acd.enqueue(call)
    await settle()
    for _, fut in ami.originates:
        fut.set_result({"Response": "Success"})
    await settle()
    assert all(acd.agents[a].state is AgentState.ON_CALL for a in AGENTS)
    return calls


def measured(acd: Acd, clock: Clock, cycle_s: float, calls: int = 5) -> None:
    for i in range(calls):
        acd.handled.record("city", Handled(clock.now - timedelta(seconds=i), cycle_s, 5.0))


async def test_a_waiting_caller_hears_position_and_wait_at_entry(tmp_path: Path) -> None:
    acd, ami, tracker, clock, announcer = make(tmp_path)
    await busy_operators(acd, ami, tracker)
    assert told(ami, announcer) == []  # nobody waited: nothing said
    measured(acd, clock, cycle_s=175.0)  # 3 operators, 175 s a call: ~1 minute a place
    first = offer(tracker, 1)
    await acd.enqueue(first)
    # set before queueing returns: the hold loop finds it at entry
    assert told(ami, announcer) == [(first.channel, text(1, 175 / 3 + 5, "ja"))]
    assert told(ami, announcer)[0][1].endswith("およそ1分です。")
    clock.now += timedelta(seconds=1)  # callers queued at once would be ordered by their ids
    second = offer(tracker, 2)
    second.language = "en"
    await acd.enqueue(second)
    await settle()
    # the first caller's sentence did not change: not said again
    assert told(ami, announcer)[1:] == [
        (second.channel, "You are number 2 in line. The expected waiting time is about "
                         "2 minutes.")]
    await acd.close()


async def test_moving_up_is_said_and_nothing_else_is_repeated(tmp_path: Path) -> None:
    acd, ami, tracker, clock, announcer = make(tmp_path)
    talking = await busy_operators(acd, ami, tracker)
    measured(acd, clock, cycle_s=300.0)
    first, second = offer(tracker, 1), offer(tracker, 2)
    await acd.enqueue(first)
    clock.now += timedelta(seconds=1)
    await acd.enqueue(second)
    await settle()
    assert [t for _, t in told(ami, announcer)] == [text(1, 105, "ja"), text(2, 205, "ja")]
    # the first caller leaves; the second moves up
    acd.caller_gone(first)
    await settle()
    assert told(ami, announcer)[2:] == [(second.channel, text(1, 105, "ja"))]
    # the heartbeat's refresh finds nothing new to say
    acd._announce_soon()
    await settle()
    assert len(told(ami, announcer)) == 3
    # an operator frees up: the second caller is rung, and no longer told anything
    ring = next(c for c in ami.originates if c[0]["Variable"].endswith(talking[0].id))
    acd.channel_hungup(ring[0]["ChannelId"])
    acd.operator_action("7001", "end_wrap_up")
    await settle()
    assert ami.originates[-1][0]["Data"].startswith(second.channel)
    assert len(told(ami, announcer)) == 3
    await acd.close()


async def test_no_operator_logged_in_position_only(tmp_path: Path) -> None:
    acd, ami, tracker, clock, announcer = make(tmp_path)
    measured(acd, clock, cycle_s=120.0)
    for agent_id in AGENTS:
        acd.operator_action(agent_id, "logout")
    call = offer(tracker, 1)
    await acd.enqueue(call)
    assert told(ami, announcer) == [(call.channel, "ただいま、あなたの順番は1番目です。")]
    # someone logs in away from the phone (unreachable): still no figure
    acd.agents["7003"].reachable = False
    acd.operator_action("7003", "login")
    await settle()
    assert len(told(ami, announcer)) == 1
    await acd.close()


async def test_too_few_recent_calls_position_only(tmp_path: Path) -> None:
    acd, ami, tracker, clock, announcer = make(tmp_path)
    await busy_operators(acd, ami, tracker)
    measured(acd, clock, cycle_s=120.0, calls=2)
    call = offer(tracker, 1)
    await acd.enqueue(call)
    assert told(ami, announcer) == [(call.channel, "ただいま、あなたの順番は1番目です。")]
    await acd.close()


async def test_a_long_wait_is_more_than_ten_minutes(tmp_path: Path) -> None:
    acd, ami, tracker, clock, announcer = make(tmp_path)
    await busy_operators(acd, ami, tracker)
    measured(acd, clock, cycle_s=1900.0)  # over 10 minutes a place with 3 operators
    call = offer(tracker, 1)
    call.language = "en"
    await acd.enqueue(call)
    assert told(ami, announcer) == [
        (call.channel, "You are number 1 in line. The expected waiting time is more than "
                       "10 minutes.")]
    await acd.close()


async def test_the_answer_rate_is_measured_from_answered_calls(tmp_path: Path) -> None:
    acd, ami, tracker, clock, _ = make(tmp_path)
    call = offer(tracker, 1)
    await acd.enqueue(call)
    await settle()
    action, fut = ami.originates[0]
    clock.now += timedelta(seconds=4)  # rings 4 s
    fut.set_result({"Response": "Success"})
    await settle()
    clock.now += timedelta(seconds=100)  # talks 100 s
    acd.channel_hungup(action["ChannelId"])
    clock.now += timedelta(seconds=20)  # after-call work 20 s
    acd.operator_action("7001", "end_wrap_up")
    assert acd.handled.of("city") == (Handled(clock.now, 124.0, 4.0),)
    await acd.close()


async def test_an_unspeakable_language_falls_back_and_a_gone_caller_gets_nothing(
        tmp_path: Path) -> None:
    acd, ami, tracker, clock, announcer = make(tmp_path)
    await busy_operators(acd, ami, tracker)
    measured(acd, clock, cycle_s=120.0)
    announcer.mute.add("en")
    english = offer(tracker, 1)
    english.language = "en"
    await acd.enqueue(english)
    assert [lang for _, lang in announcer.asked] == ["en", "ja"]
    assert told(ami, announcer) == [(english.channel, text(1, 45, "ja"))]
    # a caller who hangs up while their sentence is being spoken gets nothing set
    announcer.gate = asyncio.Event()
    leaving = offer(tracker, 2)
    queued = asyncio.create_task(acd.enqueue(leaving))
    await settle()
    acd.caller_gone(leaving)
    announcer.gate.set()
    await queued
    await settle()
    assert len(told(ami, announcer)) == 1
    await acd.close()


async def test_nothing_is_said_while_ami_is_down(tmp_path: Path) -> None:
    acd, ami, tracker, clock, announcer = make(tmp_path)
    await busy_operators(acd, ami, tracker)
    measured(acd, clock, cycle_s=120.0)
    acd.link_down()
    call = offer(tracker, 1)
    await acd.enqueue(call)
    await settle()
    assert told(ami, announcer) == []
    acd.begin_resync()
    acd.resync([], [])  # back: the rebuild dispatches, and the waiting caller is told
    await settle()
    assert told(ami, announcer) == [(call.channel, text(1, 45, "ja"))]
    await acd.close()


async def test_a_long_line_is_told_once_each_and_stays_current(tmp_path: Path) -> None:
    acd, ami, tracker, clock, announcer = make(tmp_path)
    await busy_operators(acd, ami, tracker)
    measured(acd, clock, cycle_s=30.0)
    calls = []
    for n in range(1, 201):
        clock.now += timedelta(seconds=1)
        calls.append(offer(tracker, n))
        await acd.enqueue(calls[-1])
    await settle()
    assert len(told(ami, announcer)) == 200  # each once: nobody else's place changed
    # the first three leave one after another, while the line is being told
    for call in calls[:3]:
        acd.caller_gone(call)
        await asyncio.sleep(0)
    for _ in range(20):
        await settle()
    last = dict(told(ami, announcer))
    assert all(last[c.channel] == text(n, n * 10 + 5, "ja")
               for n, c in enumerate(calls[3:], 1)), "a sentence is out of date"
    # nobody was told the same sentence twice in a row
    seen: dict[str, str] = {}
    for channel, said in told(ami, announcer):
        assert seen.get(channel) != said
        seen[channel] = said
    await acd.close()
