"""kf_account, kf_conversation, kf_send_failure, keyword_hit, unanswered_question: reading
微信客服 and answering in it

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
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
        "kf_account",
        _id(),
        _str("open_kfid", 64, nullable=False),
        _str("cursor", 64),
        _str("token", 128),
        _at("token_at", nullable=True),
        _int("news"),
        _int("pulled"),
        _str("lease_owner", 64),
        _at("lease_until", nullable=True),
        _int("failures"),
        sa.Column("last_error", sa.Text(), nullable=True),
        _at("synced_at", nullable=True),
        sa.UniqueConstraint("open_kfid", name="uq_kf_account_open_kfid"),
    )
    op.create_table(
        "kf_conversation",
        _id(),
        _str("open_kfid", 64, nullable=False),
        _str("external_userid", 64, nullable=False),
        _at("last_customer_at", nullable=True),
        _int("answers"),
        _int("misses"),
        _at("handed_off_at", nullable=True),
        _at("updated_at"),
        sa.UniqueConstraint("open_kfid", "external_userid",
                            name="uq_kf_conversation_account_customer"),
    )
    op.create_table(
        "kf_send_failure",
        _id(),
        _str("open_kfid", 64, nullable=False),
        _str("external_userid", 64, nullable=False),
        _str("fail_msgid", 64, nullable=False),
        _int("fail_type", nullable=True),
        _str("msgid", 128, nullable=False),
        _at("at"),
        sa.UniqueConstraint("msgid", name="uq_kf_send_failure_msgid"),
    )


    op.create_table(
        "keyword_hit",
        _id(),
        _str("rule_id", 64, nullable=False),
        _str("segment", 64),
        _str("external_userid", 64, nullable=False),
        _at("at"),
    )
    op.create_index("ix_keyword_hit_rule_at", "keyword_hit", ["rule_id", "at"])
    op.create_table(
        "unanswered_question",
        _id(),
        _str("open_kfid", 64, nullable=False),
        _str("external_userid", 64, nullable=False),
        _str("segment", 64),
        sa.Column("text", sa.Text(), nullable=False),
        _at("at"),
    )
    op.create_index("ix_unanswered_question_at", "unanswered_question", ["at"])


def downgrade() -> None:
    op.drop_index("ix_unanswered_question_at", table_name="unanswered_question")
    op.drop_table("unanswered_question")
    op.drop_index("ix_keyword_hit_rule_at", table_name="keyword_hit")
    op.drop_table("keyword_hit")
    op.drop_table("kf_send_failure")
    op.drop_table("kf_conversation")
    op.drop_table("kf_account")
