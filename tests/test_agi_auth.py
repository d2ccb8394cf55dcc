"""FastAGI authentication: the install's secret, strict channel and uniqueid patterns, AMI's word
that the channel exists (and is that operator's), a per-peer session cap, and rotation.

The forged-session tests run a real engine (offline, with a scripted AMI behind it) and talk
to its real FastAGI port as a scripted client would; each refusal is paired with the same
session done right, which is served, so a refusal cannot pass for a broken setup."""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from acd.agents import AgentState
from ami_bridge import agi_auth
from ami_bridge.agi_auth import AgiKey, AmiChannelCheck, endpoint_of, valid_channel, valid_uniqueid
from ami_bridge.ami import AmiClient
from ami_bridge.fastagi import AgiSession, FastAgiServer
from ami_bridge.pbx import confgen, runner
from core.secrets import fastagi_secret_watch, load_or_create, rotate_fastagi_secret
from core.settings import load_settings
from harness.ami_server import AmiTestServer, Received, ServerConnection
from harness.offline_engine import offline_config, offline_engine
from harness.ports import free_port
from madoguchi.cli import main
from madoguchi.engine import Engine
from tests.agi_peer import STEP, FakeAsterisk, header, wait_until

SUPERVISOR = "PJSIP/7004-0000000a"  # config/schedules.yaml: 7004 may switch overrides
OPERATOR = "PJSIP/7001-0000000b"
OTHER_OPERATOR = "PJSIP/7002-0000000c"
CALLER = "PJSIP/trunk-0000000d"


class Pbx(AmiTestServer):
    """The scripted AMI answers Status for the channels in `channels` (name -> uniqueid),
    as Asterisk does: one Status event, or "No such channel"."""

    def __init__(self, **kwargs: str | int) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.channels: dict[str, str] = {}
        self.lists["coreshowchannels"] = ([], "CoreShowChannelsComplete")
        self.lists["devicestatelist"] = ([], "DeviceStateListComplete")

    def _handle(self, conn: ServerConnection, lines: list[tuple[str, str]]) -> None:
        headers = dict(lines)
        if headers.get("Action", "").lower() != "status" or not conn.logged_in:
            super()._handle(conn, lines)
            return
        self.received.append(Received(conn.index, asyncio.get_running_loop().time(), lines))
        action_id = [("ActionID", headers["ActionID"])] if "ActionID" in headers else []
        name = headers.get("Channel", "")
        if name not in self.channels:
            conn.send([("Response", "Error"), *action_id, ("Message", "No such channel")])
            return
        conn.send([("Response", "Success"), *action_id, ("EventList", "start"),
                   ("Message", "Channel status will follow")])
        conn.send([("Event", "Status"), *action_id, ("Channel", name),
                   ("Uniqueid", self.channels[name]), ("ChannelState", "6")])
        conn.send([("Event", "StatusComplete"), *action_id, ("EventList", "Complete"),
                   ("ListItems", "1"), ("Items", "1")])

    def sent(self, *names: str) -> list[str]:
        """Actions of these names about a channel (the engine's MADO_ALIVE heartbeat is a
        Setvar of a global, about none)."""
        wanted = {n.lower() for n in names}
        return [r.action for r in self.received if r.action.lower() in wanted
                and (r.action.lower() != "setvar" or "Channel" in r.headers)]


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[tuple[Engine, Pbx]]:
    ami_port = free_port()
    engine = offline_engine(tmp_path, ami_port)
    pbx = Pbx(secret=engine.secrets.ami_secret, port=ami_port)
    await pbx.start()
    await engine.start()
    try:
        assert await engine.ami.wait_connected(STEP)
        yield engine, pbx
    finally:
        await engine.stop()
        await pbx.stop()


async def refused(port: int, data: bytes) -> None:
    """The engine closes the session without sending a single command."""
    ast = await FakeAsterisk.connect(port)
    await ast.send(data)
    await ast.expect_eof()
    await ast.close()


async def served(port: int, data: bytes, first: str, reply: str = "200 result=0") -> None:
    ast = await FakeAsterisk.connect(port)
    await ast.send(data)
    await ast.exchange(first, reply)
    await ast.expect_eof()
    await ast.close()


# ---- forged sessions against the real engine ---------------------------------------------

