"""The platform user directory: the CLI import, the API, and auto-approval on a match."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.directory.models import PlatformUser
from app.engine.db import sync_url
from app.faces.cli.main import cli
from app.funnel import steps
from tests.verify.conftest import AUTH, VerifyApp

CSV = """platform_user_id,phone,name
u1,13800138000,张三
u2,+86 139-0013-9000
u3,12345,坏号码
,13700137000,no id
u4,13600136000,李四,extra
u5,13800138000,same phone as u1

u6,15000150000,王五
"""


def _users(db_url: str) -> dict[str, tuple[str, str | None]]:
    engine = create_engine(sync_url(db_url))
    with Session(engine) as session:
        users = {u.platform_user_id: (u.phone, u.name)
                 for u in session.scalars(select(PlatformUser))}
    engine.dispose()
    return users


def _import(db_url: str, path: Path) -> object:
    return CliRunner().invoke(cli, ["users", "import", str(path)],
                              env={"SOPBOT_DATABASE_URL": db_url})


def test_users_import_reports_bad_lines_and_imports_the_rest(db_url: str,
                                                             tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    path.write_text("\ufeff" + CSV, encoding="utf-8")  # with the BOM Excel writes
    result = _import(db_url, path)
    assert result.exit_code == 1  # type: ignore[attr-defined]
    # Only our lines: a logging handler another test left on a closed stream may add noise.
    errors = [line for line in result.stderr.splitlines()  # type: ignore[attr-defined]
              if line.startswith(str(path))]
    assert errors == [
        f"{path}:4: phone: not a mainland mobile number",
        f"{path}:5: platform_user_id: String should have at least 1 character",
        f"{path}:6: expected 2 or 3 columns (platform_user_id,phone[,name]), got 4",
        f"{path}:7: phone already belongs to platform user u1",
    ]
    assert "imported 3 new, 0 updated, 0 unchanged, 4 skipped" in result.stdout  # type: ignore[attr-defined]
    assert _users(db_url) == {"u1": ("13800138000", "张三"), "u2": ("13900139000", None),
                              "u6": ("15000150000", "王五")}
    again = _import(db_url, path)
    assert "imported 0 new, 0 updated, 3 unchanged, 4 skipped" in again.stdout  # type: ignore[attr-defined]
    assert len(_users(db_url)) == 3


def test_users_import_updates_changed_rows(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    path.write_text("u1,13800138000,张三\nu2,13900139000\n", encoding="utf-8")
    assert _import(db_url, path).exit_code == 0  # type: ignore[attr-defined]
    # u1 gives up its phone and u2 takes it, in one file: the order of rows must not matter.
    path.write_text("u1,13700137000,张三丰\nu2,13800138000\n", encoding="utf-8")
    result = _import(db_url, path)
    assert result.exit_code == 0, result.stderr  # type: ignore[attr-defined]
    assert "imported 0 new, 2 updated" in result.stdout  # type: ignore[attr-defined]
    assert _users(db_url) == {"u1": ("13700137000", "张三丰"), "u2": ("13800138000", None)}


def test_users_import_of_a_missing_file_is_one_line(db_url: str, tmp_path: Path) -> None:
    result = _import(db_url, tmp_path / "nope.csv")
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert result.stderr.startswith("sopbot: cannot read")  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_platform_users_api_is_validated_and_idempotent(verify_app: VerifyApp) -> None:
    client = verify_app.client
    users = [{"platform_user_id": "u1", "phone": "138 0013 8000", "name": "张三"},
             {"platform_user_id": "u2", "phone": "13900139000"}]
    first = await client.post("/api/platform-users", json=users, headers=AUTH)
    assert first.status_code == 200
    assert first.json() == {"created": 2, "updated": 0, "unchanged": 0, "conflicts": []}
    second = await client.post("/api/platform-users", json=users, headers=AUTH)
    assert second.json() == {"created": 0, "updated": 0, "unchanged": 2, "conflicts": []}
    bad = await client.post("/api/platform-users", headers=AUTH, json=[
        {"platform_user_id": "u3", "phone": "13700137000"},
        {"platform_user_id": "u4", "phone": "12345"}])
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", 1, "phone"]
    clash = await client.post("/api/platform-users", headers=AUTH, json=[
        {"platform_user_id": "u5", "phone": "13900139000"}])
    assert clash.json()["conflicts"] == [
        {"index": 0, "error": "phone already belongs to platform user u2"}]
    too_many = [{"platform_user_id": f"x{n}", "phone": "13700137000"} for n in range(5001)]
    assert (await client.post("/api/platform-users", json=too_many,
                              headers=AUTH)).status_code == 422
    rows = await verify_app.all(PlatformUser)
    assert sorted((u.platform_user_id, u.phone) for u in rows) == [
        ("u1", "13800138000"), ("u2", "13900139000")]


@pytest.mark.asyncio
async def test_a_directory_match_is_auto_approved(verify_app: VerifyApp) -> None:
    await verify_app.client.post("/api/platform-users", headers=AUTH,
                                 json=[{"platform_user_id": "u42", "phone": "13800138000"}])
    member, path = await verify_app.member("wm_match")
    other, other_path = await verify_app.member("wm_nomatch")
    response = await verify_app.submit(path, phone="+86 138 0013 8000",
                                       identity_type="wechat_reseller")
    assert response.status_code == 200
    assert "认证通过" in response.text
    await verify_app.submit(other_path, phone="13900139000")
    matched, unmatched = await verify_app.verifications()
    assert (matched.status, matched.reviewer, matched.platform_user_id) == (
        "approved", "auto", "u42")
    assert (unmatched.status, unmatched.platform_user_id) == ("pending", None)
    stored = await verify_app.fresh_member(member.id)
    # Approved, then routed at once by sop_flows/routing.yaml (a reseller: segment reseller).
    assert (stored.status, stored.platform_user_id, stored.segment) == ("routed", "u42",
                                                                        "reseller")
    assert ("status", "approved", "review:auto") in await verify_app.history(member.id)
    assert ("platform_user_id", "u42", "verify") in await verify_app.history(member.id)
    assert (await verify_app.fresh_member(other.id)).status == "submitted"
    assert await verify_app.steps() == [steps.SUBMITTED, steps.APPROVED, steps.ROUTED,
                                        steps.SUBMITTED]
