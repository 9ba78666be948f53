"""member, member_history, funnel_event, contact_code: the acquisition funnel; wider outbox
lease tokens (a sender id and a claim number)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _id() -> sa.Column:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                     primary_key=True, autoincrement=True)


def _at(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _str(name: str, length: int, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.String(length), nullable=nullable)


def _member_ref(ondelete: str, nullable: bool) -> sa.Column:
    return sa.Column("member_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                     sa.ForeignKey("member.id", ondelete=ondelete), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("outbox_message") as batch:
        batch.alter_column("lease_owner", type_=sa.String(64), existing_type=sa.String(40),
                           existing_nullable=True)
    op.create_table(
        "member",
        _id(),
        _str("external_userid", 64, nullable=False),
        _str("staff_userid", 64, nullable=False),
        _str("phone", 20),
        _str("platform_user_id", 64),
        _str("identity_type", 32),
        _str("channel", 32, nullable=False),
        _str("slot", 32),
        _str("region", 32),
        _str("segment", 64),
        _str("group_chat_id", 64),
        _str("status", 16, nullable=False),
        _str("state", 32, nullable=False),
        _str("welcome_code", 128),
        _at("added_at"),
        _at("updated_at"),
        sa.UniqueConstraint("external_userid", name="uq_member_external_userid"),
        sa.UniqueConstraint("welcome_code", name="uq_member_welcome_code"),
    )
    op.create_index("ix_member_phone", "member", ["phone"])
    op.create_table(
        "member_history",
        _id(),
        _member_ref("CASCADE", nullable=False),
        _at("at"),
        _str("field", 32, nullable=False),
        sa.Column("old", sa.Text(), nullable=True),
        sa.Column("new", sa.Text(), nullable=True),
        _str("source", 64, nullable=False),
    )
    op.create_index("ix_member_history_member_id", "member_history", ["member_id", "id"])
    op.create_table(
        "funnel_event",
        _id(),
        _str("step", 32, nullable=False),
        _at("at"),
        _str("event_key", 128, nullable=False),
        _member_ref("SET NULL", nullable=True),
        _str("platform_user_id", 64),
        _str("channel", 32),
        _str("slot", 32),
        _str("segment", 64),
        _str("region", 32),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.UniqueConstraint("event_key", name="uq_funnel_event_event_key"),
    )
    op.create_index("ix_funnel_event_step_at", "funnel_event", ["step", "at"])
    op.create_index("ix_funnel_event_member_id", "funnel_event", ["member_id"])
    op.create_table(
        "contact_code",
        _id(),
        _str("state", 32, nullable=False),
        _str("channel", 32, nullable=False),
        _str("slot", 32),
        _str("config_id", 64, nullable=False),
        sa.Column("qr_code", sa.Text(), nullable=False),
        _str("fingerprint", 64, nullable=False),
        _at("synced_at"),
        sa.UniqueConstraint("state", name="uq_contact_code_state"),
    )


def downgrade() -> None:
    op.drop_table("contact_code")
    op.drop_index("ix_funnel_event_member_id", table_name="funnel_event")
    op.drop_index("ix_funnel_event_step_at", table_name="funnel_event")
    op.drop_table("funnel_event")
    op.drop_index("ix_member_history_member_id", table_name="member_history")
    op.drop_table("member_history")
    op.drop_index("ix_member_phone", table_name="member")
    op.drop_table("member")
    with op.batch_alter_table("outbox_message") as batch:
        batch.alter_column("lease_owner", type_=sa.String(40), existing_type=sa.String(64),
                           existing_nullable=True)
