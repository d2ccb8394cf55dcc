"""Recording files on disk: names from our own ids only, completion check, checksum, duration."""

from __future__ import annotations

import asyncio
import hashlib
import re
import struct
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

_CALL_ID = re.compile(r"^[0-9a-f]{32}$")


class RecordingFileError(Exception):
    pass


def relative_name(call_id: str, started: datetime) -> str:
    """`YYYY/MM/DD/<call id>.wav`: the call id is our uuid4 hex, never caller text."""
    if not _CALL_ID.match(call_id):
        raise RecordingFileError(f"refusing unexpected call id {call_id!r} in a file name")
    return f"{started:%Y/%m/%d}/{call_id}.wav"


def safe_path(root: Path, relative: str) -> Path:
    """Resolve a stored relative name under root; anything escaping root is refused."""
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise RecordingFileError(f"path {relative!r} escapes the recordings folder")
    return path


@dataclass(frozen=True)
class WavInfo:
    size_bytes: int
    duration_s: float
    sha256: str


def _wav_data_size(head: bytes) -> tuple[int, int] | None:
    """(data bytes announced by the header, byte rate) of a canonical 44-byte WAV header."""
    if len(head) < 44 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    byte_rate = struct.unpack_from("<I", head, 28)[0]
    data_size = struct.unpack_from("<I", head, 40)[0]
    return data_size, byte_rate


def inspect_wav(path: Path) -> WavInfo | None:
    """None until Asterisk has closed the file (it writes the final sizes into the header)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    header = _wav_data_size(data[:44])
    if header is None:
        return None
    data_size, byte_rate = header
    if data_size != len(data) - 44 or byte_rate == 0:
        return None
    return WavInfo(len(data), data_size / byte_rate, hashlib.sha256(data).hexdigest())


async def wait_complete(path: Path, timeout: float = 10.0, interval: float = 0.1) -> WavInfo:
    """MixMonitor finishes writing shortly after the hang-up event: poll until the header
    matches the file size."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        info = await asyncio.to_thread(inspect_wav, path)
        if info is not None:
            return info
        if loop.time() >= deadline:
            raise RecordingFileError(f"recording {path.name} not complete after {timeout:.0f} s")
        await asyncio.sleep(interval)


def discard_empty(path: Path) -> None:
    """Remove a recording that holds a header and no audio; never touches real audio."""
    try:
        if path.stat().st_size <= 44:
            path.unlink()
    except FileNotFoundError:
        pass
