"""Satisfaction: the post-call survey's answers per call and operator, and the city staff's
monthly ratings (REQUIREMENTS §9).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "survey_answers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("call_id", sa.String(32), nullable=False),
        sa.Column("agent_id", sa.String(16), nullable=True),
        sa.Column("service", sa.String(32), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("question", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("answer", sa.Integer(), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("call_offered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("call_id", "question", name="uq_survey_answers_call_question"))
    op.create_index("ix_survey_answers_offered", "survey_answers", ["call_offered_at"],
                    unique=False)
    op.create_table(
        "staff_ratings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("points", sa.Float(), nullable=False),
        sa.Column("given", sa.Integer(), nullable=False),
        sa.Column("scale", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("rater", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("month", "rater", name="uq_staff_ratings_month_rater"))
    op.create_index("ix_staff_ratings_month", "staff_ratings", ["month"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_staff_ratings_month", table_name="staff_ratings")
    op.drop_table("staff_ratings")
    op.drop_index("ix_survey_answers_offered", table_name="survey_answers")
    op.drop_table("survey_answers")
