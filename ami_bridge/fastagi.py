"""FastAGI server: a thin asyncio adapter around :mod:`ami_bridge.agi_codec`.

Each Asterisk connection runs in its own task that this server owns, so a
stalled or half-open client only ever costs its own task, and ``close()`` can
cancel and await every one of them.

No handler runs before a session has shown the install's secret (``agi_arg_1``, removed
from the arguments handlers see), carried a well-formed channel name and uniqueid, and had
``verify`` confirm that channel exists (see :mod:`ami_bridge.agi_auth`). A refused session
is closed without a word, so the dialplan goes on as if the engine were unreachable.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType, TracebackType

from .agi_auth import AgiKey, valid_channel, valid_uniqueid
from .agi_codec import AgiHeaderParser, AgiReply, AgiReplyParser, Hangup, format_command
from .agi_errors import (
    AgiCommandFailed,
    AgiError,
    AgiHangup,
    AgiProtocolError,
    AgiTimeout,
    raise_for_reply,
)

__all__ = ["AgiHandler", "AgiSession", "ChannelVerifier", "FastAgiServer"]

logger = logging.getLogger(__name__)

_READ_SIZE = 64 * 1024
# Bound on waiting for a peer to acknowledge our close; a peer that stopped
# reading must not keep the session task alive.
_CLOSE_TIMEOUT = 2.0
# A refused peer may retry in a loop: one warning per reason per interval, the rest counted.
_REFUSAL_LOG_INTERVAL = 10.0


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


def _split_key(env: Mapping[str, str]) -> tuple[str | None, dict[str, str]]:
    """The secret (agi_arg_1) and the environment handlers see: the other arguments
    renumbered from 1, so the secret never reaches a handler or its logs."""
    args = _args_from_env(env)
    rest = {k: v for k, v in env.items() if not k.startswith("agi_arg_")}
    for i, value in enumerate(args[1:], start=1):
        rest[f"agi_arg_{i}"] = value
    return (args[0] if args else None), rest


def _peer_host(peer: object) -> str:
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return "unknown"


class _RefusalLog:
    """Warns of refused sessions without letting a peer that retries flood the log."""

    def __init__(self, interval: float = _REFUSAL_LOG_INTERVAL) -> None:
        self._interval = interval
        self._last: dict[str, float] = {}
        self._muted: dict[str, int] = {}

    def warn(self, peer: object, reason: str) -> None:
        now = time.monotonic()
        last = self._last.get(reason)
        if last is not None and now - last < self._interval:
            self._muted[reason] = self._muted.get(reason, 0) + 1
            return
        self._last[reason] = now
        muted = self._muted.pop(reason, 0)
        logger.warning("FastAGI session from %s refused: %s%s", peer, reason,
                       f" ({muted} more since the last report)" if muted else "")


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
# (channel, uniqueid) -> whether that channel exists now (AMI's Status in the engine)
ChannelVerifier = Callable[[str, str], Awaitable[bool]]


class FastAgiServer:
    """Accepts FastAGI connections and runs ``handler`` once per admitted channel.

    ``max_sessions`` bounds all sessions, ``max_sessions_per_peer`` those from one remote
    address, so that one peer cannot take every slot from another.
    """

    def __init__(
        self,
        handler: AgiHandler,
        host: str = "127.0.0.1",
        port: int = 4573,
        header_timeout: float = 5.0,
        command_timeout: float = 60.0,
        max_sessions: int = 500,
        *,
        key: AgiKey,
        verify: ChannelVerifier,
        max_sessions_per_peer: int = 400,
    ) -> None:
        self._handler = handler
        self._host = host
        self._port = port
        self._header_timeout = header_timeout
        self._command_timeout = command_timeout
        self._max_sessions = max_sessions
        self._max_per_peer = max_sessions_per_peer
        self._key = key
        self._verify = verify
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._per_peer: dict[str, int] = {}
        self._refusals = _RefusalLog()
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
        peer = writer.get_extra_info("peername")
        host = _peer_host(peer)
        if self._closing or len(self._tasks) >= self._max_sessions:
            self._refusals.warn(peer, f"{self._max_sessions} sessions active")
            writer.close()
            return
        if self._per_peer.get(host, 0) >= self._max_per_peer:
            self._refusals.warn(peer, f"{self._max_per_peer} sessions active from {host}")
            writer.close()
            return
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._tasks.add(task)
        self._per_peer[host] = self._per_peer.get(host, 0) + 1
        task.add_done_callback(lambda done: self._session_done(done, host))

    def sessions_from(self, host: str) -> int:
        return self._per_peer.get(host, 0)

    def _session_done(self, task: asyncio.Task[None], host: str) -> None:
        self._tasks.discard(task)
        left = self._per_peer.get(host, 0) - 1
        if left > 0:
            self._per_peer[host] = left
        else:
            self._per_peer.pop(host, None)
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
            env = await self._admit(header.env, peer)
            if env is None:
                return
            session = AgiSession(
                reader,
                writer,
                env,
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

    async def _admit(self, raw: Mapping[str, str], peer: object) -> dict[str, str] | None:
        """The environment handlers may see, or None when the session is refused.

        The secret comes first, so a peer without it cannot even make us ask AMI anything.
        """
        presented, env = _split_key(raw)
        if not self._key.check(presented):
            self._refusals.warn(peer, "no or wrong secret")
            return None
        channel = env.get("agi_channel", "")
        uniqueid = env.get("agi_uniqueid", "")
        if not valid_channel(channel) or not valid_uniqueid(uniqueid):
            # repr: caller-influenced text, shown escaped and bounded
            logger.warning("FastAGI session from %s refused: malformed channel %r or "
                           "uniqueid %r", peer, channel[:80], uniqueid[:40])
            return None
        if not await self._verify(channel, uniqueid):
            logger.warning("FastAGI session from %s refused: channel %s (%s) unknown to AMI",
                           peer, channel, uniqueid)
            return None
        return env

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
