"""The FAX tables: receptions found in the spool and FAXes sent from the console. Personal
data like the calls: exported, purged and erased by the same rules."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, UtcDateTime


class FaxReceived(Base):
    """One reception (ok, failed or partial): the PDF made from its TIFF, or the TIFF itself
    when no PDF could be made, or no file at all when nothing usable arrived."""

    __tablename__ = "fax_received"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # our id, 32 hex
    # the spool name (Asterisk's unique id): a second pass finds it and indexes nothing
    source: Mapped[str] = mapped_column(String(64), unique=True)
    did: Mapped[str] = mapped_column(String(16), default="")
    caller: Mapped[str] = mapped_column(String(32), default="")
    remote_station: Mapped[str] = mapped_column(String(32), default="")
    pages: Mapped[int] = mapped_column(Integer, default=0)
    resolution: Mapped[str] = mapped_column(String(16), default="")  # standard | fine | ""
    result: Mapped[str] = mapped_column(String(8))  # ok | failed | partial
    error: Mapped[str] = mapped_column(String(64), default="")
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime] = mapped_column(UtcDateTime())
    indexed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    file: Mapped[str | None] = mapped_column(String(255))  # relative to the archive folder
    file_type: Mapped[str | None] = mapped_column(String(8))  # pdf | tiff
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16), default="new")  # new | in_progress | done
    status_by: Mapped[str | None] = mapped_column(String(64))  # who took it / finished it
    status_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index("ix_fax_received_started", "started_at"),
        Index("ix_fax_received_caller_started", "caller", "started_at"),
        Index("ix_fax_received_status_started", "status", "started_at"),
    )


class FaxSent(Base):
    """One FAX sent from the console: the PDF kept with it, its attempts and result."""

    __tablename__ = "fax_sent"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the job id, 32 hex
    number: Mapped[str] = mapped_column(String(16))  # digits, allowed by the transfer rules
    actor: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    pages: Mapped[int] = mapped_column(Integer)  # of the PDF
    file: Mapped[str] = mapped_column(String(255))  # the PDF, relative to the archive folder
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(12))  # queued | sending | retry | ok | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    pages_sent: Mapped[int | None] = mapped_column(Integer)
    result: Mapped[str] = mapped_column(Text, default="")  # last attempt: status, error, cause
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index("ix_fax_sent_created", "created_at"),
        Index("ix_fax_sent_state", "state"),
    )
