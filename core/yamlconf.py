"""YAML loading that remembers where every value came from.

Admins edit YAML by hand, so every validation error must name the file, line and column.
PyYAML's composer knows the marks; we keep them on small dict/list subclasses.

Any bytes may reach these loaders (a hand edit, an upload, a damaged disk), and each must end
in a ConfigError with a position, never another exception: the text is decoded strictly
(core.textfile), the file size, nesting depth and scalar length are capped, and anchors
and aliases are refused (nothing here needs them, and they make alias bombs possible).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .textfile import TextError, decode
from .textfile import check as check_text

MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 32  # the deepest shipped file nests 6 levels
MAX_SCALAR = 4000  # characters; also keeps integers below Python's digit limit


@dataclass(frozen=True)
class Location:
    file: str
    line: int  # 1-based
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class ConfigError(Exception):
    """A configuration file is unreadable or invalid; the message names file:line:column."""

    def __init__(self, location: Location | None, reason: str) -> None:
        self.location = location
        self.reason = reason
        super().__init__(f"{location}: {reason}" if location else reason)


class LocDict(dict[str, Any]):
    location: Location
    key_locations: dict[str, Location]


class LocList(list[Any]):
    location: Location


def _at(name: str, mark: Any) -> Location:
    return Location(name, mark.line + 1, mark.column + 1) if mark else Location(name, 1, 1)


class _Loader(yaml.SafeLoader):
    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
        where = _at(str(self.name), event.start_mark)
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise ConfigError(where, "YAML anchors and aliases (&name, *name) are not allowed")
        if self._depth >= MAX_DEPTH:
            raise ConfigError(where, f"nested more than {MAX_DEPTH} levels deep")
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if isinstance(node, yaml.ScalarNode):
            _check_scalar(where, node.value)
        return node

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, OverflowError) as exc:
            # e.g. a date that does not exist (2024-02-30), found by PyYAML's resolver
            raise ConfigError(_loc(self, node), f"invalid value: {exc}") from exc


def _check_scalar(where: Location, value: str) -> None:
    if len(value) > MAX_SCALAR:
        raise ConfigError(where, f"value longer than {MAX_SCALAR} characters")
    try:
        check_text(value)
    except TextError as exc:
        # a double-quoted escape ("\0", "\ud800") gets past the check of the raw text
        raise ConfigError(where, f"{exc.reason} (in this value)") from exc


def _loc(loader: _Loader, node: yaml.Node) -> Location:
    return _at(str(loader.name), node.start_mark)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LocDict:
    result = LocDict()
    result.location = _loc(loader, node)
    result.key_locations = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            key = str(key)
        if key in result:
            raise ConfigError(_loc(loader, key_node), f"duplicate key {key!r}")
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_locations[key] = _loc(loader, value_node)
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LocList:
    result = LocList(loader.construct_object(child, deep=True) for child in node.value)
    result.location = _loc(loader, node)
    return result


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> int:
    """Plain decimal integers only. YAML 1.1 reads 0120 (a free-dial prefix) as octal 80,
    1:30 as 90 and 0x10 as 16: a phone number would change without a word."""
    text = node.value
    if not re.fullmatch(r"[-+]?(0|[1-9][0-9]*)", text):
        raise ConfigError(_loc(loader, node),
                          f"{node.value} is not a plain decimal number: write it in quotes "
                          f"(\"{node.value}\") if it is a number to dial, else as 0-9 digits")
    return int(text)


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def read_config_text(path: Path, limit: int = MAX_FILE_BYTES) -> str:
    """A config file's text: strict UTF-8, no control characters, at most `limit` bytes."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(limit + 1)
    except OSError as exc:
        raise ConfigError(None, f"{path}: cannot read: {exc.strerror or exc}") from exc
    if len(raw) > limit:
        raise ConfigError(Location(str(path), 1, 1), f"file larger than {limit // 1024} KiB")
    try:
        return decode(raw)
    except TextError as exc:
        raise ConfigError(Location(str(path), exc.line, exc.column), exc.reason) from exc


def load_yaml(path: Path) -> Any:
    """Parse one YAML file; every problem becomes a ConfigError with the position."""
    text = read_config_text(path)
    loader = _Loader(text)
    loader.name = str(path)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        where = _at(str(path), exc.problem_mark or exc.context_mark)
        raise ConfigError(where, f"YAML syntax: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(Location(str(path), 1, 1), f"YAML: {exc}") from exc
    except (ValueError, TypeError, OverflowError) as exc:
        # a value PyYAML builds after the document (a !!set or !!omap at the top)
        raise ConfigError(Location(str(path), 1, 1), f"invalid value: {exc}") from exc
    finally:
        loader.dispose()


class Node:
    """A cursor over a located mapping, used by the typed validators."""

    def __init__(self, data: Any, where: Location, what: str) -> None:
        if not isinstance(data, dict):
            raise ConfigError(where, f"{what} must be a mapping")
        self.data: dict[str, Any] = data
        self.where = getattr(data, "location", where)
        self._keys: dict[str, Location] = getattr(data, "key_locations", {})
        self._used: set[str] = set()

    def at(self, key: str) -> Location:
        return self._keys.get(key, self.where)

    def _get(self, key: str, default: Any, required: bool) -> Any:
        self._used.add(key)
        if key not in self.data or self.data[key] is None:
            if required:
                raise ConfigError(self.where, f"missing required field {key!r}")
            return default
        return self.data[key]

    def text(self, key: str, default: str | None = None) -> str:
        value = self._get(key, default, default is None)
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ConfigError(self.at(key), f"{key!r} must be a string")
        return str(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self._get(key, default, False)
        if not isinstance(value, bool):
            raise ConfigError(self.at(key), f"{key!r} must be true or false")
        return value

    def integer(self, key: str, default: int | None = None, lo: int | None = None,
                hi: int | None = None) -> int:
        value = self._get(key, default, default is None)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(self.at(key), f"{key!r} must be an integer")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ConfigError(self.at(key), f"{key!r} must be between {lo} and {hi}, got {value}")
        return value

    def child(self, key: str, required: bool = False) -> Node:
        value = self._get(key, {}, required)
        return Node(value, self.at(key), key)

    def items(self, key: str, required: bool = True) -> list[tuple[Any, Location]]:
        value = self._get(key, [], required)
        if not isinstance(value, list):
            raise ConfigError(self.at(key), f"{key!r} must be a list")
        base = getattr(value, "location", self.at(key))
        out: list[tuple[Any, Location]] = []
        for item in value:
            out.append((item, getattr(item, "location", base)))
        return out

    def text_list(self, key: str, default: list[str] | None = None) -> list[str]:
        value = self._get(key, default, default is None)
        if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
            raise ConfigError(self.at(key), f"{key!r} must be a list of strings")
        return [str(v) for v in value]

    def done(self) -> None:
        """Unknown fields are errors: a typo must not be silently ignored."""
        for key in self.data:
            if key not in self._used:
                raise ConfigError(self.at(key), f"unknown field {key!r}")
