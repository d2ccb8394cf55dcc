"""asyncio client for the Asterisk Manager Interface, built on panoramisk 1.4.

panoramisk is used for framing, parsing, and matching replies to actions by
ActionID. This module owns everything else, because panoramisk 1.4 gets the
connection lifecycle wrong:

* ``Manager.connect()`` returns before Login completes, and a rejected Login
  raises nothing. Here Login is an ordinary awaited action with a timeout.
* Its Ping is fire-and-forget, so a half-open TCP link looks healthy forever.
  Here a watchdog awaits every Pong and drops the link when one is late.
* Its reconnect loop retries every 2 s with no backoff and re-sends actions
  that were unanswered when the link died, so a lost Originate rings twice.
  Here reconnection uses exponential backoff with jitter, and in-flight actions
  fail with :class:`AmiDisconnected` instead of being re-sent.
* Its reply matcher guesses from the reply text whether more messages follow.
  On "... successfully queued" replies that guess raises ``KeyError('async')``
  and kills the link. It never completes for QueueAdd ("Added interface to
  queue"), and it waits forever for a list action that is answered with an
  error. Here the caller says whether an action is a list action.
* Event callbacks run inside ``data_received``, so a raising callback drops
  the link. Here events are copied to a queue, and a separate task delivers
  them to subscribers.
* Input is decoded one TCP read at a time with ``errors='ignore'``, which
  silently drops a multi-byte character (a Japanese caller name, say) that is
  split across two reads. Here an incremental decoder is used.

Events reach subscribers as plain ``dict[str, str]``. If a header appears more
than once in a message (``ChanVariable``, ``Output``...), only its last value
is kept.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, NoReturn, TypeAlias

from panoramisk.actions import Action
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.manager import Manager

from ami_bridge.ami_errors import (
    AmiActionError,
    AmiAuthError,
    AmiDisconnected,
    AmiError,
    AmiTimeout,
)

__all__ = [
    "ActionHeaders",
    "AmiClient",
    "Event",
    "EventHandler",
    "LinkHandler",
    "message_to_dict",
]

log = logging.getLogger(__name__)

Event: TypeAlias = Mapping[str, str]
"""One AMI event as a header dict: ``{"Event": "Hangup", "Uniqueid": ..., ...}``."""
EventHandler: TypeAlias = Callable[[Event], Awaitable[None]]
LinkHandler: TypeAlias = Callable[[], Awaitable[None]]
ActionHeaders: TypeAlias = Mapping[str, str | list[str] | tuple[str, ...]]
"""Action headers. A list or tuple value sends the header once per item (``Variable``)."""

# Actions whose success reply ends in "successfully queued". panoramisk's own matcher reads
# their Async header and raises KeyError when it is absent. Our matcher never looks, but an
# explicit "Async: false" is harmless: it is Asterisk's default anyway.
_QUEUED_ACTIONS = frozenset(
    {"originate", "atxfer", "cancelatxfer", "playdtmf", "playmf", "sendflash"}
)
_OK_RESPONSES = frozenset({"success", "follows", "goodbye"})
_REDACTED_HEADERS = frozenset({"secret", "key"})
# How long to wait for the event loop to confirm that a dropped socket is closed.
_CLOSE_WAIT = 1.0


def message_to_dict(message: Mapping[str, Any]) -> dict[str, str]:
    """Flatten a panoramisk ``Message``. A repeated header keeps only its last value.

    panoramisk stores the body of a ``Response: Follows`` reply as a ``content`` entry,
    empty in every other message. The empty one is not a header and is left out.
    """
    out: dict[str, str] = {}
    for key, value in message.items():
        if isinstance(value, list):
            value = value[-1] if value else ""
        if key == "content" and not value:
            continue
        out[str(key)] = str(value)
    return out


def _header(message: Mapping[str, Any], name: str) -> str:
    # panoramisk messages are case-insensitive, and a repeated header is a list.
    value = message.get(name, "")
    if isinstance(value, list):
        value = value[-1] if value else ""
    return str(value)


def _action_name(action: ActionHeaders) -> str:
    for key, value in action.items():
        if key.lower() == "action":
            return str(value)
    return ""


def _is_response(message: Mapping[str, Any]) -> bool:
    # OriginateResponse events also carry a Response header; only a reply lacks Event.
    return "response" in message and "event" not in message


def _is_ok(message: Mapping[str, Any]) -> bool:
    return _header(message, "response").lower() in _OK_RESPONSES


def _is_list_end(message: Mapping[str, Any]) -> bool:
    if _header(message, "eventlist").lower() == "complete":
        return True
    return "event" in message and _header(message, "event").endswith("Complete")


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Action(Action):  # type: ignore[misc]
    """An action whose completion rule comes from the caller instead of the reply text.

    Single action: done at the first reply. List action: done at the ``...Complete``
    event, or at once if the reply is an error. The future's result is always the list of
    messages collected so far.
    """

    def add_message(self, message: Any) -> bool:
        if self.future.done():
            # Timed out or failed on our side: let the protocol forget the action.
            return True
        self.responses.append(message)
        if _is_response(message) and (not self.as_list or not _is_ok(message)):
            self.future.set_result(list(self.responses))
            return True
        if self.as_list and _is_list_end(message):
            self.future.set_result(list(self.responses))
            return True
        return False

    def __repr__(self) -> str:
        # panoramisk logs actions with %r when a write fails. Keep secrets out of logs.
        shown = {
            k: ("********" if k.lower() in _REDACTED_HEADERS else v) for k, v in self.items()
        }
        return f"<AmiAction {shown}>"


def _build_action(action: ActionHeaders, *, as_list: bool) -> tuple[_Action, str]:
    for key, value in action.items():
        values = value if isinstance(value, list | tuple) else (value,)
        for item in (key, *values):
            if "\r" in str(item) or "\n" in str(item):
                # A line break would let a value inject headers, or even a whole action.
                raise ValueError(f"AMI header {key!r} contains a line break")
    act = _Action(dict(action), as_list=as_list)
    name = _header(act, "action")
    if not name:
        raise ValueError("AMI action has no 'Action' header")
    if name.lower() in _QUEUED_ACTIONS and "async" not in act:
        act["Async"] = "false"
    return act, name


class _Protocol(AMIProtocol):  # type: ignore[misc]
    """AMIProtocol with incremental UTF-8 decoding and a 'closed' signal."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.encoding = "utf-8"
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.gone = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        text = self.decoder.decode(data)
        if text:
            # The base class decodes each read on its own; hand it whole characters only.
            super().data_received(text.encode(self.encoding))

    def close(self) -> None:
        # panoramisk would move unanswered actions to a re-send queue (logging each one in
        # full); the session fails them with AmiDisconnected instead.
        self.responses.clear()
        super().close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone.set()
        if self.factory is None:
            # Lost before it was attached to a manager: nobody to tell.
            self.closed = True
            return
        super().connection_lost(exc)


