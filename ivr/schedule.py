"""Opening hours per service, Japanese national holidays, city closures and overrides.

Hours are data (config/schedules.yaml, REQUIREMENTS §5). National holidays come from the
maintained `holidays` package (substitute holidays and Happy Mondays included); the city adds
its own closures (e.g. 12/29–1/3). Overrides are switched at runtime (API or a supervisor's
feature code), may expire, are persisted in the state folder and logged.

`Schedules.state(service, at)` is pure: the same answer for a live call and a dry run.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import holidays

from core.clock import CITY_TZ, CITY_TZ_NAME
from core.files import write_durably
from core.statefile import aware_time, read_json, state_error
from core.yamlconf import ConfigError, Location, Node, load_yaml

from .errors import Problems
from .prompts import LANGUAGES

log = logging.getLogger(__name__)

_RANGE = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-4]):([0-5][0-9])$")
_MONTH_DAY = re.compile(r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")
DAY_KINDS = ("weekdays", "saturday", "sunday", "holidays")


class ScheduleState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    HOLIDAY = "holiday"  # a national holiday or city closure on which the service is shut
    EMERGENCY = "emergency"  # override: emergency message
    FORWARD = "forward"  # override: calls go to the city hall


class OverrideMode(StrEnum):
    NORMAL = "normal"
    CLOSED = "closed"
    EMERGENCY = "emergency"
    FORWARD = "forward"
    OPEN = "open"  # open outside the hours (an extra shift, a test at night)


# the digit a supervisor dials after the service's code (*7 <service> <mode>)
MODE_DIGITS = {"0": OverrideMode.NORMAL, "1": OverrideMode.CLOSED, "2": OverrideMode.EMERGENCY,
               "3": OverrideMode.FORWARD, "4": OverrideMode.OPEN}
NEXT_OPEN_HORIZON = timedelta(days=14)  # beyond this a service counts as closed until changed


@dataclass(frozen=True)
class Hours:
    """Opening ranges per kind of day; an empty tuple means closed all day."""

    ranges: dict[str, tuple[tuple[time, time | None], ...]] = field(hash=False)

    def open_at(self, kind: str, t: time) -> bool:
        # None as the end means 24:00
        return any(start <= t and (end is None or t < end) for start, end in self.ranges[kind])


@dataclass(frozen=True)
class Closure:
    name: str
    start: tuple[int, int]  # (month, day), inclusive; may wrap over the new year
    end: tuple[int, int]
    services: tuple[str, ...]  # empty: every service
    year: int | None = None  # set for a one-off closure of some services on one date

    def covers(self, d: date, service: str) -> bool:
        if self.services and service not in self.services:
            return False
        if self.year is not None and d.year != self.year:
            return False
        md = (d.month, d.day)
        if self.start <= self.end:
            return self.start <= md <= self.end
        return md >= self.start or md <= self.end


@dataclass(frozen=True)
class Schedules:
    tz: ZoneInfo
    hours: dict[str, Hours] = field(hash=False)
    closures: tuple[Closure, ...]
    dated_closures: dict[date, str] = field(hash=False)  # one-off closures by date
    feature_codes: dict[str, str] = field(hash=False)  # digit -> service id
    supervisors: tuple[str, ...] = ()

    def day_kind(self, d: date, service: str) -> tuple[str, str | None]:
        """("holidays", name) on national holidays and city closures, else the weekday kind."""
        name = self.holiday_name(d, service)
        if name is not None:
            return "holidays", name
        wd = d.weekday()
        return ("saturday" if wd == 5 else "sunday" if wd == 6 else "weekdays"), None

    def holiday_name(self, d: date, service: str) -> str | None:
        if d in self.dated_closures:
            return self.dated_closures[d]
        for c in self.closures:
            if c.covers(d, service):
                return c.name
        return _japan(d.year).get(d)

    def is_city_closure(self, d: date, service: str) -> bool:
        return d in self.dated_closures or any(c.covers(d, service) for c in self.closures)

    def base_state(self, service: str, at: datetime) -> ScheduleState:
        """Open, closed or holiday from hours and calendars alone (no override)."""
        local = at.astimezone(self.tz)
        d = local.date()
        hours = self.hours[service]
        if self.is_city_closure(d, service):
            return ScheduleState.HOLIDAY
        kind, name = self.day_kind(d, service)
        if hours.open_at(kind, local.time()):
            return ScheduleState.OPEN
        if name is not None and not hours.ranges["holidays"]:
            return ScheduleState.HOLIDAY
        return ScheduleState.CLOSED

    def state(self, service: str, at: datetime, override: Override | None) -> ScheduleState:
        if override is not None and override.active(at):
            if override.mode is OverrideMode.CLOSED:
                return ScheduleState.CLOSED
            if override.mode is OverrideMode.EMERGENCY:
                return ScheduleState.EMERGENCY
            if override.mode is OverrideMode.FORWARD:
                return ScheduleState.FORWARD
            if override.mode is OverrideMode.OPEN:
                return ScheduleState.OPEN
        return self.base_state(service, at)

    def next_open(self, service: str, at: datetime) -> datetime | None:
        """When the service's hours next open after `at` (to the minute; no override
        considered), or None within NEXT_OPEN_HORIZON. Hours are whole minutes, so a
        minute's step finds the exact opening."""
        t = at.replace(second=0, microsecond=0) + timedelta(minutes=1)
        end = at + NEXT_OPEN_HORIZON
        while t <= end:
            if self.base_state(service, t) is ScheduleState.OPEN:
                return t
            t += timedelta(minutes=1)
        return None


