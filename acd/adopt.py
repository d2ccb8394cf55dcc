"""Rebuild calls from Asterisk after the engine restarts.

The caller's channel carries the call's facts (MADO_* channel variables set when it was
offered, queued and answered), so a new engine process finds waiting callers in the holding
context and conversations bridged to operators without disturbing either.

The channel list is older than the events that arrive while the variables are read: a
channel that hung up meanwhile is still tracked (its call record is written when the rebuild
ends it) but neither queued nor taken for a live conversation."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime

from ami_bridge.dialplan import ADOPTED, CALLER_NUMBER, Context, Var
from ami_bridge.recording_names import relative_name
from core.calls import Call, CallTracker, clean_number

from .service import Acd, AmiPort

log = logging.getLogger(__name__)

def _time(raw: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(raw), UTC) if raw else None
    except ValueError:
        return None


async def _vars(ami: AmiPort, channel: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in ADOPTED:  # MADO_CALL_ID first: without one the channel is not ours
        try:
            reply = await ami.send({"Action": "Getvar", "Channel": channel, "Variable": name})
        except Exception:  # the channel went away meanwhile
            return {}
        out[name] = reply.get("Value", "") or ""
        if name == Var.CALL_ID and not out[name]:
            return {}  # not one of our calls (an operator's own call, a fail-open caller)
    return out


def call_from_vars(v: Mapping[str, str], uniqueid: str, channel: str) -> Call | None:
    offered = _time(v.get(Var.OFFERED, ""))
    call_id = v.get(Var.CALL_ID, "")
    if offered is None or len(call_id) != 32 or not v.get(Var.QUEUE):
        return None
    call = Call(uniqueid, channel, v.get(Var.SERVICE, ""), v.get(Var.DID, ""),
                clean_number(v.get(CALLER_NUMBER)), offered, id=call_id)
    call.queue = v[Var.QUEUE]
    call.queued_at = _time(v.get(Var.QUEUED, "")) or offered
    call.answered_at = _time(v.get(Var.ANSWERED, ""))
    call.agent_id = v.get(Var.AGENT) or None
    call.language = v.get(Var.LANGUAGE) or None
    call.flow_path = [p for p in v.get(Var.PATH, "").split(",") if p]
    call.topic = v.get(Var.TOPIC) or None
    # ASCII digits only: str.isdigit() admits '²', which int() refuses
    priority = v.get(Var.PRIORITY, "")
    call.priority = int(priority) if re.fullmatch(r"[0-9]{1,3}", priority) else 0
    call.ring_at = call.queued_at if call.answered_at else None
    call.recording = relative_name(call.id, offered)
    return call


async def adopt_calls(ami: AmiPort, tracker: CallTracker, acd: Acd,
                      channels: list[dict[str, str]]) -> int:
    """Track callers this process does not know yet; returns how many were adopted."""
    agent_prefixes = tuple(f"PJSIP/{a}-" for a in acd.agents)
    by_name: dict[str, Call] = {}
    adopted = 0
    for ev in channels:
        uniqueid, name = ev.get("Uniqueid", ""), ev.get("Channel", "")
        if not uniqueid or tracker.get(uniqueid) is not None or name.startswith(agent_prefixes):
            continue
        v = await _vars(ami, name)
        call = call_from_vars(v, uniqueid, name) if v else None
        if call is None:
            continue
        tracker.adopt(call)
        by_name[name] = call
        adopted += 1
        if (call.answered_at is None and ev.get("Context") == Context.HOLD
                and not acd.hung_up_since_resync_began(uniqueid)):
            await acd.enqueue(call)
    for ev in channels:
        name = ev.get("Channel", "")
        if not name.startswith(agent_prefixes) or ev.get("Application") != "Bridge":
            continue
        caller_channel = ev.get("ApplicationData", "").split(",")[0]
        call = by_name.get(caller_channel)
        if call is not None and call.agent_id is not None:
            acd.adopt_connected(call.agent_id, ev.get("Uniqueid", ""), call)
    if adopted:
        log.info("adopted %d calls from Asterisk", adopted)
    return adopted
