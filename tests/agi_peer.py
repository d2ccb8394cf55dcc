"""The Asterisk side of a FastAGI connection, scripted: a session's header and a peer that
sends it and expects the server's commands (test_fastagi_server.py, test_agi_auth.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

# Upper bound for any single wait, so a regression fails instead of hanging.
STEP = 5.0

KEY = "k" * 43


def header(script: str = "city", *args: str, uniqueid: str = "1700000000.1",
           key: str | None = KEY, channel: str = "PJSIP/trunk-00000001") -> bytes:
    if key is not None:
        args = (key, *args)
    lines = [
        "agi_network: yes",
        f"agi_network_script: {script}",
        f"agi_request: agi://127.0.0.1:4573/{script}",
        f"agi_channel: {channel}",
        "agi_language: ja",
        "agi_type: PJSIP",
        f"agi_uniqueid: {uniqueid}",
        "agi_callerid: 0312345678",
        "agi_calleridname: unknown",
        "agi_dnid: 0501234567",
        "agi_context: ivr",
        "agi_extension: 100",
        "agi_priority: 2",
        *(f"agi_arg_{i}: {arg}" for i, arg in enumerate(args, start=1)),
    ]
    return ("\n".join(lines) + "\n\n").encode()


class FakeAsterisk:
    """Plays the Asterisk side of a FastAGI connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> FakeAsterisk:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), STEP)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def expect(self, command: str) -> None:
        line = await asyncio.wait_for(self.reader.readline(), STEP)
        assert line.decode() == command + "\n"

    async def exchange(self, command: str, reply: str) -> None:
        await self.expect(command)
        await self.send(reply.encode() + b"\n")

    async def expect_eof(self) -> None:
        assert await asyncio.wait_for(self.reader.read(), STEP) == b""

    async def expect_closed(self) -> None:
        # Closing a socket with unread input makes the kernel send RST, not FIN.
        try:
            await self.expect_eof()
        except ConnectionResetError:
            pass

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass


async def wait_until(predicate: Callable[[], bool]) -> None:
    # Polls server counters, which have no event to wait on.
    for _ in range(int(STEP / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in time")
