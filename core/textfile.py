"""Text that people edit (YAML configuration, CSV imports), decoded strictly.

Files come from admins' editors, spreadsheets and uploads. Before any parser sees them they
must be UTF-8 without control characters, so a stray byte is reported at its line and column
instead of surfacing later as a parser's crash or an odd prompt.
"""

from __future__ import annotations

import re

# C0 controls but tab and line feed, DEL, C1 controls, lone surrogates, non-characters, and
# the Unicode line separators (YAML counts them as line breaks, editors do not: the lines
# reported would be wrong). A carriage return is accepted only as part of CRLF.
_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\ufffe\uffff]"
                  "|\r(?!\n)")


class TextError(ValueError):
    """Unacceptable text; line and column are 1-based, the column counts characters."""

    def __init__(self, line: int, column: int, reason: str) -> None:
        self.line = line
        self.column = column
        self.reason = reason
        super().__init__(f"line {line}, column {column}: {reason}")


def position(text: str, index: int) -> tuple[int, int]:
    """(line, column) of the character at `index`."""
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def bad_character(text: str) -> tuple[int, str] | None:
    """(index, reason) of the first character no edited text may hold, or None."""
    m = _BAD.search(text)
    if m is None:
        return None
    if m.group() == "\r":
        return m.start(), "carriage return without a line feed (save with LF or CRLF line ends)"
    return m.start(), f"control character U+{ord(m.group()):04X} is not allowed"


def check(text: str) -> str:
    found = bad_character(text)
    if found is not None:
        index, reason = found
        raise TextError(*position(text, index), reason)
    return text


def decode(raw: bytes) -> str:
    """Strict UTF-8 (a leading BOM is dropped) without control characters, or TextError."""
    raw = raw.removeprefix(b"\xef\xbb\xbf")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # everything before the bad byte decodes: it gives the line and column
        before = raw[:exc.start].decode("utf-8")
        line, column = position(before, len(before))
        raise TextError(line, column, f"invalid UTF-8 (byte 0x{raw[exc.start]:02x})") from exc
    return check(text)
