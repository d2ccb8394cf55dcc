"""Database tables: call records, recordings, the access audit log, deletion reports,
interaction records, satisfaction (survey answers, staff ratings) and callbacks (SQLAlchemy 2,
SQLite or PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.calls import Outcome


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
    wait_s: Mapped[float | None] = mapped_column(Float)  # queued → answered (or → end)
    talk_s: Mapped[float | None] = mapped_column(Float)  # answered → end
    # JSON list of {"from_agent", "to", "kind", "at"}: the hand-overs, in order
    transfers: Mapped[str] = mapped_column(Text, default="[]")
    # a callback's record names the inbound call that asked for it
    callback_of: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        Index("ix_calls_offered_at", "offered_at"),
        Index("ix_calls_service_offered", "service", "offered_at"),
    )


class Recording(Base):
    """One recording per answered call. The search columns are copied from the call so that
    every common search is answered from this table and its own indexes."""

    __tablename__ = "recordings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), unique=True)
    service: Mapped[str] = mapped_column(String(32))
    did: Mapped[str] = mapped_column(String(16), default="")
    caller: Mapped[str] = mapped_column(String(32))
    language: Mapped[str | None] = mapped_column(String(8))
    queue: Mapped[str | None] = mapped_column(String(32))
    agent_id: Mapped[str | None] = mapped_column(String(16))  # the operator who answered
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())  # offered to us
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime] = mapped_column(UtcDateTime())
    duration_s: Mapped[float] = mapped_column(Float)  # length of the audio
    wait_s: Mapped[float | None] = mapped_column(Float)
    talk_s: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(String(24), default=Outcome.ANSWERED.value)
    file: Mapped[str] = mapped_column(String(255))  # relative to the archive folder
    channels: Mapped[int] = mapped_column(Integer, default=2)  # 2: caller left, other right
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    # ok | missing (file gone) | mismatch (file present, checksum differs): set by the reconciler
    status: Mapped[str] = mapped_column(String(16), default="ok")

    __table_args__ = (
        Index("ix_recordings_started", "started_at"),
        Index("ix_recordings_caller_started", "caller", "started_at"),
        Index("ix_recordings_service_started", "service", "started_at"),
        Index("ix_recordings_outcome_started", "outcome", "started_at"),
        Index("ix_recordings_duration", "duration_s"),
    )


class RecordingAgent(Base):
    """Every operator who spoke on a recorded call (more than one after transfers)."""

    __tablename__ = "recording_agents"

    recording_id: Mapped[int] = mapped_column(
        ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())  # copied for ordered search

    __table_args__ = (Index("ix_recording_agents_agent_started", "agent_id", "started_at"),)


class AuditEntry(Base):
    """Who touched personal data, when, from where. Rows outlive the recordings they name
    (no foreign key): a purge must not erase the trace of who listened before."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    actor: Mapped[str] = mapped_column(String(64))  # "api-token" until users exist
    user_id: Mapped[str | None] = mapped_column(String(64))  # filled in once users exist
    client: Mapped[str] = mapped_column(String(64))  # remote address
    action: Mapped[str] = mapped_column(String(24))  # search | play | download | peaks | …
    recording_id: Mapped[int | None] = mapped_column(Integer)
    call_id: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")  # query or byte range

    __table_args__ = (
        Index("ix_audit_at", "at"),
        Index("ix_audit_recording", "recording_id"),
    )


class DeletionReport(Base):
    """One row per purge or erase; the full list (ids, files, checksums) is in the report
    file named here. Holds counts and checksums only, no caller data, so it is kept."""

    __tablename__ = "deletion_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    kind: Mapped[str] = mapped_column(String(16))  # retention | erase
    actor: Mapped[str] = mapped_column(String(64))
    cutoff: Mapped[datetime | None] = mapped_column(UtcDateTime())
    calls: Mapped[int] = mapped_column(Integer)
    recordings: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(BigInteger)
    report_file: Mapped[str] = mapped_column(String(255))
    report_sha256: Mapped[str] = mapped_column(String(64))


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


