"""Durable file writes (a crash leaves the old file or the whole new one, never a torn one),
and the erasure and listing of personal-data files that recordings and FAXes share."""

from __future__ import annotations

import os
from collections.abc import Iterator
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


def overwrite_and_unlink(path: Path) -> int:
    """Overwrite a file's bytes with zeros, fsync, then unlink; returns the bytes removed.

    On a plain disk this leaves nothing of the recording or FAX readable through the file system. It
    cannot reach copies the storage keeps on its own (SSD remapping, copy-on-write file
    systems, snapshots, backups): README "Recordings" lists those limits.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    with open(path, "r+b") as f:
        zeros = bytes(1 << 20)
        left = size
        while left > 0:
            n = min(left, len(zeros))
            f.write(zeros[:n])
            left -= n
        f.flush()
        os.fsync(f.fileno())
    path.unlink()
    return size


def walk_files(root: Path) -> Iterator[Path]:
    """Every regular file under root, sorted, skipping nothing (strays must be seen)."""
    if not root.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath) / name
