"""The ACD service against a scripted AMI: who is rung, what happens on answer, no answer,
and a caller who leaves while an operator's phone rings."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from acd.agents import AgentState
from acd.service import MISSED_REST, Acd
from ami_bridge.calls import CallTracker
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


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def make(tmp_path: Path) -> tuple[Acd, ScriptedAmi, CallTracker, Clock]:
    clock = Clock()
    tracker = CallTracker(clock)
    ami = ScriptedAmi()
    acd = Acd(load_settings(ROOT / "config", tmp_path), ami, tracker)
    for i, agent_id in enumerate(["7001", "7002", "7003"]):
        acd.agents[agent_id].idle_since = clock.now - timedelta(minutes=10 - i)
        acd.device_state(f"PJSIP/{agent_id}", "NOT_INUSE")
    return acd, ami, tracker, clock


async def test_answered_call_goes_to_longest_idle_and_frees_agent_after(tmp_path: Path) -> None:
    acd, ami, tracker, clock = make(tmp_path)
    call = tracker.offer("100.1", "PJSIP/trunk-00000001", "city", "1000", "0312345678")
    call.queue = "city"
    await acd.enqueue(call)
    await settle()
    action, fut = ami.originates[0]
    assert action["Channel"] == "PJSIP/7001"
    assert action["Application"] == "Bridge"
    assert action["Data"].startswith("PJSIP/trunk-00000001,")
    assert action["CallerID"] == '"0312345678" <0312345678>'
    assert acd.agents["7001"].state is AgentState.RINGING
    clock.now += timedelta(seconds=3)
    fut.set_result({"Response": "Success", "Reason": "4"})
    await settle()
    assert acd.agents["7001"].state is AgentState.ON_CALL
    assert call.agent_id == "7001" and call.answered_at == clock.now
    acd.channel_hungup(action["ChannelId"])
    assert acd.agents["7001"].state is AgentState.AVAILABLE
    await acd.close()


async def test_no_answer_rings_the_next_operator_and_rests_the_first(tmp_path: Path) -> None:
    acd, ami, tracker, clock = make(tmp_path)
    call = tracker.offer("100.1", "PJSIP/trunk-00000001", "city", "1000", "0312345678")
    call.queue = "city"
    await acd.enqueue(call)
    await settle()
    ami.originates[0][1].set_result({"Response": "Failure", "Reason": "3"})
    await settle()
    assert ami.originates[1][0]["Channel"] == "PJSIP/7002"
    first = acd.agents["7001"]
    assert first.state is AgentState.AVAILABLE
    assert first.rest_until == clock.now + MISSED_REST
    assert call.ring_at is not None and call.answered_at is None
    await acd.close()


async def test_caller_leaving_while_ringing_hangs_up_the_operator_leg(tmp_path: Path) -> None:
    acd, ami, tracker, _ = make(tmp_path)
    call = tracker.offer("100.1", "PJSIP/trunk-00000001", "city", "1000", "0312345678")
    call.queue = "city"
    await acd.enqueue(call)
    await settle()
    action, fut = ami.originates[0]
    tracker.end(call.uniqueid)
    acd.caller_gone(call)
    await settle()
    assert ami.sent == [{"Action": "Hangup", "Channel": action["ChannelId"], "Cause": "16"}]
    assert acd.agents["7001"].state is AgentState.AVAILABLE
    fut.set_result({"Response": "Failure", "Reason": "1"})
    await settle()
    assert acd.agents["7001"].state is AgentState.AVAILABLE  # the late reply changes nothing
    assert acd.waiting_counts() == {"city": 0}
    await acd.close()


async def test_waiting_caller_is_served_when_an_operator_becomes_reachable(
        tmp_path: Path) -> None:
    acd, ami, tracker, _ = make(tmp_path)
    for agent_id in ("7001", "7002", "7003"):
        acd.device_state(f"PJSIP/{agent_id}", "UNAVAILABLE")
    call = tracker.offer("100.1", "PJSIP/trunk-00000001", "city", "1000", "0312345678")
    call.queue = "city"
    await acd.enqueue(call)
    await settle()
    assert ami.originates == [] and acd.waiting_counts() == {"city": 1}
    acd.device_state("PJSIP/7003", "NOT_INUSE")
    await settle()
    assert ami.originates[0][0]["Channel"] == "PJSIP/7003"
    await acd.close()
