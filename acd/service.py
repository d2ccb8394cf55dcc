"""The ACD service: waiting lines, ringing operators over AMI, connecting and transferring calls.

Mechanics (from a run against Asterisk 22): the waiting caller sits in a music loop in the
dialplan; the engine Originates the chosen operator's endpoint with Application=Bridge and
the caller's channel as data, so when the operator answers app_bridge pulls the caller out
of the loop into a bridge with them. Who is next is decided by `distributor` (pure); every
state change goes through the agents' transition table and out through `on_change`.

The caller's channel carries the call's facts as channel variables (MADO_*, listed with
their readers in ami_bridge/dialplan.py), so a restarted engine can rebuild waiting and
connected calls from Asterisk alone (`adopt`).

AMI is the only way to ring anyone, so the ACD dispatches only while the link is up and its
view has been rebuilt from Asterisk since (`resync`, driven by acd/resync.py). A ring whose
outcome was lost with the link (the Originate failed with AmiDisconnected or AmiTimeout) says
nothing about the operator: they go back to available with their place kept, the caller goes
back to the head of the line, and the next rebuild settles what became of the operator's leg.
Only Asterisk's verdict (rang out unanswered, or busy) makes an operator away "missed".

Waiting callers are told their position and expected wait (acd/announcements.py, from
acd/wait_estimate.py): whenever the lines or the operators change, one pass works out each
waiting caller's sentence and, where it changed, has it spoken (the `Announcer` port) and
puts the sound on the caller's channel; the hold loop plays it at its next announcement.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from ami_bridge.ami_errors import AmiDisconnected, AmiTimeout
from ami_bridge.dialplan import ENTRY, Context, TransferExten, Var
from ami_bridge.recording_names import relative_name
from core.calls import Call, CallTracker, TransferStep
from core.settings import CallbackPolicy, Queue, Settings
from core.transfers import TransferRefused, TransferTarget, resolve

from .agents import Agent, AgentEvent, AgentState, Change
from .announcements import (
    TEXT_LANGUAGES,
    decide,
    language_of,
    positions,
    related_queues,
    text,
)
from .callback_store import CallbackStore
from .callback_texts import say
from .callbacks import (
    Callback,
    CallbackEvent,
    CallbackState,
    is_virtual,
    servable,
    should_offer,
    waiting_call,
)
from .distributor import next_assignment
from .ports import Announcer
from .wait_estimate import Handled, History, expected_wait, serving_operators
from .waiting import WaitingLines

log = logging.getLogger(__name__)

UNREACHABLE_STATES = {"UNAVAILABLE", "INVALID", "UNKNOWN"}
HEARTBEAT_S = 5.0  # the dialplan treats the engine as gone after 20 s without one
FACTS_WAIT_S = 5.0  # how long closing waits for call facts still being written
# OriginateResponse reasons (Asterisk's control frame numbers) that are the operator's doing:
# the phone rang out unanswered (3), or was busy (5). Other failures mean it was never rung.
NOT_ANSWERED_REASONS = frozenset({"3", "5"})
NOT_REACHED_PAUSE_S = 30.0  # a phone that could not be rung is skipped this long
# how long queueing a caller waits for their first position to be on the channel, so the
# hold loop says it at entry (a sentence not spoken before takes about 0.3 s)
ENTRY_ANNOUNCE_WAIT_S = 2.0
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


@dataclass
class _Seen:
    """What events said while a rebuild read Asterisk's lists: at least as new as the lists."""

    talking: frozenset[str]  # legs connected when it began; later ones are newer than its lists
    unsettled: frozenset[str]  # rings lost before it began; later ones wait for the next
    hung_up: set[str] = field(default_factory=set)
    devices: set[str] = field(default_factory=set)


