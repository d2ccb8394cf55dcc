"""SIPp load against the real stack, madoguchi's ACD and Asterisk's own app_queue side by side.

  .venv/bin/python -m bench.load [--calls 100] [--rate 2] [--operators 5] [--talk-ms 2000]
                                [--wrap-up 2] [--knee 10,20,30,40,50,60] ...

One Asterisk 22 (the project's root file system, own ports from --port-base) and one engine are
started. The same load runs twice in one go: callers at --rate per second dial the water
bureau (DID 2000: the shipped IVR flow, the key answers its menu by barge-in) into the queue,
operators (SIPp, one process answering for every operator) ring --ring-ms, answer and talk
--talk-ms, recording on; then, with the engine stopped, the same callers dial DID 9000: a
plain dialplan (Read for the key, MixMonitor while bridged, Queue on the fail-open queue:
leastrecent, the same wrap-up) on the same Asterisk. --knee then raises the rate on madoguchi
alone with short calls until the first failed call.
Needs root (Asterisk runs in its root file system) and sipp. Not a test: run it on a quiet
machine; the figures are the machine's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import yaml

from ami_bridge.pbx.conffile import PATH, Field, fill
from ami_bridge.pbx.runner import choose, remote_command
from bench.load_stats import RunFigures, fairness, percentile, summarize
from core.settings import load_settings
from harness.stack_setup import madoguchi_cmd, open_around_the_clock

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

WANTED = {"Newchannel", "DTMFEnd", "BridgeEnter", "Hangup"}
TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Ports:
    base: int

    @property
    def ami(self) -> int: return self.base + 38
    @property
    def agi(self) -> int: return self.base + 45
    @property
    def sip(self) -> int: return self.base + 60
    @property
    def caller(self) -> int: return self.base + 61
    @property
    def operators(self) -> int: return self.base + 70
    @property
    def http(self) -> int: return self.base + 80
    @property
    def caller_media(self) -> int: return self.base + 2000
    @property
    def operator_media(self) -> int: return self.base + 3000


@dataclass(frozen=True)
class Load:
    calls: int
    rate: float
    operators: int
    ring_ms: int
    talk_ms: int
    wrap_up: int
    dtmf_ms: int
    audio: bool


def write_config(dest: Path, ports: Ports, operators: int, wrap_up: int) -> None:
    """The shipped configuration on the bench's ports, open around the clock, with
    `operators` operators who all are one SIPp process."""
    shutil.copytree(ROOT / "config", dest)
    main = yaml.safe_load((dest / "madoguchi.yaml").read_text(encoding="utf-8"))
    main["engine"] = {"http": {"host": "127.0.0.1", "port": ports.http},
                      "fastagi": {"host": "127.0.0.1", "port": ports.agi}}
    main["asterisk"]["ami"]["port"] = ports.ami
    main["asterisk"]["sip"]["port"] = ports.sip
    main["asterisk"]["rtp"] = {"start": ports.base + 10000, "end": ports.base + 19999}
    main["queues"] = [{"id": "city", "ring_timeout": 15, "wrap_up": wrap_up, "max_wait": 600,
                       "announce_every": 30}]
    main["transfers"]["city_pbx"]["port"] = ports.base + 90
    (dest / "madoguchi.yaml").write_text(yaml.safe_dump(main, allow_unicode=True),
                                         encoding="utf-8")
    agents = [{"id": str(7000 + n), "name": f"op{n}", "queues": ["city"],
               "contact": f"sip:127.0.0.1:{ports.operators}"} for n in range(1, operators + 1)]
    (dest / "agents.yaml").write_text(yaml.safe_dump({"agents": agents}), encoding="utf-8")
    open_around_the_clock(dest)


APP_QUEUE_DIALPLAN = """
; bench only: what a site would run without the engine (a key menu, then app_queue)
[bench-appqueue]
exten => s,1,Answer()
 same => n,Background(hello-world)
 same => n,WaitExten(10)
exten => 1,1,MixMonitor({{recordings}}/bench/${UNIQUEID}.wav,b)
 same => n,Queue(failopen-city,,,,3600)
 same => n,Hangup(16)
