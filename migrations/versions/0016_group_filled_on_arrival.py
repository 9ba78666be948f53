"""customer_group.filled_on_arrival: a group already full when sopbot first read it

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30

The column was first written into 0006 after 0006 had landed, so a database migrated before
then never got it; a revision of its own reaches every database. One that already has it
(created from the edited 0006) is left as it is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("customer_group")}
    if "filled_on_arrival" in columns:
        return
    op.add_column("customer_group", sa.Column("filled_on_arrival", sa.Boolean(),
                                              nullable=False, server_default=sa.false()))


def downgrade() -> None:
    op.drop_column("customer_group", "filled_on_arrival")