_JP_CACHE: dict[int, holidays.HolidayBase] = {}


def _japan(year: int) -> holidays.HolidayBase:
    # one calendar per year, built once: the per-call path only looks a date up
    cal = _JP_CACHE.get(year)
    if cal is None:
        cal = holidays.country_holidays("JP", years=year, language="ja")
        _JP_CACHE[year] = cal
    return cal


def _ranges(node: Node, key: str, default: str) -> tuple[tuple[time, time | None], ...]:
    # one range, 'closed', or a list of ranges; text() refuses other types and gives the
    # default for a missing or empty value
    raw = node.data.get(key)
    items = node.text_list(key) if isinstance(raw, list) else [node.text(key, default)]
    out: list[tuple[time, time | None]] = []
    for item in items:
        if item == "closed":
            continue
        m = _RANGE.match(item)
        if m is None:
            raise ConfigError(node.at(key), f"{key!r}: {item!r} is not HH:MM-HH:MM or 'closed'")
        start = time(int(m[1]), int(m[2]))
        end = None if m[3] == "24" else time(int(m[3]), int(m[4]))
        if m[3] == "24" and m[4] != "00":
            raise ConfigError(node.at(key), f"{key!r}: {item!r} ends after 24:00")
        if end is not None and end <= start:
            raise ConfigError(node.at(key), f"{key!r}: {item!r} ends before it starts")
        out.append((start, end))
    return tuple(out)


