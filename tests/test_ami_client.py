"""AmiClient against the scripted loopback AMI server (no Asterisk needed)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from ami_bridge.ami import AmiClient, Event, _connected_to_itself
from ami_bridge.ami_errors import AmiActionError, AmiDisconnected, AmiTimeout
from harness.ami_server import AmiTestServer, encode
from harness.ports import free_port

PING = {"Action": "Ping"}
ORIGINATE = {
    "Action": "Originate",
    "Channel": "PJSIP/100",
    "Context": "default",
    "Exten": "200",
    "Priority": "1",
}

ClientFactory = Callable[..., AmiClient]


async def eventually(predicate: Callable[[], bool], within: float = 1.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - polls state owned by the code under test
            await asyncio.sleep(0.005)


class Recorder:
    """Counts lifecycle callbacks and keeps every event."""

    def __init__(self, client: AmiClient) -> None:
        self.events: list[Event] = []
        self.connects = 0
        self.disconnects = 0
        client.subscribe(self.on_event)
        client.on_connected(self.on_connected)
        client.on_disconnected(self.on_disconnected)

    async def on_event(self, event: Event) -> None:
        self.events.append(event)

    async def on_connected(self) -> None:
        self.connects += 1

    async def on_disconnected(self) -> None:
        self.disconnects += 1

    def named(self, name: str) -> list[Event]:
        return [e for e in self.events if e.get("Event") == name]


@pytest.fixture
async def server() -> AsyncIterator[AmiTestServer]:
    srv = AmiTestServer()
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def make_client(server: AmiTestServer) -> AsyncIterator[ClientFactory]:
    clients: list[AmiClient] = []

    def factory(port: int | None = None, secret: str = "s3cret", **options: Any) -> AmiClient:
        settings: dict[str, Any] = {
            "ping_interval": 5.0,
            "ping_timeout": 1.0,
            "action_timeout": 1.0,
            "backoff_initial": 0.05,
            "backoff_max": 0.2,
        }
        settings.update(options)
        client = AmiClient(
            "127.0.0.1", server.port if port is None else port, "madoguchi", secret, **settings
        )
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.close()


async def connected_client(make_client: ClientFactory, **options: Any) -> AmiClient:
    client = make_client(**options)
    await client.start()
    assert await client.wait_connected(1.0)
    return client


# -- login ------------------------------------------------------------------------------


async def test_login_is_awaited_before_connected(
    server: AmiTestServer, make_client: ClientFactory
) -> None:
    client = make_client()
    calls: list[bool] = []

    async def note_state() -> None:
        calls.append(client.connected)

    async def broken_handler() -> None:
        raise RuntimeError("handler bug")

    client.on_connected(broken_handler)
    client.on_connected(note_state)
    await client.start()
    assert not client.connected  # start() does not wait for the link

    assert await client.wait_connected(1.0)
    assert client.connected
    [login] = server.actions("Login")
    assert login.headers["Username"] == "madoguchi"
    assert login.headers["Secret"] == "s3cret"
    assert login.headers["Events"] == "on"
    await eventually(lambda: calls == [True])  # runs after a failing handler, sees connected

    reply = await client.send(PING)
    assert reply["Response"] == "Success"
    assert reply["Ping"] == "Pong"
    assert reply["ActionID"] == server.actions("Ping")[0].headers["ActionID"]
    assert client.reconnects == 0


async def test_rejected_login_is_reported_and_retried_with_backoff(
    server: AmiTestServer, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(secret="wrong-pass", backoff_initial=0.04, backoff_max=0.16)
    await client.start()

    assert not await client.wait_connected(0.6)
    assert not client.connected
    assert client.last_error is not None
    assert "AmiAuthError" in client.last_error
    assert "Authentication failed" in client.last_error
    with pytest.raises(AmiDisconnected, match="Authentication failed"):
        await client.send(PING)

    times = [r.at for r in server.actions("Login")]
    assert 3 <= len(times) <= 10, times
    gaps = [b - a for a, b in itertools.pairwise(times)]
    for i, gap in enumerate(gaps):
        # Jitter keeps every pause within [delay / 2, delay], and the delay doubles.
        assert gap >= 0.5 * min(0.04 * 2**i, 0.16) - 0.005, gaps
    assert "wrong-pass" not in caplog.text

    server.secret = "wrong-pass"  # the credentials become valid: the next try gets in
    assert await client.wait_connected(1.0)
    assert client.reconnects == 0  # first successful login


async def test_ami_down_at_start_then_appears(make_client: ClientFactory) -> None:
    port = free_port()
    client = make_client(port=port)
    await client.start()  # must not raise although nothing listens
    await asyncio.sleep(0.15)
    assert not client.connected
    assert client.last_error is not None
    assert "Connect" in client.last_error
    with pytest.raises(AmiDisconnected):
        await client.send(PING)

    late = AmiTestServer(port=port)
    await late.start()
    try:
        assert await client.wait_connected(1.0)
        assert len(late.actions("Login")) == 1
    finally:
        await client.close()
        await late.stop()


# -- events -----------------------------------------------------------------------------


async def test_events_reach_subscribers_in_order(
    server: AmiTestServer, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client()
    seen: list[Event] = []

    async def broken(event: Event) -> None:
        raise RuntimeError("subscriber bug")

    async def slow(event: Event) -> None:
        await asyncio.sleep(0.001)  # yielding must not reorder events
        seen.append(event)

    client.subscribe(broken)
    client.subscribe(slow)
    await client.start()
    assert await client.wait_connected(1.0)
    await eventually(lambda: any(e["Event"] == "FullyBooted" for e in seen))

    for i in range(5):
        server.emit([("Event", "UserEvent"), ("UserEvent", "Seq"), ("Seq", str(i))])
    server.emit([("Event", "VarSet"), ("Variable", "X"), ("Value", "first"), ("Value", "last")])
    await eventually(lambda: len(seen) >= 7)

    assert [e.get("Seq") for e in seen[1:6]] == ["0", "1", "2", "3", "4"]
    assert seen[6]["Value"] == "last"  # a repeated header keeps its last value
    assert all(type(e) is dict for e in seen)
    assert all("content" not in e for e in seen)  # panoramisk's body slot is not a header
    assert all(isinstance(v, str) for e in seen for v in e.values())
    # The raising subscriber neither dropped the link nor stopped delivery.
    assert "subscriber bug" in caplog.text
    assert client.connected
    assert len(server.connections) == 1 and server.connections[0].open
    assert (await client.send(PING))["Ping"] == "Pong"


async def test_multibyte_character_split_across_reads(
    server: AmiTestServer, make_client: ClientFactory
) -> None:
    client = make_client()
    rec = Recorder(client)
    await client.start()
    assert await client.wait_connected(1.0)

    payload = encode([("Event", "Newchannel"), ("CallerIDName", "山田太郎"), ("Uniqueid", "9.9")])
    cut = payload.index("田".encode()) + 1  # in the middle of a 3-byte character
    conn = server.connections[0]
    conn.write_raw(payload[:cut])
    await asyncio.sleep(0.05)  # make sure the client reads the halves separately
    conn.write_raw(payload[cut:])

    await eventually(lambda: bool(rec.named("Newchannel")))
    assert rec.named("Newchannel")[0]["CallerIDName"] == "山田太郎"


# -- link failures ----------------------------------------------------------------------


async def test_watchdog_reconnects_after_half_open_link(
    server: AmiTestServer, make_client: ClientFactory
) -> None:
    client = make_client(ping_interval=0.1, ping_timeout=0.1)
    rec = Recorder(client)
    await client.start()
    assert await client.wait_connected(1.0)
    await eventually(lambda: rec.connects == 1)

    server.freeze()  # the socket stays open, but nothing comes back
    await eventually(lambda: rec.connects == 2, within=1.5)

    assert client.connected
    assert client.reconnects == 1
    assert rec.disconnects == 1
    assert client.last_error is not None and "Ping" in client.last_error
    assert len(server.connections) == 2
    await eventually(lambda: not server.connections[0].open)  # we closed the dead socket
    assert (await client.send(PING))["Ping"] == "Pong"


async def test_pending_action_fails_on_drop_and_is_not_resent(
    server: AmiTestServer, make_client: ClientFactory
) -> None:
    client = make_client()
    rec = Recorder(client)
    await client.start()
    assert await client.wait_connected(1.0)
    server.silent_actions.add("originate")

    pending = asyncio.create_task(client.send({**ORIGINATE, "ActionID": "orig-1"}))
    await eventually(lambda: len(server.actions("Originate")) == 1)
    server.drop()

    with pytest.raises(AmiDisconnected):
        await pending
    await eventually(lambda: rec.connects == 2)
    assert rec.disconnects == 1
    assert client.reconnects == 1
    # panoramisk would re-send on the new link's FullyBooted; a round trip lets it try.
    await eventually(lambda: bool(rec.named("FullyBooted")[1:]))
    assert (await client.send(PING))["Ping"] == "Pong"
    assert len(server.actions("Originate")) == 1
    assert server.actions("Originate")[0].conn == 0


async def test_shutdown_event_counts_as_disconnect(
    server: AmiTestServer, make_client: ClientFactory
) -> None:
    client = make_client()
    rec = Recorder(client)
    await client.start()
    assert await client.wait_connected(1.0)

    server.emit([("Event", "Shutdown"), ("Shutdown", "Cleanly"), ("Restart", "True")])
    await eventually(lambda: rec.connects == 2)
    assert rec.disconnects == 1
    assert client.last_error == "Asterisk shutdown (Shutdown: Cleanly)"
    assert rec.named("Shutdown")  # still delivered to subscribers
    assert client.connected


# -- actions ----------------------------------------------------------------------------


async def test_send_list_returns_item_events(
    server: AmiTestServer, make_client: ClientFactory
) -> None:
    server.lists["coreshowchannels"] = (
        [
            {"Event": "CoreShowChannel", "Channel": "PJSIP/100-00000001", "Uniqueid": "1.1"},
            {"Event": "CoreShowChannel", "Channel": "PJSIP/101-00000002", "Uniqueid": "1.2"},
        ],
        "CoreShowChannelsComplete",
    )
    server.lists["pjsipshowendpoints"] = ([], "EndpointListComplete")
    client = make_client()
    rec = Recorder(client)
    await client.start()
    assert await client.wait_connected(1.0)

    items = await client.send_list({"Action": "CoreShowChannels"})
    assert [i["Channel"] for i in items] == ["PJSIP/100-00000001", "PJSIP/101-00000002"]
    assert {i["Event"] for i in items} == {"CoreShowChannel"}
    assert await client.send_list({"Action": "PJSIPShowEndpoints"}) == []

    # Events answering an action belong to it and are not broadcast.
    server.emit([("Event", "UserEvent"), ("UserEvent", "marker")])
    await eventually(lambda: bool(rec.named("UserEvent")))
    assert not [e for e in rec.events if e["Event"].startswith(("CoreShow", "EndpointList"))]


async def test_send_list_error_reply_raises_at_once(
    server: AmiTestServer, make_client: ClientFactory
) -> None:
    server.replies["pjsipshowendpoint"] = {
        "Response": "Error",
        "Message": "Unable to retrieve endpoint 999",
    }
    client = await connected_client(make_client, action_timeout=1.5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(AmiActionError) as err:
        await client.send_list({"Action": "PJSIPShowEndpoint", "Endpoint": "999"})
    assert loop.time() - started < 0.5
    assert err.value.message == "Unable to retrieve endpoint 999"
    assert err.value.action == "PJSIPShowEndpoint"
    assert client.connected


async def test_replies_panoramisk_would_misread(
    server: AmiTestServer, make_client: ClientFactory
) -> None:
    # panoramisk 1.4 takes "Added interface to queue" for the start of a list and never
    # completes the action.
    server.replies["queueadd"] = {"Response": "Success", "Message": "Added interface to queue"}
    server.replies["command"] = {
        "Response": "Success",
        "Message": "Command output follows",
        "Output": "Asterisk 22.1.0",
    }
    client = await connected_client(make_client)

    reply = await client.send({"Action": "QueueAdd", "Queue": "q1", "Interface": "PJSIP/100"})
    assert reply["Message"] == "Added interface to queue"
    reply = await client.send({"Action": "Command", "Command": "core show version"})
    assert reply["Output"] == "Asterisk 22.1.0"
    assert "content" not in reply


async def test_originate_without_async_header_keeps_the_link(
    server: AmiTestServer, make_client: ClientFactory
) -> None:
    client = await connected_client(make_client)

    reply = await client.send(ORIGINATE)
    assert reply["Message"] == "Originate successfully queued"
    assert server.actions("Originate")[0].headers["Async"] == "false"
    assert client.connected
    assert (await client.send(PING))["Ping"] == "Pong"
    assert len(server.connections) == 1


async def test_async_originate_outcome_arrives_as_event(
    server: AmiTestServer, make_client: ClientFactory
) -> None:
    client = make_client()
    rec = Recorder(client)
    await client.start()
    assert await client.wait_connected(1.0)

    reply = await client.send({**ORIGINATE, "Async": "true", "ActionID": "call-42"})
    assert reply["ActionID"] == "call-42"
    await eventually(lambda: bool(rec.named("OriginateResponse")))
    [event] = rec.named("OriginateResponse")
    assert event["ActionID"] == "call-42"
    assert event["Response"] == "Success"


async def test_originate_waits_for_the_outcome(
    server: AmiTestServer, make_client: ClientFactory
) -> None:
    client = make_client()
    rec = Recorder(client)
    await client.start()
    assert await client.wait_connected(1.0)

    answered = await client.originate({**ORIGINATE, "Async": "false"})
    assert answered["Event"] == "OriginateResponse"
    assert answered["Response"] == "Success"
    assert answered["Reason"] == "4"
    [sent] = server.actions("Originate")
    assert sent.headers["Async"] == "true"  # always asynchronous
    assert answered["ActionID"] == sent.headers["ActionID"]
    await eventually(lambda: bool(rec.named("OriginateResponse")))  # subscribers see it too

    server.originate_outcome = ("Failure", "5")
    busy = await client.originate({**ORIGINATE, "ActionID": "mine-1"})
    assert (busy["Response"], busy["Reason"], busy["ActionID"]) == ("Failure", "5", "mine-1")


async def test_originate_refused_lost_or_unanswered(
    server: AmiTestServer, make_client: ClientFactory
) -> None:
    client = await connected_client(make_client, action_timeout=0.2)

    server.replies["originate"] = {"Response": "Error", "Message": "Channel not specified"}
    with pytest.raises(AmiActionError, match="Channel not specified"):
        await client.originate({"Action": "Originate"})
    del server.replies["originate"]

    server.originate_outcome = None  # rings forever
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(AmiTimeout):
        # Default deadline: the ring Timeout header (100 ms) plus action_timeout.
        await client.originate({**ORIGINATE, "Timeout": "100"})
    assert 0.28 <= loop.time() - started < 0.6

    pending = asyncio.create_task(client.originate(ORIGINATE, timeout=1.0))
    await eventually(lambda: len(server.actions("Originate")) == 3)
    server.drop()
    with pytest.raises(AmiDisconnected):
        await pending
    assert await client.wait_connected(1.0)
    assert (await client.send(PING))["Ping"] == "Pong"
    assert len(server.actions("Originate")) == 3  # nothing re-sent


async def test_error_reply_and_timeout(server: AmiTestServer, make_client: ClientFactory) -> None:
    server.silent_actions.add("status")
    client = await connected_client(make_client)

    with pytest.raises(AmiActionError) as err:
        await client.send({"Action": "NoSuchThing"})
    assert err.value.message == "Invalid/unknown command"
    assert err.value.response["Response"] == "Error"

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(AmiTimeout):
        await client.send({"Action": "Status"}, timeout=0.1)
    assert 0.09 <= loop.time() - started < 0.5
    assert client.connected
    assert (await client.send(PING))["Ping"] == "Pong"


async def test_repeated_headers_and_injection(
    server: AmiTestServer, make_client: ClientFactory
) -> None:
    client = await connected_client(make_client)

    await client.send({**ORIGINATE, "Variable": ["A=1", "B=2"]})
    lines = server.actions("Originate")[0].lines
    assert [v for k, v in lines if k == "Variable"] == ["A=1", "B=2"]

    with pytest.raises(ValueError, match="line break"):
        await client.send({**ORIGINATE, "CallerID": "x\r\nAction: Hangup"})
    with pytest.raises(ValueError, match="Action"):
        await client.send({"Channel": "PJSIP/100"})
    assert len(server.actions("Originate")) == 1
    assert not server.actions("Hangup")


async def test_send_when_not_connected_fails_fast(make_client: ClientFactory) -> None:
    client = make_client()
    with pytest.raises(AmiDisconnected):
        await client.send(PING)  # never started
    with pytest.raises(AmiDisconnected):
        await client.send_list({"Action": "CoreShowChannels"})


# -- shutdown ---------------------------------------------------------------------------


async def test_close_is_clean(server: AmiTestServer, make_client: ClientFactory) -> None:
    server.silent_actions.add("status")
    client = make_client()
    rec = Recorder(client)
    await client.start()
    assert await client.wait_connected(1.0)
    pending = asyncio.create_task(client.send({"Action": "Status"}))
    await eventually(lambda: bool(server.actions("Status")))

    await client.close()

    with pytest.raises(AmiDisconnected):
        await pending
    assert not client.connected
    assert asyncio.all_tasks() == {asyncio.current_task()}
    await eventually(lambda: not server.connections[0].open)
    assert rec.disconnects == 0  # closing is not a lost link
    await client.close()  # idempotent
    assert not await client.wait_connected(0.1)
    with pytest.raises(AmiDisconnected, match="closed"):
        await client.send(PING)
    with pytest.raises(RuntimeError):
        await client.start()


async def test_close_while_ami_is_down(make_client: ClientFactory) -> None:
    client = make_client(port=free_port())
    await client.start()
    await asyncio.sleep(0.05)
    await client.close()
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_close_from_a_handler(server: AmiTestServer, make_client: ClientFactory) -> None:
    client = make_client()
    done = asyncio.Event()

    async def close_now() -> None:
        await client.close()
        done.set()

    client.on_connected(close_now)
    await client.start()
    await asyncio.wait_for(done.wait(), 1.0)
    await eventually(lambda: asyncio.all_tasks() == {asyncio.current_task()})
    assert not client.connected
    await eventually(lambda: not server.connections[0].open)



# -- event filter ---------------------------------------------------------------------


async def test_only_events_installs_a_name_filter_on_every_session(
    server: AmiTestServer, make_client: ClientFactory
) -> None:
    server.replies["filter"] = {"Response": "Success"}
    client = await connected_client(make_client, only_events=("Hangup", "OriginateResponse"))
    criteria = [a.headers["MatchCriteria"] for a in server.actions("Filter")]
    assert criteria == ["action(include),name(Hangup)", "action(include),name(OriginateResponse)"]
    assert all(a.headers["Operation"] == "Add" for a in server.actions("Filter"))
    # a new session starts unfiltered on Asterisk's side: the filter is sent again
    server.drop()
    await eventually(lambda: client.reconnects == 1 and client.connected, within=2.0)
    assert len(server.actions("Filter")) == 4


async def test_a_refused_filter_leaves_the_session_receiving_everything(
    server: AmiTestServer, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # the scripted server answers unknown actions with an error, as an old Asterisk would
    client = await connected_client(make_client, only_events=("Hangup", "UserEvent"))
    assert len(server.actions("Filter")) == 1  # gave up at the first refusal
    assert "receiving every event" in caplog.text
    assert (await client.send(PING))["Ping"] == "Pong"


async def test_a_socket_connected_to_itself_is_refused() -> None:
    # What a retrying client can end up with on Linux when nothing listens on a
    # loopback port inside the ephemeral range: a TCP "simultaneous open" with itself.
    loop = asyncio.get_running_loop()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.connect(sock.getsockname())
        sock.setblocking(False)
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=sock.dup())
    try:
        assert _connected_to_itself(transport)
    finally:
        transport.close()

    server = AmiTestServer()
    await server.start()
    try:
        transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", server.port)
        assert not _connected_to_itself(transport)
        transport.close()
    finally:
        await server.stop()