exten => t,1,Hangup(16)
exten => i,1,Hangup(16)
"""


def add_app_queue_route(etc: Path) -> None:
    """DID 9000 → the plain app_queue dialplan, recording into recordings/bench."""
    path = etc / "extensions.conf"
    text = path.read_text(encoding="utf-8")
    m = re.search(r"MixMonitor\(([^)]*)/failopen/", text)
    assert m is not None, "fail-open MixMonitor not found in the generated dialplan"
    text = text.replace("[from-trunk]\n",
                        "[from-trunk]\nexten => 9000,1,Goto(bench-appqueue,s,1)\n", 1)
    # through the writer's template checks: the path's kind, balanced brackets
    bench = fill("extensions.conf", APP_QUEUE_DIALPLAN, {"recordings": Field(PATH, m.group(1))})
    path.write_text(text + bench, encoding="utf-8")


PCAP_MS = 4720  # /usr/share/sip-tester/g711a.pcap: 236 packets of 20 ms


def talk_block(load: Load) -> str:
    """The operator's side of the conversation: the recording back to back for talk_ms."""
    if not load.audio:
        return f'  <pause milliseconds="{load.talk_ms}"/>'
    lines, left = [], load.talk_ms
    while left > 0:
        lines += ['  <nop><action><exec play_pcap_audio="/usr/share/sip-tester/g711a.pcap"/>'
                  '</action></nop>', f'  <pause milliseconds="{min(left, PCAP_MS)}"/>']
        left -= PCAP_MS
    return "\n".join(lines)


def _wait(check: object, timeout: float, what: str) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise SystemExit(f"bench: {what} did not happen within {timeout:.0f} s")


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


# --- CPU and memory of processes, from /proc ---------------------------------------------

