"""JSON files the engine keeps in its state folder (secrets, overrides, the event board).

The engine writes them, but a full disk, a restore from an old backup or a hand edit can
leave anything there. Reading one gives its JSON value or a ConfigError naming the file (the
line and column for broken JSON): the CLI prints it on one line and stops, no traceback.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from .textfile import position
from .yamlconf import ConfigError, Location


def state_error(path: Path, reason: str) -> ConfigError:
    return ConfigError(None, f"{path}: {reason}")


def read_json(path: Path) -> Any:
    """The file's JSON value; ConfigError if it cannot be read or is not JSON."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise state_error(path, f"cannot read: {exc.strerror or exc}") from exc
    try:
        # only the encoding is checked: texts the engine saved may hold any character
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[:exc.start].decode("utf-8")
        line, column = position(before, len(before))
        raise ConfigError(Location(str(path), line, column),
                          f"invalid UTF-8 (byte 0x{raw[exc.start]:02x})") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(Location(str(path), exc.lineno, exc.colno),
                          f"invalid JSON: {exc.msg}") from exc
    except ValueError as exc:  # an integer over Python's digit limit
        raise state_error(path, f"invalid JSON: {exc}") from exc
    except RecursionError as exc:
        raise state_error(path, "invalid JSON: nested too deeply") from exc


def aware_time(value: Any, what: str, path: Path) -> datetime:
    """An ISO 8601 time with its offset: a naive one cannot be compared with the clock."""
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise state_error(path, f"{what} must be an ISO 8601 time with a UTC offset, "
                          f"got {value!r}")
    return parsed
