"""The ACD service against a scripted AMI: who is rung, answer, missed rings, wrap-up,
priority, overflow, operator actions, callers leaving while an operator's phone rings, and
rings whose outcome the AMI link lost."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from acd import service
from acd.agents import MISSED, AgentEvent, AgentState, Change, IllegalTransition
from acd.service import Acd
from ami_bridge.ami_errors import AmiDisconnected, AmiTimeout
from core.calls import Call, CallTracker
from core.settings import load_settings

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


@pytest.mark.parametrize("reason", ["3", "5"])  # rang out unanswered; busy
async def test_missed_ring_marks_away_and_rings_the_next(tmp_path: Path, reason: str) -> None:
    acd, ami, tracker, _, _ = make(tmp_path)
    call = offer(tracker, 1)
    await acd.enqueue(call)
    await settle()
    ami.originates[0][1].set_result({"Response": "Failure", "Reason": reason})
    await settle()
    first = acd.agents["7001"]
    assert (first.state, first.reason) == (AgentState.AWAY, MISSED)
    assert ami.originates[1][0]["Channel"] == "PJSIP/7002"
    assert call.ring_at is not None and call.answered_at is None
    await acd.close()


async def eventually(predicate: Callable[[], bool], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - polls state owned by the code under test
            await asyncio.sleep(0.005)


def caller_channel(call: Call) -> dict[str, str]:
    return {"Event": "CoreShowChannel", "Channel": call.channel, "Uniqueid": call.uniqueid,
            "Context": "mado-hold", "Application": "MusicOnHold", "ApplicationData": "default"}


@pytest.mark.parametrize("error", [AmiDisconnected("AMI link lost (reset); action not re-sent"),
                                   AmiTimeout("Originate: no outcome within 25 s")])
async def test_ring_lost_with_the_link_keeps_operator_and_caller_in_place(
        tmp_path: Path, error: Exception) -> None:
    acd, ami, tracker, clock, changes = make(tmp_path)
    asked: list[bool] = []
    acd.request_resync = lambda: asked.append(True)
    first, second = offer(tracker, 1), offer(tracker, 2)
    await acd.enqueue(first)
    await settle()
    idle_since = acd.agents["7001"].idle_since
    ami.originates[0][1].set_exception(error)
    await settle()
    clock.now += timedelta(seconds=1)
    await acd.enqueue(second)  # arrives while the link is down: waits behind the first
    await settle()
    agent = acd.agents["7001"]
    assert (agent.state, agent.reason, agent.idle_since) == (
        AgentState.AVAILABLE, None, idle_since)
    assert all(a.state is AgentState.AVAILABLE for a in acd.agents.values())
    assert len(ami.originates) == 1  # nobody else is rung on a link that lost a ring
    assert [c.id for c in acd.waiting.lines["city"]] == [first.id, second.id]
    assert asked and not acd.synced
    assert [(c.event, c.new) for c in changes if c.agent_id == "7001"] == [
        (AgentEvent.OFFER, AgentState.RINGING), (AgentEvent.RING_FAILED, AgentState.AVAILABLE)]
    # the rebuild finds no operator leg: the ring is over, the caller is offered again
    acd.begin_resync()
    acd.resync([caller_channel(first), caller_channel(second)], [])
    await settle()
    assert [a["Channel"] for a, _ in ami.originates[1:]] == ["PJSIP/7001", "PJSIP/7002"]
    assert ami.originates[1][0]["Data"].startswith(first.channel + ",")
    assert all(c.new is not AgentState.AWAY for c in changes)
    await acd.close()


async def test_nobody_is_rung_while_ami_is_down(tmp_path: Path) -> None:
    acd, ami, tracker, _, changes = make(tmp_path)
    acd.link_down()
    call = offer(tracker, 1)
    await acd.enqueue(call)
    acd.device_state("PJSIP/7002", "NOT_INUSE")
    await settle()
    assert ami.originates == [] and changes == []
    assert acd.waiting.position(call) == 1
    acd.begin_resync()
    acd.resync([caller_channel(call)], [])
    await settle()
    assert [a["Channel"] for a, _ in ami.originates] == ["PJSIP/7001"]
    await acd.close()


async def test_overflow_waits_for_ami(tmp_path: Path) -> None:
    acd, ami, tracker, _, _ = make(tmp_path, max_wait=10)
    for agent_id in ("7001", "7002", "7003"):
        acd.operator_action(agent_id, "logout")
    acd.link_down()
    call = offer(tracker, 1)
    call.queued_at = tracker.clock() - timedelta(seconds=10)  # already waited the maximum
    await acd.enqueue(call)
    await settle()
    assert ami.sent_actions("Redirect") == []  # it would fail: the caller keeps waiting
    assert acd.waiting.position(call) == 1
    acd.begin_resync()
    acd.resync([caller_channel(call)], [])
    await eventually(lambda: len(ami.sent_actions("Redirect")) == 1)
    assert call.outcome == "overflow" and acd.waiting_counts() == {"city": 0}
    await acd.close()


async def test_ring_answered_while_the_link_was_down_is_settled_as_connected(
        tmp_path: Path) -> None:
    acd, ami, tracker, _, _ = make(tmp_path)
    call = offer(tracker, 1)
    await acd.enqueue(call)
    await settle()
    action, fut = ami.originates[0]
    fut.set_exception(AmiDisconnected("AMI link lost (reset); action not re-sent"))
    await settle()
    acd.begin_resync()
    leg = {"Event": "CoreShowChannel", "Channel": "PJSIP/7001-00000007",
           "Uniqueid": action["ChannelId"], "Application": "Bridge",
           "ApplicationData": action["Data"]}
    acd.resync([caller_channel(call), leg], [])
    await settle()
    assert acd.agents["7001"].state is AgentState.ON_CALL
    assert call.agent_id == "7001" and call.answered_at is not None
    assert acd.waiting_counts() == {"city": 0} and len(ami.originates) == 1
    assert {a["Variable"] for a in ami.sent_actions("Setvar")} >= {"MADO_AGENT", "MADO_ANSWERED"}
    acd.channel_hungup(action["ChannelId"])
    assert acd.agents["7001"].state is AgentState.WRAP_UP
    await acd.close()


async def test_ring_still_ringing_when_the_link_is_back_is_hung_up_and_offered_again(
        tmp_path: Path) -> None:
    acd, ami, tracker, _, _ = make(tmp_path)
    call = offer(tracker, 1)
    await acd.enqueue(call)
    await settle()
    action, fut = ami.originates[0]
    fut.set_exception(AmiTimeout("Originate: no outcome within 25 s"))
    await settle()
    acd.begin_resync()
    leg = {"Event": "CoreShowChannel", "Channel": "PJSIP/7001-00000007",
           "Uniqueid": action["ChannelId"], "ChannelStateDesc": "Ringing", "Application": ""}
    acd.resync([caller_channel(call), leg], [])
    await settle()
    assert ami.sent_actions("Hangup") == [
        {"Action": "Hangup", "Channel": action["ChannelId"], "Cause": "16"}]
    assert [a["Channel"] for a, _ in ami.originates] == ["PJSIP/7001", "PJSIP/7001"]
    assert acd.agents["7001"].reason is None
    await acd.close()


@pytest.mark.parametrize("reason", ["0", "8"])  # no such phone; congestion or refused
async def test_phone_that_could_not_be_rung_is_skipped_for_a_while_not_missed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reason: str) -> None:
    monkeypatch.setattr(service, "NOT_REACHED_PAUSE_S", 0.2)
    acd, ami, tracker, _, changes = make(tmp_path)
    call = offer(tracker, 1)
    await acd.enqueue(call)
    await settle()
    ami.originates[0][1].set_result({"Response": "Failure", "Reason": reason})
    await settle()
    first = acd.agents["7001"]
    assert (first.state, first.reason, first.reachable) == (AgentState.AVAILABLE, None, False)
    assert ami.originates[1][0]["Channel"] == "PJSIP/7002"
    acd.device_state("PJSIP/7001", "NOT_INUSE")  # the failed attempt's own device change
    assert not first.reachable
    await eventually(lambda: first.reachable)
    assert all(c.new is not AgentState.AWAY for c in changes)
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


async def test_closing_lets_the_facts_a_restart_needs_be_written(tmp_path: Path) -> None:
    acd, ami, tracker, _, _ = make(tmp_path)
    for agent_id in ("7001", "7002", "7003"):
        acd.operator_action(agent_id, "logout")
    gate = asyncio.Event()
    send = ami.send

    async def slow_send(action: Mapping[str, str], timeout: float | None = None
                        ) -> dict[str, str]:
        await gate.wait()  # a busy Asterisk
        return await send(action, timeout)

    ami.send = slow_send  # type: ignore[method-assign]
    await acd.enqueue(offer(tracker, 1))  # queued just before the engine stops
    closing = asyncio.create_task(acd.close())
    await settle()
    assert not closing.done()
    gate.set()
    await closing
    assert {"MADO_CALL_ID", "MADO_OFFERED", "MADO_QUEUED"} <= {
        a["Variable"] for a in ami.sent_actions("Setvar")}


async def test_heartbeat_keeps_the_dialplan_s_alive_mark_fresh(tmp_path: Path) -> None:
    acd, ami, _, _, _ = make(tmp_path)
    acd.start()
    await settle()
    beat = ami.sent_actions("Setvar")[0]
    assert beat["Variable"] == "MADO_ALIVE" and "Channel" not in beat
    assert abs(int(beat["Value"]) - time.time()) < 5
    await acd.close()


async def test_a_phone_registering_or_dropping_is_reported_once(tmp_path: Path) -> None:
    acd, *_ = make(tmp_path)
    seen: list[tuple[str, bool]] = []
    acd.on_reachable = lambda agent_id, reachable: seen.append((agent_id, reachable))
    acd.device_state("PJSIP/7002", "UNAVAILABLE")
    acd.device_state("PJSIP/7002", "UNAVAILABLE")  # no change: no report
    acd.device_state("PJSIP/7002", "NOT_INUSE")
    acd.device_state("PJSIP/9999", "UNAVAILABLE")  # not an operator
    assert seen == [("7002", False), ("7002", True)]