async def test_forged_closed_override_is_refused_and_changes_nothing(
        stack: tuple[Engine, Pbx]) -> None:
    engine, pbx = stack
    port, key = engine.fastagi.port, engine.secrets.fastagi_secret
    before = engine.ivr_state.status("city")["state"]
    # *711: service code 1 (city), mode 1 (closed), from the supervisor's phone
    forged = [
        header("ivr/override", "1", "1", channel=SUPERVISOR, key=None),
        header("ivr/override", "1", "1", channel=SUPERVISOR, key="x" * len(key)),
        header("ivr/override", "1", "1", channel=SUPERVISOR, key=key[:-1]),
        header("ivr/override", "1", "1", channel=SUPERVISOR, key=key + "x"),
        header("ivr/override", "1", "1", channel=SUPERVISOR, key="é" * 43),
    ]
    for data in forged:
        await refused(port, data)
    assert pbx.sent("Status") == []  # without the secret, AMI is not even asked
    # the right secret, but a channel Asterisk does not have (or not with that uniqueid)
    await refused(port, header("ivr/override", "1", "1", channel=SUPERVISOR, key=key))
    pbx.channels[SUPERVISOR] = "1700000000.99"
    await refused(port, header("ivr/override", "1", "1", channel=SUPERVISOR, key=key))
    assert len(pbx.sent("Status")) == 2
    assert engine.ivr_state.override("city") is None
    assert engine.ivr_state.status("city")["state"] == before
    assert engine.ivr_state.overrides.history() == []

    pbx.channels[SUPERVISOR] = "1700000000.1"
    await served(port, header("ivr/override", "1", "1", channel=SUPERVISOR, key=key),
                 'STREAM FILE "beep" ""')
    override = engine.ivr_state.override("city")
    assert override is not None and override.mode.value == "closed"
    assert engine.ivr_state.status("city")["state"] == "closed"


async def test_forged_operator_logout_is_refused_and_changes_nothing(
        stack: tuple[Engine, Pbx]) -> None:
    engine, pbx = stack
    port, key = engine.fastagi.port, engine.secrets.fastagi_secret
    if engine.acd.agents["7001"].state is AgentState.LOGGED_OUT:
        engine.acd.operator_action("7001", "login")
    assert engine.acd.agents["7001"].state is AgentState.AVAILABLE
    other = engine.acd.agents["7002"].state
    # *22 from 7001's phone: no secret, a wrong one, then the right one on a channel AMI
    # does not have
    await refused(port, header("feature", "22", "7001", channel=OPERATOR, key=None))
    await refused(port, header("feature", "22", "7001", channel=OPERATOR, key="k" * 43))
    await refused(port, header("feature", "22", "7001", channel=OPERATOR, key=key))
    # a real channel of 7002 claiming to be 7001: AMI knows it, but it is not 7001's
    pbx.channels[OTHER_OPERATOR] = "1700000000.2"
    await served(port, header("feature", "22", "7001", channel=OTHER_OPERATOR,
                              uniqueid="1700000000.2", key=key),
                 'STREAM FILE "invalid" ""')
    assert engine.acd.agents["7001"].state is AgentState.AVAILABLE
    assert engine.acd.agents["7002"].state is other

    pbx.channels[OPERATOR] = "1700000000.3"
    await served(port, header("feature", "22", "7001", channel=OPERATOR,
                              uniqueid="1700000000.3", key=key),
                 'STREAM FILE "beep" ""')
    assert engine.acd.agents["7001"].state is AgentState.LOGGED_OUT


@pytest.mark.parametrize("channel", [
    "PJSIP/trunk-0000000d,evil",
    "PJSIP/trunk,F(mado-after^s^1)-0000000d",
    "PJSIP/trunk-0000000d|x",
    "PJSIP/trunk-0000000d;2",
    "PJSIP/tr unk-0000000d",
    "PJSIP/trunk\r-0000000d",
    "Local/1000@from-trunk-0000000d;1",
])
async def test_fake_call_with_a_crafted_channel_is_refused_before_any_ami_action(
        stack: tuple[Engine, Pbx], channel: str) -> None:
    engine, pbx = stack
    key = engine.secrets.fastagi_secret
    pbx.channels[channel] = "1700000000.4"  # even were Asterisk to report it
    await refused(engine.fastagi.port, header("city", "1000", channel=channel,
                                              uniqueid="1700000000.4", key=key))
    assert pbx.sent("Status", "Originate", "Redirect", "Setvar") == []
    assert engine.tracker.live() == []
    assert sum(engine.acd.waiting_counts().values()) == 0


