"""Callers who wait hear their position and, when the ACD can stand behind it, the expected
wait: the ACD puts the spoken sentence on the caller's channel (MADO_POSITION_SOUND, AMI
Setvar) and the hold loop (mado-hold) plays it at entry and again only when it changed.

Observed through Asterisk's own events on the read-only monitor login: VarSet (what the
engine set) and Newexten (what the hold loop ran, with the sound as its AppData). The sound
names are the TTS cache's, a hash of the text, so each assertion names the exact sentence.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from acd.announcements import CAP_S, text
from ami_bridge.dialplan import Context, Var

from .conftest import (
    CALLER_MEDIA,
    CALLER_PORT,
    SIP_PORT,
    SIPP_DIR,
    AmiWatch,
    Stack,
    phone_media,
    phone_port,
    tts_sound,
    wait_for,
)

pytestmark = pytest.mark.asterisk
SERVICE = "1000"  # the city flow: key 1 → Japanese → the city queue (announce_every 10 s)
DTMF = "/usr/share/sip-tester/dtmf_2833_1.pcap"


class HoldWatch(AmiWatch):
    """The monitor AMI login, keeping the position sounds set and the hold loop's steps."""

    def keep(self, msg: dict[str, str]) -> bool:
        event = msg.get("Event")
        return (event == "VarSet" and msg.get("Variable") == Var.POSITION_SOUND) or (
            event == "Newexten" and msg.get("Context") == Context.HOLD)

    def _of(self, caller: str) -> list[dict[str, str]]:
        with self._lock:
            return [e for e in self.events if e.get("CallerIDNum") == caller]

    def sounds_set(self, caller: str) -> list[str]:
        """MADO_POSITION_SOUND values the engine put on the caller's channel, in order."""
        return [e["Value"] for e in self._of(caller) if e["Event"] == "VarSet"]

    def hold_steps(self, caller: str) -> list[tuple[str, str]]:
        """(application, data) of every step the caller's channel ran in the hold loop."""
        return [(e.get("Application", ""), e.get("AppData", "")) for e in self._of(caller)
                if e["Event"] == "Newexten"]

    def played(self, caller: str, sound: str) -> int:
        # Background: a key pressed while it is said is heard (the callback offer's)
        return self.hold_steps(caller).count(("BackGround", sound))


@contextmanager
def hold_watch(stack: Stack) -> Iterator[HoldWatch]:
    secrets = json.loads((stack.state / "secrets.json").read_text(encoding="utf-8"))
    watch = HoldWatch(secrets["ami_monitor_secret"])
    try:
        time.sleep(0.3)  # logged in before the call starts
        yield watch
    finally:
        watch.close()


def _position_one(tmp_path: Path, with_figure: bool) -> set[str]:
    """Every sentence a caller first in line may hear: with a figure (1 to 10 minutes, or
    more than 10) or without."""
    waits: list[float | None] = [*(60.0 * m for m in range(1, 11)), CAP_S + 1]
    return {tts_sound(tmp_path, text(1, w, "ja")) for w in (waits if with_figure else [None])}


def _caller(caller: str, slot: int, calls: int = 1, period_ms: int = 1000
            ) -> subprocess.Popen[bytes]:
    """Callers who press 1 (Japanese) 7 s in and stay until the operator hangs up."""
    return subprocess.Popen(
        ["sipp", f"127.0.0.1:{SIP_PORT}", "-sf", str(SIPP_DIR / "caller_wait.xml"),
         "-s", SERVICE, "-i", "127.0.0.1", "-p", str(CALLER_PORT + 400 + slot),
         "-mp", str(CALLER_MEDIA + 400 + 20 * slot), "-m", str(calls), "-r", "1",
         "-rp", str(period_ms), "-key", "caller", caller, "-key", "dtmf", DTMF,
         "-nostdin", "-timeout", "180s"],
        cwd=SIPP_DIR, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)


def _operator(talk_ms: int, calls: int) -> subprocess.Popen[bytes]:
    """Operator 7001's phone (its fixed contact): answers, talks talk_ms, hangs up."""
    return subprocess.Popen(
        ["sipp", "-sf", str(SIPP_DIR / "operator_hangup.xml"), "-i", "127.0.0.1", "-p",
         str(phone_port(1)), "-mp", str(phone_media(1)), "-m", str(calls), "-d", str(talk_ms),
         "-nostdin", "-timeout", "180s"],
        cwd=SIPP_DIR, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)


