"""Baseline: the tables as the releases before migrations made them (create_all).

Such a database has these tables and no alembic_version: each table (and index) is created
only where it is missing, so adopting it keeps every row.

Revision ID: 0001
Revises:
Create Date: 2026-11-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)  # what the models' UtcDateTime is made of


def _table(name: str, *items: sa.schema.SchemaItem,
           indexes: tuple[tuple[str, list[str]], ...] = ()) -> None:
    """Create the table unless it exists, then whichever of its indexes it lacks."""
    inspector = sa.inspect(op.get_bind())
    present: set[str | None] = set()
    if inspector.has_table(name):
        present = {ix["name"] for ix in inspector.get_indexes(name)}
    else:
        op.create_table(name, *items)
    for index, columns in indexes:
        if index not in present:
            op.create_index(index, name, columns, unique=False)


def upgrade() -> None:
    _table("calls",
           sa.Column("id", sa.String(32), nullable=False),
           sa.Column("asterisk_uniqueid", sa.String(64), nullable=False),
           sa.Column("service", sa.String(32), nullable=False),
           sa.Column("did", sa.String(16), nullable=False),
           sa.Column("caller", sa.String(32), nullable=False),
           sa.Column("language", sa.String(8), nullable=True),
           sa.Column("flow_path", sa.Text(), nullable=False),
           sa.Column("flow_version", sa.String(32), nullable=True),
           sa.Column("topic", sa.String(32), nullable=True),
           sa.Column("queue", sa.String(32), nullable=True),
           sa.Column("agent_id", sa.String(16), nullable=True),
           sa.Column("offered_at", _when(), nullable=False),
           sa.Column("queued_at", _when(), nullable=True),
           sa.Column("ring_at", _when(), nullable=True),
           sa.Column("answered_at", _when(), nullable=True),
           sa.Column("ended_at", _when(), nullable=False),
           sa.Column("outcome", sa.String(24), nullable=False),
           sa.Column("wait_s", sa.Float(), nullable=True),
           sa.Column("talk_s", sa.Float(), nullable=True),
           sa.Column("transfers", sa.Text(), nullable=False),
           sa.PrimaryKeyConstraint("id"),
           indexes=(("ix_calls_offered_at", ["offered_at"]),
                    ("ix_calls_service_offered", ["service", "offered_at"])))
    _table("recordings",
           sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
           sa.Column("call_id", sa.String(32), nullable=False),
           sa.Column("service", sa.String(32), nullable=False),
           sa.Column("did", sa.String(16), nullable=False),
           sa.Column("caller", sa.String(32), nullable=False),
           sa.Column("language", sa.String(8), nullable=True),
           sa.Column("queue", sa.String(32), nullable=True),
           sa.Column("agent_id", sa.String(16), nullable=True),
           sa.Column("started_at", _when(), nullable=False),
           sa.Column("answered_at", _when(), nullable=True),
           sa.Column("ended_at", _when(), nullable=False),
           sa.Column("duration_s", sa.Float(), nullable=False),
           sa.Column("wait_s", sa.Float(), nullable=True),
           sa.Column("talk_s", sa.Float(), nullable=True),
           sa.Column("outcome", sa.String(24), nullable=False),
           sa.Column("file", sa.String(255), nullable=False),
           sa.Column("channels", sa.Integer(), nullable=False),
           sa.Column("size_bytes", sa.BigInteger(), nullable=False),
           sa.Column("sha256", sa.String(64), nullable=False),
           sa.Column("status", sa.String(16), nullable=False),
           sa.ForeignKeyConstraint(["call_id"], ["calls.id"]),
           sa.PrimaryKeyConstraint("id"),
           sa.UniqueConstraint("call_id"),
           indexes=(("ix_recordings_started", ["started_at"]),
                    ("ix_recordings_caller_started", ["caller", "started_at"]),
                    ("ix_recordings_service_started", ["service", "started_at"]),
                    ("ix_recordings_outcome_started", ["outcome", "started_at"]),
                    ("ix_recordings_duration", ["duration_s"])))
    _table("recording_agents",
           sa.Column("recording_id", sa.Integer(), nullable=False),
           sa.Column("agent_id", sa.String(16), nullable=False),
           sa.Column("started_at", _when(), nullable=False),
           sa.ForeignKeyConstraint(["recording_id"], ["recordings.id"], ondelete="CASCADE"),
           sa.PrimaryKeyConstraint("recording_id", "agent_id"),
           indexes=(("ix_recording_agents_agent_started", ["agent_id", "started_at"]),))
    _table("audit_log",
           sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
           sa.Column("at", _when(), nullable=False),
           sa.Column("actor", sa.String(64), nullable=False),
           sa.Column("user_id", sa.String(64), nullable=True),
           sa.Column("client", sa.String(64), nullable=False),
           sa.Column("action", sa.String(24), nullable=False),
           sa.Column("recording_id", sa.Integer(), nullable=True),
           sa.Column("call_id", sa.String(32), nullable=True),
           sa.Column("detail", sa.Text(), nullable=False),
           sa.PrimaryKeyConstraint("id"),
           indexes=(("ix_audit_at", ["at"]), ("ix_audit_recording", ["recording_id"])))
    _table("deletion_reports",
           sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
           sa.Column("at", _when(), nullable=False),
           sa.Column("kind", sa.String(16), nullable=False),
           sa.Column("actor", sa.String(64), nullable=False),
           sa.Column("cutoff", _when(), nullable=True),
           sa.Column("calls", sa.Integer(), nullable=False),
           sa.Column("recordings", sa.Integer(), nullable=False),
           sa.Column("bytes", sa.BigInteger(), nullable=False),
           sa.Column("report_file", sa.String(255), nullable=False),
           sa.Column("report_sha256", sa.String(64), nullable=False),
           sa.PrimaryKeyConstraint("id"))
    _table("agent_state_changes",
           sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
           sa.Column("agent_id", sa.String(16), nullable=False),
           sa.Column("event", sa.String(16), nullable=False),
           sa.Column("old_state", sa.String(16), nullable=False),
           sa.Column("new_state", sa.String(16), nullable=False),
           sa.Column("reason", sa.String(32), nullable=True),
           sa.Column("at", _when(), nullable=False),
           sa.PrimaryKeyConstraint("id"),
           indexes=(("ix_agent_state_agent_at", ["agent_id", "at"]),))
    _table("interactions",
           sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
           sa.Column("call_id", sa.String(32), nullable=False),
           sa.Column("agent_id", sa.String(16), nullable=True),
           sa.Column("service", sa.String(32), nullable=False),
           sa.Column("topic", sa.String(64), nullable=False),
           sa.Column("outcome_class", sa.String(8), nullable=False),
           sa.Column("other_kind", sa.String(16), nullable=True),
           sa.Column("text", sa.Text(), nullable=False),
           sa.Column("faq_refs", sa.Text(), nullable=False),
           sa.Column("created_at", _when(), nullable=False),
           sa.Column("call_offered_at", _when(), nullable=False),
           sa.PrimaryKeyConstraint("id"),
           sa.UniqueConstraint("call_id"),
           indexes=(("ix_interactions_offered", ["call_offered_at"]),))
    _table("console_users",
           sa.Column("name", sa.String(64), nullable=False),
           sa.Column("role", sa.String(16), nullable=False),
           sa.Column("password_hash", sa.String(255), nullable=False),
           sa.Column("agent_id", sa.String(16), nullable=True),
           sa.Column("disabled", sa.Boolean(), nullable=False),
           sa.Column("created_at", _when(), nullable=False),
           sa.PrimaryKeyConstraint("name"))
    _table("console_directory",
           sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
           sa.Column("section", sa.String(128), nullable=False),
           sa.Column("name", sa.String(128), nullable=False),
           sa.Column("extension", sa.String(16), nullable=False),
           sa.Column("note", sa.Text(), nullable=False),
           sa.PrimaryKeyConstraint("id"))
    _table("console_faq",
           sa.Column("id", sa.String(64), nullable=False),
           sa.Column("question", sa.Text(), nullable=False),
           sa.Column("answer", sa.Text(), nullable=False),
           sa.Column("keywords", sa.Text(), nullable=False),
           sa.PrimaryKeyConstraint("id"))


def downgrade() -> None:
    for name in ("console_faq", "console_directory", "console_users", "interactions",
                 "agent_state_changes", "deletion_reports", "audit_log", "recording_agents",
                 "recordings", "calls"):
        op.drop_table(name)