def load_schedules(path: Path, services: set[str], problems: Problems) -> Schedules | None:
    """Read config/schedules.yaml; every error goes to `problems` with file:line:column."""
    try:
        root = Node(load_yaml(path), Location(str(path), 1, 1), "schedules")
    except ConfigError as exc:
        problems.add(exc)
        return None
    tz_name = CITY_TZ_NAME
    try:
        tz_name = root.text("timezone", CITY_TZ_NAME)
        tz = ZoneInfo(tz_name)
    except (ConfigError, ValueError, KeyError) as exc:
        problems.add(exc if isinstance(exc, ConfigError)
                     else ConfigError(root.at("timezone"), f"unknown time zone {tz_name!r}"))
        tz = CITY_TZ
    hours: dict[str, Hours] = {}
    codes: dict[str, str] = {}
    svc = _child(root, "services", problems, required=True)
    if svc is not None:
        for service_id in svc.data:
            node = _child(svc, service_id, problems)
            if node is None:
                continue
            if service_id not in services:
                problems.add(ConfigError(svc.at(service_id),
                                         f"unknown service {service_id!r}"))
            try:
                hours[service_id] = Hours({k: _ranges(node, k, "closed") for k in DAY_KINDS})
                code = node.text("feature_code", "")
                if code:
                    if not re.fullmatch(r"[1-9]", code):
                        raise ConfigError(node.at("feature_code"),
                                          "'feature_code' must be one digit 1-9")
                    if code in codes:
                        raise ConfigError(node.at("feature_code"),
                                          f"feature code {code} is used twice")
                    codes[code] = service_id
                node.done()
            except ConfigError as exc:
                problems.add(exc)
        svc.done()
    closures: list[Closure] = []
    dated: dict[date, str] = {}
    try:
        items = root.items("closures", required=False)
    except ConfigError as exc:
        problems.add(exc)
        items = []
    for item, where in items:
        try:
            c = Node(item, where, "closure")
            name = c.text("name")
            scope = tuple(c.text_list("services", []))
            for s in scope:
                if s not in services:
                    raise ConfigError(c.at("services"), f"unknown service {s!r}")
            if "date" in c.data:
                raw = c.data["date"]
                c.text("date") if not isinstance(raw, date) else None
                try:
                    day = raw if isinstance(raw, date) else date.fromisoformat(str(raw))
                except ValueError as exc:
                    raise ConfigError(c.at("date"), f"'date' must be YYYY-MM-DD, got {raw!r}") \
                        from exc
                if scope:
                    md = (day.month, day.day)
                    closures.append(Closure(name, md, md, scope, day.year))
                else:
                    dated[day] = name
            else:
                start, end = _month_day(c, "from"), _month_day(c, "until")
                closures.append(Closure(name, start, end, scope))
            c.done()
        except ConfigError as exc:
            problems.add(exc)
    try:
        supervisors = tuple(root.text_list("supervisors", []))
        root.done()
    except ConfigError as exc:
        problems.add(exc)
        supervisors = ()
    # this year's and next year's national holidays built now, not on the first call
    this_year = datetime.now(tz).year
    for year in (this_year, this_year + 1):
        _japan(year)
    return Schedules(tz, hours, tuple(closures), dated, codes, supervisors)


def _child(node: Node, key: str, problems: Problems, required: bool = False) -> Node | None:
    try:
        return node.child(key, required=required)
    except ConfigError as exc:
        problems.add(exc)
        return None


def _month_day(node: Node, key: str) -> tuple[int, int]:
    value = node.text(key)
    m = _MONTH_DAY.match(value)
    if m is None:
        raise ConfigError(node.at(key), f"{key!r} must be MM-DD, got {value!r}")
    return int(m[1]), int(m[2])


# ---- overrides ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Override:
    service: str
    mode: OverrideMode
    set_at: datetime
    set_by: str
    until: datetime | None = None
    message: dict[str, str] = field(default_factory=dict, hash=False)  # emergency text per lang
    message_sounds: dict[str, str] = field(default_factory=dict, hash=False)

    def active(self, at: datetime) -> bool:
        return self.mode is not OverrideMode.NORMAL and (self.until is None or at < self.until)

    def to_json(self) -> dict[str, Any]:
        return {"service": self.service, "mode": self.mode.value,
                "set_at": self.set_at.isoformat(), "set_by": self.set_by,
                "until": self.until.isoformat() if self.until else None,
                "message": self.message}


def _override(item: Any, what: str, path: Path) -> Override:
    if not isinstance(item, dict):
        raise state_error(path, f"{what} must be a JSON object")
    for key in ("service", "set_by"):
        if not isinstance(item.get(key), str) or not item[key]:
            raise state_error(path, f"{what}: {key!r} must be a non-empty string")
    modes = [m.value for m in OverrideMode]
    if item.get("mode") not in modes:
        raise state_error(path, f"{what}: 'mode' must be one of {', '.join(modes)}, "
                          f"got {item.get('mode')!r}")
    message = item.get("message") or {}
    if not isinstance(message, dict) or not all(
            lang in LANGUAGES and isinstance(text, str) for lang, text in message.items()):
        raise state_error(path, f"{what}: 'message' must map languages "
                          f"({', '.join(LANGUAGES)}) to texts")
    set_at = aware_time(item.get("set_at"), f"{what}: 'set_at'", path)
    until = item.get("until")
    until_at = None if until is None else aware_time(until, f"{what}: 'until'", path)
    return Override(item["service"], OverrideMode(item["mode"]), set_at, item["set_by"],
                    until_at, dict(message))


