"""Micro-benchmarks of the engine's control path, printed as a table.

  .venv/bin/python -m bench.micro [--events 50000] [--commands 5000] [--calls 20000]

1. AMI event delivery: a loopback AMI server sends the same stream of N events; measured
   until the last one reaches (a) our AmiClient's subscriber (incremental UTF-8 decoding,
   dict conversion, ordered async dispatch) and (b) a bare panoramisk Manager's callback.
2. FastAGI command round trip: our server against a loopback client answering every command
   at once (the Asterisk side costs nothing here, so this is the engine's own cost).
3. IVR interpreter: the shipped city flow from greeting to queue, pure, per call.
Not a test: numbers depend on the machine; run it on a quiet one.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import datetime
from pathlib import Path

from panoramisk import Manager

from ami_bridge.agi_auth import AgiKey
from ami_bridge.ami import AmiClient
from ami_bridge.fastagi import AgiSession, FastAgiServer
from harness.ami_server import AmiTestServer

ROOT = Path(__file__).resolve().parents[1]

EVENT = {"Event": "Newchannel", "Privilege": "call,all", "Channel": "PJSIP/trunk-00000001",
         "ChannelState": "4", "ChannelStateDesc": "Ring", "CallerIDNum": "0312345678",
         "CallerIDName": "市民 太郎", "Context": "from-trunk", "Exten": "1000",
         "Priority": "1", "Uniqueid": "1700000000.1", "Linkedid": "1700000000.1"}


async def _ami_ours(n: int) -> float:
    server = AmiTestServer(secret="bench")
    await server.start()
    client = AmiClient("127.0.0.1", server.port, "madoguchi", "bench", ping_interval=60)
    got = 0
    done = asyncio.Event()

    async def count(ev: object) -> None:
        nonlocal got
        got += 1
        if got == n:
            done.set()

    client.subscribe(count)
    await client.start()
    assert await client.wait_connected(5)
    await asyncio.sleep(0.2)
    got = 0  # FullyBooted and friends are not part of the stream
    start = time.perf_counter()
    for _ in range(n):
        server.emit(list(EVENT.items()))
    await done.wait()
    elapsed = time.perf_counter() - start
    await client.close()
    await server.stop()
    return elapsed


async def _ami_panoramisk(n: int) -> float:
    server = AmiTestServer(secret="bench")
    await server.start()
    manager = Manager(host="127.0.0.1", port=server.port, username="madoguchi",
                      secret="bench", ping_delay=0, reconnect=False,
                      loop=asyncio.get_running_loop())
    got = 0
    done = asyncio.Event()

    def count(_manager: object, _message: object) -> None:
        nonlocal got
        got += 1
        if got == n:
            done.set()

    manager.register_event("Newchannel", count)
    await manager.connect()
    for _ in range(50):  # connect() returns before the login (a known panoramisk trait)
        if manager.authenticated:
            break
        await asyncio.sleep(0.1)
    assert manager.authenticated
    await asyncio.sleep(0.2)
    start = time.perf_counter()
    for _ in range(n):
        server.emit(list(EVENT.items()))
    await done.wait()
    elapsed = time.perf_counter() - start
    manager.close()
    await server.stop()
    return elapsed


async def _fastagi(n: int) -> list[float]:
    latencies: list[float] = []

    async def handler(session: AgiSession) -> None:
        for i in range(n):
            t = time.perf_counter()
            await session.set_variable("BENCH", str(i))
            latencies.append(time.perf_counter() - t)

    async def known(channel: str, uniqueid: str) -> bool:
        return True  # the engine asks AMI; here only the command round trip is measured

    key = "b" * 43
    server = FastAgiServer(handler, "127.0.0.1", 0, key=AgiKey(key), verify=known)
    await server.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"agi_network_script: bench\nagi_channel: PJSIP/trunk-00000001\n"
                 b"agi_uniqueid: 1700000000.1\nagi_arg_1: " + key.encode() + b"\n\n")
    for _ in range(n):
        await reader.readline()
        writer.write(b"200 result=1\n")
    await writer.drain()
    writer.close()
    await server.close()
    return latencies


def _ivr(calls: int) -> float:
    import tempfile

    from core.settings import load_settings
    from ivr.events import Board
    from ivr.flowset import CallWorld, Sources, read_flow_set
    from ivr.interpreter import CallInfo, Collect, Digits, Enqueue, Interpreter, Played, Say
    from ivr.tts import Tts

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(ROOT / "config", Path(tmp))
        fs = read_flow_set(Sources.from_settings(settings), Tts(Path(tmp)), Path(tmp),
                           dry=True)
        world = CallWorld(fs, {}, Board((), {}))
        flow = fs.flows["city"]
        at = datetime(2026, 12, 1, 10, 0, tzinfo=fs.schedules.tz)  # a Tuesday, open
        start = time.perf_counter()
        for _ in range(calls):
            interp = Interpreter(flow, world, CallInfo("0312345678", "1000", "city"),
                                 lambda: at)
            instruction = interp.start()
            while isinstance(instruction, Say | Collect):
                instruction = interp.feed(Digits("2") if isinstance(instruction, Collect)
                                          else Played())
            assert isinstance(instruction, Enqueue)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--commands", type=int, default=5_000)
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    ours = asyncio.run(_ami_ours(args.events))
    theirs = asyncio.run(_ami_panoramisk(args.events))
    lat = sorted(asyncio.run(_fastagi(args.commands)))
    ivr = _ivr(args.calls)
    q = statistics.quantiles(lat, n=100)
    rows = [
        ("AMI events delivered, AmiClient", f"{args.events / ours:,.0f} events/s", ""),
        ("AMI events delivered, bare panoramisk", f"{args.events / theirs:,.0f} events/s",
         f"ours/panoramisk = {theirs / ours:.2f}"),
        ("FastAGI command round trip", f"{len(lat) / sum(lat):,.0f} commands/s",
         f"p50 {q[49] * 1e6:.0f} µs, p99 {q[98] * 1e6:.0f} µs"),
        ("IVR interpreter, city flow to queue", f"{args.calls / ivr:,.0f} calls/s",
         f"{ivr / args.calls * 1e6:.1f} µs per call"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'rate':>22}  note")
    for name, rate, note in rows:
        print(f"{name:<{width}}  {rate:>22}  {note}")


if __name__ == "__main__":
    main()
