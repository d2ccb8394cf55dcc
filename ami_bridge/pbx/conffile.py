"""Asterisk configuration text, written only through checked sections and dialplan lines.

Values reach the generated files from config/, state/secrets.json and the state path. In an
Asterisk .conf file a line break starts a new option, section or extension and `;` starts a
comment, so one such character in a value could cut it short or add configuration; in a
dialplan line an unbalanced bracket ends an application's arguments, a ${...} or a $[...]
early, so keys, values and dialplan lines must have their brackets balanced too. Every
section name, key, value and comment passes through here and a refused one raises
ConfWriteError naming the file, section, key and character (never the value: it may be a
secret). Values inside dialplan application arguments must also match a strict pattern for
their kind, because `,`, `(`, `)`, `$` and spaces have a meaning there.

Pure text in and out: confgen.py decides what goes where and writes the files.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from core.yamlconf import ConfigError


@dataclass(frozen=True)
class Place:
    """Where a value goes: a file, and in it a section (or dialplan context) and a key."""

    file: str
    section: str | None = None
    key: str | None = None

    def __str__(self) -> str:
        parts = [_shown(self.file)]
        if self.section is not None:
            parts.append(f"[{_shown(self.section)}]")
        if self.key is not None:
            parts.append(_shown(self.key))
        return " ".join(parts)


def _shown(text: str) -> str:
    """A name as it can be printed on one line: quoted and escaped if it is not plain."""
    return text if text.isprintable() and text.strip() == text else repr(text)


class ConfWriteError(ConfigError):
    """A value that would change the meaning of a generated Asterisk file; a ConfigError, so
    the command line prints it as one line and exits 2."""

    def __init__(self, place: Place, reason: str) -> None:
        self.place = place
        super().__init__(None, f"cannot write {place}: {reason}")


# Cc: control characters (NUL, CR, LF, DEL, C1), Cf: invisible format characters, Cs: lone
# surrogates (not encodable as UTF-8), Zl/Zp: Unicode line and paragraph separators
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_SECTION_CHARS = re.compile(r"[A-Za-z0-9_.@+-]")
# option names are ours; the parentheses and commas are manager.conf's eventfilter(...) keys
_KEY_CHARS = re.compile(r"[A-Za-z0-9_.(),/-]")
_CONTROL_NAMES = {"\n": "line feed", "\r": "carriage return", "\x00": "NUL", "\t": "tab"}
SEPARATORS = (" = ", " => ", "=")  # exactly as written; Asterisk reads `=` and `=>` alike


def describe(ch: str) -> str:
    """A character as a reader can find it: its code point and name."""
    # control characters have no name in the Unicode database
    name = unicodedata.name(ch, "").lower() or _CONTROL_NAMES.get(ch, "a control character")
    return f"U+{ord(ch):04X} ({name})"


def _refuse(place: Place, what: str, text: str, i: int, why: str = "") -> ConfWriteError:
    return ConfWriteError(place, f"the {what} contains {describe(text[i])} at character {i + 1}"
                          + (f"; {why}" if why else ""))


def _check_text(place: Place, what: str, text: str, comment: bool = False) -> None:
    """No line break or other invisible character; no `;` unless this is a comment."""
    for i, ch in enumerate(text):
        if unicodedata.category(ch) in _UNSAFE_CATEGORIES:
            raise _refuse(place, what, text, i)
        if ch == ";" and not comment:
            raise _refuse(place, what, text, i, "';' starts a comment in Asterisk "
                          "configuration")


_CLOSING = {")": "(", "]": "[", "}": "{"}
_BALANCE = "brackets ( ) [ ] { } must be balanced"


def _check_brackets(place: Place, what: str, text: str) -> None:
    """Each (, [ and { closed by its own kind, innermost first."""
    opened: list[int] = []
    for i, ch in enumerate(text):
        if ch in "([{":
            opened.append(i)
        elif ch in _CLOSING:
            if not opened or text[opened[-1]] != _CLOSING[ch]:
                raise _refuse(place, what, text, i, _BALANCE)
            opened.pop()
    if opened:
        raise _refuse(place, what, text, opened[-1], f"it is never closed; {_BALANCE}")


def _check_chars(place: Place, what: str, text: str, allowed: re.Pattern[str],
                 shown: str) -> None:
    _check_text(place, what, text)
    if not text:
        raise ConfWriteError(place, f"the {what} is empty")
    for i, ch in enumerate(text):
        if not allowed.fullmatch(ch):
            raise _refuse(place, what, text, i, f"allowed: {shown}")


def _check_value(place: Place, value: str) -> None:
    _check_text(place, "value", value)
    _check_brackets(place, "value", value)
    if value != value.strip(" "):  # Asterisk drops them: a password would silently differ
        raise ConfWriteError(place, "the value starts or ends with a space")


@dataclass(frozen=True)
class Comment:
    """A `; text` line."""

    text: str


@dataclass(frozen=True)
class Option:
    """`key = value`; `op` is the separator exactly as written (see SEPARATORS)."""

    key: str
    value: str | int
    op: str = " = "


@dataclass(frozen=True)
class Section:
    """`[name]` with its options; `comments` are `;` lines just above the header."""

    name: str
    items: Sequence[Option | Comment] = ()
    comments: Sequence[str] = ()


def _comment_line(place: Place, text: str) -> str:
    _check_text(place, "comment", text, comment=True)
    return f"; {text}" if text else ";"


def _option_line(file: str, section: str, option: Option) -> str:
    place = Place(file, section, option.key)
    _check_chars(place, "key", option.key, _KEY_CHARS, "letters, digits and _ . ( ) , / -")
    _check_brackets(place, "key", option.key)
    if option.op not in SEPARATORS:
        raise ConfWriteError(place, f"unknown separator {option.op!r}")
    value = str(option.value)
    _check_value(place, value)
    return f"{option.key}{option.op}{value}" if value else f"{option.key}{option.op.rstrip()}"


def render(file: str, sections: Sequence[Section]) -> str:
    """The text of one configuration file; a blank line between sections."""
    lines: list[str] = []
    for section in sections:
        place = Place(file, section.name)
        _check_chars(place, "section name", section.name, _SECTION_CHARS,
                     "letters, digits and _ . @ + -")
        if lines:
            lines.append("")
        lines.extend(_comment_line(place, c) for c in section.comments)
        lines.append(f"[{section.name}]")
        for item in section.items:
            if isinstance(item, Comment):
                lines.append(_comment_line(place, item.text))
            else:
                lines.append(_option_line(file, section.name, item))
    return "".join(line + "\n" for line in lines)


# ---- dialplan --------------------------------------------------------------------------

@dataclass(frozen=True)
class Kind:
    """What a value in a dialplan line may look like: each character from `chars`, and the
    whole matching `whole` (when given)."""

    description: str
    chars: re.Pattern[str]
    shown: str
    whole: re.Pattern[str] | None = None


ID = Kind("an id", re.compile(r"[A-Za-z0-9_-]"), "letters, digits, _ and -")
DIGITS = Kind("digits", re.compile(r"[0-9]"), "digits 0-9")
ADDRESS = Kind("a host or address", re.compile(r"[A-Za-z0-9.:-]"),
               "letters, digits, . : and -")
PATH = Kind("an absolute path without spaces", re.compile(r"[A-Za-z0-9._/+-]"),
            "letters, digits and . _ / + -", re.compile(r"/.*"))


def dialplan_value(place: Place, kind: Kind, value: str) -> str:
    """`value` if it is a `kind` with nothing that means anything in a dialplan line."""
    _check_chars(place, "value", value, kind.chars, kind.shown)
    if kind.whole is not None and not kind.whole.fullmatch(value):
        raise ConfWriteError(place, f"the value must be {kind.description}")
    return value


@dataclass(frozen=True)
class Field:
    """A value from outside the code for a dialplan line or template: its kind, and what it
    is called in an error (the template field's name when it fills one)."""

    kind: Kind
    value: str
    name: str = ""

    def checked(self, place: Place) -> str:
        return dialplan_value(Place(place.file, place.section, self.name or place.key),
                              self.kind, self.value)


@dataclass(frozen=True)
class DialplanLine:
    """One `exten =>` or ` same =>` line, made only by exten() and same()."""

    text: str


_APP = re.compile(r"[A-Z][A-Za-z]*")
_PRIORITY = re.compile(r"[0-9]+|n")


def _line(place: Place, head: str, priority: str, app: str,
          args: Sequence[str | Field]) -> DialplanLine:
    if not _APP.fullmatch(app):
        raise ConfWriteError(place, f"{app!r} is not an application name")
    if not _PRIORITY.fullmatch(priority):
        raise ConfWriteError(place, f"{priority!r} is not a priority")
    # plain strings are the code's own text; each Field is checked for its kind
    text = "".join(a.checked(place) if isinstance(a, Field) else a for a in args)
    _check_text(place, "dialplan line", text)
    _check_brackets(place, "dialplan line", text)
    return DialplanLine(f"{head}{priority},{app}({text})")


def exten(place: Place, extension: Field, priority: str, app: str,
          *args: str | Field) -> DialplanLine:
    """`exten => extension,priority,App(args…)`, the arguments joined as given."""
    return _line(place, f"exten => {extension.checked(place)},", priority, app, args)


def same(place: Place, app: str, *args: str | Field, priority: str = "n") -> DialplanLine:
    """` same => n,App(args…)`."""
    return _line(place, " same => ", priority, app, args)


_FIELD = re.compile(r"\{\{([A-Za-z0-9_]*)\}\}")


def fill(file: str, template: str, fields: Mapping[str, Field | Sequence[DialplanLine]]) -> str:
    """The template with each `{{name}}` replaced in one pass: a Field after its kind check,
    a list of dialplan lines joined by line breaks. A field without a value is refused."""
    values = {name: (field.checked(Place(file, None, "{{" + name + "}}"))
                     if isinstance(field, Field) else "\n".join(line.text for line in field))
              for name, field in fields.items()}

    def replace(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        if value is None:
            raise ConfWriteError(Place(file, None, match.group(0)),
                                 "the template field has no value")
        return value

    for number, line in enumerate(template.splitlines(), 1):
        if line.lstrip().startswith(";"):
            continue  # comment lines may mention {{...}} and say anything
        # a misspelt field would reach Asterisk as text
        if re.search(r"\{\{|\}\}", _FIELD.sub("", line)):
            raise ConfWriteError(Place(file), f"line {number} of the template has '{{{{' or "
                                 "'}}' outside a {{name}} field")
        _check_brackets(Place(file), f"template line {number}", line)
    return _FIELD.sub(replace, template)