class InteractionRecord(Base):
    """The operator's interaction record (応対記録) for an answered call: what it was about and
    how it ended. `outcome_class` feeds the first-contact resolution KPI (kpi.formulas)."""

    __tablename__ = "interactions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # no foreign key: the operator may write while the call is still live (row not yet stored)
    call_id: Mapped[str] = mapped_column(String(32), unique=True)
    agent_id: Mapped[str | None] = mapped_column(String(16))
    service: Mapped[str] = mapped_column(String(32))
    topic: Mapped[str] = mapped_column(String(64))
    outcome_class: Mapped[str] = mapped_column(String(8))  # kpi.formulas.OutcomeClass
    other_kind: Mapped[str | None] = mapped_column(String(16))  # only for その他
    text: Mapped[str] = mapped_column(Text, default="")
    faq_refs: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of FAQ ids
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    call_offered_at: Mapped[datetime] = mapped_column(UtcDateTime())  # copied for period queries
    # phone | fax: a FAX's record names the FAX in call_id; the phone KPIs count phone only
    channel: Mapped[str] = mapped_column(String(8), default="phone", server_default="phone")

    __table_args__ = (Index("ix_interactions_offered", "call_offered_at"),)


class SurveyAnswer(Base):
    """One question of the post-call survey for one call: the key the caller pressed (1-5),
    or none. Personal data by its call: exported, purged and erased with the calls."""

    __tablename__ = "survey_answers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # no foreign key: the caller answers before the call's row is stored (at the hang-up)
    call_id: Mapped[str] = mapped_column(String(32))
    agent_id: Mapped[str | None] = mapped_column(String(16))  # the operator who answered
    service: Mapped[str] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(8))
    question: Mapped[str] = mapped_column(String(32))  # its id in config/survey.yaml
    position: Mapped[int] = mapped_column(Integer)  # 1 for the first question asked
    answer: Mapped[int | None] = mapped_column(Integer)  # 1-5; None: no key, or wrong keys
    answered_at: Mapped[datetime] = mapped_column(UtcDateTime())
    call_offered_at: Mapped[datetime] = mapped_column(UtcDateTime())  # copied for periods

    __table_args__ = (
        UniqueConstraint("call_id", "question", name="uq_survey_answers_call_question"),
        Index("ix_survey_answers_offered", "call_offered_at"),
    )


class StaffRating(Base):
    """A city staff member's monthly rating of the service (職員満足度), 0-100 points, with
    a comment; one per rater and month (a new one replaces it)."""

    __tablename__ = "staff_ratings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM, the city's month rated
    points: Mapped[float] = mapped_column(Float)  # 0-100
    given: Mapped[int] = mapped_column(Integer)  # the rating as given, on its scale
    scale: Mapped[int] = mapped_column(Integer)  # 5 (1-5) or 100 (0-100)
    comment: Mapped[str] = mapped_column(Text, default="")
    rater: Mapped[str] = mapped_column(String(64))  # the console user (or api-token)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        UniqueConstraint("month", "rater", name="uq_staff_ratings_month_rater"),
        Index("ix_staff_ratings_month", "month"),
    )


# states of a callback that still holds a place (one per number: the partial unique index)
OPEN_CALLBACK_STATES = ("pending", "dialing")


class CallbackRow(Base):
    """A caller's request to be called back, keeping their place (acd/callbacks.py). Stored
    so pending callbacks outlive a restart. Personal data (the number): purged, exported and
    erased with the calls."""

    __tablename__ = "callbacks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    call_id: Mapped[str] = mapped_column(String(32))  # the inbound call that asked
    service: Mapped[str] = mapped_column(String(32))
    queue: Mapped[str] = mapped_column(String(32))
    number: Mapped[str] = mapped_column(String(32))  # an allowed number (core/transfers.py)
    language: Mapped[str | None] = mapped_column(String(8))
    topic: Mapped[str | None] = mapped_column(String(32))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    queued_at: Mapped[datetime] = mapped_column(UtcDateTime())  # the caller's place in line
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime())
    state: Mapped[str] = mapped_column(String(16))  # acd.callbacks.CallbackState
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # citizen dialled this often
    not_before: Mapped[datetime | None] = mapped_column(UtcDateTime())  # next try
    last_status: Mapped[str] = mapped_column(String(16), default="")  # Dial's DIALSTATUS
    agent_id: Mapped[str | None] = mapped_column(String(16))  # who made the last attempt
    result_call_id: Mapped[str | None] = mapped_column(String(32))  # the answered callback
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index("ix_callbacks_requested", "requested_at"),
        Index("ix_callbacks_state", "state"),
        Index("uq_callbacks_open_number", "number", unique=True,
              sqlite_where=state.in_(OPEN_CALLBACK_STATES),
              postgresql_where=state.in_(OPEN_CALLBACK_STATES)),
    )
