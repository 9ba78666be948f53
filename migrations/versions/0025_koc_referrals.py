"""KOCs and referrals (推荐官): recommenders and their codes, referrals, credits (one person,
one referrer, once), the reward ledger, KOCs and their assignments; content_item.segment (a
column's item for one segment only: the weekly 光荣榜 of each segment); group_member.nickname
(the member's group nickname as groupchat/get gives it: the 光荣榜 names people by it)

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

TABLES = ("koc_assignment", "koc_member", "koc_reward", "referral_credit", "referral",
          "recommender")


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                     autoincrement=True)


def _ref(name: str, table: str, ondelete: str | None = "CASCADE") -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                     sa.ForeignKey(f"{table}.id", ondelete=ondelete), nullable=False)


def _at(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "recommender", _id(), _ref("member_id", "member"),
        sa.Column("short_id", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(80), nullable=False),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("config_id", sa.String(64), nullable=True),
        sa.Column("qr_code", sa.String(1024), nullable=True),
        _at("code_at"),
        sa.Column("deliver_kfid", sa.String(64), nullable=True),
        _at("last_referral_at"), _at("created_at", False),
        sa.UniqueConstraint("member_id", name="uq_recommender_member_id"),
        sa.UniqueConstraint("short_id", name="uq_recommender_short_id"),
    )
    op.create_table(
        "referral", _id(), _ref("recommender_id", "recommender"),
        _ref("referee_member_id", "member"), _at("added_at", False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("decided_by", sa.String(80), nullable=True), _at("decided_at"),
        sa.UniqueConstraint("referee_member_id", "recommender_id",
                            name="uq_referral_referee_member_id"),
    )
    op.create_index("ix_referral_status", "referral", ["status", "id"])
    op.create_index("ix_referral_recommender", "referral", ["recommender_id", "added_at"])
    op.create_table(
        "referral_credit", _id(), _ref("referral_id", "referral", None),
        _ref("recommender_id", "recommender", None), _ref("referee_member_id", "member", None),
        sa.Column("phone", sa.String(20), nullable=True),
        sa.Column("platform_user_id", sa.String(64), nullable=True),
        sa.Column("segment", sa.String(64), nullable=True),
        sa.Column("month", sa.String(7), nullable=False), _at("at", False), _at("revoked_at"),
        sa.Column("revoked_by", sa.String(80), nullable=True),
        sa.Column("revoke_reason", sa.Text(), nullable=True),
        sa.UniqueConstraint("referral_id", name="uq_referral_credit_referral_id"),
        sa.UniqueConstraint("referee_member_id", name="uq_referral_credit_referee_member_id"),
        sa.UniqueConstraint("phone", name="uq_referral_credit_phone"),
        sa.UniqueConstraint("platform_user_id", name="uq_referral_credit_platform_user_id"),
    )
    op.create_index("ix_referral_credit_recommender", "referral_credit",
                    ["recommender_id", "month"])
    op.create_table(
        "koc_reward", _id(), sa.Column("key", sa.String(96), nullable=False),
        _ref("recommender_id", "recommender", None),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("label", sa.String(128), nullable=False),
        sa.Column("period", sa.String(16), nullable=True),
        sa.Column("status", sa.String(16), nullable=False), _at("earned_at", False),
        sa.Column("decided_by", sa.String(80), nullable=True), _at("decided_at"),
        sa.Column("issued_by", sa.String(80), nullable=True), _at("issued_at"),
        sa.Column("issue_ref", sa.String(128), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False), _at("next_attempt_at"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.UniqueConstraint("key", name="uq_koc_reward_key"),
    )
    op.create_index("ix_koc_reward_status", "koc_reward", ["status", "id"])
    op.create_index("ix_koc_reward_recommender", "koc_reward", ["recommender_id"])
    op.create_table(
        "koc_member", _id(), _ref("member_id", "member"),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("promoted_by", sa.String(80), nullable=False), _at("promoted_at", False),
        sa.Column("demoted_by", sa.String(80), nullable=True), _at("demoted_at"),
        sa.UniqueConstraint("member_id", name="uq_koc_member_member_id"),
    )
    op.create_table(
        "koc_assignment", _id(), _ref("member_id", "member"),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("title", sa.String(128), nullable=False),
        sa.Column("content_item_id", sa.Integer(), nullable=True),
        sa.Column("by", sa.String(80), nullable=False), _at("at", False),
    )
    op.create_index("ix_koc_assignment_member", "koc_assignment", ["member_id", "id"])
    with op.batch_alter_table("content_item") as batch:
        batch.add_column(sa.Column("segment", sa.String(64), nullable=True))
    with op.batch_alter_table("group_member") as batch:
        batch.add_column(sa.Column("nickname", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("group_member") as batch:
        batch.drop_column("nickname")
    with op.batch_alter_table("content_item") as batch:
        batch.drop_column("segment")
    for table in TABLES:
        op.drop_table(table)
