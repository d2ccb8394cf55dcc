"""What the console's forms and search boxes send, checked and turned into typed values. A
refused form is a FormError (the page shows its message with its status); a refused search
is a 400 JSON answer like the rest of the API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from aiohttp.web import FileField

from core.clock import CITY_TZ
from core.errors import ascii_digits

from .directory import MAX_CSV_BYTES
from .errors import ConsoleError, FormError

Form = Mapping[str, object]  # request.post(): text fields and uploaded files
MAX_EXPORT_DAYS = 366
CSV_KINDS = ("directory", "faq")


def _text(form: Form, name: str) -> str:
    return str(form.get(name, ""))


def safe_next(raw: str | None) -> str | None:
    """Where to go after the login: only our own pages, never an open redirect."""
    if raw and raw.startswith("/console/") and "//" not in raw and "\\" not in raw:
        return raw
    return None


def printable(text: str) -> str:
    """A typed name as it lands in the audit log: no NUL (PostgreSQL refuses it) nor line
    breaks."""
    return "".join(c if c.isprintable() else "?" for c in text)


@dataclass(frozen=True)
class Login:
    name: str
    password: str
    csrf: str  # the login form's token, compared with its cookie
    next: str | None  # a console page to go to after the login

    @property
    def audit_name(self) -> str:
        """The name as typed, for the audit of a refused login."""
        return printable(self.name[:64]) or "?"


def login(form: Form) -> Login:
    """POST /console/login."""
    return Login(_text(form, "name"), _text(form, "password"), _text(form, "csrf"),
                 safe_next(_text(form, "next")))


def desk_agent(raw: str) -> str:
    """The operator whose desk is shown: an extension, else none."""
    return raw if ascii_digits(raw) and len(raw) <= 16 else ""


@dataclass(frozen=True)
class NewUser:
    """The fields as typed; the user store checks them (UserError) against its rules."""

    name: str
    role: str
    password: str
    agent_id: str | None  # an operator's extension


def new_user(form: Form) -> NewUser:
    """POST /console/admin/users."""
    return NewUser(_text(form, "name"), _text(form, "role"), _text(form, "password"),
                   _text(form, "agent_id") or None)


@dataclass(frozen=True)
class UserChange:
    action: str  # "role", "disable" or "enable"
    role: str  # with "role" only
    agent_id: str | None  # with "role" only


def user_change(form: Form) -> UserChange:
    """POST /console/admin/users/{name}."""
    action = _text(form, "action")
    if action not in ("role", "disable", "enable"):
        raise FormError("choose a role change, disable or enable")
    return UserChange(action, _text(form, "role"), _text(form, "agent_id").strip() or None)


def retention_days(form: Form) -> int:
    """POST /console/admin/retention: a whole number; the recordings feature says whether
    it is allowed (a minimum, a maximum)."""
    raw = _text(form, "days").strip()
    if not ascii_digits(raw.removeprefix("-")) or len(raw) > 6:
        raise FormError("retention days must be a whole number")
    return int(raw)


@dataclass(frozen=True)
class ExportRange:
    first: date
    last: date  # inclusive

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), CITY_TZ)

    @property
    def end(self) -> datetime:
        """The exclusive end: midnight after the last day, in the city."""
        return datetime.combine(self.last + timedelta(days=1), time(), CITY_TZ)


def export_range(form: Form) -> ExportRange:
    """POST /console/admin/export: the first and last day, at most MAX_EXPORT_DAYS."""
    try:
        first = date.fromisoformat(_text(form, "from"))
        last = date.fromisoformat(_text(form, "to"))
    except ValueError as exc:
        raise FormError("choose the first and last day (YYYY-MM-DD)") from exc
    if last < first or (last - first).days >= MAX_EXPORT_DAYS:
        raise FormError(f"the last day must be on or after the first, at most "
                        f"{MAX_EXPORT_DAYS} days")
    return ExportRange(first, last)


@dataclass(frozen=True)
class CsvUpload:
    kind: str  # one of CSV_KINDS
    field: FileField  # the uploaded file: name and contents


def csv_upload(form: Form) -> CsvUpload:
    """POST /console/admin/import: which list, and its CSV file."""
    kind, upload = form.get("kind"), form.get("file")
    if not isinstance(kind, str) or kind not in CSV_KINDS or not isinstance(upload, FileField):
        raise FormError("choose directory or faq and a CSV file")
    return CsvUpload(kind, upload)


def csv_size(raw: bytes) -> bytes:
    """The uploaded CSV, read up to one byte over the limit."""
    if len(raw) > MAX_CSV_BYTES:
        raise FormError(f"the CSV is over {MAX_CSV_BYTES // (1024 * 1024)} MiB", status=413)
    return raw


def search_text(query: Mapping[str, str]) -> str:
    """?q= of the directory and FAQ searches."""
    q = query.get("q", "").strip()
    if not q or len(q) > 64:
        raise ConsoleError("q must be 1-64 characters", error_id="bad_parameter")
    return q


def audit_limit(query: Mapping[str, str]) -> int:
    """?limit= of the admin page's audit list: 1-200 rows, 30 when not given."""
    raw = query.get("limit", "30")
    if not ascii_digits(raw) or len(raw) > 3 or not 1 <= int(raw) <= 200:
        raise ConsoleError("limit must be a whole number 1..200", error_id="bad_parameter")
    return int(raw)
