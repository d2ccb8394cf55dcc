"""The callback (virtual hold) against real Asterisk and SIPp.

A caller waits in the city queue while its only operator is away: they hear their position,
then (after the e2e config's 30 s) the callback offer, press 5 (SIP INFO), hear their own
number read back, confirm with 1 and are let go (Asterisk hangs up). The callback keeps
their place. When the operator is back, the operator's SIPp phone is rung first; only once
it answered does Asterisk dial the SIPp "citizen" at the caller's number through the trunk.
The conversation is recorded, and the callback's call record names the call that asked.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from acd.announcements import text
from acd.callback_texts import say
from ami_bridge.dialplan import Context, Var

from .conftest import (
    CALLER_MEDIA,
    CALLER_PORT,
    CITY_PBX_MEDIA,
    CITY_PBX_PORT,
    SIP_PORT,
    SIPP_DIR,
    AmiWatch,
    Stack,
    phone_media,
    phone_port,
    sipp_done,
    tts_sound,
    wait_for,
)

pytestmark = pytest.mark.asterisk
CITIZEN = "09011112222"  # an outside number the transfer rules allow (090...)
TALK_MS = 6000  # the operator talks to the citizen this long, then hangs up


class CallbackWatch(AmiWatch):
    """The monitor login: AGI prompts, the hold loop's steps, the offer set on the channel,
    and every channel's creation and state (who was rung first)."""

    def keep(self, msg: dict[str, str]) -> bool:
        event = msg.get("Event", "")
        return (event.startswith("AGIExec") or event in ("Newchannel", "Newstate")
                or (event == "VarSet" and msg.get("Variable") == Var.CALLBACK_SOUND)
                or (event == "Newexten" and msg.get("Context") == Context.HOLD))

    def snapshot(self) -> list[dict[str, str]]:
        with self._lock:
            return list(self.events)


def _sipp(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sipp", *args, "-nostdin", "-timeout", "150s"], cwd=SIPP_DIR,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def _callback_rows(stack: Stack) -> list[dict[str, object]]:
    query = f"SELECT * FROM callbacks WHERE number = '{CITIZEN}'"  # a constant of ours
    if stack.database_url is not None:
        import asyncpg  # type: ignore[import-untyped]

        async def fetch() -> list[dict[str, object]]:
            assert stack.database_url is not None
            conn = await asyncpg.connect(stack.database_url.replace(
                "postgresql+asyncpg://", "postgresql://", 1))
            try:
                return [dict(r) for r in await conn.fetch(query)]
            finally:
                await conn.close()
        return asyncio.run(fetch())
    with sqlite3.connect(stack.state / "madoguchi.db") as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(query)]


@pytest.fixture
def watch(stack: Stack) -> Iterator[CallbackWatch]:
    import json

    secrets = json.loads((stack.state / "secrets.json").read_text(encoding="utf-8"))
    w = CallbackWatch(secrets["ami_monitor_secret"])
    try:
        time.sleep(0.3)
        yield w
    finally:
        w.close()


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.communicate()


