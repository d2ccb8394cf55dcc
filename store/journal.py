"""An append-only journal for rows the database would not take: JSON lines in a 0700 folder,
0600 files, each entry fsync'd before append() returns, so that it outlives a database
outage and a crash. Whoever replays the entries removes them once their rows are committed.

Every entry is a JSON object with a string "key"; replaying one key twice must be harmless
(the entry is removed only after its commit, so a crash in between replays it again).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Collection
from pathlib import Path
from typing import Any

from core.files import fsync_dir

log = logging.getLogger(__name__)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class Journal:
    def __init__(self, folder: Path, name: str) -> None:
        self.folder = folder
        self.path = folder / f"{name}.jsonl"
        # lines that no longer parse (a write cut short by a crash) are moved here for a
        # person to read; they are never replayed and never silently dropped
        self.unreadable = folder / f"{name}.unreadable"
        self._lock = threading.Lock()  # appends and rewrites, from worker threads

    def _folder(self) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.folder.stat().st_mode & 0o077:
            self.folder.chmod(0o700)

    def append(self, entry: dict[str, Any]) -> None:
        """Add one entry durably (blocking: call it from a worker thread)."""
        if not isinstance(entry.get("key"), str):
            raise ValueError("a journal entry needs a string 'key'")
        line = (json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        with self._lock:
            self._folder()
            created = not self.path.exists()
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                         0o600)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = b"\n" + line  # a torn last line must not swallow this entry
                _write_all(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                fsync_dir(self.folder)

    def _lines(self) -> list[bytes]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        return [line for line in data.split(b"\n") if line.strip()]

    @staticmethod
    def _parse(line: bytes) -> dict[str, Any] | None:
        try:
            entry = json.loads(line)
        except ValueError:
            return None
        return entry if isinstance(entry, dict) and isinstance(entry.get("key"), str) else None

    def entries(self) -> list[dict[str, Any]]:
        """The readable entries, oldest first."""
        with self._lock:
            lines = self._lines()
        return [e for e in map(self._parse, lines) if e is not None]

    def count(self) -> int:
        with self._lock:
            return len(self._lines())

    def remove(self, keys: Collection[str]) -> None:
        """Drop the entries with these keys (their rows are committed), durably."""
        done = set(keys)
        with self._lock:
            lines = self._lines()
            if not lines:
                return
            keep: list[bytes] = []
            unreadable: list[bytes] = []
            for line in lines:
                entry = self._parse(line)
                if entry is None:
                    unreadable.append(line)
                elif entry["key"] not in done:
                    keep.append(line)
            if len(keep) == len(lines):
                return
            if unreadable:
                log.error("journal %s: %d unreadable line(s) moved to %s", self.path,
                          len(unreadable), self.unreadable)
                fd = os.open(self.unreadable,
                             os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
                try:
                    _write_all(fd, b"".join(line + b"\n" for line in unreadable))
                    os.fsync(fd)
                finally:
                    os.close(fd)
            if not keep:
                self.path.unlink(missing_ok=True)
            else:
                tmp = self.path.with_name(f".{self.path.name}.tmp")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
                try:
                    _write_all(fd, b"".join(line + b"\n" for line in keep))
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, self.path)
            fsync_dir(self.folder)
