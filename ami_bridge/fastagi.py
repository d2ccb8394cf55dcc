"""FastAGI server: a thin asyncio adapter around :mod:`ami_bridge.agi_codec`.

Each Asterisk connection runs in its own task that this server owns, so a
stalled or half-open client only ever costs its own task, and ``close()`` can
cancel and await every one of them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType, TracebackType

from .agi_codec import AgiHeaderParser, AgiReply, AgiReplyParser, Hangup, format_command
from .agi_errors import (
    AgiCommandFailed,
    AgiError,
    AgiHangup,
    AgiProtocolError,
    AgiTimeout,
    raise_for_reply,
)

__all__ = ["AgiHandler", "AgiSession", "FastAgiServer"]

logger = logging.getLogger(__name__)

_READ_SIZE = 64 * 1024
# Bound on waiting for a peer to acknowledge our close; a peer that stopped
# reading must not keep the session task alive.
_CLOSE_TIMEOUT = 2.0


def _script_from_env(env: Mapping[str, str]) -> str:
    script = env.get("agi_network_script")
    if script is None:
        # Fall back to the path of agi_request (agi://host:port/path?query).
        request = env.get("agi_request", "")
        _, sep, rest = request.partition("://")
        script = rest.partition("/")[2] if sep else ""
    return script.partition("?")[0].lstrip("/")


def _args_from_env(env: Mapping[str, str]) -> list[str]:
    args: list[str] = []
    while (value := env.get(f"agi_arg_{len(args) + 1}")) is not None:
        args.append(value)
    return args


class AgiSession:
    """One FastAGI conversation with Asterisk about one channel.

    ``hungup`` turns true once Asterisk reports the hangup (a ``HANGUP``
    line, a 511 or the socket closing); it is only noticed while a command
    reads its reply, as nothing else reads the socket.

    Commands are strictly request/response, so they are serialised with a
    lock; a command that times out or is cancelled while awaiting its reply
    leaves the stream out of step, after which the session refuses further
    commands instead of pairing later replies with the wrong commands.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        env: Mapping[str, str],
        *,
        command_timeout: float | None = 60.0,
        initial_data: bytes = b"",
    ) -> None:
        self.env: Mapping[str, str] = MappingProxyType(dict(env))
        self.script = _script_from_env(env)
        self.args = _args_from_env(env)
        self.hungup = False
        self._reader = reader
        self._writer = writer
        self._command_timeout = command_timeout
        self._parser = AgiReplyParser()
        self._parser.feed(initial_data)
        self._lock = asyncio.Lock()
        self._eof = False
        self._broken: str | None = None

    @property
    def channel(self) -> str:
        return self.env.get("agi_channel", "")

    @property
    def uniqueid(self) -> str:
        return self.env.get("agi_uniqueid", "")

    # The per-command timeout defaults to the server's command_timeout, and
    # expiry has to be reported as AgiTimeout, hence a parameter here.
    async def command(self, *parts: str, timeout: float | None = None) -> AgiReply:
        """Send one command and return its successful reply, or raise an AgiError."""
        line = format_command(*parts)  # validate before touching the stream
        limit = self._command_timeout if timeout is None else timeout
        async with self._lock:
            if self._eof:
                raise AgiHangup("AGI connection already closed by Asterisk")
            if self._broken is not None:
                raise AgiProtocolError(f"AGI session unusable: {self._broken}")
            try:
                async with asyncio.timeout(limit):
                    reply = await self._exchange(line)
            except TimeoutError:
                self._broken = f"no reply to {parts[0]} within {limit}s"
                raise AgiTimeout(f"no reply to {parts[0]} within {limit}s") from None
            except asyncio.CancelledError:
                self._broken = f"{parts[0]} cancelled while awaiting its reply"
                raise
            except AgiProtocolError as exc:
                self._broken = str(exc)
                raise
        if reply.code == 511:
            self.hungup = True
        return raise_for_reply(reply)

    async def _exchange(self, line: bytes) -> AgiReply:
        try:
            self._writer.write(line)
            await self._writer.drain()
            while True:
                event = self._parser.next_event()
                if event is None:
                    data = await self._reader.read(_READ_SIZE)
                    if not data:
                        self._eof = True
                        self.hungup = True
                        raise AgiHangup("AGI connection closed by Asterisk")
                    self._parser.feed(data)
                elif isinstance(event, Hangup):
                    # Asynchronous notice; the reply to our command still follows.
                    self.hungup = True
                else:
                    return event
        except OSError as exc:
            # Reset or broken pipe: Asterisk dropped the channel's AGI socket.
            self._eof = True
            self.hungup = True
            raise AgiHangup(f"AGI connection lost: {exc}") from exc

    async def answer(self) -> None:
        await self.command("ANSWER")

    async def stream_file(self, name: str, escape_digits: str = "") -> str:
        """Play a prompt; return the escape digit pressed, or "" if none."""
        reply = await self.command("STREAM FILE", name, escape_digits)
        code = reply.result_int
        return chr(code) if code is not None and code > 0 else ""

    async def get_data(self, file: str, timeout_ms: int, max_digits: int) -> str:
        """Play a prompt and collect up to ``max_digits`` DTMF digits ("" on timeout)."""
        reply = await self.command("GET DATA", file, str(timeout_ms), str(max_digits))
        return reply.result

    async def set_variable(self, name: str, value: str) -> None:
        await self.command("SET VARIABLE", name, value)

    async def get_variable(self, name: str) -> str | None:
        """Return the channel variable's value, or None when it is unset."""
        reply = await self.command("GET VARIABLE", name)
        if reply.result == "0":
            return None
        return reply.data if reply.data is not None else ""

    async def exec(self, app: str, args: str) -> AgiReply:
        """Run a dialplan application (``EXEC``) and return its reply."""
        reply = await self.command("EXEC", app, args)
        if reply.result == "-2":
            raise AgiCommandFailed(f"no such application: {app}", reply)
        return reply

    async def verbose(self, msg: str, level: int = 1) -> None:
        await self.command("VERBOSE", msg, str(level))


