"""member.link_state, verification.checks, verification_photo: one phone and one platform user
id per verified member, held by partial unique indexes, and photo hashes

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05

A member is linked when a verification of theirs was approved: this revision marks those
members `linked`. Two linked members may already share a phone or a platform user id (nothing
stopped it before). The revision does not fail on them and unlinks nobody: each such member is
marked `duplicate` instead (a member_history row says so), which keeps them out of the unique
indexes, and a warning lists them (masked phones) for an operator to resolve on the member page.
Every other linked member is under the indexes from now on.

Photos submitted before this revision have no row in verification_photo (their files are not
read here): the check "same image as another member's" compares new photos with new ones only.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

log = logging.getLogger("sopbot.migrate")

LINKED, DUPLICATE = "linked", "duplicate"
_LINKED_ONLY = sa.text(f"link_state = '{LINKED}'")
member = sa.table("member", sa.column("id", sa.Integer), sa.column("phone", sa.String),
                  sa.column("platform_user_id", sa.String), sa.column("link_state", sa.String))
verification = sa.table("verification", sa.column("member_id", sa.Integer),
                        sa.column("status", sa.String))
history = sa.table("member_history", sa.column("member_id", sa.Integer),
                   sa.column("at", sa.DateTime(timezone=True)), sa.column("field", sa.String),
                   sa.column("old", sa.Text), sa.column("new", sa.Text),
                   sa.column("source", sa.String))


def upgrade() -> None:
    op.add_column("member", sa.Column("link_state", sa.String(16), nullable=True))
    op.add_column("verification", sa.Column("checks", sa.JSON(), nullable=True))
    _id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "verification_photo",
        sa.Column("id", _id, primary_key=True, autoincrement=True),
        sa.Column("verification_id", _id,
                  sa.ForeignKey("verification.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
    )
    op.create_index("ix_verification_photo_verification_id", "verification_photo",
                    ["verification_id"])
    op.create_index("ix_verification_photo_sha256", "verification_photo", ["sha256"])
    _link_verified_members()
    _set_duplicates_apart()
    for name, column in (("uq_member_linked_phone", "phone"),
                         ("uq_member_linked_platform_user_id", "platform_user_id")):
        op.create_index(name, "member", [column], unique=True,
                        sqlite_where=_LINKED_ONLY, postgresql_where=_LINKED_ONLY)


def _link_verified_members() -> None:
    approved = sa.select(verification.c.member_id).where(verification.c.status == "approved")
    op.execute(member.update().where(member.c.id.in_(approved)).values(link_state=LINKED))


def _set_duplicates_apart() -> None:
    """Members sharing a linked phone or platform user id become `duplicate`, reported."""
    rows = op.get_bind().execute(sa.select(member.c.id, member.c.phone,
                                           member.c.platform_user_id)
                                 .where(member.c.link_state == LINKED)).all()
    shared = _shared(rows)
    if not shared:
        return
    ids = sorted({i for members in shared.values() for i in members})
    op.execute(member.update().where(member.c.id.in_(ids)).values(link_state=DUPLICATE))
    now = datetime.now(UTC)
    op.bulk_insert(history, [{"member_id": i, "at": now, "field": "link_state", "old": LINKED,
                              "new": DUPLICATE, "source": "migration:0018"} for i in ids])
    for what, members in shared.items():
        log.warning("member_link_duplicate: %s is linked to members %s; kept as they are, "
                    "marked duplicate (outside the one-to-one index) for an operator to "
                    "resolve on the member page", what, ", ".join(f"#{i}" for i in members))


def _shared(rows: list[sa.Row]) -> dict[str, list[int]]:
    """'phone 138****8000' / 'platform user id P1' → the members sharing it (two or more)."""
    by_key: dict[tuple[str, str], list[int]] = defaultdict(list)
    for member_id, phone, platform_user_id in rows:
        if phone:
            by_key["phone", phone].append(member_id)
        if platform_user_id:
            by_key["platform user id", platform_user_id].append(member_id)
    # Keyed by the whole value (two phones may mask alike); only the report masks it.
    return {f"{kind} {_masked(value) if kind == 'phone' else value}": sorted(ids)
            for (kind, value), ids in by_key.items() if len(ids) > 1}


def _masked(phone: str) -> str:
    # Migrations import nothing from app/; the same masking as app.engine.logs.mask_phones.
    return f"{phone[:3]}****{phone[-4:]}" if len(phone) >= 8 else "****"


def downgrade() -> None:
    op.drop_index("uq_member_linked_platform_user_id", table_name="member")
    op.drop_index("uq_member_linked_phone", table_name="member")
    op.drop_table("verification_photo")
    op.drop_column("verification", "checks")
    op.drop_column("member", "link_state")
