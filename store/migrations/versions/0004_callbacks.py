"""Callbacks: a waiting caller's request to be called back with their place kept, and the
link from a callback's call record to the call that asked for it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

OPEN = sa.text("state IN ('pending', 'dialing')")


def upgrade() -> None:
    # a database the baseline adopted may have been made by create_all with this column
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("calls")}
    if "callback_of" not in columns:
        with op.batch_alter_table("calls") as batch:
            batch.add_column(sa.Column("callback_of", sa.String(32), nullable=True))
    op.create_table(
        "callbacks",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("call_id", sa.String(32), nullable=False),
        sa.Column("service", sa.String(32), nullable=False),
        sa.Column("queue", sa.String(32), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("language", sa.String(8), nullable=True),
        sa.Column("topic", sa.String(32), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.String(16), nullable=False),
        sa.Column("agent_id", sa.String(16), nullable=True),
        sa.Column("result_call_id", sa.String(32), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"))
    op.create_index("ix_callbacks_requested", "callbacks", ["requested_at"], unique=False)
    op.create_index("ix_callbacks_state", "callbacks", ["state"], unique=False)
    # one open callback per number, on SQLite and PostgreSQL alike
    op.create_index("uq_callbacks_open_number", "callbacks", ["number"], unique=True,
                    sqlite_where=OPEN, postgresql_where=OPEN)


def downgrade() -> None:
    op.drop_index("uq_callbacks_open_number", table_name="callbacks")
    op.drop_index("ix_callbacks_state", table_name="callbacks")
    op.drop_index("ix_callbacks_requested", table_name="callbacks")
    op.drop_table("callbacks")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("callback_of")