AgiHandler = Callable[[AgiSession], Awaitable[None]]


class FastAgiServer:
    """Accepts FastAGI connections and runs ``handler`` once per channel."""

    def __init__(
        self,
        handler: AgiHandler,
        host: str = "127.0.0.1",
        port: int = 4573,
        header_timeout: float = 5.0,
        command_timeout: float = 60.0,
        max_sessions: int = 500,
    ) -> None:
        self._handler = handler
        self._host = host
        self._port = port
        self._header_timeout = header_timeout
        self._command_timeout = command_timeout
        self._max_sessions = max_sessions
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    @property
    def port(self) -> int:
        """The bound port once started (useful with port=0), else the configured one."""
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        return self._port

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.is_serving()

    @property
    def active_sessions(self) -> int:
        return len(self._tasks)

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("FastAGI server already started")
        self._closing = False
        self._server = await asyncio.start_server(self._accept, self._host, self._port)
        logger.info("FastAGI listening on %s:%d", self._host, self.port)

    async def close(self) -> None:
        """Stop accepting, cancel running sessions and wait for them to finish."""
        self._closing = True
        server, self._server = self._server, None
        if server is not None:
            server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def __aenter__(self) -> FastAgiServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain callback, not a coroutine: asyncio would otherwise own the
        # task, and close() could neither cancel nor await it.
        if self._closing or len(self._tasks) >= self._max_sessions:
            logger.warning(
                "FastAGI refusing %s: %d sessions active",
                writer.get_extra_info("peername"),
                len(self._tasks),
            )
            writer.close()
            return
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._session_done)

    def _session_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        # _serve handles everything expected; this only catches our own bugs,
        # which would otherwise surface as "exception was never retrieved".
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("FastAGI session task crashed", exc_info=exc)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            header = await self._read_header(reader, peer)
            if header is None:
                return
            session = AgiSession(
                reader,
                writer,
                header.env,
                command_timeout=self._command_timeout,
                initial_data=header.leftover,
            )
            try:
                await self._handler(session)
            except AgiHangup as exc:
                logger.debug("AGI %s on %s ended by hangup: %s", session.script, peer, exc)
            except Exception:
                logger.exception(
                    "AGI handler failed for script %r channel %r from %s",
                    session.script,
                    session.channel,
                    peer,
                )
        finally:
            await self._close_writer(writer)

    async def _read_header(
        self, reader: asyncio.StreamReader, peer: object
    ) -> AgiHeaderParser | None:
        parser = AgiHeaderParser()
        try:
            async with asyncio.timeout(self._header_timeout):
                while not parser.complete:
                    data = await reader.read(_READ_SIZE)
                    if not data:
                        logger.debug("FastAGI client %s closed before ending its header", peer)
                        return None
                    parser.feed(data)
        except TimeoutError:
            logger.warning("FastAGI client %s did not finish its header in time", peer)
            return None
        except AgiError as exc:
            logger.warning("FastAGI client %s sent a bad header: %s", peer, exc)
            return None
        except OSError as exc:
            logger.debug("FastAGI client %s failed during header: %s", peer, exc)
            return None
        return parser

    @staticmethod
    async def _close_writer(writer: asyncio.StreamWriter) -> None:
        # Closing the socket is what ends AGI() and resumes the dialplan.
        writer.close()
        try:
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                await writer.wait_closed()
        except TimeoutError:
            writer.transport.abort()
        except OSError:
            pass  # already reset by the peer; nothing left to release
        except asyncio.CancelledError:
            # close() may cancel us again while we wait: still free the socket.
            writer.transport.abort()
            raise
