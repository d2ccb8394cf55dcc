"""The ACD service: waiting lines, ringing operators over AMI, connecting and transferring calls.

Mechanics (from a run against Asterisk 22): the waiting caller sits in a music loop in the
dialplan; the engine Originates the chosen operator's endpoint with Application=Bridge and
the caller's channel as data, so when the operator answers app_bridge pulls the caller out
of the loop into a bridge with them. Who is next is decided by `distributor` (pure); every
state change goes through the agents' transition table and out through `on_change`.

The caller's channel carries the call's facts as channel variables (MADO_*), so a restarted
engine can rebuild waiting and connected calls from Asterisk alone (`adopt`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ami_bridge.calls import Call, CallTracker, TransferStep
from madoguchi.settings import Queue, Settings

from .agents import Agent, AgentEvent, AgentState, Change
from .distributor import next_assignment
from .transfers import TransferTarget, resolve
from .waiting import WaitingLines

log = logging.getLogger(__name__)

UNREACHABLE_STATES = {"UNAVAILABLE", "INVALID", "UNKNOWN"}
HEARTBEAT_S = 5.0  # the dialplan treats the engine as gone after 20 s without one
OPERATOR_ACTIONS: dict[str, AgentEvent] = {
    "login": AgentEvent.LOGIN, "logout": AgentEvent.LOGOUT, "away": AgentEvent.AWAY,
    "back": AgentEvent.BACK, "end_wrap_up": AgentEvent.END_WRAP_UP,
}


class AmiPort(Protocol):
    async def send(self, action: Mapping[str, str],
                   timeout: float | None = None) -> dict[str, str]: ...

    async def originate(self, action: Mapping[str, str], timeout: float) -> dict[str, str]: ...


@dataclass
class Ring:
    channel_id: str  # the operator leg's Uniqueid (our ChannelId when we originated it)
    agent: Agent
    call: Call


class Acd:
    def __init__(self, settings: Settings, ami: AmiPort, tracker: CallTracker,
                 on_answer: Callable[[Call], None] | None = None,
                 on_change: Callable[[Change], None] | None = None) -> None:
        self.settings = settings
        self.ami = ami
        self.tracker = tracker
        self.on_answer = on_answer
        self.on_change = on_change
        start = tracker.clock()
        initial = AgentState.AVAILABLE if settings.auto_login else AgentState.LOGGED_OUT
        self.agents: dict[str, Agent] = {
            a.id: Agent(a.id, a.queues, idle_since=start, state=initial, state_since=start)
            for a in settings.agents}
        self.waiting = WaitingLines([q.id for q in settings.queues])
        self.ringing: dict[str, Ring] = {}
        self.talking: dict[str, Ring] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._timers: dict[tuple[str, str], asyncio.TimerHandle] = {}

    def start(self) -> None:
        self._spawn(self._heartbeat())

    async def _heartbeat(self) -> None:
        """Keep the global MADO_ALIVE fresh: callers waiting in the holding loop fall back to
        app_queue when it goes stale (the engine died), instead of waiting for nobody."""
        while True:
            try:
                await self.ami.send({"Action": "Setvar", "Variable": "MADO_ALIVE",
                                     "Value": str(int(time.time()))})
            except Exception as exc:  # AMI down: nothing to tell; the next beat retries
                log.debug("heartbeat: %r", exc)
            await asyncio.sleep(HEARTBEAT_S)

    # ---- operators ---------------------------------------------------------------------------
    def _apply(self, agent: Agent, event: AgentEvent, reason: str | None = None) -> Change:
        change = agent.apply(event, self.tracker.clock(), reason)
        if change.new is not AgentState.WRAP_UP:
            self._cancel_timer(("wrap", agent.id))
        if self.on_change is not None:
            self.on_change(change)
        return change

    def operator_action(self, agent_id: str, action: str, reason: str | None = None) -> Change:
        """Feature codes and the API: login, logout, away (reason), back, end_wrap_up.
        Raises KeyError for an unknown agent or action, IllegalTransition when not allowed."""
        agent = self.agents[agent_id]
        change = self._apply(agent, OPERATOR_ACTIONS[action], reason)
        self.dispatch()
        return change

    def restore(self, agent_id: str, state: AgentState, reason: str | None,
                since: datetime) -> None:
        """Put back a state kept across an engine restart (logged out, away)."""
        agent = self.agents.get(agent_id)
        if agent is not None and state in (AgentState.LOGGED_OUT, AgentState.AWAY,
                                           AgentState.AVAILABLE):
            agent.state, agent.reason, agent.state_since = state, reason, since
            if state is AgentState.AVAILABLE:
                agent.idle_since = since

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

    # ---- callers -----------------------------------------------------------------------------
    async def enqueue(self, call: Call) -> None:
        assert call.queue is not None
        if call.queued_at is None:
            call.queued_at = self.tracker.clock()
        self.waiting.add(call)
        queue = self._queue(call)
        waited = (self.tracker.clock() - call.queued_at).total_seconds()
        self._timer(("overflow", call.id), max(0.0, queue.max_wait - waited),
                    lambda: self._overflow(call))
        self.dispatch()  # first: an operator's ring does not wait for the variables below
        # facts a restarted engine needs, and the hold loop's announcement interval
        self._spawn(self._setvars(call.channel, {
            "MADO_CALL_ID": call.id, "MADO_OFFERED": f"{call.offered_at.timestamp():.3f}",
            "MADO_QUEUED": f"{call.queued_at.timestamp():.3f}", "MADO_PRIORITY": str(
                call.priority), "MADO_LANGUAGE": call.language or "",
            "MADO_PATH": ",".join(call.flow_path), "MADO_TOPIC": call.topic or "",
            "MADO_ANNOUNCE_EVERY": str(queue.announce_every)}))

    def caller_gone(self, call: Call) -> None:
        """The caller hung up: forget them wherever they were and stop ringing for them."""
        self.waiting.remove(call)
        self._cancel_timer(("overflow", call.id))
        for channel_id, ring in list(self.ringing.items()):
            if ring.call is call:
                log.info("call %s: caller left while %s rang", call.id, ring.agent.id)
                del self.ringing[channel_id]
                self._apply(ring.agent, AgentEvent.CALLER_GONE)
                self._spawn(self._hangup(channel_id))
        self.dispatch()

    def channel_hungup(self, uniqueid: str) -> None:
        ring = self.talking.pop(uniqueid, None)
        if ring is None:
            return
        self._apply(ring.agent, AgentEvent.HANGUP)
        wrap = self._queue(ring.call).wrap_up
        if wrap == 0:
            self._end_wrap_up(ring.agent)
        else:
            self._timer(("wrap", ring.agent.id), wrap, lambda: self._end_wrap_up(ring.agent))
        self.dispatch()

    def _end_wrap_up(self, agent: Agent) -> None:
        if agent.state is AgentState.WRAP_UP:
            self._apply(agent, AgentEvent.END_WRAP_UP)
            self.dispatch()

    def call_of_agent(self, agent_id: str) -> Ring | None:
        return next((r for r in self.talking.values() if r.agent.id == agent_id), None)

    # ---- decisions and mechanics ----------------------------------------------------------------
    def dispatch(self) -> None:
        agents = list(self.agents.values())
        while (choice := next_assignment(self.waiting.lines, agents)) is not None:
            call, agent = choice
            self.waiting.remove(call)
            self._offer(agent, call)

    def _offer(self, agent: Agent, call: Call) -> None:
        self._apply(agent, AgentEvent.OFFER)
        if call.ring_at is None:
            call.ring_at = self.tracker.clock()
        ring = Ring(uuid.uuid4().hex, agent, call)
        self.ringing[ring.channel_id] = ring
        self._spawn(self._ring(ring))

    async def _ring(self, ring: Ring) -> None:
        ring_timeout = self._queue(ring.call).ring_timeout
        action = {
            "Action": "Originate",
            "Channel": f"PJSIP/{ring.agent.id}",
            "Application": "Bridge",
            # F: when the operator hangs up first, the caller leaves the bridge to a hang-up
            "Data": f"{ring.call.channel},F(mado-after^s^1)",
            "ChannelId": ring.channel_id,
            "Timeout": str(ring_timeout * 1000),
            "CallerID": f"\"{ring.call.caller}\" <{ring.call.caller}>",
            "Variable": f"MADO_CALL_ID={ring.call.id}",
        }
        ok, reason = False, ""
        try:
            response = await self.ami.originate(action, timeout=ring_timeout + 10)
            ok = response.get("Response") == "Success"
            reason = response.get("Reason", "")
        except Exception as exc:  # AMI down or timeout: treat as not answered, try again
            reason = repr(exc)
        if self.ringing.pop(ring.channel_id, None) is None:
            return  # the caller left while it rang; already handled
        if ok and self.tracker.get(ring.call.uniqueid) is not None:
            self._connected(ring)
        else:
            log.info("operator %s did not answer call %s (reason %s): away, missed",
                     ring.agent.id, ring.call.id, reason)
            self._apply(ring.agent, AgentEvent.NO_ANSWER)
            if self.tracker.get(ring.call.uniqueid) is not None:
                self.waiting.add(ring.call)
        self.dispatch()

    def _connected(self, ring: Ring) -> None:
        now = self.tracker.clock()
        self._apply(ring.agent, AgentEvent.ANSWER)
        self._cancel_timer(("overflow", ring.call.id))
        ring.call.answered_at = now
        ring.call.agent_id = ring.agent.id
        self.talking[ring.channel_id] = ring
        log.info("call %s answered by %s", ring.call.id, ring.agent.id)
        self._spawn(self._setvars(ring.call.channel, {
            "MADO_AGENT": ring.agent.id, "MADO_ANSWERED": f"{now.timestamp():.3f}",
            "MADO_AGENT_LEG": ring.channel_id}))
        if self.on_answer is not None:
            self.on_answer(ring.call)

    def _overflow(self, call: Call) -> None:
        if not self.waiting.remove(call):
            return
        queue = self._queue(call)
        log.info("call %s waited %d s: overflow (%s)", call.id, queue.max_wait, queue.overflow)
        call.overflowed = True
        if queue.overflow == "transfer" and queue.overflow_target:
            target = resolve(self.settings.transfers, queue.overflow_target)
            call.transfers.append(TransferStep(None, target.number, "overflow",
                                               self.tracker.clock()))
            self._spawn(self._redirect(call, "transfer", {"MADO_TRANSFER_DIAL": target.dial}))
        else:
            self._spawn(self._redirect(call, "message", {}))

    async def transfer(self, call: Call, target: TransferTarget, by_agent: str | None) -> None:
        """Blind transfer of a connected call (API): the caller leaves the operator's bridge
        for the target; the caller's recording continues; the operator goes to wrap-up."""
        call.transfers.append(TransferStep(by_agent, target.number, "blind",
                                           self.tracker.clock()))
        await self._redirect(call, "transfer", {"MADO_TRANSFER_DIAL": target.dial})

    async def _redirect(self, call: Call, exten: str, variables: Mapping[str, str]) -> None:
        await self._setvars(call.channel, variables)
        await self.ami.send({"Action": "Redirect", "Channel": call.channel,
                             "Context": "mado-transfer", "Exten": exten, "Priority": "1"})

    async def _setvars(self, channel: str, variables: Mapping[str, str]) -> None:
        for name, value in variables.items():
            try:
                await self.ami.send({"Action": "Setvar", "Channel": channel, "Variable": name,
                                     "Value": value})
            except Exception as exc:  # the channel may be gone; nothing depends on it then
                log.debug("setvar %s on %s: %r", name, channel, exc)
                return

    async def _hangup(self, channel_id: str) -> None:
        try:
            await self.ami.send({"Action": "Hangup", "Channel": channel_id, "Cause": "16"})
        except Exception as exc:  # the channel may already be gone; nothing to undo
            log.debug("hangup of %s: %r", channel_id, exc)

    # ---- rebuilding after an engine restart or an AMI reconnect ---------------------------------
    def adopt_connected(self, agent_id: str, leg_uniqueid: str, call: Call) -> None:
        """A conversation found in Asterisk that this process did not set up."""
        agent = self.agents.get(agent_id)
        if agent is None or leg_uniqueid in self.talking:
            return
        now = self.tracker.clock()
        change = Change(agent.id, AgentEvent.ANSWER, agent.state, AgentState.ON_CALL, None, now)
        agent.state, agent.reason, agent.state_since = AgentState.ON_CALL, None, now
        self.talking[leg_uniqueid] = Ring(leg_uniqueid, agent, call)
        if self.on_change is not None:
            self.on_change(change)

    def resync(self, live_uniqueids: set[str], device_states: Iterable[tuple[str, str]]) -> None:
        """After an AMI (re)connect: trust Asterisk's channel list, not our event history."""
        for device, state in device_states:
            self.device_state(device, state)
        for channel_id in list(self.talking):
            if channel_id not in live_uniqueids:
                self.channel_hungup(channel_id)
        self.dispatch()

    # ---- plumbing ---------------------------------------------------------------------------
    def _queue(self, call: Call) -> Queue:
        queue = self.settings.queue(call.queue or "")
        assert queue is not None, f"call {call.id} has no known queue"
        return queue

    def _timer(self, key: tuple[str, str], delay: float, callback: Callable[[], None]) -> None:
        self._cancel_timer(key)

        def fire() -> None:
            self._timers.pop(key, None)
            callback()

        self._timers[key] = asyncio.get_running_loop().call_later(delay, fire)

    def _cancel_timer(self, key: tuple[str, str]) -> None:
        handle = self._timers.pop(key, None)
        if handle is not None:
            handle.cancel()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ---- views --------------------------------------------------------------------------------
    def agent_counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in AgentState}
        counts["unreachable"] = 0
        for a in self.agents.values():
            counts[a.state.value if a.reachable else "unreachable"] += 1
        return counts

    def waiting_counts(self) -> dict[str, int]:
        return self.waiting.counts()

    def oldest_wait(self, now: datetime) -> dict[str, float]:
        return {q: (now - line[0].queued_at).total_seconds() if line and line[0].queued_at
                else 0.0 for q, line in self.waiting.lines.items()}
