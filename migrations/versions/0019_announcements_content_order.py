"""calendar_announcement, and content_item.position and image_url: /announce respects the one
mass message per group a day, and operators order and illustrate the columns' content

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05

An announcement whose groups had today's mass message is held (not sent) until the operator
chooses tomorrow's mass message or owner reminders; one scheduled for a day joins that day's
mass message of its groups. Existing content items keep their order: position = id.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calendar_announcement",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("target", sa.String(128), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("operator", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("chat_ids", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_calendar_announcement_status_at", "calendar_announcement",
                    ["status", "at"])
    with op.batch_alter_table("content_item") as batch:
        batch.add_column(sa.Column("image_url", sa.String(2048), nullable=True))
        batch.add_column(sa.Column("position", sa.Integer(), nullable=False,
                                   server_default="0"))
    op.execute("UPDATE content_item SET position = id")


def downgrade() -> None:
    with op.batch_alter_table("content_item") as batch:
        batch.drop_column("position")
        batch.drop_column("image_url")
    op.drop_table("calendar_announcement")
