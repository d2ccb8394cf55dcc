"""Validation of what clients send: a booking, a cancellation, an event of the catalogue
with its sessions. Each refusal names its field (InvalidField, a 400); nothing reaches the
database unchecked. Times without an offset are the city's (core.clock.CITY_TZ)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.clock import CITY_TZ

from .allocation import DuplicatePolicy, Eligibility, Rule, Window, phone_digits
from .errors import InvalidField

MAX_NAME = 100
MAX_NOTE = 500
MAX_TITLE = 200
MAX_TEXT = 4000
MAX_PARTY = 20
MAX_SESSIONS = 100
_PHONE_CHARS = re.compile(r"[0-9０-９\-‐－ ()+]{1,24}")
_EVENT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,47}")
_CATEGORY = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def text(data: dict[str, Any], key: str, limit: int, required: bool = True,
         multiline: bool = False) -> str:
    value = data.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidField(key, f"{key} must be text")
    value = value.strip()
    if required and not value:
        raise InvalidField(key, f"{key} is required / 必須です")
    if len(value) > limit:
        raise InvalidField(key, f"{key} is over {limit} characters / {limit}文字以内")
    if _CONTROL.search(value) or (not multiline and ("\n" in value or "\r" in value)):
        raise InvalidField(key, f"{key} contains a control character")
    return value


def integer(data: dict[str, Any], key: str, lo: int, hi: int,
            default: int | None = None) -> int:
    value = data.get(key, default)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidField(key, f"{key} must be a whole number {lo}..{hi}")
    return value


def optional_int(data: dict[str, Any], key: str, lo: int, hi: int) -> int | None:
    if data.get(key) in (None, ""):
        return None
    return integer(data, key, lo, hi)


def flag(data: dict[str, Any], key: str, default: bool = False) -> bool:
    value = data.get(key, default)
    if value in ("on", "true", "1", "yes"):  # HTML checkboxes and CSV cells
        return True
    if value in ("", "off", "false", "0", "no", None):
        return False
    if not isinstance(value, bool):
        raise InvalidField(key, f"{key} must be true or false")
    return value


def phone(data: dict[str, Any], key: str = "phone") -> str:
    raw = data.get(key)
    if not isinstance(raw, str) or not _PHONE_CHARS.fullmatch(raw.strip()):
        raise InvalidField(key, "電話番号を入力してください / a phone number is required")
    digits = phone_digits(raw.translate(str.maketrans("０１２３４５６７８９", "0123456789")))
    if not 10 <= len(digits) <= 11 or not digits.startswith("0"):
        raise InvalidField(key, "電話番号は0から始まる10桁か11桁です / "
                                "a phone number has 10 or 11 digits starting with 0")
    return digits


def when(data: dict[str, Any], key: str) -> datetime:
    raw = data.get(key)
    if not isinstance(raw, str) or len(raw) > 40:
        raise InvalidField(key, f"{key} must be a date and time like 2027-04-01T09:00")
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError as exc:
        raise InvalidField(key, f"{key} must be a date and time like 2027-04-01T09:00") \
            from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=CITY_TZ)


@dataclass(frozen=True)
class BookingRequest:
    session_id: int
    name: str
    furigana: str
    phone: str  # digits
    party: int
    note: str
    resident: bool
    age: int | None


def booking_request(data: dict[str, Any]) -> BookingRequest:
    return BookingRequest(
        session_id=integer(data, "session_id", 1, 2**31 - 1),
        name=text(data, "name", MAX_NAME),
        furigana=text(data, "furigana", MAX_NAME),
        phone=phone(data),
        party=integer(data, "party", 1, MAX_PARTY, default=1),
        note=text(data, "note", MAX_NOTE, required=False, multiline=True),
        resident=flag(data, "resident"),
        age=optional_int(data, "age", 0, 130))


@dataclass(frozen=True)
class SessionInput:
    starts_at: datetime
    ends_at: datetime
    venue_ja: str
    venue_en: str
    capacity: int


@dataclass(frozen=True)
class EventInput:
    id: str
    category: str
    title_ja: str
    title_en: str
    description_ja: str
    description_en: str
    fee_ja: str
    fee_en: str
    rule: Rule
    duplicates: DuplicatePolicy
    waiting_list: bool
    eligibility: Eligibility
    max_party: int
    window: Window
    board_event: str | None
    published: bool
    sessions: tuple[SessionInput, ...]


def session_input(data: dict[str, Any]) -> SessionInput:
    starts, ends = when(data, "starts_at"), when(data, "ends_at")
    if ends <= starts:
        raise InvalidField("ends_at", "ends_at must be after starts_at")
    venue_ja = text(data, "venue_ja", MAX_TITLE)
    return SessionInput(starts, ends, venue_ja,
                        text(data, "venue_en", MAX_TITLE, required=False) or venue_ja,
                        integer(data, "capacity", 1, 100_000))


def _choice(data: dict[str, Any], key: str, kinds: type[Rule] | type[DuplicatePolicy],
            default: str) -> str:
    value = data.get(key) or default
    allowed = [k.value for k in kinds]
    if value not in allowed:
        raise InvalidField(key, f"{key} must be one of {', '.join(allowed)}")
    return str(value)


def event_input(data: dict[str, Any]) -> EventInput:
    event_id = data.get("id")
    if not isinstance(event_id, str) or not _EVENT_ID.fullmatch(event_id):
        raise InvalidField("id", "id must be 1-48 of a-z 0-9 _ - (starting with a-z 0-9)")
    category = data.get("category") or "general"
    if not isinstance(category, str) or not _CATEGORY.fullmatch(category):
        raise InvalidField("category", "category must be 1-32 of a-z 0-9 _ -")
    min_age = optional_int(data, "min_age", 0, 130)
    max_age = optional_int(data, "max_age", 0, 130)
    if min_age is not None and max_age is not None and min_age > max_age:
        raise InvalidField("max_age", "max_age is below min_age")
    opens, closes = when(data, "opens_at"), when(data, "closes_at")
    if closes <= opens:
        raise InvalidField("closes_at", "closes_at must be after opens_at")
    board = data.get("board_event") or None
    if board is not None and (not isinstance(board, str) or not _EVENT_ID.fullmatch(board)):
        raise InvalidField("board_event", "board_event must be an event id of the board")
    raw_sessions = data.get("sessions", [])
    if not isinstance(raw_sessions, list) or len(raw_sessions) > MAX_SESSIONS:
        raise InvalidField("sessions", f"sessions must be a list of at most {MAX_SESSIONS}")
    sessions = []
    for i, item in enumerate(raw_sessions):
        if not isinstance(item, dict):
            raise InvalidField(f"sessions[{i}]", "each session must be an object")
        try:
            sessions.append(session_input(item))
        except InvalidField as exc:
            raise InvalidField(f"sessions[{i}].{exc.extra['field']}", exc.message) from exc
    title_ja = text(data, "title_ja", MAX_TITLE)
    fee_ja = text(data, "fee_ja", MAX_TITLE, required=False)
    return EventInput(
        id=event_id, category=category, title_ja=title_ja,
        title_en=text(data, "title_en", MAX_TITLE, required=False) or title_ja,
        description_ja=text(data, "description_ja", MAX_TEXT, False, multiline=True),
        description_en=text(data, "description_en", MAX_TEXT, False, multiline=True),
        fee_ja=fee_ja, fee_en=text(data, "fee_en", MAX_TITLE, required=False) or fee_ja,
        rule=Rule(_choice(data, "rule", Rule, Rule.FIRST_COME)),
        duplicates=DuplicatePolicy(_choice(data, "duplicates", DuplicatePolicy,
                                           DuplicatePolicy.REFUSE)),
        waiting_list=flag(data, "waiting_list", True),
        eligibility=Eligibility(flag(data, "residents_only"), min_age, max_age),
        max_party=integer(data, "max_party", 1, MAX_PARTY, default=4),
        window=Window(opens, closes), board_event=board,
        published=flag(data, "published", True), sessions=tuple(sessions))
