"""member one-to-one: one phone and one platform user id per linked member

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05

(first version; the schema details follow in the next commits)
"""

from __future__ import annotations

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
