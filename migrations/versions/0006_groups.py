"""customer_group, group_member, group_pool; member.flag: segmented group pools

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _id() -> sa.Column:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                     primary_key=True, autoincrement=True)


def _at(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _str(name: str, length: int, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.String(length), nullable=nullable)


def _int(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.Integer(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "customer_group",
        _id(),
        _str("chat_id", 64, nullable=False),
        _str("segment", 64),
        _str("name", 128, nullable=False),
        _str("owner", 64, nullable=False),
        _int("member_count"),
        _str("member_version", 64),
        _str("status", 16, nullable=False),
        _at("created_at"),
        _at("updated_at"),
        _at("filled_at", nullable=True),
        _at("synced_at", nullable=True),
        sa.UniqueConstraint("chat_id", name="uq_customer_group_chat_id"),
    )
    op.create_index("ix_customer_group_segment", "customer_group", ["segment"])
    op.create_table(
        "group_member",
        _id(),
        _str("chat_id", 64, nullable=False),
        _str("userid", 64, nullable=False),
        _int("type"),
        _at("joined_at"),
        _int("join_scene", nullable=True),
        _str("state", 32),
        _at("left_at", nullable=True),
        _int("quit_scene", nullable=True),
        sa.UniqueConstraint("chat_id", "userid", name="uq_group_member_chat_user"),
    )
    op.create_index("ix_group_member_userid", "group_member", ["userid"])
    op.create_table(
        "group_pool",
        _id(),
        _str("segment", 64, nullable=False),
        _str("config_id", 64, nullable=False),
        sa.Column("qr_code", sa.Text(), nullable=False),
        sa.Column("chat_ids", sa.Text(), nullable=False),
        _str("room_name", 64, nullable=False),
        _int("version"),
        sa.Column("stale", sa.Boolean(), nullable=False),
        _at("updated_at"),
        sa.UniqueConstraint("segment", name="uq_group_pool_segment"),
    )
    op.add_column("member", _str("flag", 32))


def downgrade() -> None:
    with op.batch_alter_table("member") as batch:
        batch.drop_column("flag")
    op.drop_table("group_pool")
    op.drop_index("ix_group_member_userid", table_name="group_member")
    op.drop_table("group_member")
    op.drop_index("ix_customer_group_segment", table_name="customer_group")
    op.drop_table("customer_group")