def test_a_waiting_caller_is_called_back_in_their_place_operator_first(
        stack: Stack, watch: CallbackWatch, procs: list[subprocess.Popen[bytes]],
        tmp_path: Path) -> None:
    stack.set_ready("7001")
    status, body = stack.post("/api/agents/7001/state", {"action": "away", "reason": "break"})
    assert status == 200, body
    operator = _sipp("-sf", str(SIPP_DIR / "operator_hangup.xml"), "-i", "127.0.0.1",
                     "-p", str(phone_port(1)), "-mp", str(phone_media(1)), "-m", "1",
                     "-d", str(TALK_MS))
    citizen = _sipp("-sf", str(SIPP_DIR / "citizen.xml"), "-i", "127.0.0.1",
                    "-p", str(CITY_PBX_PORT), "-mp", str(CITY_PBX_MEDIA), "-m", "1",
                    "-d", "1000")
    # Japanese (key 1 at 7 s); 5 at 51 s, once the 30 s offer is on the channel; 1 at 55 s
    caller = _sipp(f"127.0.0.1:{SIP_PORT}", "-sf", str(SIPP_DIR / "caller_survey.xml"),
                   "-s", "1000", "-i", "127.0.0.1", "-p", str(CALLER_PORT),
                   "-mp", str(CALLER_MEDIA), "-m", "1", "-d", "42000",
                   "-key", "caller", CITIZEN,
                   "-key", "dtmf", "/usr/share/sip-tester/dtmf_2833_1.pcap",
                   "-key", "key1", "5", "-key", "key2", "1")
    procs.extend([operator, citizen, caller])

    # the caller is let go by Asterisk once the callback is booked (BYE): SIPp exits 0
    assert sipp_done(caller, 110) == 0, "the caller was not let go after booking the callback"
    events = watch.snapshot()
    mine = [e for e in events if e.get("CallerIDNum") == CITIZEN]
    # what the hold loop said (BackGround: a key is heard while it plays), sound paths as
    # Asterisk sees them
    said = [e.get("AppData", "") for e in mine
            if e["Event"] == "Newexten" and e.get("Application", "").lower() == "background"]
    position = tts_sound(tmp_path, text(1, None, "ja"))
    offer = tts_sound(tmp_path, say("offer", "ja", key="5"))

    assert any(data.endswith(position) for data in said), f"no position said: {said}"
    # the offer is on the channel before the key is taken (the loop says it at its next
    # slot; the caller may press during the board or the music before that)
    offers = [e for e in mine if e["Event"] == "VarSet"]
    assert offers and offers[0].get("Value", "").endswith(offer), offers
    prompts = watch.played(CITIZEN)
    confirm = tts_sound(tmp_path, say("confirm", "ja", digits=" ".join(CITIZEN)))
    taken = tts_sound(tmp_path, say("taken", "ja"))
    # their number read back (the 1 that confirmed it made the booking below), the goodbye
    files = [f for f, _ in prompts]
    heard_confirm = [i for i, f in enumerate(files) if f.endswith(confirm)]
    heard_taken = [i for i, f in enumerate(files) if f.endswith(taken)]
    assert heard_confirm and heard_taken and heard_confirm[0] < heard_taken[0], files

    asked = stack.call_row(CITIZEN)
    assert asked["outcome"] == "callback_requested" and asked["answered_at"] is None
    data = stack.json("/api/callbacks")
    assert isinstance(data, dict)
    [pending] = [c for c in data["callbacks"] if c["number"] == CITIZEN]
    assert (pending["state"], pending["position"], pending["call_id"]) == (
        "pending", 1, asked["id"])
    assert pending["queued_at"][:19] == str(asked["queued_at"]).replace(" ", "T")[:19]

    # the operator is free again: rung first, then the citizen dialled
    status, body = stack.post("/api/agents/7001/state", {"action": "back"})
    assert status == 200, body
    assert sipp_done(operator, 60) == 0, "the operator's phone did not take the callback"
    assert sipp_done(citizen, 60) == 0, "the citizen was not called back"

    def rows() -> list[dict[str, object]]:
        return [r for r in stack.call_rows(CITIZEN) if r["outcome"] == "callback"]
    wait_for("the callback's call record", rows, 20)
    [back] = rows()
    assert back["callback_of"] == asked["id"]
    assert back["agent_id"] == "7001" and back["answered_at"] is not None
    wait_for("the callback's recording", lambda: rows()[0]["recordings"] == 1, 30)
    wait_for("the callback done", lambda: _callback_rows(stack)[0]["state"] == "done", 10)
    [done] = _callback_rows(stack)
    assert done["result_call_id"] == back["id"] and done["attempts"] == 1

    channels = [e for e in watch.snapshot() if e["Event"] in ("Newchannel", "Newstate")]
    operator_up = next(i for i, e in enumerate(channels) if e["Event"] == "Newstate"
                       and e.get("Channel", "").startswith("PJSIP/7001-")
                       and e.get("ChannelStateDesc") == "Up")
    citizen_leg = next(i for i, e in enumerate(channels) if e["Event"] == "Newchannel"
                       and e.get("Channel", "").startswith("PJSIP/citypbx-"))
    assert operator_up < citizen_leg, "the citizen was dialled before the operator answered"