class _Manager(Manager):  # type: ignore[misc]
    """panoramisk Manager with all of its self-healing turned off.

    :class:`AmiClient` creates one per TCP connection and decides on its own when to
    reconnect and what happens to unanswered actions.
    """

    def __init__(
        self,
        on_event: Callable[[Any], None],
        on_lost: Callable[[str], None],
        **config: Any,
    ) -> None:
        super().__init__(**config)
        # Manager.__init__ hooks FullyBooted to send_awaiting_actions(), which re-sends
        # whatever was unanswered when the previous link died. Start with no hooks at all.
        self.callbacks.clear()
        self.patterns.clear()
        # One catch-all hook that only enqueues and cannot raise: an exception here would
        # propagate out of data_received and close the link.
        self.register_event("*", lambda _manager, message: on_event(message))
        self._on_lost = on_lost

    def attach(self, protocol: _Protocol) -> None:
        """Adopt a connected protocol (Manager.connection_made, minus login and pinger)."""
        protocol.factory = self
        protocol.log = self.log
        protocol.config = self.config
        protocol.encoding = self.encoding = self.config["encoding"]
        self.protocol = protocol
        self.responses = protocol.responses
        self._connected = True

    def connect(self, *_args: Any, **_kwargs: Any) -> NoReturn:
        raise RuntimeError("connections are opened by AmiClient")

    def connection_lost(self, exc: Any) -> None:
        # The base class schedules its own reconnect here; AmiClient decides instead.
        self._connected = False
        self.authenticated = False
        self.awaiting_actions.clear()
        if exc is None:
            reason = "connection closed by Asterisk"
        elif isinstance(exc, BaseException):
            reason = _describe(exc)
        else:
            # panoramisk passes the Shutdown event itself.
            reason = f"Asterisk shutdown (Shutdown: {_header(exc, 'shutdown') or '?'})"
        self._on_lost(reason)

    def ping(self) -> None:
        """Disabled: the client's watchdog pings and checks the answer."""

    async def send_awaiting_actions(self, *_args: Any) -> None:
        # Never re-send: a repeated Originate is a second phone call.
        self.awaiting_actions.clear()