async def test_fake_call_is_refused_unless_ami_has_the_channel(
        stack: tuple[Engine, Pbx]) -> None:
    engine, pbx = stack
    key = engine.secrets.fastagi_secret
    for uniqueid in ("1700000000.5", "node1-1700000000.5", "1700000000.5x", "1700000000"):
        await refused(engine.fastagi.port, header("city", "1000", channel=CALLER,
                                                  uniqueid=uniqueid, key=key))
    assert pbx.sent("Originate", "Redirect", "Setvar") == []
    assert engine.tracker.live() == []

    pbx.channels[CALLER] = "1700000000.5"
    ast = await FakeAsterisk.connect(engine.fastagi.port)
    await ast.send(header("city", "1000", channel=CALLER, uniqueid="1700000000.5", key=key))
    line = (await asyncio.wait_for(ast.reader.readline(), STEP)).decode()
    assert line.startswith('EXEC "MixMonitor"')  # the IVR took the call
    await ast.close()
    assert [c.channel for c in engine.tracker.live()] == [CALLER]


# ---- the secret --------------------------------------------------------------------------

async def test_secret_is_checked_in_constant_time_and_never_reaches_handlers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = agi_auth.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(agi_auth.hmac, "compare_digest", spy)
    key = "s" * 43
    seen: list[AgiSession] = []

    async def handler(session: AgiSession) -> None:
        seen.append(session)

    async def known(channel: str, uniqueid: str) -> bool:
        return True

    async with FastAgiServer(handler, port=0, key=AgiKey(key), verify=known) as server:
        await refused(server.port, header("city", "1000", key="t" * 43))
        assert seen == []
        assert compared == [(b"t" * 43, key.encode())]
        compared.clear()
        ast = await FakeAsterisk.connect(server.port)
        await ast.send(header("city", "1000", "ja", key=key))
        await ast.expect_eof()
        await ast.close()
    assert compared == [(key.encode(), key.encode())]
    assert [s.args for s in seen] == [["1000", "ja"]]
    assert not any(key in value for value in seen[0].env.values())


def test_a_rotated_secret_takes_over_once_presented(tmp_path: Path) -> None:
    first = load_or_create(tmp_path, ["7001"])
    agi_key = AgiKey(first.fastagi_secret, fastagi_secret_watch(tmp_path))
    assert agi_key.check(first.fastagi_secret)
    assert not agi_key.check(None) and not agi_key.check("")
    new = rotate_fastagi_secret(tmp_path)
    assert new != first.fastagi_secret
    assert not agi_key.check("w" * 43)  # a forged session sees the change first...
    assert agi_key.check(first.fastagi_secret)  # Asterisk still has the old dialplan
    assert agi_key.check(new)  # ...the reloaded dialplan's secret is still taken
    assert not agi_key.check(first.fastagi_secret)  # and the old one is dead
    assert agi_key.check(new)
    again = load_or_create(tmp_path, ["7001"])
    assert again.fastagi_secret == new
    assert (again.ami_secret, again.api_token) == (first.ami_secret, first.api_token)


def test_patterns() -> None:
    assert valid_channel("PJSIP/7001-0000000a") and valid_channel("PJSIP/trunk-00a0ff01")
    assert valid_channel("PJSIP/city.pbx_2-00000001")
    for bad in ("PJSIP/7001-0000000", "PJSIP/7001-0000000A", "PJSIP/7001-000000001",
                "PJSIP/-00000001", "SIP/7001-00000001", "PJSIP/7001-00000001\n", "",
                "PJSIP/70,01-00000001", "PJSIP/7001-00000001,x", "PJSIP/a b-00000001"):
        assert not valid_channel(bad), bad
    assert valid_uniqueid("1732345678.123") and valid_uniqueid("pbx-1-1732345678.123")
    for bad in ("1732345678", "1732345678.", ".123", "u1", "1732345678.1,2", "1.2\n", ""):
        assert not valid_uniqueid(bad), bad
    assert endpoint_of("PJSIP/7004-0000000a") == "7004"
    assert endpoint_of("PJSIP/7004-0000000a,x") is None


