"""group_member.joined_at indexed: the newcomers' Q&A invitations, `groups newcomers` and the
lifecycle's joins read the group members who joined in a time range

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_group_member_joined_at", "group_member", ["joined_at"])


def downgrade() -> None:
    op.drop_index("ix_group_member_joined_at", table_name="group_member")