class _Session:
    """One TCP connection: its panoramisk objects, its in-flight actions, and its fate."""

    def __init__(
        self,
        transport: asyncio.Transport,
        protocol: _Protocol,
        on_event: Callable[[Any], None],
        on_lost: Callable[[_Session], None],
        config: Mapping[str, Any],
    ) -> None:
        self.transport = transport
        self.protocol = protocol
        self.manager = _Manager(on_event, self.mark_lost, **config)
        self.manager.attach(protocol)
        self.logged_in = False
        self.lost = asyncio.Event()
        self.lost_reason: str | None = None
        self._pending: set[asyncio.Future[Any]] = set()
        self._on_lost = on_lost

    @property
    def alive(self) -> bool:
        return self.lost_reason is None

    def mark_lost(self, reason: str) -> None:
        if self.lost_reason is not None:
            return
        self.lost_reason = reason
        self.lost.set()
        for fut in self._pending:
            if not fut.done():
                fut.set_exception(AmiDisconnected(f"AMI link lost ({reason}); action not re-sent"))
        self._pending.clear()
        self._on_lost(self)

    def track(self, fut: asyncio.Future[Any]) -> None:
        """Fail ``fut`` with AmiDisconnected if this link is lost before it is done."""
        self._pending.add(fut)

    def untrack(self, fut: asyncio.Future[Any]) -> None:
        self._pending.discard(fut)

    def drop(self, reason: str) -> None:
        """Close the link from our side. Safe to call more than once."""
        self.mark_lost(reason)
        # closed=True stops panoramisk from reporting this close back to the manager.
        self.protocol.close()
        # abort(), not close(): a half-open peer would never drain the send buffer.
        self.transport.abort()

    async def wait_closed(self) -> None:
        try:
            async with asyncio.timeout(_CLOSE_WAIT):
                await self.protocol.gone.wait()
        except TimeoutError:
            log.warning("AMI socket did not close within %.1f s", _CLOSE_WAIT)

    async def request(
        self, action: ActionHeaders, *, as_list: bool, deadline: float
    ) -> list[Any]:
        """Send one action. Return the messages that answered it (see :class:`_Action`)."""
        act, name = _build_action(action, as_list=as_list)
        if not self.alive:
            raise AmiDisconnected(f"AMI link lost ({self.lost_reason})")
        fut: asyncio.Future[list[Any]] = self.manager.send_action(act, as_list=as_list)
        self.track(fut)
        try:
            async with asyncio.timeout(deadline):
                return await fut
        except TimeoutError:
            raise AmiTimeout(f"{name}: no answer within {deadline:g} s") from None
        finally:
            self.untrack(fut)
            # Forget the action even when it was not answered, so a late reply is dropped
            # and the table does not grow.
            self.protocol.responses.pop(act.id, None)


