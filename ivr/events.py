"""The event-information board (REQUIREMENTS §12(2)エ,オ).

The city names events; each has a status (held, cancelled, postponed, …) and the status has a
Japanese and an English announcement template (config/events.yaml). An event is announced
only inside its publish window. The list of events is runtime data, changed through the API
and kept in the state folder; config/events.yaml seeds it on the first start.

`Board` is an immutable snapshot: a call reads the board current when it starts, and a
change builds a new snapshot (announcements rendered by TTS before the swap), so changes take
effect on the next call without a restart and a call never sees half an update.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import string
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from core.clock import CITY_TZ
from core.files import write_durably
from core.statefile import read_json, state_error
from core.yamlconf import ConfigError, Location, Node, load_yaml

from .errors import InvalidRequest, Problems
from .prompts import LANGUAGES, Audio

_EVENT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
MAX_EVENTS = 100
MAX_TEXT = 200
# fields a template may use; the last three only where the status needs them
FIELDS = ("title", "venue", "date", "time", "note", "new_date", "new_time", "new_venue")
_EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December")


@dataclass(frozen=True)
class Status:
    id: str
    label: dict[str, str] = field(hash=False)
    templates: dict[str, str] = field(hash=False)  # language -> template with {fields}
    needs: tuple[str, ...] = ()  # fields beyond the basic ones this status requires


@dataclass(frozen=True)
class BoardConfig:
    hold_interval: int  # seconds of music between board plays while waiting; 0 = off
    statuses: dict[str, Status] = field(hash=False)
    seed: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Event:
    id: str
    date: date
    status: str
    title: dict[str, str] = field(hash=False)
    venue: dict[str, str] = field(hash=False)
    time: str | None = None
    note: dict[str, str] = field(default_factory=dict, hash=False)
    new_date: dt.date | None = None
    new_time: str | None = None
    new_venue: dict[str, str] = field(default_factory=dict, hash=False)
    publish_from: datetime | None = None
    publish_until: datetime | None = None

    def published(self, at: datetime) -> bool:
        return ((self.publish_from is None or self.publish_from <= at)
                and (self.publish_until is None or at < self.publish_until))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "date": self.date.isoformat(), "status": self.status,
                "title": self.title, "venue": self.venue, "time": self.time, "note": self.note,
                "new_date": self.new_date.isoformat() if self.new_date else None,
                "new_time": self.new_time, "new_venue": self.new_venue,
                "publish_from": self.publish_from.isoformat() if self.publish_from else None,
                "publish_until": self.publish_until.isoformat() if self.publish_until else None}


def _date_text(d: date, lang: str) -> str:
    if lang == "ja":
        return f"{d.month}月{d.day}日"
    return f"{_EN_MONTHS[d.month - 1]} {d.day}"


def _time_text(t: str | None, lang: str) -> str:
    if not t:
        return ""
    h, m = (int(x) for x in t.split(":"))
    if lang == "ja":
        return f"{h}時" + (f"{m}分" if m else "")
    return f"{h}:{m:02d}"


def _pick(texts: dict[str, str], lang: str) -> str:
    return texts.get(lang) or next(iter(texts.values()), "")


def announcement_text(event: Event, status: Status, lang: str) -> str:
    values = {
        "title": _pick(event.title, lang), "venue": _pick(event.venue, lang),
        "date": _date_text(event.date, lang), "time": _time_text(event.time, lang),
        "note": _pick(event.note, lang),
        "new_date": _date_text(event.new_date, lang) if event.new_date else "",
        "new_time": _time_text(event.new_time, lang),
        "new_venue": _pick(event.new_venue, lang),
    }
    text = " ".join(status.templates[lang].format(**values).split())
    return text[:1].upper() + text[1:]  # a title may open an English sentence


def template_fields(template: str) -> set[str]:
    """The {field} names of a template; ValueError for anything str.format would do more
    with ({}, {0}, a format spec such as {title:>9999999}, a conversion such as {title!r})."""
    names: set[str] = set()
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if not name or name.isdigit() or spec or conversion:
            raise ValueError(f"'{{{name}{'!' + conversion if conversion else ''}"
                             f"{':' + spec if spec else ''}}}': write fields as {{name}} only")
        names.add(name)
    return names


# ---- config ---------------------------------------------------------------------------------

def load_board_config(path: Path, problems: Problems) -> BoardConfig | None:
    try:
        root = Node(load_yaml(path), Location(str(path), 1, 1), "events")
        interval = root.integer("hold_interval", 30, 0, 3600)
        statuses_node = root.child("statuses", required=True)
    except ConfigError as exc:
        problems.add(exc)
        return None
    statuses: dict[str, Status] = {}
    for status_id in statuses_node.data:
        try:
            s = statuses_node.child(status_id)
            if not _EVENT_ID.match(status_id):
                raise ConfigError(statuses_node.at(status_id),
                                  f"status id {status_id!r} must be lower-case letters, digits")
            label = _texts(s, "label")
            templates: dict[str, str] = {}
            used: set[str] = set()
            for lang in LANGUAGES:
                if lang not in s.data:
                    raise ConfigError(s.where, f"status {status_id!r} has no {lang!r} "
                                      "announcement")
                tmpl = s.text(lang)
                try:
                    names = template_fields(tmpl)
                except ValueError as exc:
                    raise ConfigError(s.at(lang), f"bad template: {exc}") from exc
                unknown = names - set(FIELDS)
                if unknown:
                    raise ConfigError(s.at(lang), f"unknown template field(s) "
                                      f"{', '.join(sorted(unknown))}; known: {', '.join(FIELDS)}")
                templates[lang] = tmpl
                used |= names
            s.done()
            needs = tuple(f for f in ("new_date", "new_time", "new_venue") if f in used)
            statuses[status_id] = Status(status_id, label, templates, needs)
        except ConfigError as exc:
            problems.add(exc)
    if len(statuses) < 10:
        problems.at(statuses_node.where, f"at least 10 status kinds are required "
                    f"(REQUIREMENTS §12(2)), found {len(statuses)}")
    seed: list[dict[str, Any]] = []
    try:
        for item, where in root.items("events", required=False):
            if not isinstance(item, dict):
                raise ConfigError(where, "an event must be a mapping")
            try:
                # seeded on the first start: refused here, not when the engine starts
                parse_event(item, statuses, CITY_TZ)
            except InvalidRequest as exc:
                problems.at(where, f"event: {exc}")
                continue
            seed.append(dict(item))
        root.done()
    except ConfigError as exc:
        problems.add(exc)
    return BoardConfig(interval, statuses, tuple(seed))


def _texts(node: Node, key: str) -> dict[str, str]:
    raw = node.data.get(key)
    if raw is None:
        node.text(key, "")
        return {}
    sub = node.child(key)
    out = {}
    for lang in list(sub.data):
        if lang not in LANGUAGES:
            raise ConfigError(sub.at(lang), f"unknown language {lang!r}")
        out[lang] = sub.text(lang)
    sub.done()
    return out


# ---- parsing events (from the seed or the API) -----------------------------------------

def parse_event(data: Any, statuses: dict[str, Status], tz: ZoneInfo) -> Event:
    """Validate one event given as JSON/YAML data; raises InvalidRequest with the reason."""
    if not isinstance(data, dict):
        raise InvalidRequest("an event must be an object")
    known = {"id", "date", "status", "title", "venue", "time", "note", "new_date", "new_time",
             "new_venue", "publish_from", "publish_until"}
    unknown = set(data) - known
    if unknown:
        raise InvalidRequest(f"unknown field(s): {', '.join(sorted(unknown))}")
    event_id = str(data.get("id", ""))
    if not _EVENT_ID.match(event_id):
        raise InvalidRequest("'id' must be 1-48 lower-case letters, digits, - or _")
    status = str(data.get("status", ""))
    if status not in statuses:
        raise InvalidRequest(f"unknown status {status!r}; known: {', '.join(statuses)}")
    event = Event(
        id=event_id, date=_date(data.get("date"), "date"), status=status,
        title=_lang_texts(data.get("title"), "title", required=True),
        venue=_lang_texts(data.get("venue"), "venue", required=True),
        time=_hhmm(data.get("time"), "time"),
        note=_lang_texts(data.get("note"), "note"),
        new_date=_date(data["new_date"], "new_date") if data.get("new_date") else None,
        new_time=_hhmm(data.get("new_time"), "new_time"),
        new_venue=_lang_texts(data.get("new_venue"), "new_venue"),
        publish_from=_when(data.get("publish_from"), "publish_from", tz),
        publish_until=_when(data.get("publish_until"), "publish_until", tz),
    )
    for need in statuses[status].needs:
        if not getattr(event, need):
            raise InvalidRequest(f"status {status!r} needs {need!r}")
    if (event.publish_from and event.publish_until
            and event.publish_until <= event.publish_from):
        raise InvalidRequest("'publish_until' must be after 'publish_from'")
    return event


def _date(value: Any, name: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise InvalidRequest(f"{name!r} must be YYYY-MM-DD, got {value!r}") from exc


def _hhmm(value: Any, name: str) -> str | None:
    if value in (None, ""):
        return None
    if not _HHMM.match(str(value)):
        raise InvalidRequest(f"{name!r} must be HH:MM, got {value!r}")
    return str(value)


def _when(value: Any, name: str, tz: ZoneInfo) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError as exc:
            raise InvalidRequest(f"{name!r} must be an ISO date-time, got {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


def _lang_texts(value: Any, name: str, required: bool = False) -> dict[str, str]:
    if value in (None, ""):
        if required:
            raise InvalidRequest(f"{name!r} is required (a text per language)")
        return {}
    if isinstance(value, str):
        value = dict.fromkeys(LANGUAGES, value)
    if not isinstance(value, dict):
        raise InvalidRequest(f"{name!r} must map languages to texts")
    out: dict[str, str] = {}
    for lang, text in value.items():
        if lang not in LANGUAGES:
            raise InvalidRequest(f"{name!r}: unknown language {lang!r}")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
            raise InvalidRequest(f"{name!r}.{lang} must be a text of 1-{MAX_TEXT} characters")
        # texts go to TTS as one argument and never into a shell or a path, but control
        # characters have no place in an announcement
        if any(ord(c) < 32 for c in text):
            raise InvalidRequest(f"{name!r}.{lang} contains control characters")
        out[lang] = text
    if required:
        missing = [lg for lg in LANGUAGES if lg not in out]
        if missing:
            raise InvalidRequest(f"{name!r} lacks {', '.join(missing)}")
    return out


# ---- the board ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Board:
    """Events with their rendered announcements: {event id: {language: Audio}}."""

    events: tuple[Event, ...]
    audio: dict[str, dict[str, Audio]] = field(hash=False)
    intro: dict[str, Audio] = field(default_factory=dict, hash=False)
    version: int = 0

    def announcements(self, at: datetime, language: str) -> tuple[Audio, ...]:
        out: list[Audio] = []
        for ev in self.events:
            if ev.published(at):
                per_lang = self.audio.get(ev.id, {})
                item = per_lang.get(language)
                if item is None or item.sound is None:
                    other = next((a for a in per_lang.values() if a.sound is not None), None)
                    if other is not None:
                        item = replace(other, language=language, spoken=other.language)
                if item is not None:
                    out.append(item)
        return tuple(out)

    def with_events(self, events: tuple[Event, ...], audio: dict[str, dict[str, Audio]]
                    ) -> Board:
        ordered = tuple(sorted(events, key=lambda e: (e.date, e.time or "", e.id)))
        return Board(ordered, audio, self.intro, self.version + 1)


def save_events(path: Path, events: tuple[Event, ...]) -> None:
    write_durably(path, json.dumps([e.to_json() for e in events], ensure_ascii=False, indent=1))


def load_events(path: Path, statuses: dict[str, Status], tz: ZoneInfo,
                seed: tuple[dict[str, Any], ...]) -> tuple[Event, ...]:
    """The saved board, or the seed on the first start. A damaged file stops the start with
    a ConfigError naming it (and the event): the board is not silently emptied."""
    if not path.exists():
        return tuple(parse_event(item, statuses, tz) for item in seed)
    data = read_json(path)
    if not isinstance(data, list):
        raise state_error(path, "must hold a JSON list of events")
    if len(data) > MAX_EVENTS:
        raise state_error(path, f"more than {MAX_EVENTS} events")
    events: list[Event] = []
    seen: set[str] = set()
    for n, item in enumerate(data, 1):
        try:
            event = parse_event(item, statuses, tz)
        except InvalidRequest as exc:
            raise state_error(path, f"event {n}: {exc}") from exc
        if event.id in seen:
            raise state_error(path, f"event {n}: id {event.id!r} appears twice")
        seen.add(event.id)
        events.append(event)
    return tuple(events)
