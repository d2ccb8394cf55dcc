"""Database tables: call records and recordings (SQLAlchemy 2, SQLite or PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, Float, ForeignKey, Index, Integer, String, Text, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UtcDateTime(TypeDecorator[datetime]):
    """Stores UTC, returns aware datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: use aware UTC datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class CallRecord(Base):
    __tablename__ = "calls"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    asterisk_uniqueid: Mapped[str] = mapped_column(String(64))
    service: Mapped[str] = mapped_column(String(32))
    did: Mapped[str] = mapped_column(String(16))
    caller: Mapped[str] = mapped_column(String(32))
    language: Mapped[str | None] = mapped_column(String(8))
    flow_path: Mapped[str] = mapped_column(Text, default="")
    flow_version: Mapped[str | None] = mapped_column(String(32))  # IVR flow set used
    topic: Mapped[str | None] = mapped_column(String(32))  # set by the IVR's queue node
    queue: Mapped[str | None] = mapped_column(String(32))
    agent_id: Mapped[str | None] = mapped_column(String(16))
    offered_at: Mapped[datetime] = mapped_column(UtcDateTime())
    queued_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ring_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime] = mapped_column(UtcDateTime())
    outcome: Mapped[str] = mapped_column(String(24))

    __table_args__ = (
        Index("ix_calls_offered_at", "offered_at"),
        Index("ix_calls_service_offered", "service", "offered_at"),
    )


class Recording(Base):
    __tablename__ = "recordings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), unique=True)
    # denormalised from the call so the common searches need one index, no join
    service: Mapped[str] = mapped_column(String(32))
    caller: Mapped[str] = mapped_column(String(32))
    agent_id: Mapped[str | None] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime] = mapped_column(UtcDateTime())
    duration_s: Mapped[float] = mapped_column(Float)
    file: Mapped[str] = mapped_column(String(255))  # relative to the recordings folder
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_recordings_started", "started_at"),
        Index("ix_recordings_agent_started", "agent_id", "started_at"),
        Index("ix_recordings_caller", "caller"),
        Index("ix_recordings_service_started", "service", "started_at"),
    )


class AgentStateChange(Base):
    """Every operator state change, for reports, the wallboard and restoring after restart."""

    __tablename__ = "agent_state_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent_id: Mapped[str] = mapped_column(String(16))
    event: Mapped[str] = mapped_column(String(16))
    old_state: Mapped[str] = mapped_column(String(16))
    new_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_agent_state_agent_at", "agent_id", "at"),)