def _done(procs: list[subprocess.Popen[bytes]], timeout: float) -> list[int | None]:
    deadline = time.monotonic() + timeout
    codes: list[int | None] = []
    for p in procs:
        try:
            _, err = p.communicate(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
        if p.returncode:
            print(f"sipp {p.pid} exited {p.returncode}: {err.decode(errors='replace')[-1500:]}")
        codes.append(p.returncode)
    return codes


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.communicate()


def _at_entry(steps: list[tuple[str, str]], sound: str) -> bool:
    """The sound played before the hold loop's first music (WaitExten with music; or with no
    music yet, while it plays): at entry."""
    apps = [app for app, _ in steps]
    if ("BackGround", sound) not in steps:
        return False
    return "WaitExten" not in apps or steps.index(("BackGround", sound)) < apps.index(
        "WaitExten")


def test_a_waiting_caller_hears_the_position_at_entry_and_again_only_when_it_changes(
        stack: Stack, procs: list[subprocess.Popen[bytes]], tmp_path: Path) -> None:
    first_says = tts_sound(tmp_path, "ただいま、あなたの順番は1番目です。")
    second_says = tts_sound(tmp_path, "ただいま、あなたの順番は2番目です。")
    stack.set_ready()  # nobody logged in: the position is said, no wait figure
    with hold_watch(stack) as watch:
        procs.append(_caller("0366600001", 0))
        wait_for("the first caller's position", lambda: watch.sounds_set("0366600001"), 40)
        set_first = watch.sounds_set("0366600001")
        assert len(set_first) == 1 and set_first[0].endswith(first_says), set_first
        sound = set_first[0]
        # the file is in the engine's sounds, where Asterisk reads it
        assert (stack.state / "asterisk" / "sounds" / f"{first_says[1:]}.wav").is_file()
        wait_for("the position at entry", lambda: watch.played("0366600001", sound), 20)
        assert _at_entry(watch.hold_steps("0366600001"), sound), watch.hold_steps("0366600001")
        # the next slot (music, the busy message, the position's turn) says nothing: unchanged
        wait_for("the next announcement slot", lambda: [
            app for app, _ in watch.hold_steps("0366600001")].count("Return") >= 2, 60)
        assert watch.played("0366600001", sound) == 1
        assert watch.sounds_set("0366600001") == [sound]

        procs.append(_caller("0366600002", 1))
        wait_for("the second caller's position", lambda: watch.sounds_set("0366600002"), 40)
        second = watch.sounds_set("0366600002")[0]
        assert second.endswith(second_says), second
        wait_for("the second position at entry", lambda: watch.played("0366600002", second),
                  20)
        assert _at_entry(watch.hold_steps("0366600002"), second)

        # an operator logs in and takes the first caller: the second moves up and hears it at
        # the next slot (about 14 s after entry), well before the operator is free (20 s talk)
        procs.append(_operator(talk_ms=20000, calls=2))
        time.sleep(0.5)  # the phone listens before it is rung
        stack.set_ready("7001")
        wait_for("the second caller's new position",
                  lambda: len(watch.sounds_set("0366600002")) >= 2, 30)
        moved = watch.sounds_set("0366600002")[1]
        assert any(moved.endswith(s) for s in _position_one(tmp_path, with_figure=False)
                   | _position_one(tmp_path, with_figure=True)), moved
        wait_for("the new position played", lambda: watch.played("0366600002", moved), 60)
        assert watch.played("0366600002", second) == 1
        assert watch.sounds_set("0366600001") == [sound]  # answered: told nothing more
        assert _done(procs, 90) == [0, 0, 0]


def test_behind_a_busy_operator_the_caller_hears_the_expected_wait(
        stack: Stack, procs: list[subprocess.Popen[bytes]], tmp_path: Path) -> None:
    procs.append(_operator(talk_ms=5000, calls=5))
    time.sleep(0.5)
    stack.set_ready("7001")
    with hold_watch(stack) as watch:
        # three calls answered and their after-call work over: the queue's answer rate
        first_three = _caller("0366600010", 2, calls=3, period_ms=3000)
        assert _done([first_three], 150) == [0]
        wait_for("7001 free after the third call",
                  lambda: stack.agents()["7001"]["state"] == "available", 20)
        # the next caller is answered at once and told nothing; the one after (queued some 8 s
        # later, after the menu) waits for them: 5 s talk and 8 s after-call work
        procs.append(_caller("0366600011", 3))
        wait_for("7001 on the fourth call",
                  lambda: stack.agents()["7001"]["state"] in ("ringing", "on_call"), 30)
        procs.append(_caller("0366600012", 4))
        wait_for("the waiting caller's sentence", lambda: watch.sounds_set("0366600012"), 40)
        said = watch.sounds_set("0366600012")[0]
        assert any(said.endswith(s) for s in _position_one(tmp_path, with_figure=True)), (
            f"{said} is not 'first in line, about N minutes'")
        wait_for("the sentence at entry", lambda: watch.played("0366600012", said), 20)
        assert _at_entry(watch.hold_steps("0366600012"), said)
        assert watch.sounds_set("0366600011") == []
        assert _done(procs, 90) == [0, 0, 0]
