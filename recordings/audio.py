"""Audio work with pydub: conversion to a browser-friendly format, and waveform peaks.

pydub imports `audioop` (deprecated in 3.11, fine until 3.13) and warns at import when
ffmpeg is missing; both warnings are handled here, once, so callers never see them.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

with warnings.catch_warnings(record=True) as _caught:
    warnings.filterwarnings("ignore", message="'audioop' is deprecated",
                            category=DeprecationWarning)
    warnings.simplefilter("always", RuntimeWarning)
    import audioop

    from pydub import AudioSegment  # type: ignore[import-untyped]
# pydub warns "Couldn't find ffmpeg" at import; conversion then fails with a clear error
FFMPEG_MISSING = any("ffmpeg" in str(w.message) for w in _caught)

# format → (ffmpeg format, codec, bitrate, Content-Type). MP3 plays in every browser; Opus
# in Ogg is about half the size where the browser has it.
FORMATS: dict[str, tuple[str, str | None, str, str]] = {
    "mp3": ("mp3", "libmp3lame", "32k", "audio/mpeg"),
    "ogg": ("ogg", "libopus", "24k", "audio/ogg"),
}


class AudioUnavailable(Exception):
    pass


def _load(src: Path) -> Any:
    # given a path pydub leaves the file open (a ResourceWarning): hand it an open file
    with open(src, "rb") as f:
        return AudioSegment.from_wav(f)


def convert(src: Path, dest: Path, fmt: str) -> None:
    """Encode a WAV recording as fmt into dest (written under a temporary name first)."""
    if FFMPEG_MISSING:
        raise AudioUnavailable("ffmpeg is not installed (Debian package ffmpeg)")
    ff_format, codec, bitrate, _ = FORMATS[fmt]
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    segment = _load(src)
    segment.export(str(tmp), format=ff_format, codec=codec, bitrate=bitrate).close()
    tmp.replace(dest)


def peaks(src: Path, buckets: int) -> dict[str, object]:
    """Per channel, the largest absolute sample in each of `buckets` equal slices, 0..1."""
    segment = _load(src)
    full_scale = float(1 << (8 * segment.sample_width - 1))
    channels: list[list[float]] = []
    width = segment.sample_width
    for mono in segment.split_to_mono():
        raw: bytes = mono.raw_data
        n = len(raw) // width
        out: list[float] = []
        for i in range(buckets):
            lo, hi = i * n // buckets, (i + 1) * n // buckets
            # audioop.max runs in C: an hour of audio takes milliseconds, not seconds
            peak = audioop.max(raw[lo * width:hi * width], width) if hi > lo else 0
            out.append(round(min(peak / full_scale, 1.0), 4))
        channels.append(out)
    return {"duration_s": round(segment.duration_seconds, 3), "buckets": buckets,
            "channels": channels}