def cpu_seconds(pid: int) -> float:
    """User + system time of a process, its threads and its reaped children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / TICK


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return math.nan


def descendants(pid: int, comm: str) -> list[int]:
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            names[int(d.name)] = stat[stat.index("(") + 1:stat.rindex(")")]
            parents[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found = []
    for p, name in names.items():
        q = p
        while q > 1 and q != pid:
            q = parents.get(q, 0)
        if q == pid and name == comm:
            found.append(p)
    return found


# --- the AMI listener ---------------------------------------------------------------------

class AmiRecorder:
    """A second AMI session that keeps the few events the figures need."""

    def __init__(self, port: int, username: str, secret: str) -> None:
        self.port, self.username, self.secret = port, username, secret
        self.events: list[dict[str, str]] = []
        self._live: set[str] = set()  # channels up now, kept as events arrive
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        await reader.readline()
        writer.write(f"Action: Login\r\nUsername: {self.username}\r\nSecret: {self.secret}\r\n"
                     "Events: call,dtmf\r\n\r\n".encode())
        await writer.drain()
        self._writer = writer
        self._task = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            block = await reader.readuntil(b"\r\n\r\n")
            fields: dict[str, str] = {}
            for line in block.decode("utf-8", "replace").split("\r\n"):
                key, sep, value = line.partition(": ")
                if sep:
                    fields[key] = value
            name = fields.get("Event")
            if name in WANTED:
                self.events.append(fields)
            if name == "Newchannel":
                self._live.add(fields.get("Uniqueid", ""))
            elif name == "Hangup":
                self._live.discard(fields.get("Uniqueid", ""))

    def live_channels(self) -> int:
        return len(self._live)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, asyncio.IncompleteReadError):
                pass
        self._writer.close()


# --- the stack ----------------------------------------------------------------------------

class Bench:
    def __init__(self, work: Path, ports: Ports, operators: int, wrap_up: int,
                 profile: bool = False) -> None:
        self.work, self.ports, self.wrap_up, self.profile = work, ports, wrap_up, profile
        self.config, self.state = work / "config", work / "state"
        self.operators = [str(7000 + n) for n in range(1, operators + 1)]
        write_config(self.config, ports, operators, wrap_up)
        subprocess.run(madoguchi_cmd(self.config, self.state, "pbx", "config"), check=True,
                       stdout=subprocess.DEVNULL)
        self.logs = work / "logs"
        self.logs.mkdir()
        self.asterisk = subprocess.Popen(
            madoguchi_cmd(self.config, self.state, "pbx", "start"), stdin=subprocess.DEVNULL,
            stdout=open(self.logs / "asterisk.log", "wb"), stderr=subprocess.STDOUT)
        _wait(lambda: _port_open(ports.ami), 90, "Asterisk's AMI opening")
        self.secrets = json.loads((self.state / "secrets.json").read_text(encoding="utf-8"))
        self.engine: subprocess.Popen[bytes] | None = None
        # `pbx start` writes the configuration afresh: the bench's route goes in after it
        add_app_queue_route(self.state / "asterisk" / "etc")
        (self.state / "asterisk" / "recordings" / "bench").mkdir(exist_ok=True)
        # the engine's AMI login may not reload: the CLI's control socket does
        remote_command(choose(load_settings(self.config, self.state)), "dialplan reload")

    def asterisk_pid(self) -> int:
        pids = descendants(self.asterisk.pid, "asterisk")
        assert pids, "no asterisk process under the runner"
        return max(pids, key=cpu_seconds)

    def start_engine(self) -> None:
        self.engine = subprocess.Popen(
            madoguchi_cmd(self.config, self.state, "run"), stdin=subprocess.DEVNULL,
            stdout=open(self.logs / "engine.log", "ab"), stderr=subprocess.STDOUT)
        _wait(lambda: _healthy(f"http://127.0.0.1:{self.ports.http}/healthz"), 60,
              "the engine becoming healthy")

    def stop_engine(self) -> None:
        if self.engine is not None and self.engine.poll() is None:
            self.engine.terminate()
            try:
                self.engine.wait(timeout=30)
            except subprocess.TimeoutExpired:
                # past the knee its backlog can take minutes to drain: the figures are taken
                print("bench: the engine did not stop within 30 s: killed", file=sys.stderr)
                self.engine.kill()
                self.engine.wait()
        self.engine = None

    def close(self) -> None:
        try:
            self.stop_engine()
        finally:
            self._stop_asterisk()

    def _stop_asterisk(self) -> None:
        pbx = descendants(self.asterisk.pid, "asterisk")
        self.asterisk.terminate()
        try:
            self.asterisk.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.asterisk.kill()
        for pid in pbx:  # an overloaded Asterisk can outlive its runner: never leave it behind
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def scenario(self, name: str, load: Load) -> Path:
        text = (HERE / "sipp" / f"{name}.xml").read_text(encoding="utf-8")
        for key, value in (("@RING_MS@", load.ring_ms), ("@TALK_MS@", load.talk_ms),
                           ("@DTMF_MS@", load.dtmf_ms), ("@TALK@", talk_block(load))):
            text = text.replace(key, str(value))
        if not load.audio:
            text = "\n".join(line for line in text.splitlines() if "g711a.pcap" not in line)
        path = self.work / f"{name}.xml"
        path.write_text(text, encoding="utf-8")
        return path

    def recordings(self, mode: str, prefix: str) -> int:
        if mode == "app_queue":
            folder = self.state / "asterisk" / "recordings" / "bench"
            return sum(1 for f in folder.glob("*.wav") if f.stat().st_size > 44)
        with sqlite3.connect(self.state / "madoguchi.db") as db:
            row = db.execute("SELECT count(*) FROM recordings r JOIN calls c ON r.call_id = c.id"
                             " WHERE c.caller LIKE ?", (prefix + "%",)).fetchone()
        return int(row[0])

    def _logfile(self, name: str) -> IO[bytes]:
        return open(self.logs / name, "wb")

    async def run(self, mode: str, load: Load, prefix: str) -> Result:
        """One load: SIPp callers into the queue (madoguchi: the engine runs; app_queue: it
        does not), figures from the AMI events and /proc."""
        if mode == "madoguchi":
            if self.engine is None:
                self.start_engine()
                await asyncio.sleep(2)  # operators logged in, device states read
        else:
            self.stop_engine()
        # the read-only monitor login: the engine's own receives only the events it handles
        ami = AmiRecorder(self.ports.ami, "madoguchi-monitor",
                          self.secrets["ami_monitor_secret"])
        await ami.start()
        operators = await asyncio.create_subprocess_exec(
            "sipp", "-sf", str(self.scenario("operator", load)), "-i", "127.0.0.1",
            "-p", str(self.ports.operators), "-mp", str(self.ports.operator_media),
            "-l", "100000", "-nostdin",
            cwd=self.work, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=(op_log := self._logfile(f"sipp-operators-{prefix}.log")))
        await asyncio.sleep(0.5)
        stat_file = self.work / f"callers-{prefix}.csv"
        callers = await asyncio.create_subprocess_exec(
            "sipp", f"127.0.0.1:{self.ports.sip}", "-sf", str(self.scenario("caller", load)),
            "-s", "2000" if mode == "madoguchi" else "9000", "-i", "127.0.0.1",
            "-p", str(self.ports.caller), "-mp", str(self.ports.caller_media),
            "-r", f"{load.rate:g}", "-m", str(load.calls), "-l", "100000",
            "-key", "prefix", prefix, "-key", "dtmf", "/usr/share/sip-tester/dtmf_2833_1.pcap",
            "-recv_timeout", "120000", "-timeout", f"{int(load.calls / load.rate) + 150}s",
            "-trace_stat", "-stf", str(stat_file), "-fd", "1", "-nostdin",
            cwd=self.work, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=(caller_log := self._logfile(f"sipp-callers-{prefix}.log")))
        pids = {"asterisk": self.asterisk_pid(), "SIPp operators": operators.pid,
                "SIPp callers": callers.pid}
        if self.engine is not None:
            pids["engine"] = self.engine.pid
        sampler = CpuSampler(pids)
        sampling = asyncio.create_task(sampler.run())
        spy = None
        if self.profile and self.engine is not None:
            spy = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).parent / "py-spy"), "record", "--pid",
                str(self.engine.pid), "--rate", "250", "--format", "raw", "--nonblocking",
                "-o", str(self.work / f"profile-{prefix}.txt"), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await callers.wait()
        for _ in range(100):  # the last hang-ups
            if ami.live_channels() == 0:
                break
            await asyncio.sleep(0.2)
        sampling.cancel()
        sampler.sample()
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            await spy.wait()
            print_profile(self.work / f"profile-{prefix}.txt")
        rss = peak_rss_mb(pids["engine"]) if "engine" in pids else math.nan
        operators.terminate()
        await operators.wait()
        op_log.close()
        caller_log.close()
        await ami.stop()
        (self.work / f"events-{prefix}.json").write_text(json.dumps(ami.events))
        figures = summarize(ami.events, prefix, self.wrap_up)
        deadline = time.monotonic() + 30  # madoguchi indexes a recording after the hang-up
        recorded = self.recordings(mode, prefix)
        while recorded < figures.answered and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            recorded = self.recordings(mode, prefix)
        ok, failed = sipp_counts(stat_file)
        return Result(mode, load, figures, sampler, rss, recorded, ok, failed, self.operators)


class CpuSampler:
    """CPU seconds of each process over the run, and its busiest second (% of one core)."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self.pids = dict(pids)
        self.first = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self.last = dict(self.first)
        self.peak = dict.fromkeys(self.pids, 0.0)
        self.at = time.monotonic()

    def sample(self) -> None:
        now = time.monotonic()
        for name, pid in self.pids.items():
            try:
                value = cpu_seconds(pid)
            except (OSError, ValueError):
                continue  # it has exited: its last sample stands
            if now > self.at:
                self.peak[name] = max(self.peak[name],
                                      (value - self.last[name]) / (now - self.at) * 100)
            self.last[name] = value
        self.at = now

    async def run(self) -> None:
        while True:
            await asyncio.sleep(1)
            self.sample()

    def used(self, name: str) -> float | None:
        return self.last[name] - self.first[name] if name in self.pids else None


