"""A scripted AMI server for tests and benchmarks: just enough of Asterisk's manager protocol.

Listens on 127.0.0.1 (port 0 by default) and behaves like Asterisk for Login,
Ping, Originate, list actions and fixed replies. Misbehaviour can be scripted:
freezing a connection (half-open: reads, never answers), dropping it, sending
events or raw bytes, and leaving chosen actions unanswered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

BANNER = b"Asterisk Call Manager/9.0.0\r\n"

Headers = Mapping[str, str] | Sequence[tuple[str, str]]


def encode(headers: Headers) -> bytes:
    """One AMI message: ``Key: value`` lines and a blank line."""
    items = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    return "".join(f"{k}: {v}\r\n" for k, v in items).encode() + b"\r\n"


@dataclass
class Received:
    """An action as the server read it."""

    conn: int
    at: float
    lines: list[tuple[str, str]]
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Repeated headers: the last one wins here; ``lines`` keeps them all.
        self.headers = dict(self.lines)

    @property
    def action(self) -> str:
        return self.headers.get("Action", "")


class ServerConnection(asyncio.Protocol):
    """One client connection to :class:`AmiTestServer`."""

    def __init__(self, server: AmiTestServer, index: int) -> None:
        self.server = server
        self.index = index
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.logged_in = False
        self.open = False
        #: Half-open: everything the client sends is swallowed, nothing is sent back.
        self.frozen = False
        self.gone = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.open = True
        transport.write(BANNER)

    def data_received(self, data: bytes) -> None:
        if self.frozen:
            return
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            raw, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            lines: list[tuple[str, str]] = []
            for line in raw.decode().split("\r\n"):
                key, sep, value = line.partition(": ")
                if sep:
                    lines.append((key, value))
            self.server._handle(self, lines)

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self.gone.set()

    def send(self, headers: Headers) -> None:
        self.write_raw(encode(headers))

    def write_raw(self, data: bytes) -> None:
        if self.open and not self.frozen and self.transport is not None:
            self.transport.write(data)

    def drop(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class AmiTestServer:
    """Scriptable fake Asterisk manager.

    Attributes tests may change at any time:

    * ``username`` / ``secret``: the credentials Login accepts.
    * ``silent_actions``: lower-case action names that are never answered.
    * ``replies``: lower-case action name to a fixed reply (ActionID is added).
    * ``lists``: lower-case action name to ``(item events, complete event name)``.
    * ``answer_pings``: False to ignore Ping on every connection.
    * ``originate_outcome``: ``(Response, Reason)`` of the OriginateResponse event that
      follows an ``Async: true`` Originate, or None to never send one (still ringing).
    * ``variables``: channel name to its variables, for Getvar (a channel not listed is
      "No such channel"; a variable not set is empty, as in Asterisk).
    * ``before``: lower-case action name to a function called with the action just before
      it is answered, e.g. to send events that reach the client ahead of the reply.
    """

    def __init__(self, *, username: str = "madoguchi", secret: str = "s3cret",  # noqa: S107
                 port: int = 0):
        self.username = username
        self.secret = secret
        self.port = port
        self.silent_actions: set[str] = set()
        self.replies: dict[str, dict[str, str]] = {}
        self.lists: dict[str, tuple[list[dict[str, str]], str]] = {}
        self.answer_pings = True
        self.originate_outcome: tuple[str, str] | None = ("Success", "4")
        self.variables: dict[str, dict[str, str]] = {}
        self.before: dict[str, Callable[[Received], None]] = {}
        self.connections: list[ServerConnection] = []
        self.received: list[Received] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._new_connection, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for conn in self.connections:
            conn.drop()
        for conn in self.connections:
            async with asyncio.timeout(1.0):
                await conn.gone.wait()

    def _new_connection(self) -> ServerConnection:
        conn = ServerConnection(self, len(self.connections))
        self.connections.append(conn)
        return conn

    # -- scripting ----------------------------------------------------------------------

    @property
    def open_connections(self) -> list[ServerConnection]:
        return [c for c in self.connections if c.open]

    def actions(self, name: str) -> list[Received]:
        """Every action of this name received so far, on any connection."""
        return [r for r in self.received if r.action.lower() == name.lower()]

    def emit(self, headers: Headers) -> None:
        """Send an event to every logged-in connection."""
        for conn in self.open_connections:
            if conn.logged_in:
                conn.send(headers)

    def freeze(self) -> None:
        """Turn every open connection half-open: no reply, no event, but no FIN either."""
        for conn in self.open_connections:
            conn.frozen = True

    def drop(self) -> None:
        """Reset every open connection, as a crashing Asterisk or a NAT timeout would."""
        for conn in self.open_connections:
            conn.drop()

    # -- protocol -----------------------------------------------------------------------

    def _handle(self, conn: ServerConnection, lines: list[tuple[str, str]]) -> None:
        received = Received(conn.index, asyncio.get_running_loop().time(), lines)
        self.received.append(received)
        headers = received.headers
        name = received.action.lower()
        action_id = [("ActionID", headers["ActionID"])] if "ActionID" in headers else []

        def reply(response: str, *extra: tuple[str, str]) -> None:
            conn.send([("Response", response), *action_id, *extra])

        if conn.logged_in and name in self.before:
            self.before[name](received)
        if name == "login":
            if headers.get("Username") == self.username and headers.get("Secret") == self.secret:
                conn.logged_in = True
                reply("Success", ("Message", "Authentication accepted"))
                if headers.get("Events", "on").lower() != "off":
                    conn.send(
                        [
                            ("Event", "FullyBooted"),
                            ("Privilege", "system,all"),
                            ("Uptime", "12"),
                            ("LastReload", "12"),
                            ("Status", "Fully Booted"),
                        ]
                    )
            else:
                # Asterisk hangs up after a failed login.
                reply("Error", ("Message", "Authentication failed"))
                assert conn.transport is not None
                conn.transport.close()
        elif not conn.logged_in:
            reply("Error", ("Message", "Permission denied"))
        elif name in self.silent_actions:
            pass
        elif name == "ping":
            if self.answer_pings:
                reply("Success", ("Ping", "Pong"), ("Timestamp", "1700000000.000000"))
        elif name in self.replies:
            conn.send([*self.replies[name].items(), *action_id])
        elif name == "getvar" and "Channel" in headers:
            variables = self.variables.get(headers["Channel"])
            variable = headers.get("Variable", "")
            if variables is None:
                reply("Error", ("Message", "No such channel"))
            else:
                reply("Success", ("Variable", variable), ("Value", variables.get(variable, "")))
        elif name in self.lists:
            items, complete = self.lists[name]
            reply("Success", ("EventList", "start"), ("Message", "Items will follow"))
            for item in items:
                conn.send([*item.items(), *action_id])
            conn.send(
                [
                    ("Event", complete),
                    *action_id,
                    ("EventList", "Complete"),
                    ("ListItems", str(len(items))),
                ]
            )
        elif name == "originate":
            reply("Success", ("Message", "Originate successfully queued"))
            if headers.get("Async", "").lower() == "true" and self.originate_outcome:
                response, reason = self.originate_outcome
                answered = response == "Success"
                conn.send(
                    [
                        ("Event", "OriginateResponse"),
                        ("Privilege", "call,all"),
                        *action_id,
                        ("Response", response),
                        ("Channel", headers.get("Channel", "") + ("-00000001" if answered else "")),
                        ("Context", headers.get("Context", "")),
                        ("Exten", headers.get("Exten", "")),
                        ("Reason", reason),
                        ("Uniqueid", "1700000000.1" if answered else "<unknown>"),
                        ("CallerIDNum", "<unknown>"),
                        ("CallerIDName", "<unknown>"),
                    ]
                )
        elif name == "logoff":
            reply("Goodbye", ("Message", "Thanks for all the fish."))
            assert conn.transport is not None
            conn.transport.close()
        else:
            reply("Error", ("Message", "Invalid/unknown command"))
