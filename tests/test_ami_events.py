"""Typed AMI event views."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pytest

from ami_bridge.ami_events import (
    BridgeEnter,
    BridgeLeave,
    ContactStatus,
    DeviceStateChange,
    FullyBooted,
    Hangup,
    Newchannel,
    OriginateResponse,
    parse_event,
)

HANGUP = {
    "Event": "Hangup",
    "Privilege": "call,all",
    "Channel": "PJSIP/100-00000001",
    "Uniqueid": "1700000000.1",
    "Linkedid": "1700000000.0",
    "Cause": "16",
    "Cause-txt": "Normal Clearing",
}
NEWCHANNEL = {
    "Event": "Newchannel",
    "Channel": "PJSIP/trunk-00000002",
    "ChannelState": "4",
    "CallerIDNum": "0312345678",
    "CallerIDName": "山田",
    "Exten": "100",
    "Context": "from-trunk",
    "Uniqueid": "1700000000.2",
    "Linkedid": "1700000000.2",
}
BRIDGE = {
    "BridgeUniqueid": "b1d9e3c0-0000-4000-8000-000000000001",
    "BridgeType": "basic",
    "Channel": "PJSIP/100-00000001",
    "Uniqueid": "1700000000.1",
    "Linkedid": "1700000000.0",
}


def test_hangup() -> None:
    assert parse_event(HANGUP) == Hangup(
        uniqueid="1700000000.1",
        linkedid="1700000000.0",
        channel="PJSIP/100-00000001",
        cause=16,
    )


def test_originate_response_success_and_failure() -> None:
    ok = parse_event(
        {
            "Event": "OriginateResponse",
            "ActionID": "call-42",
            "Response": "Success",
            "Channel": "PJSIP/200-00000003",
            "Context": "default",
            "Exten": "200",
            "Reason": "4",
            "Uniqueid": "1700000000.3",
            "CallerIDNum": "<unknown>",
            "CallerIDName": "<unknown>",
        }
    )
    assert ok == OriginateResponse(
        action_id="call-42",
        response_ok=True,
        channel="PJSIP/200-00000003",
        uniqueid="1700000000.3",
        reason=4,
    )
    for placeholder in ("<unknown>", "<null>"):
        failed = parse_event(
            {
                "Event": "OriginateResponse",
                "ActionID": "call-43",
                "Response": "Failure",
                "Channel": "PJSIP/201",
                "Reason": "5",
                "Uniqueid": placeholder,
            }
        )
        assert failed == OriginateResponse("call-43", False, "PJSIP/201", None, 5)


def test_bridge_enter_and_leave() -> None:
    enter = parse_event({"Event": "BridgeEnter", **BRIDGE})
    leave = parse_event({"Event": "BridgeLeave", **BRIDGE})
    expected = (
        "b1d9e3c0-0000-4000-8000-000000000001",
        "1700000000.1",
        "1700000000.0",
        "PJSIP/100-00000001",
    )
    assert enter == BridgeEnter(*expected)
    assert leave == BridgeLeave(*expected)


def test_device_state_change() -> None:
    ev = {"Event": "DeviceStateChange", "Device": "PJSIP/100", "State": "INUSE"}
    assert parse_event(ev) == DeviceStateChange(device="PJSIP/100", state="INUSE")


def test_newchannel_and_unknown_caller() -> None:
    assert parse_event(NEWCHANNEL) == Newchannel(
        uniqueid="1700000000.2",
        linkedid="1700000000.2",
        channel="PJSIP/trunk-00000002",
        caller_id_num="0312345678",
        exten="100",
        context="from-trunk",
    )
    anonymous = parse_event({**NEWCHANNEL, "CallerIDNum": "<unknown>"})
    assert isinstance(anonymous, Newchannel)
    assert anonymous.caller_id_num == ""


def test_contact_status() -> None:
    ev = {
        "Event": "ContactStatus",
        "URI": "sip:100@192.0.2.10:5060",
        "ContactStatus": "Reachable",
        "AOR": "100",
        "EndpointName": "100",
        "RoundtripUsec": "1234",
    }
    assert parse_event(ev) == ContactStatus(
        aor="100", contact_status="Reachable", endpoint_name="100"
    )
    # Present but empty is not missing.
    removed = parse_event({**ev, "ContactStatus": "Removed", "EndpointName": ""})
    assert removed == ContactStatus(aor="100", contact_status="Removed", endpoint_name="")


def test_fully_booted() -> None:
    ev = {"Event": "FullyBooted", "Status": "Fully Booted", "Uptime": "5"}
    assert parse_event(ev) == FullyBooted()


def test_header_names_are_case_insensitive() -> None:
    ev = {k.upper(): v for k, v in HANGUP.items()}
    ev["EVENT"] = "hangup"
    assert parse_event(ev) == parse_event(HANGUP)


def test_unknown_events_are_none() -> None:
    assert parse_event({"Event": "VarSet", "Variable": "X", "Value": "1"}) is None
    assert parse_event({"Response": "Success", "Ping": "Pong"}) is None
    assert parse_event({}) is None


@pytest.mark.parametrize(
    ("event", "missing"),
    [
        (HANGUP, "Linkedid"),
        (HANGUP, "Cause"),
        (NEWCHANNEL, "Context"),
        ({"Event": "BridgeEnter", **BRIDGE}, "BridgeUniqueid"),
        ({"Event": "DeviceStateChange", "Device": "PJSIP/100", "State": "INUSE"}, "State"),
    ],
)
def test_missing_required_header_is_none_and_logged(
    event: dict[str, str], missing: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ami_bridge.ami_events")
    broken = {k: v for k, v in event.items() if k != missing}
    assert parse_event(broken) is None
    assert missing in caplog.text


@pytest.mark.parametrize(
    "event",
    [
        {**HANGUP, "Cause": "sixteen"},
        {"Event": "OriginateResponse", "ActionID": "a", "Response": "Success",
         "Channel": "c", "Uniqueid": "u", "Reason": ""},
        {"Event": "Hangup", "Uniqueid": None, "Linkedid": "l", "Channel": "c", "Cause": "1"},
    ],
)
def test_malformed_values_are_none(event: dict[str, Any]) -> None:
    assert parse_event(event) is None


def test_malformed_input_never_raises() -> None:
    not_a_mapping: Any = None
    none_name: Any = {"Event": None}
    assert parse_event(not_a_mapping) is None
    assert parse_event(none_name) is None


def test_views_are_frozen() -> None:
    ev = parse_event(HANGUP)
    assert isinstance(ev, Hangup)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.cause = 17  # type: ignore[misc]