@dataclass
class Result:
    mode: str
    load: Load
    figures: RunFigures
    cpu: CpuSampler
    rss: float
    recorded: int
    sipp_ok: int
    sipp_failed: int
    operators: list[str]


def print_profile(path: Path, top: int = 25) -> None:
    """The functions the engine spent its samples in (self and total), from py-spy's
    collapsed stacks."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1]
                  + ")" for f in stack.split(";")]
        n = int(count)
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    print(f"\nengine profile ({samples} samples): self %, total %, function")
    for frame, n in own.most_common(top):
        print(f"  {n / samples * 100:5.1f} {total[frame] / samples * 100:5.1f}  {frame}")
    print("  by total:")
    for frame, n in total.most_common(top):
        print(f"  {own[frame] / samples * 100:5.1f} {n / samples * 100:5.1f}  {frame}")


def sipp_counts(stat_file: Path) -> tuple[int, int]:
    """Successful and failed calls from SIPp's last statistics line."""
    lines = [line for line in stat_file.read_text().splitlines() if line.strip()]
    head, last = lines[0].split(";"), lines[-1].split(";")
    fields = dict(zip(head, last, strict=False))
    return int(fields["SuccessfulCall(C)"]), int(fields["FailedCall(C)"])


# --- output -------------------------------------------------------------------------------

