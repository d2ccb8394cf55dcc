"""Names the console shows for configured ids (config/labels.yaml), in Japanese and English.

The ids stay what the configuration, the API and the records use; only what a person reads
changes. The file is optional, checked like every config file (file:line on an error), and read
again when it changes: a broken edit is logged and the last good labels stay in use.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from core.yamlconf import ConfigError, Location, Node, load_yaml

from .i18n import LANGS

log = logging.getLogger(__name__)

SECTIONS = ("services", "queues", "topics", "nodes")
_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
MAX_LABEL = 80

Table = Mapping[str, Mapping[str, str]]  # id -> language -> text


@dataclass(frozen=True)
class Labels:
    sections: Mapping[str, Table] = field(default_factory=dict)

    def get(self, section: str, key: str, lang: str) -> str | None:
        return self.sections.get(section, {}).get(key, {}).get(lang)

    def keys(self, section: str) -> list[str]:
        return sorted(self.sections.get(section, {}))


def load_labels(path: Path, services: Iterable[str], queues: Iterable[str]) -> Labels:
    """Read labels.yaml; a missing file is no labels. Ids of services and queues must be
    madoguchi.yaml's (a typo would silently show the id)."""
    if not path.exists():
        return Labels()
    data = load_yaml(path)
    if data is None:
        return Labels()
    root = Node(data, Location(str(path), 1, 1), "labels.yaml")
    known = {"services": set(services), "queues": set(queues)}
    sections: dict[str, Table] = {}
    for section in SECTIONS:
        node = root.child(section)
        table: dict[str, dict[str, str]] = {}
        for key in node.data:
            if not isinstance(key, str) or not _KEY.fullmatch(key):
                raise ConfigError(node.at(str(key)), f"{key!r} is not an id")
            if section in known and key not in known[section]:
                raise ConfigError(node.at(key), f"unknown {section[:-1]} {key!r}")
            entry = node.child(key)
            texts = {lang: _label(entry, lang) for lang in LANGS}
            entry.done()
            table[key] = {lang: text for lang, text in texts.items() if text}
        sections[section] = table
    root.done()
    return Labels(sections)


def _label(entry: Node, lang: str) -> str:
    text = entry.text(lang, "").strip()
    if len(text) > MAX_LABEL or any(ord(c) < 32 for c in text):
        raise ConfigError(entry.at(lang), f"{lang!r} must be one line of at most "
                          f"{MAX_LABEL} characters")
    return text


class LabelFile:
    """labels.yaml as last read. The first read is strict (the engine refuses to start on a
    broken file); later changes are picked up when a page asks, a broken one is logged."""

    def __init__(self, path: Path, services: Iterable[str], queues: Iterable[str]) -> None:
        self.path = path
        self._services = tuple(services)
        self._queues = tuple(queues)
        self._seen = self._stamp()
        self._labels = load_labels(path, self._services, self._queues)

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def current(self) -> Labels:
        stamp = self._stamp()
        if stamp != self._seen:
            self._seen = stamp
            try:
                self._labels = load_labels(self.path, self._services, self._queues)
            except ConfigError as exc:
                log.warning("labels not reloaded, the last good ones stay: %s", exc)
        return self._labels
