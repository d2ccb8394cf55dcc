"""FAX: receptions and sent FAXes, and the channel (phone or fax) of interaction records.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fax_received",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("did", sa.String(16), nullable=False),
        sa.Column("caller", sa.String(32), nullable=False),
        sa.Column("remote_station", sa.String(32), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("resolution", sa.String(16), nullable=False),
        sa.Column("result", sa.String(8), nullable=False),
        sa.Column("error", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("file", sa.String(255), nullable=True),
        sa.Column("file_type", sa.String(8), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_by", sa.String(64), nullable=True),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source"))
    op.create_index("ix_fax_received_started", "fax_received", ["started_at"], unique=False)
    op.create_index("ix_fax_received_caller_started", "fax_received", ["caller", "started_at"],
                    unique=False)
    op.create_index("ix_fax_received_status_started", "fax_received", ["status", "started_at"],
                    unique=False)
    op.create_table(
        "fax_sent",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("number", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("file", sa.String(255), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pages_sent", sa.Integer(), nullable=True),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"))
    op.create_index("ix_fax_sent_created", "fax_sent", ["created_at"], unique=False)
    op.create_index("ix_fax_sent_state", "fax_sent", ["state"], unique=False)
    # a database adopted from before migrations was made from the models, column included
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("interactions")}
    if "channel" not in columns:
        op.add_column("interactions", sa.Column("channel", sa.String(8), nullable=False,
                                                server_default="phone"))


def downgrade() -> None:
    op.drop_column("interactions", "channel")
    op.drop_index("ix_fax_sent_state", table_name="fax_sent")
    op.drop_index("ix_fax_sent_created", table_name="fax_sent")
    op.drop_table("fax_sent")
    op.drop_index("ix_fax_received_status_started", table_name="fax_received")
    op.drop_index("ix_fax_received_caller_started", table_name="fax_received")
    op.drop_index("ix_fax_received_started", table_name="fax_received")
    op.drop_table("fax_received")
