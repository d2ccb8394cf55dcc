"""The staff directory and the FAQ the operators search from their desk. Both are imported
whole from CSV files the city maintains (UTF-8, with or without BOM, header row required);
an import replaces the previous list in one transaction, so a search never sees half a file.
Whatever the bytes, an import either succeeds or raises CsvError naming the line."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Integer, String, Text, delete, or_, select
from sqlalchemy.orm import Mapped, mapped_column

from core.textfile import TextError, check, decode
from store.db import Database
from store.models import Base

DIRECTORY_COLUMNS = ("section", "name", "extension", "note")
FAQ_COLUMNS = ("id", "question", "answer", "keywords")
MAX_ROWS = 20_000
# characters per field: the columns' sizes, and a page's worth for the free texts
MAX_FIELD = {"section": 128, "name": 128, "extension": 16, "note": 2000,
             "id": 64, "question": 4000, "answer": 4000, "keywords": 1000}
MAX_CSV_BYTES = 8 * 1024 * 1024  # one uploaded or imported file; the web app's body limit follows


class DirectoryEntry(Base):
    __tablename__ = "console_directory"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    section: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(128))
    extension: Mapped[str] = mapped_column(String(16))  # a city-hall extension to transfer to
    note: Mapped[str] = mapped_column(Text, default="")


class FaqEntry(Base):
    __tablename__ = "console_faq"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # cited by interaction records
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    keywords: Mapped[str] = mapped_column(Text, default="")


class CsvError(ValueError):
    """A CSV that cannot be imported; the message names the line."""


@dataclass(frozen=True)
class Imported:
    rows: int


def csv_text(data: str | bytes) -> str:
    """An uploaded or imported CSV as text: strict UTF-8 (with or without BOM) and no
    control characters but tab and line ends."""
    try:
        return decode(data) if isinstance(data, bytes) else check(data.removeprefix("\ufeff"))
    except TextError as exc:
        raise CsvError(str(exc)) from exc


def _rows(data: str | bytes, columns: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """(line, row) for every non-blank row; the line is where the row ends in the file."""
    reader = csv.DictReader(io.StringIO(csv_text(data)))
    out: list[tuple[int, dict[str, str]]] = []
    try:
        missing = [c for c in columns[:3] if c not in (reader.fieldnames or [])]
        if missing:
            raise CsvError(f"line 1: missing column(s) {', '.join(missing)}; "
                           f"expected {', '.join(columns)}")
        for row in reader:
            if len(out) >= MAX_ROWS:
                raise CsvError(f"line {reader.line_num}: more than {MAX_ROWS} rows")
            clean = {c: (row.get(c) or "").strip() for c in columns}
            if not any(clean.values()):
                continue
            for c in columns:
                if c in columns[:3] and not clean[c]:
                    raise CsvError(f"line {reader.line_num}: {c} is empty")
                if len(clean[c]) > MAX_FIELD[c]:
                    raise CsvError(f"line {reader.line_num}: {c} is longer than "
                                   f"{MAX_FIELD[c]} characters")
            out.append((reader.line_num, clean))
    except csv.Error as exc:  # e.g. a field over the csv module's own size limit
        # the inner reader's count: DictReader's own is updated only after a good row
        raise CsvError(f"line {reader.reader.line_num}: {exc}") from exc
    return out


def directory_rows(data: str | bytes) -> list[dict[str, str]]:
    """The staff directory's rows, validated; raises CsvError."""
    rows = _rows(data, DIRECTORY_COLUMNS)
    for line, r in rows:
        ext = r["extension"]
        if not (ext.isascii() and ext.isdigit()) or len(ext) > 15:
            raise CsvError(f"line {line}: extension must be digits, got {ext!r}")
    return [r for _, r in rows]


def faq_rows(data: str | bytes) -> list[dict[str, str]]:
    """The FAQ's rows, validated; raises CsvError."""
    rows = _rows(data, FAQ_COLUMNS)
    seen: set[str] = set()
    for line, r in rows:
        if r["id"] in seen:
            raise CsvError(f"line {line}: FAQ id {r['id']!r} appears twice")
        seen.add(r["id"])
    return [r for _, r in rows]


class Directory:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def import_directory(self, data: str | bytes) -> Imported:
        # up to MAX_CSV_BYTES to decode, check and split: not on the event loop
        rows = await asyncio.to_thread(directory_rows, data)
        async with self.db.sessions() as session, session.begin():
            await session.execute(delete(DirectoryEntry))
            session.add_all(DirectoryEntry(**r) for r in rows)
        return Imported(len(rows))

    async def import_faq(self, data: str | bytes) -> Imported:
        rows = await asyncio.to_thread(faq_rows, data)
        async with self.db.sessions() as session, session.begin():
            await session.execute(delete(FaqEntry))
            session.add_all(FaqEntry(**r) for r in rows)
        return Imported(len(rows))

    async def search_directory(self, q: str, limit: int = 20) -> list[DirectoryEntry]:
        like = f"%{_escape(q)}%"
        stmt = select(DirectoryEntry).where(or_(
            DirectoryEntry.name.like(like, escape="\\"),
            DirectoryEntry.section.like(like, escape="\\"),
            DirectoryEntry.extension.like(like, escape="\\"),
            DirectoryEntry.note.like(like, escape="\\"))).order_by(
            DirectoryEntry.section, DirectoryEntry.name).limit(limit)
        async with self.db.sessions() as session:
            return list((await session.scalars(stmt)).all())

    async def search_faq(self, q: str, limit: int = 20) -> list[FaqEntry]:
        like = f"%{_escape(q)}%"
        stmt = select(FaqEntry).where(or_(
            FaqEntry.question.like(like, escape="\\"), FaqEntry.answer.like(like, escape="\\"),
            FaqEntry.keywords.like(like, escape="\\"), FaqEntry.id == q)).order_by(
            FaqEntry.id).limit(limit)
        async with self.db.sessions() as session:
            return list((await session.scalars(stmt)).all())


def _escape(q: str) -> str:
    # the user's text is matched literally: % and _ are not wildcards here
    return q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