class AmiClient:
    """A self-healing AMI connection.

    Call :meth:`start` once. The client then keeps connecting, logging in, and
    reconnecting with backoff until :meth:`close` is called, even if Asterisk is
    down at start.
    """

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        ping_interval: float = 10.0,
        ping_timeout: float = 5.0,
        action_timeout: float = 10.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        events: str = "on",
        only_events: Sequence[str] = (),
    ) -> None:
        for name, value in (
            ("ping_interval", ping_interval),
            ("ping_timeout", ping_timeout),
            ("action_timeout", action_timeout),
            ("backoff_initial", backoff_initial),
        ):
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        if backoff_max < backoff_initial:
            raise ValueError("backoff_max must be >= backoff_initial")
        self._host = host
        self._port = port
        self._username = username
        self._secret = secret
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._action_timeout = action_timeout
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._events_mode = events
        self._only_events = tuple(only_events)

        self._subscribers: list[EventHandler] = []
        self._connected_handlers: list[LinkHandler] = []
        self._disconnected_handlers: list[LinkHandler] = []
        self._event_queue: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self._connected_evt = asyncio.Event()
        self._session: _Session | None = None
        self._runner: asyncio.Task[None] | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._closed = False
        self._logins = 0
        self._originates: dict[str, asyncio.Future[dict[str, str]]] = {}

        #: Successful logins after the first one.
        self.reconnects = 0
        #: Why the last connection attempt failed or the last link was lost. Not cleared
        #: on success: it is history, not state. Check :attr:`connected` for state.
        self.last_error: str | None = None

    # -- registration -------------------------------------------------------------------

    def subscribe(self, handler: EventHandler) -> None:
        """Deliver every event to ``handler``, in the order received.

        All subscribers are awaited one after the other, one event at a time, by a
        single task, so a slow subscriber delays the others (events queue up, none are
        lost). An exception is logged and the next subscriber still gets the event.
        The dict is shared between subscribers: do not modify it.
        """
        self._subscribers.append(handler)

    def on_connected(self, handler: LinkHandler) -> None:
        """Call ``handler`` after each successful login, the first one and every reconnect.

        :attr:`connected` is already true, so the handler can send actions to rebuild
        state. Handlers run in the connection task, one after the other. Event delivery
        and the ping watchdog keep running meanwhile. Exceptions are logged.
        """
        self._connected_handlers.append(handler)

    def on_disconnected(self, handler: LinkHandler) -> None:
        """Call ``handler`` when a logged-in link is lost (not on failed attempts or close())."""
        self._disconnected_handlers.append(handler)

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Start connecting in the background and return at once."""
        if self._closed:
            raise RuntimeError("AmiClient is closed")
        if self._runner is not None:
            return
        self._dispatcher = asyncio.create_task(self._dispatch_events(), name="ami-events")
        self._runner = asyncio.create_task(self._run(), name=f"ami {self._host}:{self._port}")

    async def wait_connected(self, timeout: float) -> bool:
        """Wait until logged in. Return False if that did not happen within ``timeout``."""
        if self.connected:
            return True
        if self._closed:
            return False
        try:
            async with asyncio.timeout(timeout):
                await self._connected_evt.wait()
        except TimeoutError:
            return False
        return self.connected

    @property
    def connected(self) -> bool:
        """Logged in, and the ping watchdog has not given up on the link."""
        session = self._session
        return session is not None and session.logged_in and session.alive

    async def close(self) -> None:
        """Drop the link (without Logoff) and stop all background tasks. Idempotent.

        Actions still in flight fail with :class:`AmiDisconnected`. Events still
        queued are not delivered.
        """
        self._closed = True
        tasks = [t for t in (self._runner, self._dispatcher) if t is not None]
        self._runner = self._dispatcher = None
        current = asyncio.current_task()
        others = [t for t in tasks if t is not current]
        for task in others:
            task.cancel()
        if others:
            await asyncio.gather(*others, return_exceptions=True)
        if current in tasks:
            # Called from a handler running in one of our own tasks: that task stops at
            # its next await, after this call has returned.
            assert current is not None
            current.cancel()

    # -- actions ------------------------------------------------------------------------

    async def send(
        self, action: ActionHeaders, timeout: float | None = None
    ) -> dict[str, str]:
        """Send an action and return its reply.

        Raises :class:`AmiDisconnected` if not connected or if the link is lost before
        the reply. The action is never re-sent. Raises :class:`AmiActionError` on
        ``Response: Error`` and :class:`AmiTimeout` if no reply comes in time.

        Use an explicit ``Async: true`` for Originate. Without it Asterisk blocks this
        AMI session until the call is answered or fails. With it, the reply comes
        at once and the outcome arrives later as an ``OriginateResponse`` event with the
        same ActionID. Pass your own ``ActionID`` to correlate the two, or use
        :meth:`originate`, which does that for you.
        """
        return await self._send_on(self._usable_session(), action, self._timeout(timeout))

    async def originate(
        self, action: ActionHeaders, timeout: float | None = None
    ) -> dict[str, str]:
        """Originate a call and wait for its outcome. Return the ``OriginateResponse`` event.

        ``Async: true`` is always sent. An ActionID is generated unless you supply one.
        A call that was not answered is not an error: check ``Response`` (``Success`` or
        ``Failure``) and ``Reason`` (4 = answered, 5 = busy, 3 = no answer, 8 = congestion)
        in the result. The event also reaches subscribers as usual.

        Raises :class:`AmiActionError` if Asterisk refuses the action outright,
        :class:`AmiDisconnected` if the link is lost first (the call may exist), and
        :class:`AmiTimeout` if no outcome arrives within ``timeout``. The default
        timeout is the action's ``Timeout`` header (ms, Asterisk's default is 30 s) plus
        ``action_timeout``. The client must receive ``call`` events (``events="on"``
        does).
        """
        session = self._usable_session()
        headers: dict[str, Any] = {
            k: v for k, v in action.items() if k.lower() not in ("async", "actionid")
        }
        action_id = next(
            (str(v) for k, v in action.items() if k.lower() == "actionid"),
            f"originate-{uuid.uuid4().hex}",
        )
        if action_id in self._originates:
            raise ValueError(f"an Originate with ActionID {action_id!r} is already pending")
        headers.update({"Async": "true", "ActionID": action_id})
        deadline = self._originate_timeout(headers) if timeout is None else timeout
        outcome: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        # Registered before sending, so even an instant outcome cannot be missed.
        self._originates[action_id] = outcome
        session.track(outcome)
        try:
            async with asyncio.timeout(deadline):
                await self._send_on(session, headers, min(deadline, self._action_timeout))
                return await outcome
        except TimeoutError:
            raise AmiTimeout(
                f"Originate {action_id}: no outcome within {deadline:g} s"
            ) from None
        finally:
            self._originates.pop(action_id, None)
            session.untrack(outcome)
            if outcome.done() and not outcome.cancelled():
                # The link may have failed it while we were still waiting for the reply.
                outcome.exception()

    async def send_list(
        self, action: ActionHeaders, timeout: float | None = None
    ) -> list[dict[str, str]]:
        """Send a list action (CoreShowChannels, PJSIPShowEndpoints...). Return its events.

        The result holds the item events only, without the initial reply and the final
        ``...Complete`` event (``EventList: Complete``). Those events are not delivered
        to subscribers. Errors are as for :meth:`send`. An error reply raises at once
        instead of waiting for a list that will never come.
        """
        session = self._usable_session()
        messages = await session.request(action, as_list=True, deadline=self._timeout(timeout))
        first = messages[0]
        if _is_response(first) and not _is_ok(first):
            reply = message_to_dict(first)
            raise AmiActionError(
                reply.get("Message", ""), action=_action_name(action), response=reply
            )
        return [
            message_to_dict(m)
            for m in messages
            if not _is_response(m) and not _is_list_end(m)
        ]

    def _usable_session(self) -> _Session:
        session = self._session
        if self._closed:
            raise AmiDisconnected("AMI client is closed")
        if session is None or not session.logged_in or not session.alive:
            raise AmiDisconnected(f"not connected to AMI ({self.last_error or 'connecting'})")
        return session

    def _timeout(self, timeout: float | None) -> float:
        return self._action_timeout if timeout is None else timeout

    def _originate_timeout(self, headers: Mapping[str, Any]) -> float:
        ring_ms = next((v for k, v in headers.items() if k.lower() == "timeout"), "30000")
        try:
            ring = max(float(str(ring_ms)) / 1000, 0.0)
        except ValueError:
            ring = 30.0
        return ring + self._action_timeout

    async def _send_on(
        self, session: _Session, action: ActionHeaders, deadline: float
    ) -> dict[str, str]:
        messages = await session.request(action, as_list=False, deadline=deadline)
        reply = message_to_dict(messages[-1])
        if not _is_ok(messages[-1]):
            raise AmiActionError(
                reply.get("Message", ""), action=_action_name(action), response=reply
            )
        return reply

    # -- background tasks ---------------------------------------------------------------

    async def _run(self) -> None:
        delay = self._backoff_initial
        while not self._closed:
            try:
                session = await self._open_session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error = _describe(exc)
                pause = self._jitter(delay)
                log.warning(
                    "AMI %s:%d: connection failed: %s; retrying in %.1f s",
                    self._host, self._port, self.last_error, pause,
                )
            else:
                # A successful login resets the backoff.
                delay = self._backoff_initial
                pause = self._jitter(delay)
                try:
                    await self._serve(session)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # A bug must not end reconnection for good.
                    log.exception("AMI %s:%d: unexpected error", self._host, self._port)
                log.info("AMI %s:%d: reconnecting in %.1f s", self._host, self._port, pause)
            await asyncio.sleep(pause)
            delay = min(delay * 2, self._backoff_max)

    def _jitter(self, delay: float) -> float:
        # Spread reconnects so that many clients do not hit a restarted Asterisk together.
        return delay * random.uniform(0.5, 1.0)  # noqa: S311 - not security relevant

    async def _open_session(self) -> _Session:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._action_timeout):
                transport, protocol = await loop.create_connection(
                    _Protocol, self._host, self._port
                )
        except TimeoutError:
            raise AmiTimeout(f"TCP connect timed out after {self._action_timeout:g} s") from None
        if _connected_to_itself(transport):
            # Linux "simultaneous open": retrying a loopback port nobody listens on can
            # pick that same port as the source and connect the socket to itself, which
            # would also keep Asterisk from binding the port once it starts.
            transport.abort()
            raise ConnectionRefusedError(f"nothing listens on {self._host}:{self._port}")
        session = _Session(
            transport,
            protocol,
            self._enqueue_event,
            self._session_lost,
            {
                "host": self._host,
                "port": self._port,
                "events": self._events_mode,
                "encoding": "utf-8",
                "loop": loop,
            },
        )
        try:
            messages = await session.request(
                {
                    "Action": "Login",
                    "Username": self._username,
                    "Secret": self._secret,
                    "Events": self._events_mode,
                },
                as_list=False,
                deadline=self._action_timeout,
            )
            reply = messages[-1]
            if not _is_ok(reply):
                raise AmiAuthError(
                    f"login as {self._username!r} rejected: {_header(reply, 'message') or '?'}"
                )
            await self._filter_events(session)
        except BaseException as exc:
            reason = _describe(exc) if isinstance(exc, AmiError) else "login interrupted"
            session.drop(reason)
            await session.wait_closed()
            raise
        return session

    async def _filter_events(self, session: _Session) -> None:
        """Ask Asterisk for only the events we handle, on this session alone: a busy PBX
        sends hundreds per call (dialplan steps, variables, RTCP), and decoding them is
        most of what a client would spend. Replies to list actions are not events and
        always arrive. An Asterisk without name filters (before 20.6) sends everything."""
        for name in self._only_events:
            reply = (await session.request(
                {"Action": "Filter", "Operation": "Add",
                 "MatchCriteria": f"action(include),name({name})", "Filter": ""},
                as_list=False, deadline=self._action_timeout))[-1]
            if not _is_ok(reply):
                log.warning("AMI event filter refused (%s): receiving every event",
                            _header(reply, "message") or "?")
                return

    async def _serve(self, session: _Session) -> None:
        """Run one logged-in session until it is lost, then clean it up."""
        self._session = session
        session.logged_in = True
        self._logins += 1
        if self._logins > 1:
            self.reconnects += 1
        self._connected_evt.set()
        log.info(
            "AMI %s:%d: logged in as %r%s",
            self._host, self._port, self._username,
            f" (reconnect #{self.reconnects})" if self._logins > 1 else "",
        )
        watchdog = asyncio.create_task(self._watchdog(session), name="ami-watchdog")
        try:
            await self._call_link_handlers(self._connected_handlers, "on_connected")
            await session.lost.wait()
        finally:
            watchdog.cancel()
            session.drop("client closed")
            self._connected_evt.clear()
            self._session = None
            await asyncio.gather(watchdog, return_exceptions=True)
            await session.wait_closed()
        self.last_error = session.lost_reason
        log.info("AMI %s:%d: disconnected: %s", self._host, self._port, session.lost_reason)
        await self._call_link_handlers(self._disconnected_handlers, "on_disconnected")

    async def _watchdog(self, session: _Session) -> None:
        while session.alive:
            await asyncio.sleep(self._ping_interval)
            try:
                await session.request(
                    {"Action": "Ping"}, as_list=False, deadline=self._ping_timeout
                )
            except AmiTimeout:
                session.drop(f"no reply to Ping within {self._ping_timeout:g} s")
                return
            except AmiDisconnected:
                return

    def _session_lost(self, session: _Session) -> None:
        if session is self._session:
            self._connected_evt.clear()

    def _enqueue_event(self, message: Any) -> None:
        # Runs inside panoramisk's data_received: must never raise.
        try:
            event = message_to_dict(message)
            if self._originates and _header(message, "event") == "OriginateResponse":
                waiter = self._originates.get(_header(message, "actionid"))
                if waiter is not None and not waiter.done():
                    waiter.set_result(event)
            self._event_queue.put_nowait(event)
        except Exception:
            log.exception("AMI: could not queue an event")

    async def _dispatch_events(self) -> None:
        while True:
            event = await self._event_queue.get()
            for handler in tuple(self._subscribers):
                try:
                    await handler(event)
                except Exception:
                    log.exception(
                        "AMI event subscriber %r failed on %s event",
                        handler, event.get("Event", "?"),
                    )

    async def _call_link_handlers(self, handlers: list[LinkHandler], what: str) -> None:
        for handler in tuple(handlers):
            try:
                await handler()
            except Exception:
                log.exception("AMI %s handler %r failed", what, handler)


def _connected_to_itself(transport: asyncio.BaseTransport) -> bool:
    """True when the TCP socket's local and remote addresses are the same."""
    local = transport.get_extra_info("sockname")
    return local is not None and local == transport.get_extra_info("peername")
