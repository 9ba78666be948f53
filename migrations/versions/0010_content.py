"""content_item: the content queue of the calendar's columns

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "content_item",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("column_name", sa.String(32), nullable=False),
        sa.Column("title", sa.String(128), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("link", sa.String(2048), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_for", sa.String(64), nullable=True),
        sa.UniqueConstraint("used_for", name="uq_content_item_used_for"),
    )
    op.create_index("ix_content_item_column_used", "content_item",
                    ["column_name", "used_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_content_item_column_used", table_name="content_item")
    op.drop_table("content_item")
