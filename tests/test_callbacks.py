"""Callbacks (virtual hold): the pure state machine and who may be served; the real ACD driven
by a seeded random run of callers, callback requests, operators, attempts, time and service
hours, its invariants checked after every event; and the callback store on each backend."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from acd import callback_store, service
from acd.agents import Agent, AgentState, IllegalTransition
from acd.callback_store import CallbackStore, DuplicateCallback
from acd.callbacks import (
    OPEN_STATES,
    TRANSITIONS,
    Callback,
    CallbackEvent,
    CallbackState,
    IllegalCallbackTransition,
    is_virtual,
    servable,
    should_offer,
    waiting_call,
)
from acd.distributor import call_order
from acd.service import Acd
from core import calls
from core.calls import Call, CallTracker
from core.settings import Agent as AgentConfig
from core.settings import CallbackPolicy, load_settings
from store.db import Database
from store.models import CallbackRow

ROOT = Path(__file__).resolve().parents[1]
AT = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
POLICY = CallbackPolicy(attempts=3, retry_delay=120)


def state_of(cb: Callback) -> CallbackState:
    """The state as the code under test left it (not as the last assert narrowed it)."""
    return cb.state


def callback(number: str = "0901234567", cid: str = "a" * 32, queued_at: datetime = AT,
             state: CallbackState = CallbackState.PENDING) -> Callback:
    return Callback(cid, "c" * 32, "city", "city", number, "ja", "gomi", 0, queued_at,
                    queued_at + timedelta(seconds=70), state)


# ---- the state machine ---------------------------------------------------------------------
@pytest.mark.parametrize(("state", "event"), sorted(TRANSITIONS))
def test_every_legal_transition(state: CallbackState, event: CallbackEvent) -> None:
    cb = callback(state=state)
    new = cb.apply(event, AT, POLICY, "NOANSWER")
    assert new is TRANSITIONS[(state, event)] is cb.state
    counted = event in (CallbackEvent.ANSWERED, CallbackEvent.NOT_ANSWERED)
    assert cb.attempts == (1 if counted else 0)
    assert cb.last_status == ("NOANSWER" if counted else "")
    assert cb.open is (new in OPEN_STATES)


@pytest.mark.parametrize(("state", "event"), [
    (s, e) for s in CallbackState for e in CallbackEvent if (s, e) not in TRANSITIONS])
def test_illegal_transitions_raise_and_change_nothing(state: CallbackState,
                                                      event: CallbackEvent) -> None:
    cb = callback(state=state)
    before = dataclasses.replace(cb)
    with pytest.raises(IllegalCallbackTransition):
        cb.apply(event, AT, POLICY)
    assert cb == before


def test_missed_and_lost_rings_do_not_count_as_attempts() -> None:
    cb = callback()
    for event in (CallbackEvent.MISSED, CallbackEvent.LOST):
        cb.apply(CallbackEvent.DIAL, AT, POLICY)
        cb.apply(event, AT, POLICY)
    assert (cb.state, cb.attempts, cb.not_before) == (CallbackState.PENDING, 0, None)


def test_unanswered_attempts_wait_the_retry_delay_then_fail() -> None:
    cb = callback()
    at = AT
    for attempt in range(1, POLICY.attempts):
        cb.apply(CallbackEvent.DIAL, at, POLICY)
        assert cb.apply(CallbackEvent.NOT_ANSWERED, at, POLICY, "BUSY") is CallbackState.PENDING
        assert cb.attempts == attempt
        assert cb.not_before == at + timedelta(seconds=POLICY.retry_delay)
        at += timedelta(seconds=300)
    cb.apply(CallbackEvent.DIAL, at, POLICY)
    assert cb.apply(CallbackEvent.NOT_ANSWERED, at, POLICY, "NOANSWER") is CallbackState.FAILED
    assert (cb.attempts, cb.last_status, cb.open) == (POLICY.attempts, "NOANSWER", False)
    assert cb.queued_at == AT  # the place in line never moves


def test_an_answer_is_done_and_the_status_is_bounded() -> None:
    cb = callback()
    cb.apply(CallbackEvent.DIAL, AT, POLICY)
    assert cb.apply(CallbackEvent.ANSWERED, AT, POLICY, "ANSWER" * 10) is CallbackState.DONE
    assert cb.attempts == 1 and len(cb.last_status) == 16


def test_one_attempt_policy_fails_at_the_first_no_answer() -> None:
    cb = callback()
    cb.apply(CallbackEvent.DIAL, AT, POLICY)
    assert cb.apply(CallbackEvent.NOT_ANSWERED, AT, CallbackPolicy(attempts=1),
                    "BUSY") is CallbackState.FAILED


@pytest.mark.parametrize(("policy", "waited", "expected", "offer"), [
    (None, 10_000, 10_000, False),
    (CallbackPolicy(after=60, min_expected_wait=180), 59, None, False),
    (CallbackPolicy(after=60, min_expected_wait=180), 60, None, True),
    (CallbackPolicy(after=60, min_expected_wait=180), 0, 179.9, False),
    (CallbackPolicy(after=60, min_expected_wait=180), 0, 180, True),
])
def test_should_offer(policy: CallbackPolicy | None, waited: float, expected: float | None,
                      offer: bool) -> None:
    assert should_offer(policy, waited, expected) is offer


def test_servable_waits_for_the_retry_delay_and_an_open_service() -> None:
    cb = callback()
    assert servable(cb, AT, True)
    assert not servable(cb, AT, False)
    cb.apply(CallbackEvent.DIAL, AT, POLICY)
    assert not servable(cb, AT, True)  # being dialled
    cb.apply(CallbackEvent.NOT_ANSWERED, AT, POLICY, "NOANSWER")
    retry = AT + timedelta(seconds=POLICY.retry_delay)
    assert not servable(cb, retry - timedelta(seconds=1), True)
    assert servable(cb, retry, True)
    assert not servable(cb, retry, False)
    cb.apply(CallbackEvent.EXPIRE, retry, POLICY)
    assert not servable(cb, retry, True)


def test_the_waiting_caller_keeps_the_place_and_has_no_channel() -> None:
    cb = callback(queued_at=AT - timedelta(minutes=3))
    call = waiting_call(cb)
    assert is_virtual(call) and call.channel == ""
    assert (call.id, call.queue, call.queued_at, call.priority, call.caller) == (
        cb.id, "city", cb.queued_at, 0, cb.number)


# ---- the ACD, driven at random -------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = AT

    def __call__(self) -> datetime:
        return self.now


class OperatorPhones:
    """AMI whose Originates wait until the run says what the operator did."""

    def __init__(self) -> None:
        self.pending: dict[str, tuple[dict[str, str], asyncio.Future[dict[str, str]]]] = {}

    async def send(self, action: Mapping[str, str], timeout: float | None = None
                   ) -> dict[str, str]:
        return {"Response": "Success"}

    async def originate(self, action: Mapping[str, str], timeout: float) -> dict[str, str]:
        fut: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        self.pending[action["ChannelId"]] = (dict(action), fut)
        try:
            return await fut
        finally:
            self.pending.pop(action["ChannelId"], None)


class MemoryCallbacks(CallbackStore):
    """The store's contract without a database: copies kept, one open callback a number."""

    def __init__(self) -> None:
        self.rows: dict[str, Callback] = {}

    async def add(self, cb: Callback) -> None:
        await asyncio.sleep(0)  # another task may run meanwhile, as with a database
        if any(r.number == cb.number and r.open for r in self.rows.values()):
            raise DuplicateCallback(cb.number)
        self.rows[cb.id] = dataclasses.replace(cb)

    async def save(self, cb: Callback, at: datetime) -> None:
        if cb.id in self.rows:
            self.rows[cb.id] = dataclasses.replace(cb)

    async def open_callbacks(self) -> list[Callback]:
        return sorted((dataclasses.replace(r) for r in self.rows.values() if r.open),
                      key=lambda r: r.queued_at)