class Acd:
    def __init__(self, settings: Settings, ami: AmiPort, tracker: CallTracker,
                 on_answer: Callable[[Call], None] | None = None,
                 on_change: Callable[[Change], None] | None = None,
                 announcer: Announcer | None = None) -> None:
        self.settings = settings
        self.ami = ami
        self.tracker = tracker
        self.on_answer = on_answer
        self.on_change = on_change
        # a phone registering or dropping: live pages show it at once
        self.on_reachable: Callable[[str, bool], None] | None = None
        start = tracker.clock()
        initial = AgentState.AVAILABLE if settings.auto_login else AgentState.LOGGED_OUT
        self.agents: dict[str, Agent] = {
            a.id: Agent(a.id, a.queues, idle_since=start, state=initial, state_since=start)
            for a in settings.agents}
        self.waiting = WaitingLines([q.id for q in settings.queues])
        self.ringing: dict[str, Ring] = {}
        self.talking: dict[str, Ring] = {}
        # rings whose outcome was lost with the AMI link, until a rebuild settles them
        self.unsettled: dict[str, Ring] = {}
        # AMI is up and Asterisk's state was read since: only then is anyone rung
        self.synced = False
        # asks for a rebuild while the link may still be up (set by acd.resync.Resync)
        self.request_resync: Callable[[], None] | None = None
        self._seen: _Seen | None = None
        self._device_ok: dict[str, bool] = {}  # the last device state Asterisk gave, by agent
        self._tasks: set[asyncio.Task[None]] = set()
        self._facts: set[asyncio.Task[None]] = set()  # channel variables a restart needs
        self._timers: dict[tuple[str, str], asyncio.TimerHandle] = {}
        # position and expected wait: who serves which lines, the answer rate, what was said
        self.announcer = announcer
        self.handled = History()
        self._related = {q.id: related_queues(q.id, self.agents.values())
                         for q in settings.queues}
        self._busy: dict[str, tuple[str, datetime, datetime]] = {}  # agent: queue, rung, answered
        self._said: dict[str, str] = {}  # call id: the sentence last put on its channel
        self._announcing: asyncio.Task[None] | None = None
        self._announce_again = False
        # callbacks (acd/callbacks.py): open ones by id, their virtual callers waiting in the
        # lines; the attempt in progress per operator leg; callers told the offer
        self.callbacks: dict[str, Callback] = {}
        self._attempts: dict[str, tuple[Callback, Call]] = {}
        self._offered: set[str] = set()
        self.callback_store: CallbackStore | None = None
        # whether a service is open now (its hours and overrides: the IVR's, via a port)
        self.service_open: Callable[[str], bool] = lambda service: True
        self.on_callback: Callable[[Callback], None] | None = None

    def start(self) -> None:
        self._spawn(self._heartbeat())

    async def _heartbeat(self) -> None:
        """Keep the global MADO_ALIVE fresh: callers waiting in the holding loop fall back to
        app_queue when it goes stale (the engine died), instead of waiting for nobody."""
        while True:
            await self._beat()
            # also retries a position a failed Setvar did not deliver
            self._announce_soon()
            if self.callbacks:  # a retry delay ran out, or a service opened
                self.dispatch()
            await asyncio.sleep(HEARTBEAT_S)

    async def _beat(self) -> None:
        try:
            await self.ami.send({"Action": "Setvar", "Variable": Var.ALIVE,
                                 "Value": str(int(time.time()))})
        except Exception as exc:  # AMI down: nothing to tell; the next beat retries
            log.debug("heartbeat: %r", exc)

    # ---- operators ---------------------------------------------------------------------------
    def _apply(self, agent: Agent, event: AgentEvent, reason: str | None = None) -> Change:
        change = agent.apply(event, self.tracker.clock(), reason)
        if change.new is not AgentState.WRAP_UP:
            self._cancel_timer(("wrap", agent.id))
        if change.old is AgentState.WRAP_UP:
            self._handled(agent.id, change.at)
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
        if self._seen is not None:
            self._seen.devices.add(device)
        if self._device(device, state):
            self.dispatch()

    def _device(self, device: str, state: str) -> bool:
        tech, _, name = device.partition("/")
        agent = self.agents.get(name) if tech == "PJSIP" else None
        if agent is None:
            return False
        ok = state.upper().replace(" ", "_") not in UNREACHABLE_STATES
        self._device_ok[agent.id] = ok
        # a phone that just failed to ring stays skipped for its pause, whatever it reports
        reachable = ok and ("pause", agent.id) not in self._timers
        changed = reachable != agent.reachable
        if changed:
            log.info("operator %s %s", agent.id, "reachable" if reachable else "unreachable")
        agent.reachable = reachable
        if changed and self.on_reachable is not None:
            self.on_reachable(agent.id, reachable)
        return True

    # ---- callers -----------------------------------------------------------------------------
    async def enqueue(self, call: Call) -> None:
        assert call.queue is not None
        queued_at = call.enter_queue(self.tracker.clock())
        self.waiting.add(call)
        queue = self._queue(call)
        self._arm_overflow(call)
        self.dispatch()  # first: an operator's ring does not wait for the variables below
        # facts a restarted engine needs, and the hold loop's announcement interval
        self._spawn_facts(call.channel, {
            Var.CALL_ID: call.id, Var.OFFERED: f"{call.offered_at.timestamp():.3f}",
            Var.QUEUED: f"{queued_at.timestamp():.3f}", Var.PRIORITY: str(call.priority),
            Var.LANGUAGE: call.language or "", Var.PATH: ",".join(call.flow_path),
            Var.TOPIC: call.topic or "", Var.ANNOUNCE_EVERY: str(queue.announce_every)})
        announcing = self._announcing  # started by dispatch() for whoever still waits
        if announcing is not None and self.waiting.position(call) is not None:
            # the hold loop says the position at entry when it is on the channel by then
            await asyncio.wait({announcing}, timeout=ENTRY_ANNOUNCE_WAIT_S)

    def caller_gone(self, call: Call) -> None:
        """The caller hung up: forget them wherever they were and stop ringing for them."""
        self.waiting.remove(call)
        self._said.pop(call.id, None)
        self._cancel_timer(("overflow", call.id))
        for channel_id, ring in list(self.ringing.items()):
            if ring.call is call:
                log.info("call %s: caller left while %s rang", call.id, ring.agent.id)
                del self.ringing[channel_id]
                self._apply(ring.agent, AgentEvent.CALLER_GONE)
                self._spawn(self._hangup(channel_id))
        self.dispatch()

    def channel_hungup(self, uniqueid: str) -> None:
        if self._seen is not None:
            self._seen.hung_up.add(uniqueid)
        # a leg still ringing ends through its Originate's outcome (Asterisk may report its
        # Hangup first); putting the callback back now would let a second operator take it
        attempt = None if uniqueid in self.ringing else self._attempts.pop(uniqueid, None)
        if attempt is not None and attempt[0].state is CallbackState.DIALING:
            # the leg ended without MadoCallback (lost event): the try does not count
            self._callback_back_in_line(waiting_call(attempt[0]), CallbackEvent.LOST)
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

    def callback_ringing(self, agent_id: str) -> Ring | None:
        """A callback ringing this operator (their screen shows whom they will call)."""
        return next((r for r in self.ringing.values()
                     if r.agent.id == agent_id and is_virtual(r.call)), None)

    # ---- decisions and mechanics ----------------------------------------------------------------
    def dispatch(self) -> None:
        if not self.synced:
            return  # a ring now would fail, or race the rebuild; resync dispatches
        agents = list(self.agents.values())
        self._expire_callbacks()
        now = self.tracker.clock()
        open_now: dict[str, bool] = {}

        def may_serve(call: Call) -> bool:
            if not is_virtual(call):
                return True
            cb = self.callbacks.get(call.id)
            if cb is None:
                return False
            if cb.service not in open_now:
                open_now[cb.service] = self.service_open(cb.service)
            return servable(cb, now, open_now[cb.service])

        while (choice := next_assignment(self.waiting.lines, agents, may_serve)) is not None:
            call, agent = choice
            self.waiting.remove(call)
            self._offer(agent, call)
        self._announce_soon()

    def _offer(self, agent: Agent, call: Call) -> None:
        self._apply(agent, AgentEvent.OFFER)
        if call.ring_at is None:
            call.ring_at = self.tracker.clock()
        ring = Ring(uuid.uuid4().hex, agent, call)
        self.ringing[ring.channel_id] = ring
        if is_virtual(call):
            self._spawn(self._ring_callback(ring))
        else:
            self._spawn(self._ring(ring))

    async def _ring(self, ring: Ring) -> None:
        ring_timeout = self._queue(ring.call).ring_timeout
        action = {
            "Action": "Originate",
            "Channel": f"PJSIP/{ring.agent.id}",
            "Application": "Bridge",
            # F: when the operator hangs up first, the caller leaves the bridge to a hang-up
            "Data": f"{ring.call.channel},F({Context.AFTER}^{ENTRY}^1)",
            "ChannelId": ring.channel_id,
            "Timeout": str(ring_timeout * 1000),
            "CallerID": f"\"{ring.call.caller}\" <{ring.call.caller}>",
            "Variable": f"{Var.CALL_ID}={ring.call.id}",
        }
        try:
            response = await self.ami.originate(action, timeout=ring_timeout + 10)
        except (AmiDisconnected, AmiTimeout) as exc:
            self._lost_track(ring, exc)
            return
        except Exception as exc:  # Asterisk refused the action: the phone was not rung
            if self.ringing.pop(ring.channel_id, None) is not None:
                self._not_reached(ring, repr(exc))
                self.dispatch()
            return
        if self.ringing.pop(ring.channel_id, None) is None:
            return  # the caller left while it rang; already handled
        reason = response.get("Reason", "")
        if response.get("Response") == "Success":
            if self.tracker.get(ring.call.uniqueid) is not None:
                self._connected(ring)
            else:  # the caller is gone: the operator's leg finds nobody to bridge
                self._apply(ring.agent, AgentEvent.CALLER_GONE)
        elif reason in NOT_ANSWERED_REASONS:
            log.info("operator %s did not answer call %s (reason %s): away, missed",
                     ring.agent.id, ring.call.id, reason)
            self._apply(ring.agent, AgentEvent.NO_ANSWER)
            self._requeue(ring.call)
        else:
            self._not_reached(ring, f"OriginateResponse reason {reason or '?'}")
        self.dispatch()

    def _lost_track(self, ring: Ring, exc: Exception) -> None:
        """The link lost the ring's outcome: the operator's phone may still ring, or they may
        be talking to the caller. Nobody's fault: both keep their places, nobody else is rung
        until a rebuild has looked at the operator's leg."""
        if self.ringing.pop(ring.channel_id, None) is None:
            return  # the caller left meanwhile; already handled
        log.warning("call %s: outcome of ringing %s lost (%r); settled by the next rebuild",
                    ring.call.id, ring.agent.id, exc)
        self._apply(ring.agent, AgentEvent.RING_FAILED)
        self.unsettled[ring.channel_id] = ring
        self._requeue(ring.call)
        self.synced = False
        if self.request_resync is not None:
            self.request_resync()

    def _not_reached(self, ring: Ring, why: str) -> None:
        """Asterisk could not ring the phone (no contact, congestion, refused): not a missed
        call, but ringing it again at once would fail again, so it is skipped for a while."""
        agent = ring.agent
        log.warning("operator %s's phone could not be rung for call %s (%s): skipped for %g s",
                    agent.id, ring.call.id, why, NOT_REACHED_PAUSE_S)
        self._apply(agent, AgentEvent.RING_FAILED)
        agent.reachable = False
        self._timer(("pause", agent.id), NOT_REACHED_PAUSE_S, lambda: self._unpause(agent))
        self._requeue(ring.call)

    def _unpause(self, agent: Agent) -> None:
        agent.reachable = self._device_ok.get(agent.id, False)
        self.dispatch()

    def _requeue(self, call: Call) -> None:
        """Back to the line at its old place (order is priority, then time queued)."""
        if is_virtual(call):
            self._callback_back_in_line(call, CallbackEvent.MISSED)
        elif self.tracker.get(call.uniqueid) is not None:
            self.waiting.add(call)
            self._arm_overflow(call)  # its maximum may have passed while it rang

    def _connected(self, ring: Ring) -> None:
        now = self.tracker.clock()
        rung = ring.agent.state_since if ring.agent.state is AgentState.RINGING else None
        if ring.agent.state is AgentState.RINGING:
            self._apply(ring.agent, AgentEvent.ANSWER)
        else:  # answered while AMI was away: whatever we thought, they talk to this caller
            self._force_on_call(ring.agent)
        self._cancel_timer(("overflow", ring.call.id))
        self.waiting.remove(ring.call)
        ring.call.answer(ring.agent.id, now)
        self.talking[ring.channel_id] = ring
        self._busy[ring.agent.id] = (self._queue(ring.call).id, rung or now, now)
        log.info("call %s answered by %s", ring.call.id, ring.agent.id)
        self._spawn_facts(ring.call.channel, {
            Var.AGENT: ring.agent.id, Var.ANSWERED: f"{now.timestamp():.3f}"})
        if self.on_answer is not None:
            self.on_answer(ring.call)

    def _arm_overflow(self, call: Call) -> None:
        if is_virtual(call):
            return  # a callback waits for its turn, however long; its policy may expire it
        assert call.queued_at is not None
        waited = (self.tracker.clock() - call.queued_at).total_seconds()
        self._timer(("overflow", call.id), max(0.0, self._queue(call).max_wait - waited),
                    lambda: self._overflow(call))

    def _overflow(self, call: Call) -> None:
        if not self.synced:
            return  # the redirect needs AMI; resync arms the timer again
        if not self.waiting.remove(call):
            return
        queue = self._queue(call)
        log.info("call %s waited %d s: overflow (%s)", call.id, queue.max_wait, queue.overflow)
        call.overflow()
        if queue.overflow == "transfer" and queue.overflow_target:
            target = resolve(self.settings.transfers, queue.overflow_target)
            call.transfers.append(TransferStep(None, target.number, "overflow",
                                               self.tracker.clock()))
            self._spawn(self._overflow_redirect(call, TransferExten.TRANSFER,
                                                {Var.TRANSFER_DIAL: target.dial}))
        else:
            self._spawn(self._overflow_redirect(call, TransferExten.MESSAGE, {}))

    async def _overflow_redirect(self, call: Call, exten: TransferExten,
                                 variables: Mapping[str, str]) -> None:
        try:
            await self._redirect(call, exten, variables)
        except Exception as exc:  # gone meanwhile, or AMI lost: the hold loop fails open
            log.warning("call %s: overflow redirect failed: %r", call.id, exc)

    async def transfer(self, call: Call, target: TransferTarget, by_agent: str | None) -> None:
        """Blind transfer of a connected call (API): the caller leaves the operator's bridge
        for the target; the caller's recording continues; the operator goes to wrap-up."""
        call.transfers.append(TransferStep(by_agent, target.number, "blind",
                                           self.tracker.clock()))
        await self._redirect(call, TransferExten.TRANSFER, {Var.TRANSFER_DIAL: target.dial})

    async def _redirect(self, call: Call, exten: TransferExten,
                        variables: Mapping[str, str]) -> None:
        await self._setvars(call.channel, variables)
        await self.ami.send({"Action": "Redirect", "Channel": call.channel,
                             "Context": Context.TRANSFER, "Exten": exten, "Priority": "1"})

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

    # ---- position and expected wait ------------------------------------------------------------
    def _handled(self, agent_id: str, at: datetime) -> None:
        """The operator is free again (after-call work over): one more call for the queue's
        answer rate."""
        busy = self._busy.pop(agent_id, None)
        if busy is not None:
            queue, rung, answered = busy
            self.handled.record(queue, Handled(at, (at - rung).total_seconds(),
                                               (answered - rung).total_seconds()))

    def _sentences(self) -> list[tuple[Call, int, float | None]]:
        """Every waiting caller with their position and expected wait (None: no figure),
        from one look at the lines; callers told nothing yet first."""
        now = self.tracker.clock()
        places = positions(self.waiting.lines, self._related)
        out = []
        for queue, line in self.waiting.lines.items():
            if line:
                serving = serving_operators(self.agents.values(), queue)
                handled = self.handled.of(queue)
                out += [(call, places[call.id],
                         expected_wait(places[call.id], serving, handled, now)) for call in line]
        out.sort(key=lambda told: told[0].id in self._said)
        return out

    def _announce_soon(self) -> None:
        """The lines, the operators or the answer rate changed: bring every waiting caller's
        sentence up to date, in one pass at a time (a change during a pass asks for another)."""
        if self.announcer is None or not self.synced:
            return
        self._announce_again = True
        if self._announcing is None:
            task = asyncio.get_running_loop().create_task(self._announce_waiting())
            self._announcing = task
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _announce_waiting(self) -> None:
        try:
            while self._announce_again:
                self._announce_again = False
                sentences = self._sentences()
                waiting = {call.id for call, _, _ in sentences}
                for call_id in [k for k in self._said if k not in waiting]:
                    del self._said[call_id]  # answered, being rung or gone
                self._offered &= waiting
                for call, place, wait in sentences:
                    if self._announce_again:
                        break  # the lines changed meanwhile: start again from a fresh look
                    if is_virtual(call):
                        continue  # a callback holds a place; nobody listens on it
                    try:
                        await self._announce(call, place, wait)
                        await self._offer_callback(call, wait)
                    except Exception:  # one caller's sentence never stops the others'
                        log.exception("call %s: position announcement failed", call.id)
        finally:
            self._announcing = None

    async def _announce(self, call: Call, place: int, wait: float | None) -> None:
        """Put the caller's sentence on their channel when it changed since the last one."""
        if self.announcer is None:
            return
        language = language_of(call)
        said = decide(place, wait, language, self._said.get(call.id))
        if said is None:
            return
        sound = None
        # a language that cannot be spoken falls back to another, never to silence
        for lang in (language, *(lg for lg in TEXT_LANGUAGES if lg != language)):
            sound = await self.announcer.render(text(place, wait, lang), lang)
            if sound is not None:
                break
        if sound is None or self.waiting.position(call) is None:
            return  # nothing to say it with, or the caller left the line meanwhile
        try:
            await self.ami.send({"Action": "Setvar", "Channel": call.channel,
                                 "Variable": Var.POSITION_SOUND, "Value": sound})
        except Exception as exc:  # gone, or AMI down: the next pass tries again
            log.debug("call %s: position sound not set: %r", call.id, exc)
            return
        if self.waiting.position(call) is not None:
            self._said[call.id] = said

    # ---- callbacks (virtual hold) ----------------------------------------------------------------
    def callback_policy(self, call: Call) -> CallbackPolicy | None:
        queue = self.settings.queue(call.queue or "")
        return queue.callback if queue is not None else None

    def _policy_of(self, cb: Callback) -> CallbackPolicy:
        queue = self.settings.queue(cb.queue)
        return queue.callback if queue is not None and queue.callback else CallbackPolicy()

    async def _offer_callback(self, call: Call, wait: float | None) -> None:
        """Put the callback offer on a waiting caller's channel once their queue's policy
        says so; the hold loop says it at each announcement and takes its key."""
        policy = self.callback_policy(call)
        if call.id in self._offered or policy is None or call.queued_at is None:
            return
        waited = (self.tracker.clock() - call.queued_at).total_seconds()
        if not should_offer(policy, waited, wait) or self.announcer is None:
            return
        language = language_of(call)
        sound = await self.announcer.render(say("offer", language, key=policy.key), language)
        if sound is None or self.waiting.position(call) is None:
            return
        await self._setvars(call.channel, {Var.CALLBACK_KEY: policy.key,
                                           Var.CALLBACK_SOUND: sound})
        self._offered.add(call.id)

    def offered_callback(self, call: Call) -> bool:
        return call.id in self._offered

    async def request_callback(self, call: Call, number: str) -> Callback | None:
        """The waiting caller took the offer: the callback waits in their place, with their
        entry time, and they may hang up. None if they are no longer waiting (an operator
        took them meanwhile). DuplicateCallback when the number has an open callback."""
        policy = self.callback_policy(call)
        if policy is None or call.queued_at is None or self.waiting.position(call) is None:
            return None
        now = self.tracker.clock()
        cb = Callback(uuid.uuid4().hex, call.id, call.service, call.queue or "", number,
                      call.language, call.topic, call.priority, call.queued_at, now)
        if self.callback_store is not None:
            await self.callback_store.add(cb)  # DuplicateCallback: nothing changes
        if self.waiting.position(call) is None:  # taken by an operator while it was stored
            cb.apply(CallbackEvent.EXPIRE, now, policy)
            await self._save_callback(cb)
            return None
        self.waiting.remove(call)
        self._cancel_timer(("overflow", call.id))
        self._said.pop(call.id, None)
        call.request_callback(now)
        self.callbacks[cb.id] = cb
        self.waiting.add(waiting_call(cb))
        log.info("call %s: callback %s booked, place kept (queued %s)", call.id, cb.id,
                 cb.queued_at.isoformat())
        self._callback_changed(cb)
        self.dispatch()
        return cb

    def cancel_callback(self, callback_id: str) -> Callback | None:
        """A supervisor cancels a waiting callback; IllegalCallbackTransition while it is
        being dialled. None if there is no open callback by that id."""
        cb = self.callbacks.get(callback_id)
        if cb is None:
            return None
        cb.apply(CallbackEvent.CANCEL, self.tracker.clock(), self._policy_of(cb))
        self._drop_callback(cb)
        self.dispatch()
        return cb

    def open_callbacks(self) -> list[tuple[Callback, int | None]]:
        """Open callbacks in service order, with their place in their line (None while
        dialled)."""
        out = []
        for cb in self.callbacks.values():
            line = self.waiting.lines.get(cb.queue, [])
            place = next((i + 1 for i, c in enumerate(line) if is_virtual(c) and c.id == cb.id),
                         None)
            out.append((cb, place))
        return sorted(out, key=lambda item: (-item[0].priority, item[0].queued_at))

    def load_callbacks(self, callbacks: Iterable[Callback]) -> None:
        """Open callbacks from the database after a restart: back in line in their places.
        One being dialled when the engine stopped is tried again (that try does not count)."""
        now = self.tracker.clock()
        for cb in callbacks:
            if cb.state is CallbackState.DIALING:
                cb.apply(CallbackEvent.LOST, now, self._policy_of(cb))
                self._spawn(self._save_callback(cb))
            if cb.open and cb.id not in self.callbacks and cb.queue in self.waiting.lines:
                self.callbacks[cb.id] = cb
                self.waiting.add(waiting_call(cb))

    def _expire_callbacks(self) -> None:
        now = self.tracker.clock()
        for cb in list(self.callbacks.values()):
            policy = self._policy_of(cb)
            if (cb.state is CallbackState.PENDING and policy.outside_hours == "expire"
                    and not self.service_open(cb.service)):
                cb.apply(CallbackEvent.EXPIRE, now, policy)
                self._drop_callback(cb)

    def _drop_callback(self, cb: Callback) -> None:
        """A callback closed (done, failed, expired): out of the line, stored."""
        self.callbacks.pop(cb.id, None)
        for line in self.waiting.lines.values():
            for call in [c for c in line if is_virtual(c) and c.id == cb.id]:
                line.remove(call)
        self._callback_changed(cb)

    def _callback_changed(self, cb: Callback) -> None:
        self._spawn(self._save_callback(cb))
        if self.on_callback is not None:
            self.on_callback(cb)

    async def _save_callback(self, cb: Callback) -> None:
        if self.callback_store is None:
            return
        try:
            await self.callback_store.save(cb, self.tracker.clock())
        except Exception:  # kept in memory; the next change stores it again
            log.exception("callback %s: not stored", cb.id)

    def _callback_back_in_line(self, call: Call, event: CallbackEvent) -> None:
        """The operator leg for a callback failed or was lost: the callback goes back to its
        place (its entry time never changed)."""
        cb = self.callbacks.get(call.id)
        if cb is None:
            return
        if cb.state is CallbackState.DIALING:
            cb.apply(event, self.tracker.clock(), self._policy_of(cb))
            self._callback_changed(cb)
        if cb.state is CallbackState.PENDING and self.waiting.position(call) is None:
            if not any(is_virtual(c) and c.id == cb.id
                       for c in self.waiting.lines.get(cb.queue, [])):
                self.waiting.add(waiting_call(cb))

    async def _ring_callback(self, ring: Ring) -> None:
        """Ring the operator first; once they answer, the dialplan dials the citizen."""
        cb = self.callbacks.get(ring.call.id)
        if cb is None:
            self.ringing.pop(ring.channel_id, None)
            self._apply(ring.agent, AgentEvent.CALLER_GONE)
            return
        policy = self._policy_of(cb)
        now = self.tracker.clock()
        try:
            target = resolve(self.settings.transfers, cb.number)
        except TransferRefused as exc:  # the rules changed since it was booked
            log.warning("callback %s: %s: failed", cb.id, exc)
            self.ringing.pop(ring.channel_id, None)
            self._apply(ring.agent, AgentEvent.CALLER_GONE)
            cb.apply(CallbackEvent.DIAL, now, policy)
            cb.attempts = policy.attempts - 1
            cb.apply(CallbackEvent.NOT_ANSWERED, now, policy, "REFUSED")
            self._drop_callback(cb)
            self.dispatch()
            return
        cb.apply(CallbackEvent.DIAL, now, policy)
        cb.agent_id = ring.agent.id
        self._callback_changed(cb)
        attempt = Call(ring.channel_id, "", cb.service, "", cb.number, now,
                       language=cb.language, queue=cb.queue, topic=cb.topic,
                       callback_of=cb.call_id)
        attempt.ring_at = now
        attempt.recording = relative_name(attempt.id, attempt.offered_at)
        ring_timeout = self._queue(ring.call).ring_timeout
        variables = {Var.CALL_ID: attempt.id, Var.CALLBACK_ID: cb.id,
                     Var.CALLBACK_DIAL: target.dial, Var.CALLBACK_RING: str(policy.ring),
                     Var.CALLBACK_FILE: attempt.recording[:-len(".wav")]}
        action = {
            "Action": "Originate",
            "Channel": f"PJSIP/{ring.agent.id}",
            "Context": Context.CALLBACK, "Exten": ENTRY, "Priority": "1",
            "ChannelId": ring.channel_id,
            "Timeout": str(ring_timeout * 1000),
            "CallerID": f"\"Callback\" <{cb.number}>",
            # none of these values holds a comma: ids, a dial string, digits, a path
            "Variable": ",".join(f"{k}={v}" for k, v in variables.items()),
        }
        self._attempts[ring.channel_id] = (cb, attempt)
        try:
            response = await self.ami.originate(action, timeout=ring_timeout + 10)
        except (AmiDisconnected, AmiTimeout) as exc:
            self._attempts.pop(ring.channel_id, None)
            self._lost_track(ring, exc)
            return
        except Exception as exc:  # Asterisk refused the action: the phone was not rung
            self._attempts.pop(ring.channel_id, None)
            if self.ringing.pop(ring.channel_id, None) is not None:
                self._not_reached(ring, repr(exc))
                self.dispatch()
            return
        if self.ringing.pop(ring.channel_id, None) is None:
            self._attempts.pop(ring.channel_id, None)
            return
        reason = response.get("Reason", "")
        if response.get("Response") == "Success":
            self._apply(ring.agent, AgentEvent.ANSWER)
            attempt.channel = response.get("Channel", "")
            attempt.agent_id = ring.agent.id
            self.talking[ring.channel_id] = ring
            self.tracker.adopt(attempt)  # its Hangup closes it and stores its record
            log.info("callback %s: operator %s answered; dialling the citizen", cb.id,
                     ring.agent.id)
        else:
            self._attempts.pop(ring.channel_id, None)
            if reason in NOT_ANSWERED_REASONS:
                log.info("operator %s did not answer callback %s (reason %s): away, missed",
                         ring.agent.id, cb.id, reason)
                self._apply(ring.agent, AgentEvent.NO_ANSWER)
                self._requeue(ring.call)
            else:
                self._not_reached(ring, f"OriginateResponse reason {reason or '?'}")
        self.dispatch()

    def callback_result(self, callback_id: str, status: str, answered_s: str) -> None:
        """MadoCallback from the operator leg's h extension: the citizen answered (the call
        record is the attempt's), or not (another try after the delay, or failed)."""
        found = next(((leg, pair) for leg, pair in self._attempts.items()
                      if pair[0].id == callback_id), None)
        if found is None:
            return
        leg, (cb, attempt) = found
        del self._attempts[leg]
        if cb.state is not CallbackState.DIALING:
            return
        now = self.tracker.clock()
        policy = self._policy_of(cb)
        if status == "ANSWER":
            try:
                talked = max(0.0, float(answered_s or 0))
            except ValueError:
                talked = 0.0
            attempt.answer(cb.agent_id or "", now - timedelta(seconds=talked))
            cb.result_call_id = attempt.id
            cb.apply(CallbackEvent.ANSWERED, now, policy, status)
            log.info("callback %s: done (call %s)", cb.id, attempt.id)
            self._drop_callback(cb)
            return
        if cb.apply(CallbackEvent.NOT_ANSWERED, now, policy,
                    status or "CANCEL") is CallbackState.FAILED:
            log.info("callback %s: failed after %d attempts (%s)", cb.id, cb.attempts, status)
            self._drop_callback(cb)
            return
        log.info("callback %s: %s; next try after %s", cb.id, status or "cancelled",
                 cb.not_before.isoformat() if cb.not_before else "now")
        self._callback_changed(cb)
        self.waiting.add(waiting_call(cb))
        if cb.not_before is not None:
            delay = (cb.not_before - now).total_seconds()
            self._timer(("callback", cb.id), max(0.0, delay) + 0.01, self.dispatch)

    # ---- rebuilding after an engine restart or an AMI reconnect ---------------------------------
    def link_down(self) -> None:
        """AMI is gone: ring nobody until Asterisk's state has been read again."""
        if self.synced:
            log.info("AMI down: nobody is rung until Asterisk's state is read again")
        self.synced = False

    def begin_resync(self) -> None:
        """A rebuild starts reading Asterisk's lists. Until `resync`, nobody is rung, and the
        hang-ups and device states events report are kept: they are newer than the lists."""
        self.synced = False
        self._seen = _Seen(frozenset(self.talking), frozenset(self.unsettled))
        self._spawn(self._beat())  # the hold loop needs to know the engine is back

    def hung_up_since_resync_began(self, uniqueid: str) -> bool:
        return self._seen is not None and uniqueid in self._seen.hung_up

    def adopt_connected(self, agent_id: str, leg_uniqueid: str, call: Call) -> None:
        """A conversation found in Asterisk that this process did not set up."""
        agent = self.agents.get(agent_id)
        if (agent is None or leg_uniqueid in self.talking or leg_uniqueid in self.ringing
                or leg_uniqueid in self.unsettled or self.hung_up_since_resync_began(leg_uniqueid)):
            return
        if agent.state in (AgentState.RINGING, AgentState.ON_CALL):
            log.warning("operator %s: leg %s found bridged, but already %s here: not adopted",
                        agent.id, leg_uniqueid, agent.state.value)
            return
        self._force_on_call(agent)
        self.talking[leg_uniqueid] = Ring(leg_uniqueid, agent, call)
        if call.queue is not None and call.answered_at is not None:  # its ring is unknown
            self._busy[agent.id] = (call.queue, call.answered_at, call.answered_at)

    def _force_on_call(self, agent: Agent) -> None:
        """Asterisk shows the agent talking, whatever state this process had for them."""
        now = self.tracker.clock()
        change = Change(agent.id, AgentEvent.ANSWER, agent.state, AgentState.ON_CALL, None, now)
        agent.state, agent.reason, agent.state_since = AgentState.ON_CALL, None, now
        self._cancel_timer(("wrap", agent.id))
        if self.on_change is not None:
            self.on_change(change)

    def resync(self, channels: Iterable[Mapping[str, str]],
               device_states: Iterable[tuple[str, str]]) -> None:
        """End a rebuild: trust Asterisk's lists over our event history, and events seen while
        the lists were read over the lists; settle lost rings; then ring again."""
        seen = self._seen or _Seen(frozenset(self.talking), frozenset(self.unsettled))
        self._seen = None
        legs = {ev.get("Uniqueid", ""): ev for ev in channels}
        for uniqueid in seen.hung_up:
            legs.pop(uniqueid, None)
        for device, state in device_states:
            if device not in seen.devices:
                self._device(device, state)
        for channel_id in seen.talking:
            if channel_id in self.talking and channel_id not in legs:
                self.channel_hungup(channel_id)
        for channel_id in seen.unsettled:
            ring = self.unsettled.pop(channel_id, None)
            if ring is not None:
                self._settle(ring, legs.get(channel_id))
        # a ring lost while the lists were read may have a leg they do not show: the rebuild
        # it asked for settles it, and until then nobody is rung
        self.synced = not self.unsettled
        for line in self.waiting.lines.values():
            for call in list(line):
                self._arm_overflow(call)
        self.dispatch()

    def _settle(self, ring: Ring, leg: Mapping[str, str] | None) -> None:
        """What became of a ring whose outcome the link lost, as Asterisk shows it now."""
        if leg is None:
            return  # over: the operator is available and the caller, if still here, waits
        bridged_to = leg.get("ApplicationData", "").split(",")[0]
        if (leg.get("Application") == "Bridge" and bridged_to == ring.call.channel
                and self.tracker.get(ring.call.uniqueid) is not None):
            log.info("call %s: answered by %s while AMI was away", ring.call.id, ring.agent.id)
            self._connected(ring)
        else:  # still ringing: its outcome would never reach us, so ring afresh
            log.info("call %s: hanging up %s's ring, lost with AMI", ring.call.id, ring.agent.id)
            self._spawn(self._hangup(ring.channel_id))

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

    def _spawn_facts(self, channel: str, variables: Mapping[str, str]) -> None:
        task = asyncio.get_running_loop().create_task(self._setvars(channel, variables))
        self._facts.add(task)
        task.add_done_callback(self._facts.discard)

    async def close(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        if self._facts:
            # a caller queued or answered just before a restart is adopted only if its
            # channel holds these facts: let them be written (AMI down makes them fail fast)
            await asyncio.wait(self._facts, timeout=FACTS_WAIT_S)
        for task in list(self._facts):
            task.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, *self._facts, return_exceptions=True)

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
