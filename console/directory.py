"""The staff directory and the FAQ the operators search from their desk. Both are imported
whole from CSV files the city maintains (UTF-8, with or without BOM, header row required);
an import replaces the previous list in one transaction, so a search never sees half a file."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Integer, String, Text, delete, or_, select
from sqlalchemy.orm import Mapped, mapped_column

from store.db import Database
from store.models import Base

DIRECTORY_COLUMNS = ("section", "name", "extension", "note")
FAQ_COLUMNS = ("id", "question", "answer", "keywords")
MAX_ROWS = 20_000


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


def _rows(text: str, columns: Sequence[str]) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = [c for c in columns[:3] if c not in (reader.fieldnames or [])]
    if missing:
        raise CsvError(f"line 1: missing column(s) {', '.join(missing)}; "
                       f"expected {', '.join(columns)}")
    out: list[dict[str, str]] = []
    for row in reader:
        if len(out) >= MAX_ROWS:
            raise CsvError(f"more than {MAX_ROWS} rows")
        clean = {c: (row.get(c) or "").strip() for c in columns}
        if not any(clean.values()):
            continue
        for c in columns[:3]:
            if not clean[c]:
                raise CsvError(f"line {reader.line_num}: {c} is empty")
        out.append(clean)
    return out


class Directory:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def import_directory(self, text: str) -> Imported:
        rows = _rows(text, DIRECTORY_COLUMNS)
        for i, r in enumerate(rows, start=2):
            if not r["extension"].isdigit() or len(r["extension"]) > 15:
                raise CsvError(f"row {i}: extension must be digits, got {r['extension']!r}")
        async with self.db.sessions() as session, session.begin():
            await session.execute(delete(DirectoryEntry))
            session.add_all(DirectoryEntry(**r) for r in rows)
        return Imported(len(rows))

    async def import_faq(self, text: str) -> Imported:
        rows = _rows(text, FAQ_COLUMNS)
        ids = [r["id"] for r in rows]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise CsvError(f"FAQ id {dup!r} appears twice")
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
