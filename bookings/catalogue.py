"""The catalogue as CSV: a season's import (one line per session, the event's columns
repeated; every bad line named, nothing imported if any is bad) and the participant list
of a session for the city."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from typing import IO, Any

from core.clock import CITY_TZ

from .errors import ImportRejected, InvalidField
from .schemas import EventInput, event_input
from .service import Participants

COLUMNS = ("id", "category", "title_ja", "title_en", "description_ja", "description_en",
           "fee_ja", "fee_en", "rule", "duplicates", "waiting_list", "residents_only",
           "min_age", "max_age", "max_party", "opens_at", "closes_at", "board_event",
           "published", "starts_at", "ends_at", "venue_ja", "venue_en", "capacity")
SESSION_COLUMNS = ("starts_at", "ends_at", "venue_ja", "venue_en", "capacity")
REQUIRED = ("id", "title_ja", "opens_at", "closes_at", "starts_at", "ends_at", "venue_ja",
            "capacity")
MAX_LINES = 2000
MAX_ERRORS = 100


def _decode(raw: bytes) -> str:
    # Excel in Japan saves CSV as Shift_JIS (cp932) unless told otherwise
    for encoding in ("utf-8-sig", "cp932"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportRejected([{"line": 0, "field": None,
                           "message": "the file is neither UTF-8 nor Shift_JIS text"}])


def parse(raw: bytes) -> list[EventInput]:
    text = _decode(raw)
    if "\x00" in text:
        raise ImportRejected([{"line": 0, "field": None, "message": "the file holds NUL"}])
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in COLUMNS]
    if missing or unknown:
        raise ImportRejected([{"line": 1, "field": None, "message":
                               f"header: missing {missing or 'nothing'}, unknown "
                               f"{unknown or 'nothing'}; columns are {', '.join(COLUMNS)}"}])
    reader.fieldnames = header
    errors: list[dict[str, Any]] = []
    events: dict[str, tuple[int, EventInput]] = {}
    try:
        for row in reader:
            line = reader.line_num
            if line > MAX_LINES + 1:
                errors.append({"line": line, "field": None,
                               "message": f"more than {MAX_LINES} lines"})
                break
            if None in row or any(v is None for v in row.values()):
                errors.append({"line": line, "field": None,
                               "message": f"expected {len(header)} columns"})
                continue
            data: dict[str, Any] = {k: v.strip() for k, v in row.items()
                                    if k not in SESSION_COLUMNS and v.strip() != ""}
            data["sessions"] = [{k: row[k].strip() for k in SESSION_COLUMNS if k in row}]
            try:
                new = event_input(data)
            except (InvalidField, ValueError) as exc:
                field = exc.extra.get("field") if isinstance(exc, InvalidField) else None
                message = exc.message if isinstance(exc, InvalidField) else str(exc)
                errors.append({"line": line, "field": field, "message": message})
                continue
            seen = events.get(new.id)
            if seen is None:
                events[new.id] = (line, new)
            elif replace(seen[1], sessions=()) != replace(new, sessions=()):
                errors.append({"line": line, "field": None, "message":
                               f"event {new.id!r} differs from its line {seen[0]}: the "
                               f"event's columns must be the same on each of its lines"})
            else:
                events[new.id] = (seen[0], replace(seen[1],
                                                   sessions=seen[1].sessions + new.sessions))
            if len(errors) >= MAX_ERRORS:
                break
    except csv.Error as exc:
        errors.append({"line": reader.line_num, "field": None, "message": f"CSV: {exc}"})
    if errors:
        raise ImportRejected(errors)
    if not events:
        raise ImportRejected([{"line": 1, "field": None, "message": "no lines to import"}])
    return [new for _, new in events.values()]


def _cell(value: object) -> str:
    """A cell a spreadsheet shows as text: never run as a formula (=, +, -, @)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


PARTICIPANT_COLUMNS = ("booking_number", "status", "party", "name", "furigana", "phone",
                       "resident", "age", "note", "channel", "flagged", "booked_at")


def participants_csv(listing: Participants, out: IO[str]) -> None:
    w = csv.writer(out, lineterminator="\r\n")
    s = listing.session
    w.writerow([_cell(listing.event.title_ja),
                s.starts_at.astimezone(CITY_TZ).strftime("%Y-%m-%d %H:%M"), _cell(s.venue_ja),
                f"capacity {s.capacity}", f"taken {s.taken}"])
    w.writerow(PARTICIPANT_COLUMNS)
    for b in listing.rows:
        w.writerow([b.number, b.status, b.party, _cell(b.name), _cell(b.furigana), b.phone,
                    "yes" if b.resident else "no", "" if b.age is None else b.age,
                    _cell(b.note), b.channel, "yes" if b.flagged else "",
                    b.created_at.astimezone(CITY_TZ).strftime("%Y-%m-%d %H:%M")])
