"""content_item's queue index in the queue's order: (column_name, used_at, position, id)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05

0019 made the queue's order the operators' position, then the id; the index of 0010 still
ordered by id, so the next item of a column was sorted on every take.
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_content_item_column_used", table_name="content_item")
    op.create_index("ix_content_item_queue", "content_item",
                    ["column_name", "used_at", "position", "id"])


def downgrade() -> None:
    op.drop_index("ix_content_item_queue", table_name="content_item")
    op.create_index("ix_content_item_column_used", "content_item",
                    ["column_name", "used_at", "id"])