def _ms(values: list[float], q: float) -> str:
    v = percentile(values, q)
    return "–" if math.isnan(v) else f"{v * 1000:.0f}"


def _per_call(seconds: float | None, calls: int) -> str:
    return "–" if seconds is None else f"{seconds / max(calls, 1) * 1000:.1f}"


def side_by_side_row(r: Result) -> dict[str, str]:
    f = r.figures
    spread, stdev = fairness(f.per_agent, r.operators)
    return {
        "run": r.mode,
        "calls offered": str(r.load.calls), "completed": str(r.sipp_ok),
        "failed": str(r.sipp_failed), "answered (bridged)": str(f.answered),
        "offer→ring p50/p95/p99 ms": "/".join(_ms(f.offer_to_ring, q) for q in (50, 95, 99)),
        "dispatch p50/p95/p99 ms": "/".join(_ms(f.dispatch, q) for q in (50, 95, 99)),
        "time to answer p50/p95 ms": "/".join(_ms(f.time_to_answer, q) for q in (50, 95)),
        "calls per operator max−min (sd)": f"{spread} ({stdev:.2f})",
        "engine CPU ms/call": _per_call(r.cpu.used("engine"), f.answered),
        "engine peak RSS MB": "–" if math.isnan(r.rss) else f"{r.rss:.0f}",
        "Asterisk CPU ms/call": _per_call(r.cpu.used("asterisk"), f.answered),
        "recordings ÷ answered": f"{r.recorded / max(f.answered, 1):.3f}",
    }


def knee_row(r: Result) -> dict[str, str]:
    f = r.figures
    peaks = {name: f"{r.cpu.peak[name]:.0f}" for name in r.cpu.pids}
    return {
        "rate /s": f"{r.load.rate:g}", "calls": str(r.load.calls),
        "failed": str(r.sipp_failed), "answered": str(f.answered),
        "max concurrent recorded": str(f.max_concurrent),
        "recordings ÷ answered": f"{r.recorded / max(f.answered, 1):.3f}",
        "offer→ring p95 ms": _ms(f.offer_to_ring, 95),
        "peak CPU % engine": peaks.get("engine", "–"),
        "peak CPU % Asterisk": peaks["asterisk"],
        "peak CPU % SIPp callers": peaks["SIPp callers"],
        "peak CPU % SIPp operators": peaks["SIPp operators"],
    }


def print_table(rows: list[dict[str, str]]) -> None:
    keys = list(rows[0])
    width = max(len(k) for k in keys)
    cols = [max(len(r[k]) for k in keys) for r in rows]
    for k in keys:
        print(f"{k:<{width}}  " + "  ".join(f"{r[k]:>{c}}" for r, c in zip(rows, cols,
                                                                            strict=True)))


def main() -> int:
    args = parse()
    if os.geteuid() != 0 and shutil.which("asterisk") is None:
        raise SystemExit("bench: Asterisk in its root file system needs root")
    if shutil.which("sipp") is None:
        raise SystemExit("bench: sipp is not installed (Debian sip-tester)")
    if args.profile and not (Path(sys.executable).parent / "py-spy").exists():
        raise SystemExit("bench: --profile needs py-spy in the venv (.venv/bin/pip install "
                         "py-spy)")
    # a SIGTERM (or a time limit) still stops Asterisk and the engine in `finally` below
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="madoguchi-bench-"))
    operators = args.knee_operators if args.knee else args.operators
    bench = Bench(work, Ports(args.port_base), operators, args.wrap_up, args.profile)
    print(f"# {time.strftime('%Y-%m-%d %H:%M %Z')} · {os.cpu_count()} CPUs · "
          f"work folder {work}", flush=True)
    try:
        if args.knee:
            return asyncio.run(knee(args, bench))
        return asyncio.run(side_by_side(args, bench))
    finally:
        bench.close()
        print(f"logs and SIPp statistics: {work}")