class OverrideStore:
    """Runtime overrides per service, persisted (a restart keeps an emergency switch on)."""

    def __init__(self, state_file: Path, clock: Callable[[], datetime]) -> None:
        self.state_file = state_file
        self.log_file = state_file.with_name("override-log.jsonl")
        self.clock = clock
        self._lock = threading.Lock()
        self._current: dict[str, Override] = {}
        self._load()

    def _load(self) -> None:
        """A damaged file stops the start (ConfigError naming it): starting with no override
        would silently end an emergency switch, and the next change would overwrite it."""
        if not self.state_file.exists():
            return
        path = self.state_file
        data = read_json(path)
        if not isinstance(data, list):
            raise state_error(path, "must hold a JSON list of overrides")
        for n, item in enumerate(data, 1):
            ov = _override(item, f"override {n}", path)
            self._current[ov.service] = ov

    def snapshot(self) -> dict[str, Override]:
        """Immutable view for one call: later switches do not change a call's answers."""
        return dict(self._current)

    def get(self, service: str) -> Override | None:
        """The override in force now, or None (expired ones are logged once and dropped)."""
        ov = self._current.get(service)
        if ov is None:
            return None
        if not ov.active(self.clock()):
            if ov.mode is not OverrideMode.NORMAL:
                self._append_log({"service": service, "mode": "normal", "by": "expiry",
                                  "at": self.clock().isoformat()})
                log.warning("override for %s expired (%s since %s)", service, ov.mode.value,
                            ov.set_at.isoformat())
            with self._lock:
                self._current.pop(service, None)
                self._save()
            return None
        return ov

    def set(self, service: str, mode: OverrideMode, set_by: str,
            duration: timedelta | None = None, message: dict[str, str] | None = None,
            message_sounds: dict[str, str] | None = None) -> Override:
        now = self.clock()
        ov = Override(service, mode, now, set_by, now + duration if duration else None,
                      dict(message or {}), dict(message_sounds or {}))
        with self._lock:
            if mode is OverrideMode.NORMAL:
                self._current.pop(service, None)
            else:
                self._current[service] = ov
            self._save()
        self._append_log({**ov.to_json(), "by": set_by, "at": now.isoformat()})
        log.warning("override for %s set to %s by %s%s", service, mode.value, set_by,
                    f" until {ov.until.isoformat()}" if ov.until else "")
        return ov

    def attach_sounds(self, service: str, sounds: dict[str, str]) -> None:
        """Give a restored emergency message its rendered files (no new log entry)."""
        with self._lock:
            ov = self._current.get(service)
            if ov is not None:
                self._current[service] = replace(ov, message_sounds=dict(sounds))

    def _save(self) -> None:
        write_durably(self.state_file, json.dumps(
            [o.to_json() for o in self._current.values()], ensure_ascii=False, indent=1))

    def _append_log(self, entry: dict[str, Any]) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def history(self, limit: int = 100) -> list[dict[str, Any]]:
        if not self.log_file.exists():
            return []
        lines = self.log_file.read_text(encoding="utf-8", errors="replace").splitlines()
        out: list[dict[str, Any]] = []
        for line in lines[-limit:]:
            try:
                entry = json.loads(line) if line.strip() else None
            except (ValueError, RecursionError):
                entry = None  # e.g. a line cut short by a crash: the others still show
            if isinstance(entry, dict):
                out.append(entry)
        return out


def utc_now() -> datetime:
    return datetime.now(UTC)
