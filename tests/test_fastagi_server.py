"""Loopback tests: a scripted fake Asterisk talks to a real FastAgiServer.

Every session presents the install's secret as agi_arg_1, as the generated dialplan does;
refusals of forged sessions are in test_agi_auth.py."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from ami_bridge.agi_auth import AgiKey
from ami_bridge.agi_errors import (
    AgiCommandFailed,
    AgiHangup,
    AgiProtocolError,
    AgiTimeout,
    AgiUsageError,
)
from ami_bridge.fastagi import AgiSession, FastAgiServer
from tests.agi_peer import KEY, STEP, FakeAsterisk, header, wait_until

Handler = Callable[[AgiSession], Awaitable[None]]


async def any_channel(channel: str, uniqueid: str) -> bool:
    return True  # these tests are about the protocol; AMI's check is in test_agi_auth.py


@pytest.fixture
async def start_server() -> AsyncIterator[Callable[..., Awaitable[FastAgiServer]]]:
    servers: list[FastAgiServer] = []

    async def start(handler: Handler, **kwargs: Any) -> FastAgiServer:
        kwargs.setdefault("key", AgiKey(KEY))
        kwargs.setdefault("verify", any_channel)
        server = FastAgiServer(handler, port=0, **kwargs)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


async def test_full_session(start_server: Callable[..., Awaitable[FastAgiServer]]) -> None:
    seen: dict[str, object] = {}

    async def handler(session: AgiSession) -> None:
        seen["script"] = session.script
        seen["args"] = session.args
        seen["uniqueid"] = session.env["agi_uniqueid"]
        seen["dnid"] = session.env["agi_dnid"]
        await session.answer()
        seen["digit"] = await session.stream_file("welcome", "123")
        seen["no_digit"] = await session.stream_file("menu")
        seen["digits"] = await session.get_data("prompt", 5000, 4)
        seen["timeout_digits"] = await session.get_data("prompt", 3000, 1)
        await session.set_variable("IVR_DONE", "1")
        seen["lang"] = await session.get_variable("CALLER_LANG")
        seen["unset"] = await session.get_variable("NOPE")
        seen["exec"] = (await session.exec("MixMonitor", "/var/spool/rec/x.wav,b")).result
        await session.verbose('done "ok"')
        seen["hungup"] = session.hungup

    server = await start_server(handler)
    assert server.listening
    assert server.port != 0
    ast = await FakeAsterisk.connect(server.port)
    await ast.send(header("city", "ja", "queue 1"))
    await ast.exchange("ANSWER", "200 result=0")
    await ast.exchange('STREAM FILE "welcome" "123"', "200 result=50 endpos=8000")
    await ast.exchange('STREAM FILE "menu" ""', "200 result=0 endpos=16000")
    # Reply split across writes must still be read as one line.
    await ast.expect('GET DATA "prompt" "5000" "4"')
    await ast.send(b"200 res")
    await asyncio.sleep(0.01)
    await ast.send(b"ult=1234\n")
    await ast.exchange('GET DATA "prompt" "3000" "1"', "200 result= (timeout)")
    await ast.exchange('SET VARIABLE "IVR_DONE" "1"', "200 result=1")
    await ast.exchange('GET VARIABLE "CALLER_LANG"', "200 result=1 (ja)")
    await ast.exchange('GET VARIABLE "NOPE"', "200 result=0")
    await ast.exchange('EXEC "MixMonitor" "/var/spool/rec/x.wav,b"', "200 result=0")
    await ast.exchange('VERBOSE "done \\"ok\\"" "1"', "200 result=1")
    # Handler returned: the server must close so the dialplan continues.
    await ast.expect_eof()
    await ast.close()

    assert seen == {
        "script": "city",
        "args": ["ja", "queue 1"],
        "uniqueid": "1700000000.1",
        "dnid": "0501234567",
        "digit": "2",
        "no_digit": "",
        "digits": "1234",
        "timeout_digits": "",
        "lang": "ja",
        "unset": None,
        "exec": "0",
        "hungup": False,
    }
    await wait_until(lambda: server.active_sessions == 0)


async def test_script_strips_query_and_nested_path(
    start_server: Callable[..., Awaitable[FastAgiServer]],
) -> None:
    scripts: list[str] = []

    async def handler(session: AgiSession) -> None:
        scripts.append(session.script)

    server = await start_server(handler)
    ast = await FakeAsterisk.connect(server.port)
    await ast.send(header("/ivr/city?lang=ja"))
    await ast.expect_eof()
    await ast.close()
    assert scripts == ["ivr/city"]


async def test_disconnect_mid_header_does_not_block_other_sessions(
    start_server: Callable[..., Awaitable[FastAgiServer]],
) -> None:
    finished: list[str] = []

    async def handler(session: AgiSession) -> None:
        await session.answer()
        await session.set_variable("DONE", "1")
        finished.append(session.env["agi_uniqueid"])

    server = await start_server(handler)
    good = await FakeAsterisk.connect(server.port)
    await good.send(header(uniqueid="1700000000.7"))
    await good.exchange("ANSWER", "200 result=0")

    # The quitter goes away before the blank line that ends the header.
    quitter = await FakeAsterisk.connect(server.port)
    await quitter.send(header(uniqueid="1700000000.8")[:40])
    await wait_until(lambda: server.active_sessions == 2)
    await quitter.close()
    await wait_until(lambda: server.active_sessions == 1)

    await good.exchange('SET VARIABLE "DONE" "1"', "200 result=1")
    await good.expect_eof()
    await good.close()
    await wait_until(lambda: server.active_sessions == 0)
    assert finished == ["1700000000.7"]
    assert server.listening


async def test_header_that_never_completes_times_out(
    start_server: Callable[..., Awaitable[FastAgiServer]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    finished: list[str] = []

    async def handler(session: AgiSession) -> None:
        await session.answer()
        finished.append(session.env["agi_uniqueid"])

    server = await start_server(handler, header_timeout=0.5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    stalled = await FakeAsterisk.connect(server.port)
    await stalled.send(b"agi_network: yes\nagi_chan")

    # While the stalled client hangs on, another full session runs at once.
    good = await FakeAsterisk.connect(server.port)
    await good.send(header(uniqueid="1700000000.7"))
    await good.exchange("ANSWER", "200 result=0")
    await good.expect_eof()
    assert finished == ["1700000000.7"]
    assert not stalled.reader.at_eof()

    await stalled.expect_eof()
    assert loop.time() - started >= 0.45
    await stalled.close()
    await good.close()
    await wait_until(lambda: server.active_sessions == 0)
    assert finished == ["1700000000.7"]
    assert any("did not finish its header" in r.getMessage() for r in caplog.records)


async def test_connection_without_any_data_is_dropped_on_timeout(
    start_server: Callable[..., Awaitable[FastAgiServer]],
) -> None:
    async def handler(session: AgiSession) -> None:
        raise AssertionError("handler must not run without a header")

    server = await start_server(handler, header_timeout=0.1)
    silent = await FakeAsterisk.connect(server.port)
    await silent.expect_eof()
    await silent.close()
    await wait_until(lambda: server.active_sessions == 0)


async def test_oversize_header_is_dropped(
    start_server: Callable[..., Awaitable[FastAgiServer]],
) -> None:
    calls: list[AgiSession] = []

    async def handler(session: AgiSession) -> None:
        calls.append(session)

    server = await start_server(handler)
    flood = await FakeAsterisk.connect(server.port)
    try:
        await flood.send(b"agi_calleridname: " + b"x" * 20000)
    except ConnectionError:
        pass  # the server may already have reset us
    await flood.expect_closed()
    await flood.close()
    await wait_until(lambda: server.active_sessions == 0)
    assert calls == []


async def test_hangup_line_between_commands_then_511(
    start_server: Callable[..., Awaitable[FastAgiServer]],
) -> None:
    seen: dict[str, object] = {}
    ended = asyncio.Event()

    async def handler(session: AgiSession) -> None:
        try:
            await session.answer()
            seen["after_answer"] = session.hungup
            try:
                await session.stream_file("menu", "0123456789")
            except AgiHangup as exc:
                seen["error"] = exc
                seen["hungup"] = session.hungup
            # Dead-channel-safe commands still work and the stream is in step.
            seen["var"] = await session.get_variable("HANGUPCAUSE")
            await session.stream_file("bye")
        finally:
            ended.set()

    server = await start_server(handler)
    ast = await FakeAsterisk.connect(server.port)
    await ast.send(header())
    await ast.exchange("ANSWER", "200 result=0")
    # Asterisk notices the hangup while idle and says so before any reply.
    await ast.send(b"HANGUP\n")
    await ast.exchange(
        'STREAM FILE "menu" "0123456789"',
        "511 Command Not Permitted on a dead channel or intercept routine",
    )
    await ast.expect('GET VARIABLE "HANGUPCAUSE"')
    await ast.send(b"HANGUP\n200 result=1 (16)\n")
    await ast.exchange(
        'STREAM FILE "bye" ""',
        "511 Command Not Permitted on a dead channel or intercept routine",
    )
    await ast.expect_eof()
    await ast.close()
    await asyncio.wait_for(ended.wait(), STEP)

    assert seen["after_answer"] is False
    error = seen["error"]
    assert isinstance(error, AgiHangup)
    assert error.reply is not None and error.reply.code == 511
    assert seen["hungup"] is True
    assert seen["var"] == "16"


async def test_eof_while_waiting_for_reply_is_a_hangup(
    start_server: Callable[..., Awaitable[FastAgiServer]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    errors: list[BaseException] = []
    flags: list[bool] = []

    async def handler(session: AgiSession) -> None:
        try:
            await session.stream_file("welcome")
        except AgiHangup as exc:
            errors.append(exc)
            flags.append(session.hungup)
            # Further commands fail the same way, without touching the socket.
            with pytest.raises(AgiHangup):
                await session.answer()
            raise

    caplog.set_level(logging.DEBUG, logger="ami_bridge.fastagi")
    server = await start_server(handler)
    ast = await FakeAsterisk.connect(server.port)
    await ast.send(header())
    await ast.expect('STREAM FILE "welcome" ""')
    await ast.close()
    await wait_until(lambda: server.active_sessions == 0)
    assert len(errors) == 1
    assert flags == [True]
    # A hangup is a normal end of call: no error is logged for it.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("ended by hangup" in r.getMessage() for r in caplog.records)


async def test_multiline_520_reply(start_server: Callable[..., Awaitable[FastAgiServer]]) -> None:
    seen: dict[str, object] = {}

    async def handler(session: AgiSession) -> None:
        try:
            await session.command("GET DATA")
        except AgiUsageError as exc:
            seen["usage"] = exc.usage
        seen["after"] = await session.get_data("prompt", 1000, 2)

    server = await start_server(handler)
    ast = await FakeAsterisk.connect(server.port)
    await ast.send(header())
    await ast.expect("GET DATA")
    # Sent in pieces, as a slow socket might deliver it.
    for piece in (
        b"520-Invalid command syntax.  Proper usage follows:\n Usage: GET DA",
        b"TA <file to be streamed> [timeout] [maxdigits]\n\n",
        b"Stream the given file, and receive DTMF data.\n\n520 End of proper",
        b" usage.\n",
    ):
        await ast.send(piece)
        await asyncio.sleep(0.01)
    await ast.exchange('GET DATA "prompt" "1000" "2"', "200 result=42")
    await ast.expect_eof()
    await ast.close()

    assert seen["usage"] == (
        " Usage: GET DATA <file to be streamed> [timeout] [maxdigits]\n"
        "\n"
        "Stream the given file, and receive DTMF data."
    )
    assert seen["after"] == "42"


async def test_510_and_failed_results(
    start_server: Callable[..., Awaitable[FastAgiServer]],
) -> None:
    seen: list[str] = []

    async def handler(session: AgiSession) -> None:
        with pytest.raises(Exception, match="unknown command") as invalid:
            await session.command("FROB")
        seen.append(type(invalid.value).__name__)
        with pytest.raises(AgiCommandFailed):
            await session.stream_file("missing")
        with pytest.raises(AgiCommandFailed, match="no such application"):
            await session.exec("Nope", "")
        seen.append("ok")

    server = await start_server(handler)
    ast = await FakeAsterisk.connect(server.port)
    await ast.send(header())
    await ast.exchange("FROB", "510 Invalid or unknown command")
    await ast.exchange('STREAM FILE "missing" ""', "200 result=-1 endpos=0")
    await ast.exchange('EXEC "Nope" ""', "200 result=-2")
    await ast.expect_eof()
    await ast.close()
    assert seen == ["AgiInvalidCommand", "ok"]


async def test_command_timeout_marks_session_unusable(
    start_server: Callable[..., Awaitable[FastAgiServer]],
) -> None:
    seen: list[type[BaseException]] = []

    async def handler(session: AgiSession) -> None:
        try:
            await session.command("WAIT FOR DIGIT", "10000", timeout=0.1)
        except AgiTimeout:
            seen.append(AgiTimeout)
        # A late reply would be paired with the wrong command: refuse instead.
        with pytest.raises(AgiProtocolError):
            await session.answer()
        seen.append(AgiProtocolError)

    server = await start_server(handler)
    ast = await FakeAsterisk.connect(server.port)
    await ast.send(header())
    await ast.expect('WAIT FOR DIGIT "10000"')
    await ast.expect_eof()
    await ast.close()
    assert seen == [AgiTimeout, AgiProtocolError]


async def test_unsafe_argument_is_refused_before_sending(
    start_server: Callable[..., Awaitable[FastAgiServer]],
) -> None:
    async def handler(session: AgiSession) -> None:
        with pytest.raises(AgiProtocolError):
            await session.set_variable("NAME", "x\nEXEC System reboot")
        await session.answer()

    server = await start_server(handler)
    ast = await FakeAsterisk.connect(server.port)
    await ast.send(header())
    # The first thing on the wire is the ANSWER: nothing of the bad command.
    await ast.exchange("ANSWER", "200 result=0")
    await ast.expect_eof()
    await ast.close()


async def test_handler_exception_does_not_kill_server(
    start_server: Callable[..., Awaitable[FastAgiServer]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []

    async def handler(session: AgiSession) -> None:
        calls.append(session.script)
        if session.script == "boom":
            raise RuntimeError("handler bug")
        await session.answer()

    server = await start_server(handler)
    first = await FakeAsterisk.connect(server.port)
    await first.send(header("boom"))
    await first.expect_eof()
    await first.close()

    second = await FakeAsterisk.connect(server.port)
    await second.send(header("city"))
    await second.exchange("ANSWER", "200 result=0")
    await second.expect_eof()
    await second.close()

    assert calls == ["boom", "city"]
    assert server.listening
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], RuntimeError)
    await wait_until(lambda: server.active_sessions == 0)


async def test_max_sessions_refuses_extra_connections(
    start_server: Callable[..., Awaitable[FastAgiServer]],
) -> None:
    release = asyncio.Event()

    async def handler(session: AgiSession) -> None:
        await release.wait()
        await session.answer()

    server = await start_server(handler, max_sessions=1)
    busy = await FakeAsterisk.connect(server.port)
    await busy.send(header())
    await wait_until(lambda: server.active_sessions == 1)

    extra = await FakeAsterisk.connect(server.port)
    await extra.expect_eof()
    await extra.close()
    assert server.active_sessions == 1

    release.set()
    await busy.exchange("ANSWER", "200 result=0")
    await busy.expect_eof()
    await busy.close()
    await wait_until(lambda: server.active_sessions == 0)

    # Capacity is back once the first session has ended.
    again = await FakeAsterisk.connect(server.port)
    await again.send(header())
    await again.exchange("ANSWER", "200 result=0")
    await again.expect_eof()
    await again.close()


async def test_close_with_active_session() -> None:
    started = asyncio.Event()
    outcome: list[str] = []

    async def handler(session: AgiSession) -> None:
        started.set()
        try:
            await session.stream_file("long-prompt")
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    server = FastAgiServer(handler, port=0, key=AgiKey(KEY), verify=any_channel)
    await server.start()
    port = server.port
    ast = await FakeAsterisk.connect(port)
    await ast.send(header())
    await ast.expect('STREAM FILE "long-prompt" ""')
    await asyncio.wait_for(started.wait(), STEP)
    assert server.active_sessions == 1

    await asyncio.wait_for(server.close(), STEP)
    assert outcome == ["cancelled"]
    assert server.active_sessions == 0
    assert not server.listening
    await ast.expect_eof()
    await ast.close()
    with pytest.raises(OSError):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
        await writer.wait_closed()


async def test_close_while_client_is_mid_header() -> None:
    async def handler(session: AgiSession) -> None:
        raise AssertionError("handler must not run")

    async with FastAgiServer(handler, port=0, header_timeout=30, key=AgiKey(KEY),
                             verify=any_channel) as server:
        ast = await FakeAsterisk.connect(server.port)
        await ast.send(b"agi_network: yes\n")
        await wait_until(lambda: server.active_sessions == 1)
    assert server.active_sessions == 0
    # The header line may still be unread by the server when it closes.
    await ast.expect_closed()
    await ast.close()


async def test_start_twice_is_an_error(
    start_server: Callable[..., Awaitable[FastAgiServer]],
) -> None:
    async def handler(session: AgiSession) -> None:
        return None

    server = await start_server(handler)
    with pytest.raises(RuntimeError):
        await server.start()
