"""The ACD service against a scripted AMI: who is rung, answer, missed rings, wrap-up,
priority, overflow, operator actions, and callers leaving while an operator's phone rings."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from acd.agents import MISSED, AgentState, Change, IllegalTransition
from acd.service import Acd
from ami_bridge.calls import Call, CallTracker
from madoguchi.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class ScriptedAmi:
    def __init__(self) -> None:
        self.originates: list[tuple[dict[str, str], asyncio.Future[dict[str, str]]]] = []
        self.sent: list[dict[str, str]] = []

    async def send(self, action: Mapping[str, str], timeout: float | None = None
                   ) -> dict[str, str]:
        self.sent.append(dict(action))
        return {"Response": "Success"}

    async def originate(self, action: Mapping[str, str], timeout: float) -> dict[str, str]:
        fut: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        self.originates.append((dict(action), fut))
        return await fut

    def sent_actions(self, name: str) -> list[dict[str, str]]:
        return [a for a in self.sent if a["Action"] == name]


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def make(tmp_path: Path, **queue_changes: object
         ) -> tuple[Acd, ScriptedAmi, CallTracker, Clock, list[Change]]:
    clock = Clock()
    tracker = CallTracker(clock)
    ami = ScriptedAmi()
    settings = load_settings(ROOT / "config", tmp_path)
    queue = dataclasses.replace(settings.queues[0], **queue_changes)  # type: ignore[arg-type]
    settings = dataclasses.replace(settings, queues=(queue,))
    changes: list[Change] = []
    acd = Acd(settings, ami, tracker, on_change=changes.append)
    for i, agent_id in enumerate(["7001", "7002", "7003"]):
        acd.agents[agent_id].idle_since = clock.now - timedelta(minutes=10 - i)
        acd.device_state(f"PJSIP/{agent_id}", "NOT_INUSE")
    acd.resync([], [])  # as after the first AMI login: Asterisk's state is known
    return acd, ami, tracker, clock, changes


def offer(tracker: CallTracker, n: int, priority: int = 0) -> Call:
    call = tracker.offer(f"100.{n}", f"PJSIP/trunk-{n:08d}", "city", "1000", "0312345678")
    call.queue, call.priority = "city", priority
    return call


async def test_answered_call_goes_to_longest_idle_then_wrap_up(tmp_path: Path) -> None:
    acd, ami, tracker, clock, changes = make(tmp_path, wrap_up=1)
    call = offer(tracker, 1)
    await acd.enqueue(call)
    await settle()
    action, fut = ami.originates[0]
    assert action["Channel"] == "PJSIP/7001"
    assert action["Application"] == "Bridge"
    assert action["Data"].startswith("PJSIP/trunk-00000001,")
    assert action["CallerID"] == '"0312345678" <0312345678>'
    clock.now += timedelta(seconds=3)
    fut.set_result({"Response": "Success", "Reason": "4"})
    await settle()
    assert acd.agents["7001"].state is AgentState.ON_CALL
    assert call.agent_id == "7001" and call.answered_at == clock.now
    assert call.time_to_answer == 3.0  # from the waiting line, the quick-answer clock
    # the facts a restarted engine needs are put on the caller's channel
    names = {a["Variable"] for a in ami.sent_actions("Setvar")}
    assert {"MADO_CALL_ID", "MADO_QUEUED", "MADO_AGENT", "MADO_ANSWERED"} <= names
    acd.channel_hungup(action["ChannelId"])
    assert acd.agents["7001"].state is AgentState.WRAP_UP
    # a second caller is not offered to the agent in wrap-up
    await acd.enqueue(offer(tracker, 2))
    await settle()
    assert ami.originates[1][0]["Channel"] == "PJSIP/7002"
    await asyncio.sleep(1.1)  # the wrap-up maximum
    assert acd.agents["7001"].state is AgentState.AVAILABLE
    assert [c.new for c in changes if c.agent_id == "7001"] == [
        AgentState.RINGING, AgentState.ON_CALL, AgentState.WRAP_UP, AgentState.AVAILABLE]
    await acd.close()


async def test_wrap_up_can_be_ended_early(tmp_path: Path) -> None:
    acd, ami, tracker, _, _ = make(tmp_path, wrap_up=300)
    await acd.enqueue(offer(tracker, 1))
    await settle()
    action, fut = ami.originates[0]
    fut.set_result({"Response": "Success"})
    await settle()
    acd.channel_hungup(action["ChannelId"])
    acd.operator_action("7001", "end_wrap_up")
    assert acd.agents["7001"].state is AgentState.AVAILABLE
    await acd.close()


async def test_missed_ring_marks_away_and_rings_the_next(tmp_path: Path) -> None:
    acd, ami, tracker, _, _ = make(tmp_path)
    call = offer(tracker, 1)
    await acd.enqueue(call)
    await settle()
    ami.originates[0][1].set_result({"Response": "Failure", "Reason": "3"})
    await settle()
    first = acd.agents["7001"]
    assert (first.state, first.reason) == (AgentState.AWAY, MISSED)
    assert ami.originates[1][0]["Channel"] == "PJSIP/7002"
    assert call.ring_at is not None and call.answered_at is None
    await acd.close()


async def test_callers_are_served_by_priority_then_arrival(tmp_path: Path) -> None:
    acd, ami, tracker, clock, _ = make(tmp_path)
    for agent_id in ("7001", "7002", "7003"):
        acd.operator_action(agent_id, "away", "meeting")
    calls = []
    for n, priority in enumerate([0, 0, 5, 0], start=1):
        clock.now += timedelta(seconds=1)
        calls.append(offer(tracker, n, priority))
        await acd.enqueue(calls[-1])
    assert [c.id for c in acd.waiting.lines["city"]] == [
        calls[2].id, calls[0].id, calls[1].id, calls[3].id]
    assert acd.waiting.position(calls[0]) == 2
    acd.operator_action("7001", "back")
    await settle()
    assert ami.originates[0][0]["Data"].startswith(calls[2].channel + ",")
    await acd.close()


async def test_caller_leaving_while_ringing_hangs_up_the_operator_leg(tmp_path: Path) -> None:
    acd, ami, tracker, _, _ = make(tmp_path)
    call = offer(tracker, 1)
    await acd.enqueue(call)
    await settle()
    action, fut = ami.originates[0]
    tracker.end(call.uniqueid)
    acd.caller_gone(call)
    await settle()
    assert ami.sent_actions("Hangup") == [
        {"Action": "Hangup", "Channel": action["ChannelId"], "Cause": "16"}]
    assert acd.agents["7001"].state is AgentState.AVAILABLE
    fut.set_result({"Response": "Failure", "Reason": "1"})
    await settle()
    assert acd.agents["7001"].state is AgentState.AVAILABLE  # the late reply changes nothing
    assert acd.waiting_counts() == {"city": 0}
    await acd.close()


async def test_waiting_past_the_maximum_overflows(tmp_path: Path) -> None:
    acd, ami, tracker, _, _ = make(tmp_path, max_wait=10)
    for agent_id in ("7001", "7002", "7003"):
        acd.operator_action(agent_id, "logout")
    call = offer(tracker, 1)
    call.queued_at = tracker.clock() - timedelta(seconds=10)  # already waited the maximum
    await acd.enqueue(call)
    await settle()
    assert acd.waiting_counts() == {"city": 0}
    assert call.outcome == "overflow"
    redirect = ami.sent_actions("Redirect")
    assert redirect == [{"Action": "Redirect", "Channel": call.channel,
                         "Context": "mado-transfer", "Exten": "message", "Priority": "1"}]
    await acd.close()


async def test_operator_actions_follow_the_table(tmp_path: Path) -> None:
    acd, _, _, _, changes = make(tmp_path)
    acd.operator_action("7002", "away", "break")
    assert (acd.agents["7002"].state, acd.agents["7002"].reason) == (AgentState.AWAY, "break")
    with pytest.raises(IllegalTransition):
        acd.operator_action("7002", "end_wrap_up")
    acd.operator_action("7002", "logout")
    acd.operator_action("7002", "login")
    assert acd.agents["7002"].state is AgentState.AVAILABLE
    assert [c.event.value for c in changes] == ["away", "logout", "login"]
    with pytest.raises(KeyError):
        acd.operator_action("9999", "login")


async def test_waiting_caller_is_served_when_an_operator_becomes_reachable(
        tmp_path: Path) -> None:
    acd, ami, tracker, _, _ = make(tmp_path)
    for agent_id in ("7001", "7002", "7003"):
        acd.device_state(f"PJSIP/{agent_id}", "UNAVAILABLE")
    await acd.enqueue(offer(tracker, 1))
    await settle()
    assert ami.originates == [] and acd.waiting_counts() == {"city": 1}
    acd.device_state("PJSIP/7003", "NOT_INUSE")
    await settle()
    assert ami.originates[0][0]["Channel"] == "PJSIP/7003"
    await acd.close()




async def test_supervision_rings_the_supervisor_into_chanspy_and_audits(
        tmp_path: Path) -> None:
    from acd.supervision import Supervision, SupervisionError

    acd, ami, tracker, _, _ = make(tmp_path)
    audited: list[tuple[str, ...]] = []

    async def audit(*entry: str) -> None:
        audited.append(entry)

    sup = Supervision(acd, audit)
    with pytest.raises(SupervisionError) as err:
        await sup.start("7001", "listen", "7004", "api-token", "127.0.0.1")
    assert err.value.status == 409  # not on a call
    call = offer(tracker, 1)
    await acd.enqueue(call)
    await settle()
    leg, fut = ami.originates[0]
    fut.set_result({"Response": "Success"})
    await settle()
    with pytest.raises(SupervisionError):
        await sup.start("7001", "listen", "7001", "api-token", "127.0.0.1")  # itself
    result = await sup.start("7001", "whisper", "7004", "api-token", "127.0.0.1")
    await settle()
    spy, _ = ami.originates[1]
    assert spy["Channel"] == "PJSIP/7004" and spy["Application"] == "ChanSpy"
    assert spy["Data"] == f"{leg['ChannelId']},quEw"
    assert result["call_id"] == call.id
    assert audited == [("api-token", "supervise-whisper", call.id,
                        "agent 7001, supervisor 7004", "127.0.0.1")]
    await sup.close()
    await acd.close()


async def test_heartbeat_keeps_the_dialplan_s_alive_mark_fresh(tmp_path: Path) -> None:
    acd, ami, _, _, _ = make(tmp_path)
    acd.start()
    await settle()
    beat = ami.sent_actions("Setvar")[0]
    assert beat["Variable"] == "MADO_ALIVE" and "Channel" not in beat
    assert abs(int(beat["Value"]) - time.time()) < 5
    await acd.close()