async def test_ami_channel_check_against_a_scripted_asterisk() -> None:
    pbx = Pbx()
    await pbx.start()
    ami = AmiClient("127.0.0.1", pbx.port, "madoguchi", "s3cret")
    await ami.start()
    try:
        assert await ami.wait_connected(STEP)
        check = AmiChannelCheck(ami)
        pbx.channels[CALLER] = "1700000000.6"
        assert await check.exists(CALLER, "1700000000.6")
        assert not await check.exists(CALLER, "1700000000.7")
        assert not await check.exists(OPERATOR, "1700000000.6")
        assert [r.headers["Channel"] for r in pbx.actions("Status")] == [CALLER, CALLER,
                                                                          OPERATOR]
    finally:
        await ami.close()
        await pbx.stop()
    assert not await AmiChannelCheck(ami).exists(CALLER, "1700000000.6")  # AMI gone: no


# ---- per-peer cap ------------------------------------------------------------------------

async def test_per_peer_cap_refuses_the_next_concurrent_session() -> None:
    key = "p" * 43
    release = asyncio.Event()
    started: list[str] = []

    async def handler(session: AgiSession) -> None:
        started.append(session.uniqueid)
        await release.wait()

    async def known(channel: str, uniqueid: str) -> bool:
        return True

    async with FastAgiServer(handler, port=0, key=AgiKey(key), verify=known,
                             max_sessions=10, max_sessions_per_peer=2) as server:
        held = []
        for n in (1, 2):
            ast = await FakeAsterisk.connect(server.port)
            await ast.send(header(uniqueid=f"1700000000.{n}", key=key))
            held.append(ast)
        await wait_until(lambda: len(started) == 2)
        assert server.sessions_from("127.0.0.1") == 2
        await refused(server.port, header(uniqueid="1700000000.3", key=key))
        release.set()
        for ast in held:
            await ast.expect_eof()
            await ast.close()
        await wait_until(lambda: server.sessions_from("127.0.0.1") == 0)
        # a connection that has not sent its header yet takes a slot too
        idle = await FakeAsterisk.connect(server.port)
        await wait_until(lambda: server.sessions_from("127.0.0.1") == 1)
        ast = await FakeAsterisk.connect(server.port)
        await ast.send(header(uniqueid="1700000000.4", key=key))
        await ast.expect_eof()  # the handler ran (release is set) and the session ended
        await ast.close()
        await idle.close()
    assert started == ["1700000000.1", "1700000000.2", "1700000000.4"]


# ---- rotation from the command line ------------------------------------------------------

def test_secrets_rotate_changes_the_secret_and_the_generated_dialplan(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, state = offline_config(tmp_path), tmp_path / "state"
    base = ["--config", str(config), "--state", str(state)]
    settings = load_settings(config, state)
    layout = runner.choose(settings).layout  # where `madoguchi pbx config` writes
    etc = confgen.write(settings, load_or_create(state, [a.id for a in settings.agents]),
                        layout).parent
    secrets_file = state / "secrets.json"
    old = json.loads(secrets_file.read_text(encoding="utf-8"))
    dialplan = (etc / "extensions.conf").read_text(encoding="utf-8")
    agi_calls = dialplan.count("AGI(agi://")
    assert agi_calls >= 5 and dialplan.count(f",{old['fastagi_secret']},") == agi_calls

    assert main([*base, "secrets", "--rotate"]) == 0
    out = capsys.readouterr().out
    new = json.loads(secrets_file.read_text(encoding="utf-8"))
    assert new["fastagi_secret"] != old["fastagi_secret"]
    assert {k: v for k, v in new.items() if k != "fastagi_secret"} == \
        {k: v for k, v in old.items() if k != "fastagi_secret"}
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert not list(state.glob("secrets.tmp"))
    dialplan = (etc / "extensions.conf").read_text(encoding="utf-8")
    assert old["fastagi_secret"] not in dialplan
    assert dialplan.count(f",{new['fastagi_secret']},") == agi_calls
    assert "not running" in out and new["fastagi_secret"] not in out
    # `secrets` without --rotate prints what it always did, and no FastAGI secret
    assert main([*base, "secrets"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert set(shown) == {"api_token", "sip_passwords"}

