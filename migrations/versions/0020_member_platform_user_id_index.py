"""member.platform_user_id indexed: who holds a phone or platform user id is asked on every
submission, approval, member page and review queue row

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05

The partial unique index of 0018 covers only linked members, and the question also counts the
`duplicate` ones; without an index of its own the OR of phone and platform user id scanned the
member table (phone has had one since 0004).
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_member_platform_user_id", "member", ["platform_user_id"])


def downgrade() -> None:
    op.drop_index("ix_member_platform_user_id", table_name="member")