QUEUES = ("city", "tax")
SERVICES = ("city", "water")
# operators serving one line or both, so an operator's choice spans lines
OPERATORS = {"7001": ("city",), "7002": ("city", "tax"), "7003": ("tax",),
             "7004": ("city", "tax")}
NUMBERS = tuple(f"09012340{n:03d}" for n in range(30))  # few: duplicates happen


async def settle() -> None:
    for _ in range(8):
        await asyncio.sleep(0)


class SeededIds:
    """uuid4 from the run's seed: ids order ties and picks, so a seed replays exactly."""

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd

    def uuid4(self) -> uuid.UUID:
        return uuid.UUID(int=self.rnd.getrandbits(128), version=4)


class Run:
    def __init__(self, tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
        self.rnd = random.Random(seed)
        ids = SeededIds(random.Random(seed))
        monkeypatch.setattr(service, "uuid", ids)
        monkeypatch.setattr(calls, "uuid", ids)
        self.clock = Clock()
        self.tracker = CallTracker(self.clock)
        self.ami = OperatorPhones()
        settings = load_settings(ROOT / "config", tmp_path)
        base = settings.queues[0]
        queues = (
            dataclasses.replace(base, id="city", wrap_up=30, max_wait=10**6,
                                callback=CallbackPolicy(attempts=3, retry_delay=120)),
            dataclasses.replace(base, id="tax", wrap_up=30, max_wait=10**6,
                                callback=CallbackPolicy(attempts=2, retry_delay=60,
                                                        outside_hours="expire")))
        agents = tuple(AgentConfig(a, a, q, None) for a, q in OPERATORS.items())
        settings = dataclasses.replace(settings, queues=queues, agents=agents)
        self.acd = Acd(settings, self.ami, self.tracker)
        self.store = MemoryCallbacks()
        self.acd.callback_store = self.store
        self.open = dict.fromkeys(SERVICES, True)
        self.acd.service_open = lambda service: self.open[service]
        for i, agent_id in enumerate(OPERATORS):
            self.acd.agents[agent_id].idle_since = AT - timedelta(minutes=10 - i)
            self.acd.device_state(f"PJSIP/{agent_id}", "NOT_INUSE")
        self.live: list[Call] = []  # callers on the line (waiting, rung or talking)
        self.talking_calls: dict[str, Call] = {}  # operator leg: the live caller
        self.hung_up: set[str] = set()  # ringing legs whose Hangup came before the outcome
        self.entered: dict[str, datetime] = {}  # callback id: the caller's entry time
        self.served: list[tuple[str, str]] = []  # (callback id, operator) offered
        self.counts: dict[str, int] = {}
        self.n = 0
        self._offer = self.acd._offer

    def checked_offer(self, agent: Agent, call: Call) -> None:
        """The distributor hands a call to an operator: the invariants at that moment."""
        self._check_offer(call, agent)
        self._offer(agent, call)

    def _check_offer(self, call: Call, agent: Agent) -> None:
        acd, now = self.acd, self.clock.now
        if is_virtual(call):
            cb = acd.callbacks[call.id]
            assert self.open[cb.service], f"callback {cb.id} served while {cb.service} closed"
            assert servable(cb, now, True), f"callback {cb.id} served before its retry"
            assert cb.queued_at == self.entered[cb.id] == call.queued_at
            self.served.append((cb.id, agent.id))
        for queue in agent.queues:
            for other in acd.waiting.lines[queue]:
                if is_virtual(other):
                    cb2 = acd.callbacks.get(other.id)
                    if cb2 is None or not servable(cb2, now, self.open[cb2.service]):
                        continue
                # nobody this operator could serve, who entered earlier, is left waiting
                assert call_order(other)[:2] >= call_order(call)[:2], (
                    f"{call.id} offered to {agent.id} ahead of {other.id}")

    def check(self) -> None:
        acd = self.acd
        open_numbers = [cb.number for cb in acd.callbacks.values() if cb.open]
        assert len(open_numbers) == len(set(open_numbers)), "two open callbacks, one number"
        stored = [r.number for r in self.store.rows.values() if r.open]
        assert len(stored) == len(set(stored)), "two stored open callbacks, one number"
        dialing = [cb for cb in acd.callbacks.values() if cb.state is CallbackState.DIALING]
        operators = [cb.agent_id for cb in dialing]
        assert len(operators) == len(set(operators)), "one operator on two callbacks"
        # one operator leg at most works on a callback: ringing for it or dialling from it
        legs = {leg: r.call.id for leg, r in acd.ringing.items() if is_virtual(r.call)}
        legs.update({leg: cb.id for leg, (cb, _) in acd._attempts.items()})
        worked = sorted(legs.values())
        assert len(worked) == len(set(worked)), "two operators on one callback"
        for cb in dialing:
            assert cb.agent_id is not None
            assert acd.agents[cb.agent_id].state in (AgentState.RINGING, AgentState.ON_CALL)
        for cb in acd.callbacks.values():
            assert cb.queued_at == self.entered[cb.id], "a callback lost its place"
            in_line = [c for c in acd.waiting.lines[cb.queue] if c.id == cb.id]
            assert len(in_line) <= 1, f"callback {cb.id} twice in line"
            if cb.state is CallbackState.DIALING:
                assert not in_line, f"callback {cb.id} in line while dialled"
        for line in acd.waiting.lines.values():
            keys = [call_order(c) for c in line]
            assert keys == sorted(keys), "a line out of order"
            for c in line:
                if is_virtual(c):
                    assert c.id in acd.callbacks, "a closed callback still in line"

    # ---- events -------------------------------------------------------------------------------
    async def arrive(self) -> None:
        self.n += 1
        call = self.tracker.offer(f"1.{self.n}", f"PJSIP/trunk-{self.n:08d}",
                                  self.rnd.choice(SERVICES), "1000", "0312345678")
        call.queue = self.rnd.choice(QUEUES)
        call.priority = 1 if self.rnd.random() < 0.1 else 0
        self.live.append(call)
        await self.acd.enqueue(call)

    def waiting_live(self) -> list[Call]:
        return [c for line in self.acd.waiting.lines.values() for c in line
                if not is_virtual(c)]

    async def take_callback(self) -> None:
        waiting = self.waiting_live()
        if not waiting:
            return
        call = self.rnd.choice(waiting)
        try:
            cb = await self.acd.request_callback(call, self.rnd.choice(NUMBERS))
        except DuplicateCallback:
            self.bump("duplicate refused")
            return
        if cb is not None:
            self.entered[cb.id] = cb.queued_at
            assert cb.queued_at == call.queued_at
            # the caller hangs up: they wait as a callback now
            self.hang_up_caller(call)
            self.bump("booked")

    def hang_up_caller(self, call: Call) -> None:
        if call in self.live:
            self.live.remove(call)
        if self.tracker.end(call.uniqueid) is not None:
            self.acd.caller_gone(call)

    def abandon(self) -> None:
        waiting = self.waiting_live()
        if waiting:
            self.hang_up_caller(self.rnd.choice(waiting))

    def answer_ring(self, answered: bool) -> None:
        if not self.ami.pending:
            return
        leg = self.rnd.choice(sorted(self.ami.pending))
        action, fut = self.ami.pending[leg]
        if answered and leg not in self.hung_up:
            fut.set_result({"Response": "Success", "Channel": f"{action['Channel']}-{leg[:8]}"})
            ring = self.acd.ringing.get(leg)
            if ring is not None and not is_virtual(ring.call):
                self.talking_calls[leg] = ring.call
        else:
            fut.set_result({"Response": "Failure", "Reason": self.rnd.choice(["3", "5"])})

    def ring_hung_up(self) -> None:
        """The operator's ringing leg is gone (rejected, rang out): Asterisk reports its
        Hangup before the OriginateResponse saying it failed, and other events may come
        between the two."""
        legs = sorted(set(self.ami.pending) - self.hung_up)
        if legs:
            leg = self.rnd.choice(legs)
            self.hung_up.add(leg)
            self.acd.channel_hungup(leg)

    def end_conversation(self) -> None:
        legs = [leg for leg in self.acd.talking if leg not in self.acd._attempts]
        if not legs:
            return
        leg = self.rnd.choice(sorted(legs))
        caller = self.talking_calls.pop(leg, None)
        self.acd.channel_hungup(leg)
        if caller is not None:
            self.hang_up_caller(caller)

    def callback_over(self) -> None:
        """The operator's callback leg ends: MadoCallback then its Hangup, or (rarely) the
        Hangup alone (the event was lost)."""
        if not self.acd._attempts:
            return
        leg = self.rnd.choice(sorted(self.acd._attempts))
        if leg not in self.acd.talking:
            return  # the operator's phone still rings: its Originate says how that ends
        cb, _ = self.acd._attempts[leg]
        if self.rnd.random() < 0.9:
            status = self.rnd.choice(["ANSWER", "ANSWER", "NOANSWER", "BUSY"])
            self.acd.callback_result(cb.id, status, "42" if status == "ANSWER" else "")
            self.bump(f"result {status}")
        self.tracker.forget(leg)
        self.acd.channel_hungup(leg)

    def operator(self) -> None:
        agent = self.rnd.choice(sorted(self.acd.agents))
        action = self.rnd.choice(["away", "back", "back", "back", "end_wrap_up", "end_wrap_up",
                                 "end_wrap_up"])
        try:
            self.acd.operator_action(agent, action, "break" if action == "away" else None)
        except IllegalTransition:
            pass

    def time_passes(self) -> None:
        self.clock.now += timedelta(seconds=self.rnd.choice([1, 5, 30, 61, 121, 300]))
        self.acd.dispatch()  # as the heartbeat does

    def hours(self) -> None:
        service = self.rnd.choice(SERVICES)
        self.open[service] = not self.open[service]
        self.acd.dispatch()

    def bump(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    async def step(self) -> None:
        r = self.rnd.random()
        if r < 0.12:
            await self.arrive()
        elif r < 0.22:
            await self.take_callback()
        elif r < 0.25:
            self.abandon()
        elif r < 0.39:
            self.answer_ring(answered=self.rnd.random() < 0.85)
        elif r < 0.42:
            self.ring_hung_up()
        elif r < 0.54:
            self.end_conversation()
        elif r < 0.68:
            self.callback_over()
        elif r < 0.86:
            self.operator()
        elif r < 0.96:
            self.time_passes()
        else:
            self.hours()
        await settle()


async def test_a_ringing_legs_hang_up_before_its_outcome_keeps_one_operator(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Asterisk reports the operator leg's Hangup before the OriginateResponse saying it
    # failed: meanwhile the callback must not go to a second operator
    run = Run(tmp_path, 0, monkeypatch)
    run.acd.resync([], [])
    for agent_id in ("7001", "7002", "7004"):  # nobody free for the city line
        run.acd.operator_action(agent_id, "away", "break")
    call = run.tracker.offer("1.1", "PJSIP/trunk-1", "city", "1000", "0312345678")
    call.queue = "city"
    await run.acd.enqueue(call)
    cb = await run.acd.request_callback(call, NUMBERS[0])
    assert cb is not None
    run.entered[cb.id] = cb.queued_at
    await settle()
    assert not run.ami.pending and cb.state is CallbackState.PENDING
    run.acd.operator_action("7001", "back")
    await settle()
    [(leg, (action, fut))] = run.ami.pending.items()
    assert action["Channel"] == "PJSIP/7001" and state_of(cb) is CallbackState.DIALING
    run.acd.channel_hungup(leg)
    run.acd.operator_action("7002", "back")  # another operator free before the outcome
    await settle()
    assert list(run.ami.pending) == [leg] and state_of(cb) is CallbackState.DIALING
    run.check()
    fut.set_result({"Response": "Failure", "Reason": "3"})
    await settle()
    # missed by 7001 (no try counted), then rung on 7002
    assert run.acd.agents["7001"].state is AgentState.AWAY
    assert [a["Channel"] for a, _ in run.ami.pending.values()] == ["PJSIP/7002"]
    assert (cb.state, cb.attempts, cb.agent_id) == (CallbackState.DIALING, 0, "7002")
    run.check()
    await run.acd.close()


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
async def test_random_run_keeps_the_callback_invariants(
        tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    run = Run(tmp_path, seed, monkeypatch)
    monkeypatch.setattr(run.acd, "_offer", run.checked_offer)
    run.acd.resync([], [])
    try:
        for _ in range(1000):
            await run.step()
            run.check()
    finally:
        await run.acd.close()
    # the run went through what it is meant to exercise
    assert run.counts.get("booked", 0) >= 20, run.counts
    assert run.counts.get("duplicate refused", 0) >= 1, run.counts
    assert len({cb for cb, _ in run.served}) >= 5, run.counts
    assert {"result ANSWER", "result NOANSWER"} <= set(run.counts), run.counts


# ---- the store, on SQLite and PostgreSQL ---------------------------------------------------
async def test_store_adds_refuses_a_second_open_callback_saves_and_reloads(
        database_url: str) -> None:
    db = Database(database_url)
    try:
        await db.create_schema()
        store = CallbackStore(db)
        first = callback("0901111111", "a" * 32)
        await store.add(first)
        with pytest.raises(DuplicateCallback):
            await store.add(callback("0901111111", "b" * 32))
        other = callback("0902222222", "c" * 32, queued_at=AT - timedelta(minutes=1))
        await store.add(other)
        # an attempt, unanswered: still open, its retry stored
        first.apply(CallbackEvent.DIAL, AT, POLICY)
        first.agent_id = "7001"
        first.apply(CallbackEvent.NOT_ANSWERED, AT, POLICY, "BUSY")
        await store.save(first, AT)
        other.apply(CallbackEvent.DIAL, AT, POLICY)
        await store.save(other, AT)
        # "restart": a new store over the same database finds both, in their places
        again = CallbackStore(Database(database_url))
        try:
            loaded = await again.open_callbacks()
        finally:
            await again.db.close()
        assert [cb.id for cb in loaded] == [other.id, first.id]  # by the caller's entry time
        assert loaded[1] == first and loaded[0] == other
        # done: closed, and the number may book again
        first.apply(CallbackEvent.DIAL, AT, POLICY)
        first.result_call_id = "d" * 32
        first.apply(CallbackEvent.ANSWERED, AT, POLICY, "ANSWER")
        await store.save(first, AT)
        assert [cb.id for cb in await store.open_callbacks()] == [other.id]
        await store.add(callback("0901111111", "e" * 32))
        async with db.sessions() as session:
            done = await session.get(CallbackRow, first.id)
        assert done is not None and (done.state, done.attempts, done.result_call_id) == (
            "done", 2, "d" * 32)
        await store.save(callback(cid="f" * 32), AT)  # unknown: nothing to save
        assert [cb.id for cb in await store.open_callbacks()] == [other.id, "e" * 32]
    finally:
        await db.close()


async def test_the_database_refuses_a_racing_second_open_callback(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    db = Database(database_url)
    try:
        await db.create_schema()
        store = CallbackStore(db)
        await store.add(callback("0903333333", "a" * 32))
        # the other request checked before this one was written: only the index is left
        monkeypatch.setattr(callback_store, "OPEN_CALLBACK_STATES", ())
        with pytest.raises(DuplicateCallback):
            await store.add(callback("0903333333", "b" * 32))
        # a closed callback for the number does not hold the index
        closed = callback("0904444444", "c" * 32, state=CallbackState.FAILED)
        await store.add(closed)
        await store.add(callback("0904444444", "d" * 32))
        async with db.sessions() as session:
            numbers = (await session.scalars(select(CallbackRow.number).order_by(
                CallbackRow.id))).all()
        assert numbers == ["0903333333", "0904444444", "0904444444"]
    finally:
        await db.close()


async def test_two_requests_for_one_number_at_once(database_url: str) -> None:
    first, second = Database(database_url), Database(database_url)
    try:
        await first.create_schema()
        results = await asyncio.gather(
            CallbackStore(first).add(callback("0905555555", "a" * 32)),
            CallbackStore(second).add(callback("0905555555", "b" * 32)),
            return_exceptions=True)
        assert sorted(type(r).__name__ for r in results) == ["DuplicateCallback", "NoneType"]
        assert len(await CallbackStore(first).open_callbacks()) == 1
    finally:
        await first.close()
        await second.close()