async def side_by_side(args: argparse.Namespace, bench: Bench) -> int:
    load = Load(args.calls, args.rate, args.operators, args.ring_ms, args.talk_ms,
                args.wrap_up, args.dtmf_ms, audio=True)
    results = [await bench.run(mode, load, f"03{n + 1}")
               for n, mode in enumerate(("madoguchi", "app_queue"))]
    print(f"\n## same load twice: {load.calls} calls at {load.rate:g}/s, {load.operators} "
          f"operators ringing {load.ring_ms} ms and talking {load.talk_ms} ms, wrap-up "
          f"{load.wrap_up} s, recording on\n")
    print_table([side_by_side_row(r) for r in results])
    ours, theirs = results
    p95 = percentile(ours.figures.offer_to_ring, 95), percentile(theirs.figures.offer_to_ring, 95)
    if p95[1] > 0:
        print(f"\noffer→ring p95, madoguchi ÷ app_queue: {p95[0] / p95[1]:.2f}")
    engine, asterisk = ours.cpu.used("engine"), ours.cpu.used("asterisk")
    if engine is not None and asterisk:
        print(f"engine CPU ÷ Asterisk CPU, madoguchi run: {engine / asterisk * 100:.1f} %")
    return 0


async def knee(args: argparse.Namespace, bench: Bench) -> int:
    results: list[Result] = []
    for n, rate in enumerate(float(r) for r in args.knee.split(",")):
        load = Load(int(rate * args.knee_seconds), rate, args.knee_operators, args.ring_ms,
                    args.knee_talk_ms, args.wrap_up, args.dtmf_ms, audio=args.knee_audio)
        result = await bench.run("madoguchi", load, f"04{n + 1}")
        results.append(result)
        print(f"  {rate:g}/s: {result.sipp_failed} failed", flush=True)
        if result.sipp_failed:
            break
    print(f"\n## knee: madoguchi alone, {args.knee_operators} operators "
          f"(ring {args.ring_ms} ms, talk {args.knee_talk_ms} ms, "
          f"{'audio both ways' if args.knee_audio else 'no audio'}), "
          f"{args.knee_seconds} s per step, recording on\n")
    print_table([knee_row(r) for r in results])
    first = first_saturated(results)
    print(f"\nfirst process to saturate: {first[0]} at {first[1]:g} calls/s" if first else
          "\nno process saturated")
    return 0


def first_saturated(results: list[Result]) -> tuple[str, float] | None:
    """The first process whose busiest second reached 95 % of what it can use: one core for
    the engine's event loop and for SIPp, every core for Asterisk's threads."""
    for r in results:
        for name, peak in r.cpu.peak.items():
            cores = (os.cpu_count() or 1) if name == "asterisk" else 1
            if peak >= 95 * cores:
                return name, r.load.rate
    return None


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--calls", type=int, default=100)
    p.add_argument("--rate", type=float, default=2.0, help="new calls per second")
    p.add_argument("--operators", type=int, default=5)
    p.add_argument("--ring-ms", type=int, default=300)
    p.add_argument("--talk-ms", type=int, default=2000)
    p.add_argument("--wrap-up", type=int, default=1)
    p.add_argument("--dtmf-ms", type=int, default=1500, help="key press after the answer")
    p.add_argument("--knee", default="", help="rates for the knee search, e.g. 10,20,40,60")
    p.add_argument("--knee-operators", type=int, default=200)
    p.add_argument("--knee-seconds", type=int, default=20)
    p.add_argument("--knee-talk-ms", type=int, default=1000)
    p.add_argument("--knee-audio", action="store_true",
                   help="callers and operators send audio in the knee runs too")
    # below the kernel's ephemeral ports (32768 and up) and above the e2e tests' (20000-24999),
    # so no outgoing connection's source port can take a listener's port
    p.add_argument("--port-base", type=int, default=25000)
    p.add_argument("--profile", action="store_true",
                   help="sample the engine with py-spy during its runs and print where it spent")
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
