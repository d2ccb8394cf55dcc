"""The engine's ACD against the scripted AMI server (no Asterisk): the link drops while an
operator's phone rings or while callers wait, a ring is answered while the link is down, and
an engine restarting in the middle of calls rebuilds its state while those calls end."""

from __future__ import annotations

import asyncio
import time
import wave
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from acd.agents import AgentState
from core.calls import Call
from harness.ami_server import AmiTestServer, Received
from harness.offline_engine import offline_engine
from harness.ports import free_port
from madoguchi.engine import Engine
from recordings.files import relative_name
from store.models import CallRecord

AGENTS = ("7001", "7002", "7003", "7004")
# when the calls of a restart test started (epoch seconds): set by restart_scene, a minute
# before the scene, so that a long session before it cannot push a caller past max_wait
T0 = 0.0


async def eventually(predicate: Callable[[], bool], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - polls state owned by the code under test
            await asyncio.sleep(0.01)


async def idle_loop() -> None:
    """Let every task that is ready run: a ring started now would have failed by then."""
    for _ in range(50):
        await asyncio.sleep(0)


def channel(name: str, uniqueid: str, **more: str) -> dict[str, str]:
    return {"Event": "CoreShowChannel", "Channel": name, "Uniqueid": uniqueid,
            "Context": "mado-hold", "Application": "MusicOnHold", "ApplicationData": "default",
            **more}


def hangup(name: str, uniqueid: str) -> dict[str, str]:
    return {"Event": "Hangup", "Channel": name, "Uniqueid": uniqueid, "Linkedid": uniqueid,
            "Cause": "16", "Cause-txt": "Normal Clearing"}


def scripted(secret: str, port: int) -> AmiTestServer:
    server = AmiTestServer(secret=secret, port=port)
    server.replies["setvar"] = {"Response": "Success"}
    server.lists["coreshowchannels"] = ([], "CoreShowChannelsComplete")
    server.lists["devicestatelist"] = (
        [{"Event": "DeviceStateChange", "Device": f"PJSIP/{a}", "State": "NOT_INUSE"}
         for a in AGENTS], "DeviceStateListComplete")
    return server


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[tuple[Engine, AmiTestServer]]:
    port = free_port()
    engine = offline_engine(tmp_path, port)
    server = scripted(engine.secrets.ami_secret, port)
    await server.start()
    try:
        yield engine, server
    finally:
        await engine.stop()
        await server.stop()


async def started(engine: Engine) -> None:
    await engine.start()
    await eventually(lambda: engine.acd.synced)


def new_caller(engine: Engine, n: int) -> Call:
    call = engine.tracker.offer(f"1700000000.{n}", f"PJSIP/trunk-{n:08d}", "city", "1000",
                                "0312345678")
    call.queue = "city"
    return call


def originates(server: AmiTestServer) -> list[dict[str, str]]:
    return [r.headers for r in server.actions("Originate")]


def all_available(engine: Engine) -> bool:
    return all(a.state is AgentState.AVAILABLE and a.reason is None
               for a in engine.acd.agents.values())


async def test_link_lost_while_a_phone_rings_costs_nobody_their_place(
        stack: tuple[Engine, AmiTestServer]) -> None:
    engine, server = stack
    server.originate_outcome = None  # 7001's phone rings until the link drops
    await started(engine)
    call = new_caller(engine, 1)
    await engine.acd.enqueue(call)
    await eventually(lambda: len(originates(server)) == 1)
    assert engine.acd.agents["7001"].state is AgentState.RINGING
    server.lists["coreshowchannels"] = ([channel(call.channel, call.uniqueid)],
                                        "CoreShowChannelsComplete")
    await server.stop()  # Asterisk goes away with the ring in flight
    await eventually(lambda: not engine.acd.synced and not engine.acd.ringing)
    await idle_loop()
    assert all_available(engine), {a.id: a.state for a in engine.acd.agents.values()}
    assert engine.acd.waiting.position(call) == 1
    assert len(originates(server)) == 1
    server.originate_outcome = ("Success", "4")
    await server.start()
    await eventually(lambda: len(originates(server)) == 2)
    again = originates(server)[1]
    assert again["Channel"] == "PJSIP/7001"  # first in line, and 7001 kept their place
    assert again["Data"].startswith(call.channel + ",")
    await eventually(lambda: engine.acd.agents["7001"].state is AgentState.ON_CALL)
    assert call.agent_id == "7001"


async def test_caller_arriving_while_the_link_is_down_is_offered_when_it_is_back(
        stack: tuple[Engine, AmiTestServer]) -> None:
    engine, server = stack
    await started(engine)
    await server.stop()
    await eventually(lambda: not engine.acd.synced)
    call = new_caller(engine, 1)  # FastAGI works without AMI: the IVR queues a caller
    server.lists["coreshowchannels"] = ([channel(call.channel, call.uniqueid)],
                                        "CoreShowChannelsComplete")
    await engine.acd.enqueue(call)
    await idle_loop()
    assert all_available(engine), {a.id: (a.state, a.reason) for a in engine.acd.agents.values()}
    assert engine.acd.waiting_counts() == {"city": 1}
    await server.start()
    await eventually(lambda: len(originates(server)) == 1)
    assert originates(server)[0]["Channel"] == "PJSIP/7001"
    assert originates(server)[0]["Data"].startswith(call.channel + ",")


async def test_ring_answered_while_the_link_was_down_is_found_connected(
        stack: tuple[Engine, AmiTestServer]) -> None:
    engine, server = stack
    server.originate_outcome = None  # queued at AMI level; the outcome is lost with the link
    await started(engine)
    call = new_caller(engine, 1)
    await engine.acd.enqueue(call)
    await eventually(lambda: len(originates(server)) == 1)
    ring = originates(server)[0]
    await server.stop()
    await eventually(lambda: not engine.acd.ringing)
    # meanwhile 7001 answered: app_bridge runs on their leg with the caller
    server.lists["coreshowchannels"] = ([
        channel(call.channel, call.uniqueid, Application="Bridge"),
        channel("PJSIP/7001-00000002", ring["ChannelId"], Context="", Application="Bridge",
                ApplicationData=ring["Data"], ChannelStateDesc="Up"),
    ], "CoreShowChannelsComplete")
    await server.start()
    await eventually(lambda: engine.acd.agents["7001"].state is AgentState.ON_CALL)
    assert call.agent_id == "7001" and call.answered_at is not None
    assert engine.acd.waiting_counts() == {"city": 0}
    assert len(originates(server)) == 1 and server.actions("Hangup") == []
    assert all(a.reason is None for a in engine.acd.agents.values())


# ---- an engine restarting while an operator talks to one caller and another one waits ----

CALLER1, LEG1, CALLER2 = "PJSIP/trunk-00000001", "PJSIP/7001-00000003", "PJSIP/trunk-00000002"


def restart_scene(server: AmiTestServer) -> None:
    """Asterisk as a restarted engine finds it: caller 1 bridged to 7001, caller 2 on hold."""
    global T0
    T0 = time.time() - 60
    server.lists["coreshowchannels"] = ([
        channel(LEG1, "1790000000.3", Context="", Application="Bridge",
                ApplicationData=f"{CALLER1},F(mado-after^s^1)", ChannelStateDesc="Up"),
        channel(CALLER1, "1790000000.1", Application="Bridge"),
        channel(CALLER2, "1790000000.2"),
    ], "CoreShowChannelsComplete")
    server.lists["devicestatelist"] = (
        [{"Event": "DeviceStateChange", "Device": "PJSIP/7001", "State": "INUSE"}]
        + [{"Event": "DeviceStateChange", "Device": f"PJSIP/{a}", "State": "UNAVAILABLE"}
           for a in AGENTS[1:]], "DeviceStateListComplete")
    common = {"MADO_SERVICE": "city", "MADO_DID": "1000", "MADO_QUEUE": "city",
              "MADO_PRIORITY": "0", "MADO_LANGUAGE": "ja", "MADO_PATH": "start,menu"}
    server.variables[CALLER1] = {
        **common, "MADO_CALL_ID": "a" * 32, "MADO_OFFERED": f"{T0:.3f}",
        "MADO_QUEUED": f"{T0 + 20:.3f}", "MADO_ANSWERED": f"{T0 + 25:.3f}",
        "MADO_AGENT": "7001", "CALLERID(num)": "0388800000"}
    server.variables[CALLER2] = {
        **common, "MADO_CALL_ID": "b" * 32, "MADO_OFFERED": f"{T0 + 5:.3f}",
        "MADO_QUEUED": f"{T0 + 26:.3f}", "CALLERID(num)": "0388800001"}


@pytest.mark.parametrize("device_event", [False, True], ids=["hangups", "hangups+device"])
async def test_restart_while_the_conversation_ends_serves_the_waiting_caller(
        stack: tuple[Engine, AmiTestServer], device_event: bool) -> None:
    """The unlucky order: the engine has listed the channels and is reading the waiting
    caller's variables when the conversation ends. The list still shows it; the hang-ups
    (and 7001's device turning idle) arrive before the rebuild has finished."""
    engine, server = stack
    restart_scene(server)
    sent = False

    def conversation_ends(action: Received) -> None:
        nonlocal sent
        if action.headers.get("Channel") == CALLER2 and not sent:
            sent = True
            server.emit(hangup(LEG1, "1790000000.3"))
            server.emit(hangup(CALLER1, "1790000000.1"))
            if device_event:
                server.emit({"Event": "DeviceStateChange", "Device": "PJSIP/7001",
                             "State": "NOT_INUSE"})

    server.before["getvar"] = conversation_ends
    await started(engine)
    assert sent
    # what MixMonitor left of caller 1's conversation, so the call record can be written
    for leg in engine.recordings.legs(relative_name("a" * 32, datetime.fromtimestamp(T0, UTC))):
        leg.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(leg), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(bytes(1600))
    await eventually(lambda: len(originates(server)) == 1)
    ring = originates(server)[0]
    assert ring["Channel"] == "PJSIP/7001" and ring["Data"].startswith(CALLER2 + ",")
    await eventually(lambda: engine.acd.agents["7001"].state is AgentState.ON_CALL)
    talking = engine.acd.call_of_agent("7001")
    assert talking is not None and talking.call.id == "b" * 32
    assert "1790000000.3" not in engine.acd.talking
    # caller 1's call is closed with what its channel said: answered by 7001
    assert engine.tracker.get("1790000000.1") is None

    async def record() -> CallRecord | None:
        async with engine.db.sessions() as session:
            row: CallRecord | None = (await session.execute(
                select(CallRecord).where(CallRecord.id == "a" * 32))).scalar_one_or_none()
            return row

    async with asyncio.timeout(10):
        while (row := await record()) is None:  # noqa: ASYNC110 - the engine writes it
            await asyncio.sleep(0.05)
    assert (row.agent_id, row.outcome) == ("7001", "answered")


async def test_restart_adopts_the_conversation_then_serves_the_waiting_caller(
        stack: tuple[Engine, AmiTestServer]) -> None:
    engine, server = stack
    restart_scene(server)
    await started(engine)
    agent = engine.acd.agents["7001"]
    assert agent.state is AgentState.ON_CALL  # adopted, and nobody rung meanwhile
    assert engine.acd.waiting_counts() == {"city": 1} and originates(server) == []
    server.emit(hangup(LEG1, "1790000000.3"))  # the conversation ends after the rebuild
    await eventually(lambda: agent.state is AgentState.WRAP_UP)
    engine.acd.operator_action("7001", "end_wrap_up")
    await eventually(lambda: len(originates(server)) == 1)
    assert originates(server)[0]["Data"].startswith(CALLER2 + ",")
