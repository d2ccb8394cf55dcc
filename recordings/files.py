"""Recording files on disk: names from our own ids only (ami_bridge/recording_names.py, shared
with Asterisk's MixMonitor), completion check, checksum, duration, the two-channel archive
file, and overwriting before deletion.

Asterisk's MixMonitor writes two mono legs into the spool folder while the call is bridged:
`<id>-in.wav` (what the caller said) and `<id>-out.wav` (what the caller heard: the operator,
or whoever the call was transferred to). Both legs come from one audiohook, frame by frame,
so they are the same length and aligned. When the call ends they are interleaved into one
two-channel file, caller left and operator right, in the archive folder.
"""

from __future__ import annotations

import array
import asyncio
import hashlib
import os
import struct
import wave
from dataclasses import dataclass
from pathlib import Path

# names shared with Asterisk's MixMonitor live in the adapter; re-exported for this feature
from ami_bridge.recording_names import ARCHIVE_FILE as ARCHIVE_FILE
from ami_bridge.recording_names import FAILOPEN_DIR as FAILOPEN_DIR
from ami_bridge.recording_names import LEG_FILE as LEG_FILE
from ami_bridge.recording_names import LEGS as LEGS
from ami_bridge.recording_names import RecordingFileError as RecordingFileError
from ami_bridge.recording_names import is_call_id as is_call_id
from ami_bridge.recording_names import leg_name as leg_name
from ami_bridge.recording_names import mixmonitor_args as mixmonitor_args
from ami_bridge.recording_names import relative_name as relative_name
from core.files import overwrite_and_unlink as overwrite_and_unlink
from core.files import walk_files as walk_files
from core.files import write_durably


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


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_mono(path: Path) -> tuple[array.array[int], int]:
    with wave.open(str(path), "rb") as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise RecordingFileError(f"{path.name}: expected 16-bit mono")
        samples = array.array("h", w.readframes(w.getnframes()))
        return samples, w.getframerate()


def stereo_bytes(caller_leg: Path, other_leg: Path) -> bytes:
    """One WAV: channel 1 the caller, channel 2 the other side; a shorter leg is padded."""
    left, rate = _read_mono(caller_leg)
    right, rate_r = _read_mono(other_leg)
    if rate != rate_r:
        raise RecordingFileError(f"legs differ in sample rate: {rate} and {rate_r}")
    n = max(len(left), len(right))
    left.extend(array.array("h", [0]) * (n - len(left)))
    right.extend(array.array("h", [0]) * (n - len(right)))
    both = array.array("h", bytes(4 * n))
    both[0::2] = left
    both[1::2] = right
    return wav_bytes(both.tobytes(), rate, 2)


def wav_bytes(frames: bytes, rate: int, channels: int) -> bytes:
    """A canonical 44-byte-header PCM WAV, the layout `inspect_wav` checks."""
    block = 2 * channels
    header = (b"RIFF" + struct.pack("<I", 36 + len(frames)) + b"WAVEfmt "
              + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, 16)
              + b"data" + struct.pack("<I", len(frames)))
    return header + frames


def archive_legs(caller_leg: Path, other_leg: Path, dest: Path) -> WavInfo:
    """Interleave the two legs into dest durably; the legs are left for the caller to remove
    once the index row is written."""
    data = stereo_bytes(caller_leg, other_leg)
    write_durably(dest, data)
    info = inspect_wav(dest)
    if info is None or info.sha256 != hashlib.sha256(data).hexdigest():
        raise RecordingFileError(f"archive file {dest.name} did not read back as written")
    return info


def repair_header(path: Path) -> bool:
    """A leg whose writer died (Asterisk crash) keeps a header announcing 0 bytes: set the
    sizes from the file's length. True when the file now inspects as complete."""
    try:
        size = path.stat().st_size
        with open(path, "r+b") as f:
            head = f.read(44)
            if len(head) < 44 or head[:4] != b"RIFF" or head[8:12] != b"WAVE" \
                    or head[36:40] != b"data":
                return False
            data_size = size - 44
            data_size -= data_size % struct.unpack_from("<H", head, 32)[0]
            f.seek(4)
            f.write(struct.pack("<I", 36 + data_size))
            f.seek(40)
            f.write(struct.pack("<I", data_size))
            f.truncate(44 + data_size)
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        return False
    return inspect_wav(path) is not None


