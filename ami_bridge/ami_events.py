"""Typed, immutable views of the AMI events the engine acts on.

:func:`parse_event` turns a header dict (as delivered by :class:`ami_bridge.ami.AmiClient`)
into one of the dataclasses below. It returns None for events it does not model and for
events that lack a required header. It never raises, because it runs on every event
Asterisk sends. Header names are matched case-insensitively.

Asterisk writes ``<unknown>`` for an empty caller ID number and ``<unknown>``
(``<null>`` in older versions) for the Uniqueid of a failed Originate. These views
turn those placeholders into ``""`` or None.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeAlias

__all__ = [
    "AmiEvent",
    "BridgeEnter",
    "BridgeLeave",
    "ContactStatus",
    "DeviceStateChange",
    "FullyBooted",
    "Hangup",
    "Newchannel",
    "OriginateResponse",
    "parse_event",
]

log = logging.getLogger(__name__)

_PLACEHOLDERS = frozenset({"<unknown>", "<null>"})


@dataclass(frozen=True, slots=True)
class Hangup:
    uniqueid: str
    linkedid: str
    channel: str
    #: Q.850 cause code (16 = normal clearing, 17 = busy, 19 = no answer...).
    cause: int


@dataclass(frozen=True, slots=True)
class OriginateResponse:
    """Outcome of an ``Async: true`` Originate, correlated by ``action_id``."""

    action_id: str
    response_ok: bool
    channel: str
    #: None when no channel was created (Asterisk sends a placeholder).
    uniqueid: str | None
    #: The last control frame seen (AST_CONTROL_*): 4 = answered, 5 = busy, 8 = congestion,
    #: 3 = still ringing at timeout, 1 = hung up, 0 = never got that far.
    reason: int


@dataclass(frozen=True, slots=True)
class BridgeEnter:
    bridge_uniqueid: str
    uniqueid: str
    linkedid: str
    channel: str


@dataclass(frozen=True, slots=True)
class BridgeLeave:
    bridge_uniqueid: str
    uniqueid: str
    linkedid: str
    channel: str


@dataclass(frozen=True, slots=True)
class DeviceStateChange:
    device: str
    #: NOT_INUSE, INUSE, BUSY, INVALID, UNAVAILABLE, RINGING, RINGINUSE, ONHOLD, UNKNOWN.
    state: str


@dataclass(frozen=True, slots=True)
class Newchannel:
    uniqueid: str
    linkedid: str
    channel: str
    #: ``""`` when the caller ID number is unknown.
    caller_id_num: str
    exten: str
    context: str


@dataclass(frozen=True, slots=True)
class ContactStatus:
    aor: str
    #: e.g. Reachable, Unreachable, NonQualified, Unknown, Removed, Created, Updated.
    contact_status: str
    endpoint_name: str


@dataclass(frozen=True, slots=True)
class FullyBooted:
    """Asterisk has finished starting (also sent right after each Login)."""


AmiEvent: TypeAlias = (
    Hangup
    | OriginateResponse
    | BridgeEnter
    | BridgeLeave
    | DeviceStateChange
    | Newchannel
    | ContactStatus
    | FullyBooted
)


class _Missing(Exception):
    """A required header is absent or malformed."""


class _Headers:
    """Case-insensitive, required-by-default access to an event's headers."""

    def __init__(self, event: Mapping[str, str]) -> None:
        self._h = {str(k).lower(): v for k, v in event.items()}

    def req(self, name: str) -> str:
        value = self._h.get(name.lower())
        if not isinstance(value, str):
            raise _Missing(name)
        return value

    def req_int(self, name: str) -> int:
        raw = self.req(name)
        try:
            return int(raw.strip())
        except ValueError:
            raise _Missing(f"{name} (not an integer: {raw!r})") from None


def _hangup(h: _Headers) -> Hangup:
    return Hangup(
        uniqueid=h.req("Uniqueid"),
        linkedid=h.req("Linkedid"),
        channel=h.req("Channel"),
        cause=h.req_int("Cause"),
    )


def _originate_response(h: _Headers) -> OriginateResponse:
    uniqueid = h.req("Uniqueid")
    return OriginateResponse(
        action_id=h.req("ActionID"),
        response_ok=h.req("Response").lower() == "success",
        channel=h.req("Channel"),
        uniqueid=None if uniqueid in _PLACEHOLDERS or not uniqueid else uniqueid,
        reason=h.req_int("Reason"),
    )


def _bridge_enter(h: _Headers) -> BridgeEnter:
    return BridgeEnter(
        bridge_uniqueid=h.req("BridgeUniqueid"),
        uniqueid=h.req("Uniqueid"),
        linkedid=h.req("Linkedid"),
        channel=h.req("Channel"),
    )


def _bridge_leave(h: _Headers) -> BridgeLeave:
    return BridgeLeave(
        bridge_uniqueid=h.req("BridgeUniqueid"),
        uniqueid=h.req("Uniqueid"),
        linkedid=h.req("Linkedid"),
        channel=h.req("Channel"),
    )


def _device_state_change(h: _Headers) -> DeviceStateChange:
    return DeviceStateChange(device=h.req("Device"), state=h.req("State"))


def _newchannel(h: _Headers) -> Newchannel:
    number = h.req("CallerIDNum")
    return Newchannel(
        uniqueid=h.req("Uniqueid"),
        linkedid=h.req("Linkedid"),
        channel=h.req("Channel"),
        caller_id_num="" if number in _PLACEHOLDERS else number,
        exten=h.req("Exten"),
        context=h.req("Context"),
    )


def _contact_status(h: _Headers) -> ContactStatus:
    return ContactStatus(
        aor=h.req("AOR"),
        contact_status=h.req("ContactStatus"),
        endpoint_name=h.req("EndpointName"),
    )


def _fully_booted(h: _Headers) -> FullyBooted:
    return FullyBooted()


_PARSERS: dict[str, Callable[[_Headers], AmiEvent]] = {
    "hangup": _hangup,
    "originateresponse": _originate_response,
    "bridgeenter": _bridge_enter,
    "bridgeleave": _bridge_leave,
    "devicestatechange": _device_state_change,
    "newchannel": _newchannel,
    "contactstatus": _contact_status,
    "fullybooted": _fully_booted,
}


def parse_event(ev: Mapping[str, str]) -> AmiEvent | None:
    """Return the typed view of ``ev``, or None if it is unknown or incomplete."""
    try:
        headers = _Headers(ev)
        name = headers.req("Event")
    except (_Missing, AttributeError, TypeError):
        log.debug("AMI event without an Event header: %r", ev)
        return None
    parser = _PARSERS.get(name.lower())
    if parser is None:
        return None
    try:
        return parser(headers)
    except _Missing as missing:
        log.debug("AMI %s event lacks required header %s; ignored", name, missing)
        return None
