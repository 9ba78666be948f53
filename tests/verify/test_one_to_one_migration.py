"""Migration 0018 on a database that already breaks the one-to-one record: it does not fail,
unlinks nobody, reports the members sharing a phone or platform user id, and holds every other
linked member to the unique indexes. On SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from app import migrate
from app.engine.db import sync_url
from tests.pg import scratch_schema

PG_URL = os.environ.get("SOPBOT_TEST_PG_URL", "")
NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.skipif(
    not PG_URL, reason="SOPBOT_TEST_PG_URL not set: no PostgreSQL"))])
def at_0017(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """An empty database of its own at revision 0017."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        migrate.upgrade(url, "0017")
        yield url
        return
    with scratch_schema(PG_URL, f"sopbot_m18_{os.getpid()}") as url:
        migrate.upgrade(url, "0017")
        yield url


# (member id, phone, platform user id, verification status or None)
MEMBERS = [
    (1, "13800138000", "P1", "approved"),   # shares the phone with 2
    (2, "13800138000", "P1", "approved"),
    (3, "13900139000", "P3", "approved"),   # shares the platform user id with 4
    (4, "13700137000", "P3", "approved"),
    (5, "13600136000", "P5", "approved"),   # alone: linked, under the index
    (6, "13600136000", "P5", "pending"),    # same phone, never verified: not linked
    (7, "13800138000", None, "rejected"),
]


def _fill(url: str) -> None:
    engine = create_engine(sync_url(url))
    with engine.begin() as conn:
        for member_id, phone, platform_id, status in MEMBERS:
            conn.execute(text(
                "INSERT INTO member (id, external_userid, staff_userid, phone, platform_user_id, "
                "channel, status, state, added_at, updated_at) VALUES (:id, :ext, 'lisi', "
                ":phone, :pid, 'douyin', 'joined', '', :now, :now)"),
                {"id": member_id, "ext": f"wm_{member_id}", "phone": phone, "pid": platform_id,
                 "now": NOW})
            conn.execute(text(
                "INSERT INTO verification (member_id, phone, identity_type, region, photos, "
                "platform_user_id, status, submitted_at) VALUES (:id, :phone, 'physical_shop', "
                "'广东', '[]', :pid, :status, :now)"),
                {"id": member_id, "phone": phone, "pid": platform_id, "status": status,
                 "now": NOW})
    engine.dispose()


def test_duplicates_are_reported_and_kept_the_rest_is_held_by_the_indexes(
        at_0017: str, caplog: pytest.LogCaptureFixture) -> None:
    _fill(at_0017)
    with caplog.at_level(logging.WARNING, logger="sopbot.migrate"):
        migrate.upgrade(at_0017, "0018")
    assert migrate.current_revision(at_0017) == "0018"
    engine = create_engine(sync_url(at_0017))
    with engine.connect() as conn:
        states = dict(conn.execute(text("SELECT id, link_state FROM member")).all())
        kept = conn.execute(text("SELECT id, phone, platform_user_id FROM member "
                                 "ORDER BY id")).all()
        noted = conn.execute(text("SELECT member_id, old, new, source FROM member_history "
                                  "ORDER BY member_id")).all()
    assert states == {1: "duplicate", 2: "duplicate", 3: "duplicate", 4: "duplicate",
                      5: "linked", 6: None, 7: None}
    assert [tuple(r) for r in kept] == [m[:3] for m in MEMBERS]  # nothing unlinked or cleared
    assert [tuple(r) for r in noted] == [(i, "linked", "duplicate", "migration:0018")
                                         for i in (1, 2, 3, 4)]
    report = "\n".join(r.getMessage() for r in caplog.records)
    assert "phone 138****8000 is linked to members #1, #2" in report
    assert "platform user id P3 is linked to members #3, #4" in report
    assert "13800138000" not in report  # phones masked
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("UPDATE member SET link_state = 'linked' WHERE id = 6"))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("UPDATE member SET link_state = 'linked', platform_user_id = 'P5' "
                          "WHERE id = 7"))
    engine.dispose()


def test_a_database_without_duplicates_reports_nothing(
        at_0017: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sopbot.migrate"):
        migrate.upgrade(at_0017, "0018")
    assert not [r for r in caplog.records if r.name == "sopbot.migrate"]
    from alembic import command

    command.downgrade(migrate.alembic_config(at_0017), "0017")
    assert migrate.current_revision(at_0017) == "0017"
