"""Sans-IO codec for the Asterisk Gateway Interface wire format.

Nothing here touches sockets or event loops: callers feed received bytes in and
pull parsed objects out, so every framing corner case can be tested by feeding
bytes one at a time.

Wire format reminders (as implemented by Asterisk's res_agi):

* the header is ``key: value`` lines ended by an empty line;
* every command is one line and gets one reply line ``<code> <text>``, except
  a 520 with usage text, which is ``520-...`` then usage lines then ``520 ...``;
* a bare ``HANGUP`` line may arrive between replies when the channel hangs up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .agi_errors import AgiProtocolError

__all__ = [
    "DEFAULT_MAX_HEADER_SIZE",
    "DEFAULT_MAX_REPLY_SIZE",
    "MAX_COMMAND_LINE",
    "AgiHeaderParser",
    "AgiReply",
    "AgiReplyParser",
    "Hangup",
    "format_command",
]

DEFAULT_MAX_HEADER_SIZE = 16 * 1024
# Generous because GET VARIABLE may return a long value, yet bounded so a
# misbehaving peer cannot make us buffer without limit.
DEFAULT_MAX_REPLY_SIZE = 1024 * 1024
# res_agi reads commands with fgets() into an 8192-byte buffer; a longer line
# is split and its tail executed as a separate command, so never send one.
MAX_COMMAND_LINE = 8191

_HEADER_KEY = re.compile(r"[A-Za-z0-9_]+")
_COMMAND_WORDS = re.compile(r"[A-Za-z]+(?: [A-Za-z]+)*")
_REPLY_LINE = re.compile(r"(\d{3})(?: (.*))?", re.DOTALL)
_RESULT = re.compile(r"result=(\S*)(.*)", re.DOTALL)
# Greedy data so a value that itself contains ")" stays whole; only trailing
# key=value tokens (endpos=...) are split off.
_DATA_AND_TAIL = re.compile(r"\((.*)\)((?:\s+[A-Za-z_]+=\S*)*)\s*", re.DOTALL)
_KEY_VALUE = re.compile(r"([A-Za-z_]+)=(\S*)")
_FORBIDDEN_IN_ARGS = ("\r", "\n", "\x00")


def _decode(raw: bytes) -> str:
    # Caller names and variables may be UTF-8 (or garbage); never fail on them.
    return raw.decode("utf-8", errors="replace")


class AgiHeaderParser:
    """Incremental parser for the ``agi_*`` environment Asterisk sends first."""

    def __init__(self, max_size: int = DEFAULT_MAX_HEADER_SIZE) -> None:
        self.max_size = max_size
        self.env: dict[str, str] = {}
        self.complete = False
        self.leftover = b""
        self._buffer = bytearray()
        self._consumed = 0

    def feed(self, data: bytes) -> None:
        if self.complete:
            self.leftover += data
            return
        self._buffer += data
        while not self.complete:
            newline = self._buffer.find(b"\n")
            if newline < 0:
                break
            line = bytes(self._buffer[:newline])
            del self._buffer[: newline + 1]
            self._consumed += newline + 1
            self._check_size(0)
            self._parse_line(line)
        if self.complete:
            self.leftover = bytes(self._buffer)
            self._buffer.clear()
        else:
            # A peer that never sends a newline must hit the limit too.
            self._check_size(len(self._buffer))

    def _check_size(self, pending: int) -> None:
        if self._consumed + pending > self.max_size:
            raise AgiProtocolError(f"AGI header exceeds {self.max_size} bytes")

    def _parse_line(self, raw: bytes) -> None:
        line = _decode(raw.removesuffix(b"\r"))
        if not line:
            self.complete = True
            return
        key, sep, value = line.partition(":")
        key = key.strip()
        if not sep or not _HEADER_KEY.fullmatch(key):
            raise AgiProtocolError(f"malformed AGI header line: {line[:80]!r}")
        if key in self.env:
            # Asterisk never repeats a key; a repeat means injected or corrupt input.
            raise AgiProtocolError(f"duplicate AGI header key: {key}")
        self.env[key] = value.removeprefix(" ")


@dataclass(frozen=True)
class AgiReply:
    """One reply from Asterisk.

    ``data`` is the parenthesised part of a 200 reply (``(timeout)``, a
    variable's value) or the usage text of a multi-line 520.
    """

    code: int
    result: str
    data: str | None
    endpos: int | None
    raw: str

    @property
    def result_int(self) -> int | None:
        try:
            return int(self.result)
        except ValueError:
            return None


@dataclass(frozen=True)
class Hangup:
    """The bare ``HANGUP`` line Asterisk sends when the channel goes away."""


class AgiReplyParser:
    """Incremental parser for replies; yields one event per reply or HANGUP line."""

    def __init__(self, max_size: int = DEFAULT_MAX_REPLY_SIZE) -> None:
        self.max_size = max_size
        self._buffer = bytearray()
        # Bytes already known to hold no newline: avoids rescanning a long
        # partial line on every small feed.
        self._scanned = 0
        self._usage: list[str] | None = None
        self._usage_size = 0

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_event(self) -> AgiReply | Hangup | None:
        while True:
            newline = self._buffer.find(b"\n", self._scanned)
            if newline < 0:
                self._scanned = len(self._buffer)
                if len(self._buffer) + self._usage_size > self.max_size:
                    raise AgiProtocolError(f"AGI reply exceeds {self.max_size} bytes")
                return None
            line = _decode(bytes(self._buffer[:newline]).removesuffix(b"\r"))
            del self._buffer[: newline + 1]
            self._scanned = 0
            event = self._parse_line(line, newline + 1)
            if event is not None:
                return event

    def _parse_line(self, line: str, size: int) -> AgiReply | Hangup | None:
        if self._usage is not None:
            return self._continue_usage(line, size)
        if line == "HANGUP":
            return Hangup()
        if not line:
            # Harmless stray newline; skipping it cannot desynchronise us.
            return None
        if line.startswith("520-"):
            self._usage = [line]
            self._usage_size = size
            return None
        match = _REPLY_LINE.fullmatch(line)
        if match is None:
            raise AgiProtocolError(f"malformed AGI reply: {line[:80]!r}")
        code = int(match.group(1))
        text = match.group(2) or ""
        if code == 200:
            return _parse_success(line, text)
        return AgiReply(code=code, result="", data=None, endpos=None, raw=line)

    def _continue_usage(self, line: str, size: int) -> AgiReply | None:
        assert self._usage is not None
        self._usage.append(line)
        self._usage_size += size
        if self._usage_size > self.max_size:
            raise AgiProtocolError(f"AGI reply exceeds {self.max_size} bytes")
        # Only "520 " (space) ends the block; usage text never starts that way.
        if not (line == "520" or line.startswith("520 ")):
            return None
        lines, self._usage, self._usage_size = self._usage, None, 0
        usage = "\n".join(lines[1:-1]).strip("\n")
        return AgiReply(code=520, result="", data=usage, endpos=None, raw="\n".join(lines))


def _parse_success(line: str, text: str) -> AgiReply:
    match = _RESULT.fullmatch(text)
    if match is None:
        raise AgiProtocolError(f"200 reply without result=: {line[:80]!r}")
    result = match.group(1)
    tail = match.group(2).strip()
    data: str | None = None
    if tail.startswith("("):
        split = _DATA_AND_TAIL.fullmatch(tail)
        if split is not None:
            data, tail = split.group(1), split.group(2)
    endpos: int | None = None
    for key, value in _KEY_VALUE.findall(tail):
        if key == "endpos":
            try:
                endpos = int(value)
            except ValueError:
                endpos = None
    return AgiReply(code=200, result=result, data=data, endpos=endpos, raw=line)


def _quote(arg: str) -> str:
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def format_command(*parts: str) -> bytes:
    """Encode one AGI command line.

    ``parts[0]`` is the command itself (``"STREAM FILE"``), sent as is after
    validation; every following part is an argument and is always quoted, so
    spaces or quotes in caller-controlled text cannot add or shift arguments.
    """
    if not parts:
        raise AgiProtocolError("empty AGI command")
    command, *args = parts
    if not _COMMAND_WORDS.fullmatch(command):
        raise AgiProtocolError(f"invalid AGI command name: {command[:40]!r}")
    for arg in args:
        if any(ch in arg for ch in _FORBIDDEN_IN_ARGS):
            # A newline would end the command early and let the rest of the
            # string run as a second command; NUL would truncate it in C.
            raise AgiProtocolError("AGI argument contains CR, LF or NUL")
    line = " ".join([command, *(_quote(arg) for arg in args)]).encode("utf-8") + b"\n"
    if len(line) > MAX_COMMAND_LINE:
        raise AgiProtocolError(f"AGI command line longer than {MAX_COMMAND_LINE} bytes")
    return line
