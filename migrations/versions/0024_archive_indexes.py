"""archive_reader.created_at (the chat archive's lag counts from it until the first read to the
end), and indexes for recalls and the rules ledger: group_question.answer_msgid,
speaker.intro_msgid, member_strike(at)

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05

A recall looks up the question it answered and the introduction it was; the console's ledger
is ordered by time. Without these each was a scan of a table that grows with the groups.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("archive_reader") as batch:
        batch.add_column(sa.Column("created_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_group_question_answer_msgid", "group_question", ["answer_msgid"])
    op.create_index("ix_speaker_intro_msgid", "speaker", ["intro_msgid"])
    op.create_index("ix_member_strike_at", "member_strike", ["at"])


def downgrade() -> None:
    op.drop_index("ix_member_strike_at", table_name="member_strike")
    op.drop_index("ix_speaker_intro_msgid", table_name="speaker")
    op.drop_index("ix_group_question_answer_msgid", table_name="group_question")
    with op.batch_alter_table("archive_reader") as batch:
        batch.drop_column("created_at")
