"""The chat archive: the reader's cursor, messages, quarantined records, activity rollups, the
group rules' strike ledger, group questions, keyword hits in groups, and WeCom's per-owner
group statistics (the fallback when no archive is configured)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

TABLES = ("owner_group_stat", "group_keyword_day", "group_question", "member_strike", "speaker",
          "speaker_day", "group_activity_day", "archive_quarantine", "archive_message",
          "archive_reader")


def upgrade() -> None:
    op.create_table(
        "archive_reader",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("corp_id", sa.String(64), nullable=False, unique=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("news", sa.Integer(), nullable=False),
        sa.Column("pulled", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("caught_up_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_msgtime", sa.DateTime(timezone=True), nullable=True),
        sa.Column("gaps", sa.Integer(), nullable=False),
    )
    op.create_table(
        "archive_message",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("msgid", sa.String(128), nullable=False, unique=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("chat_id", sa.String(64), nullable=False),
        sa.Column("sender", sa.String(64), nullable=False),
        sa.Column("sender_kind", sa.String(8), nullable=False),
        sa.Column("msgtime", sa.DateTime(timezone=True), nullable=False),
        sa.Column("msgtype", sa.String(32), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("recalled", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_archive_message_msgtime", "archive_message", ["msgtime"])
    op.create_index("ix_archive_message_chat_time", "archive_message", ["chat_id", "msgtime"])
    op.create_table(
        "archive_quarantine",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("msgid", sa.String(128), nullable=False, unique=True),
        sa.Column("publickey_ver", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(255), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_archive_quarantine_seq", "archive_quarantine", ["seq"])
    op.create_table(
        "group_activity_day",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("chat_id", sa.String(64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("customer_messages", sa.Integer(), nullable=False),
        sa.Column("staff_messages", sa.Integer(), nullable=False),
        sa.Column("speakers", sa.Integer(), nullable=False),
        sa.UniqueConstraint("chat_id", "day", name="uq_group_activity_day"),
    )
    op.create_index("ix_group_activity_day_day", "group_activity_day", ["day"])
    op.create_table(
        "speaker_day",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("chat_id", sa.String(64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("userid", sa.String(64), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("answers", sa.Integer(), nullable=False),
        sa.UniqueConstraint("chat_id", "day", "userid", name="uq_speaker_day"),
    )
    op.create_index("ix_speaker_day_userid_day", "speaker_day", ["userid", "day"])
    op.create_table(
        "speaker",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("chat_id", sa.String(64), nullable=False),
        sa.Column("userid", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("answers", sa.Integer(), nullable=False),
        sa.Column("intro_msgid", sa.String(128), nullable=True),
        sa.UniqueConstraint("chat_id", "userid", name="uq_speaker"),
    )
    op.create_index("ix_speaker_userid", "speaker", ["userid"])
    op.create_table(
        "member_strike",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("chat_id", sa.String(64), nullable=False),
        sa.Column("userid", sa.String(64), nullable=False),
        sa.Column("msgid", sa.String(128), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("action", sa.String(32), nullable=True),
        sa.Column("reviewed_by", sa.String(64), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("msgid", "rule", name="uq_member_strike_msg_rule"),
    )
    op.create_index("ix_member_strike_status_at", "member_strike", ["status", "at"])
    op.create_index("ix_member_strike_user_at", "member_strike", ["userid", "at"])
    op.create_table(
        "group_question",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("msgid", sa.String(128), nullable=False, unique=True),
        sa.Column("chat_id", sa.String(64), nullable=False),
        sa.Column("segment", sa.String(64), nullable=True),
        sa.Column("asker", sa.String(64), nullable=False),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_by", sa.String(64), nullable=True),
        sa.Column("answer_msgid", sa.String(128), nullable=True),
        sa.Column("answer_kind", sa.String(8), nullable=True),
        sa.Column("keyword_rule", sa.String(128), nullable=True),
    )
    op.create_index("ix_group_question_chat_asked", "group_question", ["chat_id", "asked_at"])
    op.create_index("ix_group_question_asked", "group_question", ["asked_at"])
    op.create_table(
        "group_keyword_day",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("segment", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.UniqueConstraint("day", "segment", "rule", name="uq_group_keyword_day"),
    )
    op.create_table(
        "owner_group_stat",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("chat_total", sa.Integer(), nullable=False),
        sa.Column("chat_has_msg", sa.Integer(), nullable=False),
        sa.Column("member_total", sa.Integer(), nullable=False),
        sa.Column("member_has_msg", sa.Integer(), nullable=False),
        sa.Column("msg_total", sa.Integer(), nullable=False),
        sa.Column("new_member_cnt", sa.Integer(), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("owner", "day", name="uq_owner_group_stat"),
    )


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table)
