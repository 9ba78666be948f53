"""inbox_event.order_key: events of one group, customer or kf dialog are handled in order

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows stored before this revision have no key: they keep the old, unordered handling.
    op.add_column("inbox_event", sa.Column("order_key", sa.String(80), nullable=True))
    op.create_index("ix_inbox_event_order", "inbox_event", ["order_key", "status", "id"])


def downgrade() -> None:
    op.drop_index("ix_inbox_event_order", table_name="inbox_event")
    op.drop_column("inbox_event", "order_key")
