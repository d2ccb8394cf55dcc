"""Dated city closures written into config/schedules.yaml from the admin page.

The file stays the one source of truth (comments and layout kept): an added closure is one
flow-style line at the end of `closures:`, a removed one loses its line (or just the
service). The caller writes the new text atomically and reloads it through the flow-set
validation, putting the old text back when the reload refuses it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from core.files import write_durably
from core.yamlconf import ConfigError, load_yaml

_KEY = re.compile(r"^closures\s*:\s*(?P<value>[^#]*?)\s*(#.*)?$")
_TOP = re.compile(r"^[^\s#-]")


class ClosureError(ValueError):
    pass


@dataclass(frozen=True)
class DatedClosure:
    day: date
    name: str
    services: tuple[str, ...]  # empty: every service

    def line(self, indent: str) -> str:
        # JSON strings are YAML flow scalars: quotes and any script are kept as typed
        name = json.dumps(self.name, ensure_ascii=False)
        scope = f", services: [{', '.join(self.services)}]" if self.services else ""
        return f'{indent}- {{name: {name}, date: "{self.day.isoformat()}"{scope}}}'


def check_name(name: str) -> str:
    name = name.strip()
    if not 0 < len(name) <= 40 or not name.isprintable():
        raise ClosureError("the closure's name must be 1-40 characters on one line")
    return name


def add_closure(text: str, closure: DatedClosure) -> str:
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _KEY.match(line)), None)
    if start is None:
        return text.rstrip("\n") + "\nclosures:\n" + closure.line("  ") + "\n"
    match = _KEY.match(lines[start])
    assert match is not None
    if match["value"] == "[]":
        lines[start:start + 1] = ["closures:", closure.line("  ")]
        return "\n".join(lines) + "\n"
    if match["value"]:
        raise ClosureError(f"schedules.yaml:{start + 1}: 'closures' is written on one line; "
                           "write it as a list of lines to edit it here")
    last, indent = start, "  "
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if _TOP.match(line):
            break
        stripped = line.lstrip()
        if stripped and not stripped.startswith("#"):
            if last == start:
                indent = line[:len(line) - len(stripped)]
            last = i
    lines.insert(last + 1, closure.line(indent))
    return "\n".join(lines) + "\n"


def remove_closure(text: str, path: Path, day: date, service: str,
                   services: list[str]) -> str:
    """Close `service` no longer on `day`; other services of the same entry stay closed."""
    try:
        data = load_yaml(path)
    except ConfigError as exc:
        raise ClosureError(str(exc)) from exc
    items = data.get("closures") if isinstance(data, dict) else None
    lines = text.splitlines()
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or "date" not in item:
            continue
        if str(item["date"]) != day.isoformat():
            continue
        where = getattr(item, "location", None)
        # the file may have been edited by hand since it was last loaded: check what is used
        raw_scope, name = item.get("services", []), item.get("name", "")
        raw_scope = [] if raw_scope is None else raw_scope
        if not isinstance(raw_scope, list) or not all(_scalar(s) for s in raw_scope):
            at = getattr(item, "key_locations", {}).get("services", where)
            raise ClosureError(f"{at}: 'services' must be a list of service ids; "
                               "schedules.yaml is unchanged")
        if not _scalar(name):
            at = getattr(item, "key_locations", {}).get("name", where)
            raise ClosureError(f"{at}: 'name' must be a text; schedules.yaml is unchanged")
        scope = [str(s) for s in raw_scope] or list(services)
        if service not in scope:
            continue
        n = where.line - 1 if where is not None else -1
        line = lines[n] if 0 <= n < len(lines) else ""
        if not line.lstrip().startswith("- {") or not line.rstrip().endswith("}"):
            raise ClosureError(f"{where}: this closure spans several lines; edit the file")
        kept = tuple(s for s in scope if s != service)
        indent = line[:len(line) - len(line.lstrip())]
        if kept:
            lines[n] = DatedClosure(day, str(name), kept).line(indent)
        else:
            del lines[n]
            _empty_to_flow(lines)
        return "\n".join(lines) + "\n"
    raise ClosureError(f"no dated closure of {service} on {day.isoformat()}")


def _scalar(value: object) -> bool:
    # what the schedules loader takes for a text (YAML may read an id such as 1 as a number)
    return isinstance(value, str | int) and not isinstance(value, bool)


def _empty_to_flow(lines: list[str]) -> None:
    """`closures:` with no item left would be null, which the loader refuses: write []."""
    start = next((i for i, line in enumerate(lines) if _KEY.match(line)), None)
    if start is None:
        return
    for line in lines[start + 1:]:
        if _TOP.match(line):
            break
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return
    lines[start] = "closures: []"


def write_atomically(path: Path, text: str) -> None:
    write_durably(path, text)
