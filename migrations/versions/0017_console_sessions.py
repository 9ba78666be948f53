"""console_session and console_login_attempt: server-side console sessions and a login
throttle that every replica shares

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04

Sessions were signed cookies only, so logging out could not end a copied cookie; the throttle
counted in each process's memory. Existing cookies are not in console_session, so every
operator logs in once more after this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_session",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("userid", sa.String(64), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_console_session_userid", "console_session", ["userid"])
    op.create_index("ix_console_session_expires_at", "console_session", ["expires_at"])
    op.create_table(
        "console_login_attempt",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("userid", sa.String(64), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_console_login_attempt_userid", "console_login_attempt",
                    ["userid", "at"])
    op.create_index("ix_console_login_attempt_client", "console_login_attempt",
                    ["client", "at"])


def downgrade() -> None:
    op.drop_table("console_login_attempt")
    op.drop_table("console_session")
