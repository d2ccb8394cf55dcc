"""Recording file names that Asterisk's MixMonitor writes and the engine later finds.

The IVR starts MixMonitor with these names, acd/adopt.py gives an adopted call the same name,
and recordings/ (which re-exports them) archives, indexes and removes the files. Names come
from our own ids only, never caller text.
"""

from __future__ import annotations

import re
from datetime import datetime

from core.clock import CITY_TZ

_CALL_ID = re.compile(r"^[0-9a-f]{32}$")
LEGS = ("in", "out")
# spool and archive names we produce; anything else found there is a stray file
LEG_FILE = re.compile(r"^(?P<id>[0-9a-f]{32})-(?P<leg>in|out)\.wav$")
ARCHIVE_FILE = re.compile(r"^(?P<id>[0-9a-f]{32})\.wav$")
# the template's fail-open MixMonitor: recordings/failopen/<Asterisk's uniqueid>.wav
FAILOPEN_DIR = "failopen"


class RecordingFileError(Exception):
    pass


def relative_name(call_id: str, started: datetime) -> str:
    """`YYYY/MM/DD/<call id>.wav`, the folder the city's day (Tokyo) the call started on: the
    call id is our uuid4 hex, never caller text."""
    if not _CALL_ID.match(call_id):
        raise RecordingFileError(f"refusing unexpected call id {call_id!r} in a file name")
    return f"{started.astimezone(CITY_TZ):%Y/%m/%d}/{call_id}.wav"


def is_call_id(value: str) -> bool:
    return bool(_CALL_ID.match(value))


def leg_name(relative: str, leg: str) -> str:
    """`YYYY/MM/DD/<id>.wav` → `YYYY/MM/DD/<id>-<leg>.wav`."""
    if leg not in LEGS or not relative.endswith(".wav"):
        raise RecordingFileError(f"bad leg {leg!r} for {relative!r}")
    return f"{relative[:-4]}-{leg}.wav"


def mixmonitor_args(asterisk_dir: str, relative: str) -> str:
    """MixMonitor arguments for a call: no mixed file, the two legs, only while bridged (b).

    b: the recording is the conversation (answer to hang-up), not the IVR or hold music.
    r(): audio received from the caller's channel; t(): audio sent to it.
    """
    rx = f"{asterisk_dir}/{leg_name(relative, 'in')}"
    tx = f"{asterisk_dir}/{leg_name(relative, 'out')}"
    return f",br({rx})t({tx})"
