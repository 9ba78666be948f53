"""platform_user, verification: the platform's user directory and the identity review queue

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _id() -> sa.Column:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                     primary_key=True, autoincrement=True)


def _at(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _str(name: str, length: int, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.String(length), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "platform_user",
        _id(),
        _str("platform_user_id", 64, nullable=False),
        _str("phone", 20, nullable=False),
        _str("name", 64),
        _at("imported_at"),
        sa.UniqueConstraint("platform_user_id", name="uq_platform_user_platform_user_id"),
        sa.UniqueConstraint("phone", name="uq_platform_user_phone"),
    )
    op.create_table(
        "verification",
        _id(),
        sa.Column("member_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  sa.ForeignKey("member.id", ondelete="CASCADE"), nullable=False),
        _str("phone", 20, nullable=False),
        _str("identity_type", 32, nullable=False),
        _str("region", 32, nullable=False),
        sa.Column("photos", sa.JSON(), nullable=False),
        _str("platform_user_id", 64),
        _str("status", 16, nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        _str("reviewer", 64),
        _at("submitted_at"),
        _at("decided_at", nullable=True),
    )
    op.create_index("ix_verification_member_id", "verification", ["member_id"])
    op.create_index("ix_verification_status_id", "verification", ["status", "id"])


def downgrade() -> None:
    op.drop_index("ix_verification_status_id", table_name="verification")
    op.drop_index("ix_verification_member_id", table_name="verification")
    op.drop_table("verification")
    op.drop_table("platform_user")
