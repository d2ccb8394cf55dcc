from __future__ import annotations

import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest

from recordings.files import (
    RecordingFileError,
    discard_empty,
    inspect_wav,
    relative_name,
    safe_path,
    wait_complete,
)


def wav_bytes(n_samples: int, header_samples: int | None = None) -> bytes:
    data = struct.pack(f"<{n_samples}h", *([1000] * n_samples))
    declared = 2 * (n_samples if header_samples is None else header_samples)
    header = (b"RIFF" + struct.pack("<I", 36 + declared) + b"WAVEfmt " +
              struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16) + b"data" +
              struct.pack("<I", declared))
    return header + data


def test_complete_wav_gives_duration_and_checksum(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    path.write_bytes(wav_bytes(16000))
    info = inspect_wav(path)
    assert info is not None
    assert info.duration_s == pytest.approx(2.0)
    assert len(info.sha256) == 64


def test_file_still_being_written_is_not_complete(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    path.write_bytes(wav_bytes(16000, header_samples=0))
    assert inspect_wav(path) is None


async def test_wait_complete_times_out_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    path.write_bytes(wav_bytes(100, header_samples=0))
    with pytest.raises(RecordingFileError, match="not complete"):
        await wait_complete(path, timeout=0.2, interval=0.05)


def test_names_come_from_our_ids_only() -> None:
    when = datetime(2026, 11, 26, tzinfo=UTC)
    assert relative_name("a" * 32, when) == f"2026/11/26/{'a' * 32}.wav"
    with pytest.raises(RecordingFileError):
        relative_name("../../etc/passwd", when)
    # the folder is the city's day: 20:00 UTC is 05:00 the next day in Tokyo
    late = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)
    assert relative_name("b" * 32, late) == f"2026/11/27/{'b' * 32}.wav"


def test_paths_cannot_escape_the_recordings_folder(tmp_path: Path) -> None:
    assert safe_path(tmp_path, "2026/x.wav") == tmp_path.resolve() / "2026/x.wav"
    with pytest.raises(RecordingFileError):
        safe_path(tmp_path, "../secrets.json")
    with pytest.raises(RecordingFileError):
        safe_path(tmp_path, "/etc/passwd")


def test_discard_empty_keeps_real_audio(tmp_path: Path) -> None:
    empty, full = tmp_path / "e.wav", tmp_path / "f.wav"
    empty.write_bytes(wav_bytes(0))
    full.write_bytes(wav_bytes(10))
    discard_empty(empty)
    discard_empty(full)
    discard_empty(tmp_path / "missing.wav")
    assert not empty.exists() and full.exists()
