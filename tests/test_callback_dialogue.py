"""The callback request over FastAGI (acd/callback_agi.py) with a stand-in session and a
scripted AMI: the offer is put on the channel only once the queue's policy says so; the
caller's own number is read back and confirmed, or another one keyed; numbers the transfer
rules would not dial are refused; silence sends the caller back to the line with nothing
booked; a second callback for the same number is refused; a booked callback keeps the
caller's entry time and the inbound call ends as callback_requested."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from acd.callback_agi import CallbackAgi
from acd.callback_store import DuplicateCallback
from acd.callback_texts import say, spoken_digits
from acd.callbacks import Callback, CallbackState, is_virtual
from acd.service import Acd
from ami_bridge.dialplan import Var
from core.calls import Call, CallTracker, Outcome
from core.settings import CallbackPolicy, load_settings

ROOT = Path(__file__).resolve().parents[1]
MOBILE = "09011112222"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Ami:
    def __init__(self) -> None:
        self.sent: list[dict[str, str]] = []

    async def send(self, action: Mapping[str, str], timeout: float | None = None
                   ) -> dict[str, str]:
        self.sent.append(dict(action))
        return {"Response": "Success"}

    async def originate(self, action: Mapping[str, str], timeout: float) -> dict[str, str]:
        await asyncio.Event().wait()  # nobody is rung here: every operator is away
        return {}


class Voice:
    """The TTS stand-in: a sound named by its text."""

    async def render(self, text: str, language: str) -> str | None:
        return f"tts/{language}/{text}"


class Store:
    def __init__(self) -> None:
        self.rows: dict[str, Callback] = {}

    async def add(self, cb: Callback) -> None:
        if any(r.number == cb.number and r.open for r in self.rows.values()):
            raise DuplicateCallback(cb.number)
        self.rows[cb.id] = dataclasses.replace(cb)

    async def save(self, cb: Callback, at: datetime) -> None:
        self.rows[cb.id] = dataclasses.replace(cb)


class Session:
    """Stands in for an AgiSession: GET DATA answers come from `keys`, in order."""

    def __init__(self, uniqueid: str, call_id: str, keys: list[str]) -> None:
        self.uniqueid, self.args, self.channel = uniqueid, [call_id], "PJSIP/trunk-1"
        self.keys = keys
        self.vars: dict[str, str] = {}
        self.heard: list[str] = []

    async def set_variable(self, name: str, value: str) -> None:
        self.vars[name] = value

    async def stream_file(self, name: str, escape: str = "") -> str:
        self.heard.append(name)
        return ""

    async def get_data(self, file: str, timeout_ms: int, max_digits: int) -> str:
        self.heard.append(file)
        return self.keys.pop(0) if self.keys else ""


def ja(what: str, **fields: str) -> str:
    return f"tts/ja/{say(what, 'ja', **fields)}"


@pytest.fixture
async def world(tmp_path: Path) -> tuple[Acd, CallbackAgi, CallTracker, Clock, Store]:
    clock = Clock()
    tracker = CallTracker(clock)
    settings = load_settings(ROOT / "config", tmp_path)
    queue = dataclasses.replace(settings.queues[0], callback=CallbackPolicy(after=60))
    settings = dataclasses.replace(settings, queues=(queue,))
    acd = Acd(settings, Ami(), tracker, announcer=Voice())
    store = Store()
    acd.callback_store = store  # type: ignore[assignment]
    for agent in acd.agents.values():
        agent.reachable = True
    acd.resync([], [])
    for agent_id in acd.agents:
        acd.operator_action(agent_id, "away", "break")
    return acd, CallbackAgi(acd, tracker, settings.transfers, Voice()), tracker, clock, store


async def waiting(acd: Acd, tracker: CallTracker, clock: Clock, caller: str = MOBILE,
                  n: int = 1) -> Call:
    call = tracker.offer(f"100.{n}", f"PJSIP/trunk-{n}", "city", "1000", caller)
    call.queue, call.language = "city", "ja"
    await acd.enqueue(call)
    clock.now += timedelta(seconds=61)  # past the policy's 60 s: the offer is made
    acd.dispatch()
    for _ in range(20):
        await asyncio.sleep(0)
    return call


def offered(acd: Acd, call: Call) -> bool:
    return acd.offered_callback(call)


async def test_the_offer_is_put_on_the_channel_after_the_policy_s_wait(world: tuple[
        Acd, CallbackAgi, CallTracker, Clock, Store]) -> None:
    acd, _, tracker, clock, _ = world
    call = tracker.offer("100.9", "PJSIP/trunk-9", "city", "1000", MOBILE)
    call.queue, call.language = "city", "ja"
    await acd.enqueue(call)
    for _ in range(20):
        await asyncio.sleep(0)
    assert not offered(acd, call)  # not yet: it waited less than 60 s
    call = await waiting(acd, tracker, clock, n=2)
    assert offered(acd, call)
    sets = {a["Variable"]: a["Value"] for a in acd.ami.sent  # type: ignore[attr-defined]
            if a["Action"] == "Setvar" and a.get("Channel") == call.channel}
    assert sets[Var.CALLBACK_KEY] == "5"
    assert sets[Var.CALLBACK_SOUND] == ja("offer", key="5")


async def test_the_caller_confirms_their_number_and_keeps_their_place(world: tuple[
        Acd, CallbackAgi, CallTracker, Clock, Store]) -> None:
    acd, agi, tracker, clock, store = world
    call = await waiting(acd, tracker, clock)
    session = Session(call.uniqueid, call.id, ["1"])
    await agi.handle(session)  # type: ignore[arg-type]
    assert session.heard == [ja("confirm", digits=spoken_digits(MOBILE)), ja("taken")]
    assert session.vars == {Var.CALLBACK_TAKEN: "1"}
    [cb] = store.rows.values()
    assert (cb.number, cb.call_id, cb.queued_at, cb.state) == (
        MOBILE, call.id, call.queued_at, CallbackState.PENDING)
    [held] = acd.waiting.lines["city"]
    assert is_virtual(held) and held.queued_at == call.queued_at
    assert call.outcome is Outcome.CALLBACK_REQUESTED


async def test_another_number_is_keyed_and_a_number_we_would_not_dial_is_refused(world: tuple[
        Acd, CallbackAgi, CallTracker, Clock, Store]) -> None:
    acd, agi, tracker, clock, store = world
    call = await waiting(acd, tracker, clock, caller="0312345678")  # a landline: not dialled
    session = Session(call.uniqueid, call.id, ["0312345678", "08033334444", "1"])
    await agi.handle(session)  # type: ignore[arg-type]
    assert session.heard == [ja("enter"), ja("refused"), ja("enter"),
                             ja("confirm", digits=spoken_digits("08033334444")), ja("taken")]
    assert [cb.number for cb in store.rows.values()] == ["08033334444"]


async def test_silence_sends_the_caller_back_with_nothing_booked(world: tuple[
        Acd, CallbackAgi, CallTracker, Clock, Store]) -> None:
    acd, agi, tracker, clock, store = world
    call = await waiting(acd, tracker, clock)
    session = Session(call.uniqueid, call.id, [])
    await agi.handle(session)  # type: ignore[arg-type]
    assert session.heard[-1] == ja("back") and Var.CALLBACK_TAKEN not in session.vars
    assert not store.rows and acd.waiting.position(call) == 1
    assert call.outcome is Outcome.ABANDONED_WAITING  # still a live caller in line


async def test_one_open_callback_per_number(world: tuple[
        Acd, CallbackAgi, CallTracker, Clock, Store]) -> None:
    acd, agi, tracker, clock, store = world
    first = await waiting(acd, tracker, clock, n=1)
    await agi.handle(Session(first.uniqueid, first.id, ["1"]))  # type: ignore[arg-type]
    second = await waiting(acd, tracker, clock, n=2)
    session = Session(second.uniqueid, second.id, ["1"])
    await agi.handle(session)  # type: ignore[arg-type]
    assert session.heard[-1] == ja("duplicate") and Var.CALLBACK_TAKEN not in session.vars
    assert len(store.rows) == 1 and acd.waiting.position(second) is not None


async def test_no_offer_no_callback(world: tuple[
        Acd, CallbackAgi, CallTracker, Clock, Store]) -> None:
    acd, agi, tracker, _, store = world
    call = tracker.offer("100.7", "PJSIP/trunk-7", "city", "1000", MOBILE)
    call.queue = "city"
    await acd.enqueue(call)
    session = Session(call.uniqueid, call.id, ["1"])
    await agi.handle(session)  # type: ignore[arg-type]
    assert session.heard == [] and not store.rows
    wrong = Session(call.uniqueid, "f" * 32, ["1"])  # another call's id on this channel
    await agi.handle(wrong)  # type: ignore[arg-type]
    assert wrong.heard == [] and not store.rows


async def test_stored_callbacks_take_their_places_again_after_a_restart(world: tuple[
        Acd, CallbackAgi, CallTracker, Clock, Store]) -> None:
    acd, _, tracker, clock, store = world
    live = await waiting(acd, tracker, clock, caller="08055556666", n=3)
    earlier = live.queued_at - timedelta(minutes=5)  # type: ignore[operator]
    later = live.queued_at + timedelta(minutes=5)  # type: ignore[operator]
    dialling = Callback("a" * 32, "c" * 32, "city", "city", MOBILE, "ja", None, 0, earlier,
                        earlier, CallbackState.DIALING, attempts=1)
    waiting_one = Callback("b" * 32, "d" * 32, "city", "city", "07012345678", "en", None, 0,
                           later, later)
    store.rows = {cb.id: cb for cb in (dialling, waiting_one)}
    acd.load_callbacks([dataclasses.replace(dialling), dataclasses.replace(waiting_one)])
    line = acd.waiting.lines["city"]
    assert [c.id for c in line] == ["a" * 32, live.id, "b" * 32]  # by entry time
    assert acd.callbacks["a" * 32].state is CallbackState.PENDING  # the lost try is redone
    assert acd.callbacks["a" * 32].attempts == 1  # and not counted
    for _ in range(20):
        await asyncio.sleep(0)
    assert store.rows["a" * 32].state is CallbackState.PENDING  # stored as such
