"""The ACD service: waiting lines per queue, ringing operators over AMI, connecting calls.

Mechanics (from a run against Asterisk 22): the waiting caller sits in a music loop in the
dialplan; the engine Originates the chosen operator's endpoint with Application=Bridge and
the caller's channel as data, so when the operator answers app_bridge pulls the caller out
of the loop into a bridge with them. The decision of who is next lives in `distributor`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from ami_bridge.calls import Call, CallTracker
from madoguchi.settings import Settings

from .agents import Agent, AgentEvent, AgentState
from .distributor import pick_agent

log = logging.getLogger(__name__)

UNREACHABLE_STATES = {"UNAVAILABLE", "INVALID", "UNKNOWN"}
MISSED_REST = timedelta(seconds=10)


class AmiPort(Protocol):
    async def send(self, action: Mapping[str, str],
                   timeout: float | None = None) -> dict[str, str]: ...

    async def originate(self, action: Mapping[str, str], timeout: float) -> dict[str, str]: ...


@dataclass
class Ring:
    channel_id: str  # our ChannelId for the operator's leg; Asterisk uses it as Uniqueid
    agent: Agent
    call: Call


class Acd:
    def __init__(self, settings: Settings, ami: AmiPort, tracker: CallTracker,
                 on_answer: Callable[[Call], None] | None = None) -> None:
        self.settings = settings
        self.ami = ami
        self.tracker = tracker
        self.on_answer = on_answer
        start = tracker.clock()
        self.agents: dict[str, Agent] = {
            a.id: Agent(a.id, a.queues, idle_since=start) for a in settings.agents}
        self.waiting: dict[str, deque[Call]] = {q.id: deque() for q in settings.queues}
        self.ringing: dict[str, Ring] = {}
        self.talking: dict[str, Ring] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._timers: set[asyncio.TimerHandle] = set()

    # ---- inputs ------------------------------------------------------------------------
    async def enqueue(self, call: Call) -> None:
        assert call.queue is not None
        call.queued_at = self.tracker.clock()
        self.waiting[call.queue].append(call)
        self.dispatch()

    def caller_gone(self, call: Call) -> None:
        """The caller hung up: forget them wherever they were and stop ringing for them."""
        if call.queue is not None and call in self.waiting.get(call.queue, ()):
            self.waiting[call.queue].remove(call)
        for channel_id, ring in list(self.ringing.items()):
            if ring.call is call:
                log.info("call %s: caller left while %s rang", call.id, ring.agent.id)
                del self.ringing[channel_id]
                ring.agent.apply(AgentEvent.CALLER_GONE, self.tracker.clock())
                self._spawn(self._hangup(channel_id))
        self.dispatch()

    def channel_hungup(self, uniqueid: str) -> None:
        ring = self.talking.pop(uniqueid, None)
        if ring is not None:
            ring.agent.apply(AgentEvent.HANGUP, self.tracker.clock())
            self.dispatch()

    def device_state(self, device: str, state: str) -> None:
        tech, _, name = device.partition("/")
        agent = self.agents.get(name) if tech == "PJSIP" else None
        if agent is None:
            return
        reachable = state.upper().replace(" ", "_") not in UNREACHABLE_STATES
        if reachable != agent.reachable:
            log.info("operator %s %s", agent.id, "reachable" if reachable else "unreachable")
        agent.reachable = reachable
        self.dispatch()

    def resync(self, live_uniqueids: set[str], device_states: Iterable[tuple[str, str]]) -> None:
        """After an AMI (re)connect: trust Asterisk's channel list, not our event history."""
        for device, state in device_states:
            self.device_state(device, state)
        now = self.tracker.clock()
        for channel_id, ring in list(self.talking.items()):
            if channel_id not in live_uniqueids:
                del self.talking[channel_id]
                ring.agent.apply(AgentEvent.HANGUP, now)
        self.dispatch()

    # ---- decisions and mechanics -----------------------------------------------------------
    def dispatch(self) -> None:
        now = self.tracker.clock()
        for queue, line in self.waiting.items():
            while line:
                agent = pick_agent(self.agents.values(), queue, now)
                if agent is None:
                    break
                call = line.popleft()
                self._offer(agent, call)

    def _offer(self, agent: Agent, call: Call) -> None:
        now = self.tracker.clock()
        agent.apply(AgentEvent.OFFER, now)
        if call.ring_at is None:
            call.ring_at = now
        ring = Ring(uuid.uuid4().hex, agent, call)
        self.ringing[ring.channel_id] = ring
        self._spawn(self._ring(ring))

    async def _ring(self, ring: Ring) -> None:
        queue = self.settings.queue(ring.call.queue or "")
        ring_timeout = queue.ring_timeout if queue else 15
        action = {
            "Action": "Originate",
            "Channel": f"PJSIP/{ring.agent.id}",
            "Application": "Bridge",
            # F: when the operator hangs up first, the caller leaves the bridge to a hang-up
            "Data": f"{ring.call.channel},F(mado-after^s^1)",
            "Async": "true",
            "ChannelId": ring.channel_id,
            "Timeout": str(ring_timeout * 1000),
            "CallerID": f"\"{ring.call.caller}\" <{ring.call.caller}>",
            "Variable": f"MADO_CALL_ID={ring.call.id}",
        }
        ok = False
        reason = ""
        try:
            response = await self.ami.originate(action, timeout=ring_timeout + 10)
            ok = response.get("Response") == "Success"
            reason = response.get("Reason", "")
        except Exception as exc:  # AMI down or timeout: treat as not answered, try again
            reason = repr(exc)
        if self.ringing.pop(ring.channel_id, None) is None:
            return  # the caller left while it rang; already handled
        now = self.tracker.clock()
        if ok and self.tracker.get(ring.call.uniqueid) is not None:
            ring.agent.apply(AgentEvent.ANSWER, now)
            ring.call.answered_at = now
            ring.call.agent_id = ring.agent.id
            self.talking[ring.channel_id] = ring
            log.info("call %s answered by %s", ring.call.id, ring.agent.id)
            if self.on_answer is not None:
                self.on_answer(ring.call)
        else:
            log.info("operator %s did not answer call %s (%s)", ring.agent.id, ring.call.id,
                     reason)
            ring.agent.apply(AgentEvent.NO_ANSWER, now)
            ring.agent.rest_until = now + MISSED_REST
            self._later(MISSED_REST.total_seconds(), self.dispatch)
            if self.tracker.get(ring.call.uniqueid) is not None and ring.call.queue:
                self.waiting[ring.call.queue].appendleft(ring.call)
        self.dispatch()

    async def _hangup(self, channel_id: str) -> None:
        try:
            await self.ami.send({"Action": "Hangup", "Channel": channel_id, "Cause": "16"})
        except Exception as exc:  # the channel may already be gone; nothing to undo
            log.debug("hangup of %s: %r", channel_id, exc)

    def _later(self, delay: float, callback: Callable[[], None]) -> None:
        handle = asyncio.get_running_loop().call_later(delay, callback)
        self._timers.add(handle)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ---- views --------------------------------------------------------------------------
    def agent_counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in AgentState}
        counts["unreachable"] = 0
        for a in self.agents.values():
            counts[a.state.value if a.reachable else "unreachable"] += 1
        return counts

    def waiting_counts(self) -> dict[str, int]:
        return {q: len(line) for q, line in self.waiting.items()}

    def oldest_wait(self, now: datetime) -> dict[str, float]:
        return {q: (now - line[0].queued_at).total_seconds() if line and line[0].queued_at
                else 0.0 for q, line in self.waiting.items()}
