"""Durable file writes: a crash leaves the old file or the whole new one, never a torn one."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in `path` survive a power cut."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(dest: Path, data: bytes | str, mode: int | None = None) -> None:
    """Write to a temporary name beside dest, fsync, rename over dest, fsync the folder.
    Text is written as UTF-8. `mode` (e.g. 0o600 for personal data or secrets) is set on the
    temporary file before any byte is written; without it the process umask decides."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    # never through a link someone planted at the temporary name
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    fd = os.open(tmp, flags, 0o666 if mode is None else mode)
    try:
        if mode is not None:
            os.fchmod(fd, mode)  # an existing temporary file keeps its old mode otherwise
        with os.fdopen(fd, "wb") as f:
            fd = -1
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
    finally:
        if fd != -1:
            os.close(fd)
    os.replace(tmp, dest)
    fsync_dir(dest.parent)
