"""calendar_post, calendar_group_day: what became of each delivery of the posting calendar,
and which customer group had its one mass message of a day

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calendar_post",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("segment", sa.String(64), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("transport", sa.String(16), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("posts", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("msgid", sa.String(128), nullable=True),
        sa.Column("task_status", sa.String(16), nullable=True),
        sa.Column("reminders", sa.Integer(), nullable=False),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("key", name="uq_calendar_post_key"),
    )
    op.create_index("ix_calendar_post_day", "calendar_post", ["day", "segment"])
    op.create_table(
        "calendar_group_day",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("chat_id", sa.String(64), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("post_key", sa.String(200), nullable=False),
        sa.UniqueConstraint("chat_id", "day", name="uq_calendar_group_day"),
    )


def downgrade() -> None:
    op.drop_table("calendar_group_day")
    op.drop_index("ix_calendar_post_day", table_name="calendar_post")
    op.drop_table("calendar_post")
