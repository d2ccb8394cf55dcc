"""Real Asterisk 22 + SIPp + the engine as a subprocess, on test-only ports.

When Asterisk, SIPp or root is missing these tests fail (they are never skipped); `make unit`
leaves them out.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest
import yaml

from harness.stack_setup import madoguchi_cmd, open_around_the_clock, seed_demo_board
from ivr.tts import Tts

ROOT = Path(__file__).resolve().parents[2]
SIPP_DIR = ROOT / "tests" / "sipp"
# All ports derive from one base so that several stacks can run side by side on one machine.
BASE = int(os.environ.get("MADOGUCHI_E2E_PORT_BASE", "20000"))
AMI_PORT, AGI_PORT, SIP_PORT, CALLER_PORT, HTTP_PORT = (BASE + 38, BASE + 45, BASE + 60,
                                                         BASE + 61, BASE + 80)
RTP_RANGE = (BASE + 1000, BASE + 1999)
CALLER_MEDIA = BASE + 2000


def phone_port(n: int) -> int:
    """SIP port of test phone n (1 = operator 7001's fixed contact)."""
    return BASE + 70 + n


def phone_media(n: int) -> int:
    return BASE + 3000 + 100 * n


OPERATOR_PORT, OPERATOR_MEDIA = phone_port(1), phone_media(1)
CITY_PBX_PORT, CITY_PBX_MEDIA = BASE + 90, BASE + 4000


def _unavailable(reason: str) -> None:
    """A missing Asterisk, SIPp or root is a failure, never a skip: `make unit` leaves these
    tests out instead (-m "not asterisk")."""
    pytest.fail(f"end-to-end dependency missing: {reason}")


def _wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


@dataclass
class Stack:
    config: Path
    state: Path
    token: str
    http: str
    engine_log: IO[bytes] | None = None
    engine: subprocess.Popen[bytes] | None = None
    database_url: str | None = None  # None: the engine's SQLite file in its state folder

    def start_engine(self) -> None:
        """Start `madoguchi run` and wait until /healthz says it is up."""
        env = dict(os.environ)
        env.pop("MADOGUCHI_DATABASE_URL", None)
        if self.database_url is not None:
            env["MADOGUCHI_DATABASE_URL"] = self.database_url
        self.engine = subprocess.Popen(madoguchi_cmd(self.config, self.state, "run"), env=env,
                                       stdin=subprocess.DEVNULL, stdout=self.engine_log,
                                       stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.http + "/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        pytest.fail("engine never became healthy")

    def stop_engine(self) -> int:
        """SIGTERM the engine (Asterisk keeps running) and return its exit code."""
        assert self.engine is not None
        self.engine.terminate()
        return self.engine.wait(timeout=20)

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str],
                                                                           bytes]:
        req = urllib.request.Request(self.http + path, headers={
            "Authorization": f"Bearer {self.token}", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            with err:
                return err.code, dict(err.headers), err.read()

    def json(self, path: str) -> object:
        status, _, body = self.get(path)
        assert status == 200, (status, body)
        return json.loads(body)

    def post(self, path: str, body: object) -> tuple[int, object]:
        req = urllib.request.Request(self.http + path, data=json.dumps(body).encode(),
                                     method="POST", headers={
                                         "Authorization": f"Bearer {self.token}",
                                         "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            with err:
                return err.code, json.loads(err.read())

    def agents(self) -> dict[str, dict[str, object]]:
        data = self.json("/api/agents")
        assert isinstance(data, dict)
        return {a["id"]: a for a in data["agents"]}

    def set_ready(self, *agent_ids: str, timeout: float = 30) -> None:
        """Log every operator out, then log in agent_ids in that order (the first has been
        idle longest). Waits for operators still on a call or ringing to finish first."""
        deadline = time.monotonic() + timeout
        for agent_id in self.agents():
            while self.agents()[agent_id]["state"] in ("ringing", "on_call"):
                assert time.monotonic() < deadline, f"{agent_id} stays busy"
                time.sleep(0.2)
            if self.agents()[agent_id]["state"] != "logged_out":
                status, body = self.post(f"/api/agents/{agent_id}/state", {"action": "logout"})
                assert status == 200, body
        for agent_id in agent_ids:
            status, body = self.post(f"/api/agents/{agent_id}/state", {"action": "login"})
            assert status == 200, body
            time.sleep(0.01)  # distinct idle-since times keep the order

    def call_row(self, caller: str, timeout: float = 20) -> dict[str, object]:
        """The one call record of this caller, once it is written."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self.call_rows(caller)
            if rows:
                assert len(rows) == 1, rows
                return rows[0]
            time.sleep(0.3)
        raise AssertionError(f"no call record for caller {caller}")

    def call_rows(self, caller: str) -> list[dict[str, object]]:
        """Call records straight from the database (there is no call-record API yet)."""
        if self.database_url is not None:
            return asyncio.run(_pg_call_rows(self.database_url, caller))
        with sqlite3.connect(self.state / "madoguchi.db") as db:
            db.row_factory = sqlite3.Row
            calls = [dict(r) for r in db.execute("SELECT * FROM calls WHERE caller = ?",
                                                 (caller,))]
            for call in calls:
                call["recordings"] = db.execute(
                    "SELECT count(*) FROM recordings WHERE call_id = ?", (call["id"],)
                ).fetchone()[0]
        return calls

    def metric(self, name: str, **labels: str) -> float:
        _, _, body = self.get("/metrics")
        want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
                       if labels else "")
        for line in body.decode().splitlines():
            if line.startswith(want + " "):
                return float(line.split()[-1])
        return 0.0


async def _pg_call_rows(url: str, caller: str) -> list[dict[str, object]]:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        calls = [dict(r) for r in await conn.fetch("SELECT * FROM calls WHERE caller = $1",
                                                   caller)]
        for call in calls:
            call["recordings"] = await conn.fetchval(
                "SELECT count(*) FROM recordings WHERE call_id = $1", call["id"])
        return calls
    finally:
        await conn.close()


class AmiLink:
    """A plain AMI login for the tests' own housekeeping (hang up leftovers, ask Asterisk
    what is live). Replies are read until the action's own end, matched by ActionID."""

    def __init__(self, username: str, secret: str) -> None:
        self._sock = socket.create_connection(("127.0.0.1", AMI_PORT), timeout=10)
        self._buf = b""
        self._sock.recv(128)  # banner
        self._n = 0
        reply = self.action({"Action": "Login", "Username": username, "Secret": secret,
                             "Events": "off"})
        assert reply[0].get("Response") == "Success", reply

    def _message(self) -> dict[str, str]:
        while b"\r\n\r\n" not in self._buf:
            data = self._sock.recv(65536)
            if not data:
                raise ConnectionError("AMI closed the connection")
            self._buf += data
        raw, self._buf = self._buf.split(b"\r\n\r\n", 1)
        msg: dict[str, str] = {}
        for line in raw.decode(errors="replace").split("\r\n"):
            key, _, value = line.partition(": ")
            msg.setdefault(key, value)
        return msg

    def action(self, fields: dict[str, str]) -> list[dict[str, str]]:
        self._n += 1
        action_id = f"test-{self._n}"
        self._sock.sendall("".join(f"{k}: {v}\r\n" for k, v in
                                   {**fields, "ActionID": action_id}.items()).encode()
                           + b"\r\n")
        out: list[dict[str, str]] = []
        while True:
            msg = self._message()
            if msg.get("ActionID") != action_id:
                continue
            out.append(msg)
            if "Response" in msg and msg.get("EventList") != "start":
                return out
            if msg.get("EventList") == "Complete":
                return out

    def channels(self) -> list[str]:
        return [m["Channel"] for m in self.action({"Action": "CoreShowChannels"})
                if m.get("Event") == "CoreShowChannel"]

    def close(self) -> None:
        self._sock.close()


def _stray_sipp() -> list[int]:
    """SIPp processes the tests started (their scenarios live in tests/sipp) and left behind."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"sipp") and any(str(SIPP_DIR).encode() in a
                                                      for a in argv):
            found.append(int(proc.name))
    return found


def _until(what: str, check: Callable[[], bool], timeout: float, problems: list[str],
           found: Callable[[], object]) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            problems.append(f"{what}: still {found()!r} after {timeout:.0f} s")
            return
        time.sleep(0.2)


def reset_stack(s: Stack) -> None:
    """Bring the stack to the state every test starts from: the engine up, no SIPp left from
    an earlier test, no live channel, nobody waiting, every operator logged in (in id order,
    as at start) and every service on its hours. Fails with what it found when it cannot,
    so that one failed test stays one failure."""
    problems: list[str] = []
    for pid in _stray_sipp():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if s.engine is None or s.engine.poll() is not None:
        s.start_engine()
    secrets = json.loads((s.state / "secrets.json").read_text(encoding="utf-8"))
    ami = AmiLink("madoguchi", secrets["ami_secret"])
    try:
        for channel in ami.channels():
            ami.action({"Action": "Hangup", "Channel": channel, "Cause": "16"})
        _until("live channels", lambda: not ami.channels(), 30, problems, ami.channels)
    finally:
        ami.close()

    # a callback left by an earlier test waits in line as a caller: cancel it (a callback
    # being dialled ends with its legs, hung up above)
    listed = s.json("/api/callbacks")
    assert isinstance(listed, dict)
    for cb in listed["callbacks"]:
        if cb["state"] == "pending":
            s.post(f"/api/callbacks/{cb['id']}/cancel", {})

    def waiting() -> dict[str, int]:
        data = s.json("/api/queues")
        assert isinstance(data, dict)
        return {q["id"]: q["waiting"] for q in data["queues"] if q["waiting"]}

    def busy() -> dict[str, object]:
        return {a: v["state"] for a, v in s.agents().items()
                if v["state"] in ("ringing", "on_call")}

    _until("waiting callers", lambda: not waiting(), 20, problems, waiting)
    _until("operators busy", lambda: not busy(), 20, problems, busy)
    if not problems:
        for agent_id, agent in sorted(s.agents().items()):
            if agent["state"] != "logged_out":
                status, body = s.post(f"/api/agents/{agent_id}/state", {"action": "logout"})
                if status != 200:
                    problems.append(f"{agent_id} logout: {status} {body}")
        for agent_id in sorted(s.agents()):
            status, body = s.post(f"/api/agents/{agent_id}/state", {"action": "login"})
            if status != 200:
                problems.append(f"{agent_id} login: {status} {body}")
            time.sleep(0.01)  # distinct idle-since times keep the order
        for service in ("city", "water", "events"):
            current = s.json(f"/api/schedules/{service}")
            assert isinstance(current, dict)
            override = current.get("override")
            if override is None or override.get("mode") == "normal":
                continue
            status, body = s.post(f"/api/schedules/{service}/override", {"mode": "normal"})
            if status != 200:
                problems.append(f"{service} back to its hours: {status} {body}")
    if problems:
        pytest.fail("could not reset the stack before this test: " + "; ".join(problems))


@pytest.fixture(autouse=True)
def fresh_stack(request: pytest.FixtureRequest) -> None:
    """Every end-to-end test starts from a known stack state (see reset_stack)."""
    if "stack" in request.fixturenames:
        reset_stack(request.getfixturevalue("stack"))


def write_test_config(dest: Path) -> None:
    shutil.copytree(ROOT / "config", dest)
    main = yaml.safe_load((dest / "madoguchi.yaml").read_text(encoding="utf-8"))
    main["engine"] = {"http": {"host": "127.0.0.1", "port": HTTP_PORT},
                      "fastagi": {"host": "127.0.0.1", "port": AGI_PORT}}
    main["asterisk"]["ami"]["port"] = AMI_PORT
    main["asterisk"]["sip"]["port"] = SIP_PORT
    main["asterisk"]["rtp"] = {"start": RTP_RANGE[0], "end": RTP_RANGE[1]}
    # city: short rings and a wrap-up long enough to observe; water: a quick turnover, so
    # bursts run fast (the water flow is pointed at it below; operators serve both queues)
    main["queues"] = [
        {"id": "city", "ring_timeout": 8, "wrap_up": 8, "max_wait": 120,
         "announce_every": 10,
         # offered after 30 s of waiting (tests/e2e/test_callback.py); never sooner
         "callback": {"key": "5", "after": 30, "min_expected_wait": 7200, "attempts": 2,
                      "retry_delay": 10, "ring": 20}},
        {"id": "water", "ring_timeout": 8, "wrap_up": 1, "max_wait": 120},
    ]
    main["services"][1]["queue"] = "water"
    main["transfers"]["city_pbx"]["port"] = CITY_PBX_PORT
    main["recordings"] = {"reconcile_interval": 10}  # reconciler reports seen within seconds
    main["recordings"] = {"reconcile_interval": 10}  # reconciler reports seen within seconds
    (dest / "madoguchi.yaml").write_text(yaml.safe_dump(main, allow_unicode=True),
                                         encoding="utf-8")
    agents = yaml.safe_load((dest / "agents.yaml").read_text(encoding="utf-8"))
    # one operator is a SIPp phone at a fixed address; the others have no phone registered
    agents["agents"][0]["contact"] = f"sip:127.0.0.1:{OPERATOR_PORT}"
    for agent in agents["agents"]:
        agent["queues"] = ["city", "water"]
    water = dest / "flows" / "water.yaml"
    water.write_text(water.read_text(encoding="utf-8").replace("queue: city", "queue: water"),
                     encoding="utf-8")
    (dest / "agents.yaml").write_text(yaml.safe_dump(agents, allow_unicode=True),
                                      encoding="utf-8")
    open_around_the_clock(dest)
    seed_demo_board(dest)  # the IVR and console tests hear and show the demo events


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory,
          e2e_database_url: str | None) -> Iterator[Stack]:
    if shutil.which("sipp") is None:
        _unavailable("sipp is not installed (Debian sip-tester)")
    if os.geteuid() != 0 and shutil.which("asterisk") is None:
        _unavailable("running Asterisk in its root file system needs root")
    base = tmp_path_factory.mktemp("stack")
    config, state = base / "config", base / "state"
    write_test_config(config)
    build = subprocess.run(madoguchi_cmd(config, state, "pbx", "config"), capture_output=True,
                           text=True, check=False)
    if build.returncode != 0:
        _unavailable(f"madoguchi pbx config failed: {build.stderr[-2000:]}")
    logs = base / "logs"
    logs.mkdir()
    ast_log = open(logs / "asterisk.log", "wb")
    asterisk = subprocess.Popen(madoguchi_cmd(config, state, "pbx", "start"),
                                stdin=subprocess.DEVNULL, stdout=ast_log,
                                stderr=subprocess.STDOUT)
    engine_log = open(logs / "engine.log", "wb")
    s: Stack | None = None
    try:
        if not _wait_port(AMI_PORT, 60):
            _unavailable("Asterisk did not open AMI: "
                         + (logs / "asterisk.log").read_text(errors="replace")[-3000:])
        secrets = json.loads((state / "secrets.json").read_text(encoding="utf-8"))
        s = Stack(config, state, secrets["api_token"], f"http://127.0.0.1:{HTTP_PORT}",
                  engine_log, database_url=e2e_database_url)
        s.start_engine()
        yield s
    finally:
        engine = s.engine if s is not None else None
        for proc in (engine, asterisk):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        ast_log.close()
        engine_log.close()
        artifacts = ROOT / "artifacts" / "e2e-logs"
        shutil.rmtree(artifacts, ignore_errors=True)
        shutil.copytree(logs, artifacts)
        if engine is not None:
            assert engine.returncode == 0, "engine did not shut down cleanly on SIGTERM"


def sipp_register(extension: str, password: str, port: int) -> subprocess.CompletedProcess[bytes]:
    """Register an operator's phone at 127.0.0.1:port, as a softphone would."""
    return subprocess.run(
        ["sipp", f"127.0.0.1:{SIP_PORT}", "-sf", str(SIPP_DIR / "register.xml"), "-s",
         extension, "-au", extension, "-ap", password, "-i", "127.0.0.1", "-p", str(port),
         "-m", "1", "-nostdin", "-timeout", "20s"],
        cwd=SIPP_DIR, stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=False)


def sipp_unregister(extension: str, password: str, port: int
                    ) -> subprocess.CompletedProcess[bytes]:
    """Remove every registration of an operator's phone, as a softphone shutting down does."""
    return subprocess.run(
        ["sipp", f"127.0.0.1:{SIP_PORT}", "-sf", str(SIPP_DIR / "unregister.xml"), "-s",
         extension, "-au", extension, "-ap", password, "-i", "127.0.0.1", "-p", str(port),
         "-m", "1", "-nostdin", "-timeout", "20s"],
        cwd=SIPP_DIR, stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=False)


def sipp_operator(ring_ms: int = 1500, calls: int = 1, port: int = OPERATOR_PORT,
                  media_port: int = OPERATOR_MEDIA) -> subprocess.Popen[bytes]:
    """A SIPp phone (by default at operator 7001's fixed contact): rings, answers, talks."""
    return subprocess.Popen(
        ["sipp", "-sf", str(SIPP_DIR / "operator.xml"), "-i", "127.0.0.1", "-p",
         str(port), "-mp", str(media_port), "-m", str(calls), "-d", str(ring_ms),
         "-nostdin", "-timeout", "90s"],
        cwd=SIPP_DIR, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)


def sipp_short_caller(service: str, caller: str,
                      hold_ms: int) -> subprocess.CompletedProcess[bytes]:
    """A SIPp caller that hangs up hold_ms after being answered, without pressing keys."""
    return subprocess.run(
        ["sipp", f"127.0.0.1:{SIP_PORT}", "-sf", str(SIPP_DIR / "caller_short.xml"), "-s",
         service, "-i", "127.0.0.1", "-p", str(CALLER_PORT), "-mp", str(CALLER_MEDIA),
         "-m", "1", "-d", str(hold_ms), "-key", "caller", caller, "-nostdin", "-timeout", "60s"],
        cwd=SIPP_DIR, stdin=subprocess.DEVNULL, capture_output=True, timeout=90, check=False)


def sipp_caller(service: str, caller: str, dtmf: str,
                talk_ms: int) -> subprocess.CompletedProcess[bytes]:
    """A SIPp caller: dials service, presses dtmf 7 s in, talks 7 s of audio, waits
    talk_ms after the audio starts, hangs up."""
    return subprocess.run(
        ["sipp", f"127.0.0.1:{SIP_PORT}", "-sf", str(SIPP_DIR / "caller.xml"), "-s", service,
         "-i", "127.0.0.1", "-p", str(CALLER_PORT), "-mp", str(CALLER_MEDIA), "-m", "1",
         "-d", str(talk_ms), "-key", "caller", caller, "-key", "dtmf",
         f"/usr/share/sip-tester/dtmf_2833_{dtmf}.pcap",
         "-nostdin", "-timeout", "90s"],
        cwd=SIPP_DIR, stdin=subprocess.DEVNULL, capture_output=True, timeout=120, check=False)


class AmiWatch:
    """The read-only monitor AMI login, recording in a thread the events `keep` takes
    (AGIExec here; subclasses choose others)."""

    def __init__(self, secret: str) -> None:
        self.events: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._sock = socket.create_connection(("127.0.0.1", AMI_PORT), timeout=5)
        self._sock.sendall(f"Action: Login\r\nUsername: madoguchi-monitor\r\nSecret: {secret}\r\n"
                           "Events: on\r\n\r\n".encode())
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        buf = b""
        self._sock.settimeout(0.5)
        while not self._stop:
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            buf += data
            while b"\r\n\r\n" in buf:
                block, buf = buf.split(b"\r\n\r\n", 1)
                msg: dict[str, str] = {}
                for line in block.decode(errors="replace").split("\r\n"):
                    key, sep, value = line.partition(": ")
                    if sep:
                        msg.setdefault(key, value)
                if self.keep(msg):
                    with self._lock:
                        self.events.append(msg)

    def keep(self, msg: dict[str, str]) -> bool:
        return msg.get("Event", "").startswith("AGIExec")

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=2)
        self._sock.close()

    def played(self, caller: str) -> list[tuple[str, str]]:
        """(file, result) of every STREAM FILE / GET DATA run for this caller's channel."""
        starts = {e.get("CommandId"): e for e in self.events
                  if e["Event"] == "AGIExecStart" and e.get("CallerIDNum") == caller}
        out = []
        for e in self.events:
            start = starts.get(e.get("CommandId"))
            if e["Event"] == "AGIExecEnd" and start is not None \
                    and e.get("Channel") == start.get("Channel"):
                cmd = start.get("Command", "")
                if cmd.startswith(("STREAM FILE", "GET DATA")):
                    # Command: STREAM FILE "<file>" "<escape digits>"
                    out.append((cmd.split(" ")[2].strip('"'),
                                f"{e.get('ResultCode')} {e.get('Result')}"))
        return out


@contextmanager
def ami_watch(stack: Stack) -> Iterator[AmiWatch]:
    secrets = json.loads((stack.state / "secrets.json").read_text(encoding="utf-8"))
    watch = AmiWatch(secrets["ami_monitor_secret"])
    try:
        time.sleep(0.3)  # logged in before the call starts
        yield watch
    finally:
        watch.close()


def sipp_keys(service: str, caller: str, key1: str, key2: str) -> subprocess.CompletedProcess[
        bytes]:
    return subprocess.run(
        ["sipp", f"127.0.0.1:{SIP_PORT}", "-sf", str(SIPP_DIR / "caller_keys.xml"), "-s",
         service, "-i", "127.0.0.1", "-p", str(CALLER_PORT), "-mp", str(CALLER_MEDIA),
         "-m", "1", "-key", "caller", caller,
         "-key", "dtmf1", f"/usr/share/sip-tester/dtmf_2833_{key1}.pcap",
         "-key", "dtmf2", key2,
         "-nostdin", "-timeout", "120s"],
        cwd=SIPP_DIR, stdin=subprocess.DEVNULL, capture_output=True, timeout=150, check=False)


def wait_for(what: str, check: Callable[[], object], timeout: float) -> None:
    """Poll a state until it holds; fail naming what never came."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def sipp_done(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """A SIPp run's exit code (killed after `timeout`), its error output printed on failure."""
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    if proc.returncode:
        print(f"sipp {proc.args[2]} exited {proc.returncode}: "
              f"{err.decode(errors='replace')[-1500:]}")
    return proc.returncode


def tts_sound(tmp_path: Path, said: str) -> str:
    """The tail of the sound the engine makes for a Japanese sentence (tts/ja/<hash>)."""
    key = Tts(tmp_path / "tts", tmp_path / "cache").key(said, "ja")
    assert key is not None, "Open JTalk is needed here as on the engine"
    return f"/tts/{key}"
