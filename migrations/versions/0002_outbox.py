"""outbox_message, rate_slot, wecom_token: delivery to WeCom

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _id() -> sa.Column:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                     primary_key=True, autoincrement=True)


def _at(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "outbox_message",
        _id(),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("api", sa.String(80), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        _at("deadline", nullable=True),
        sa.Column("rate_key", sa.String(120), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _at("next_attempt_at"),
        sa.Column("lease_owner", sa.String(40), nullable=True),
        _at("lease_until", nullable=True),
        _at("in_flight_at", nullable=True),
        sa.Column("errcode", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        _at("created_at"),
        _at("finished_at", nullable=True),
        sa.UniqueConstraint("idempotency_key", name="uq_outbox_message_idempotency_key"),
    )
    op.create_index("ix_outbox_message_status_priority_id", "outbox_message",
                    ["status", "priority", "id"])
    op.create_table(
        "rate_slot",
        sa.Column("key", sa.String(120), primary_key=True),
        _at("next_at"),
    )
    op.create_table(
        "wecom_token",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("token", sa.String(1024), nullable=False),
        _at("expires_at"),
        _at("fetched_at"),
    )


def downgrade() -> None:
    op.drop_table("wecom_token")
    op.drop_table("rate_slot")
    op.drop_index("ix_outbox_message_status_priority_id", table_name="outbox_message")
    op.drop_table("outbox_message")
