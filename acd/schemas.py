"""What clients send to the ACD API (JSON bodies, query parameters), checked and turned into
typed values; a refusal is an AcdError with the error id the API has always used."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from core.settings import TransferSettings
from core.transfers import TransferRefused, TransferTarget, resolve

from .errors import AcdError
from .service import OPERATOR_ACTIONS
from .supervision import MODES

Body = Mapping[str, Any]


@dataclass(frozen=True)
class StateChange:
    action: str  # a key of OPERATOR_ACTIONS
    reason: str | None  # why away (break, meeting...); required for "away"


def state_change(body: Body) -> StateChange:
    """POST /api/agents/{id}/state."""
    action, reason = body.get("action"), body.get("reason")
    if not isinstance(action, str) or action not in OPERATOR_ACTIONS:
        raise AcdError(f"action must be one of {sorted(OPERATOR_ACTIONS)}", error_id="bad_action")
    if reason is not None and (not isinstance(reason, str) or not reason.isidentifier()
                               or len(reason) > 32):
        raise AcdError("reason must be a short word like break, meeting", error_id="bad_reason")
    if action == "away" and reason is None:
        raise AcdError("away needs a reason", error_id="bad_reason")
    return StateChange(action, reason)


@dataclass(frozen=True)
class MonitorRequest:
    mode: str  # listen, whisper or barge
    supervisor: str  # the supervisor's extension, checked by Supervision.start


def monitor_request(body: Body) -> MonitorRequest:
    """POST /api/agents/{id}/monitor."""
    mode, supervisor = body.get("mode"), body.get("supervisor")
    if not isinstance(mode, str) or mode not in MODES:
        raise AcdError(f"mode must be one of {sorted(MODES)}", error_id="bad_mode")
    if not isinstance(supervisor, str):
        raise AcdError("supervisor must be an operator extension", error_id="bad_supervisor")
    return MonitorRequest(mode, supervisor)


def stats_day(raw: str | None, today: date) -> date:
    """?date= of /api/operator-stats: a day, today when missing."""
    try:
        return datetime.fromisoformat(raw).date() if raw else today
    except ValueError as exc:
        raise AcdError("date must be YYYY-MM-DD", error_id="bad_date") from exc


def transfer_target(body: Body, rules: TransferSettings) -> TransferTarget:
    """POST /api/calls/{id}/transfer: a blind transfer to a number the rules allow."""
    if body.get("type", "blind") != "blind":
        raise AcdError("the API does blind transfers; attended ones are made from the "
                       "operator's phone", error_id="bad_type")
    try:
        return resolve(rules, str(body.get("target", "")))
    except TransferRefused as exc:
        raise AcdError(str(exc), status=403, error_id="transfer_refused") from exc
