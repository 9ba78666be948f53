"""/console/rules: the group rules' ledger (newest first, filtered), phone numbers masked outside
the evidence view, the evidence view (a POST with the CSRF token), dismissing and confirming
strikes, and the praise candidates. The ledger is made by the rules step itself."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.archive.models import MemberStrike
from app.directory.models import PlatformUser
from app.engine.db import utcnow
from app.groups.models import CustomerGroup
from app.members.models import Member
from tests.archive.test_rules import OTHER, SPAMMER, Bot, Chat
from tests.conftest import OPERATOR
from tests.console.conftest import Console
from tests.console.tables import inputs, table_rows


async def seed(console: Console) -> dict[str, int]:
    """Three phone numbers in a group (the third crosses the owner's threshold), a strike in
    another group, and a member with enough contributions to be praised; strike ids by msgid."""
    db = console.app.runtime.db
    now = utcnow()
    async with db.unit_of_work() as session:
        session.add_all([
            CustomerGroup(chat_id="wrA", name="华北门店1群", owner="owner_a"),
            CustomerGroup(chat_id="wrB", name="华北门店2群", owner="owner_b"),
            Member(external_userid=SPAMMER, staff_userid="lisi", channel="douyin",
                   platform_user_id="p1", phone="13700001234"),
            PlatformUser(platform_user_id="p1", phone="13700001234", name="王老板"),
            *(MemberStrike(chat_id="wrA", userid=OTHER, msgid=f"c{n}", rule="answer",
                           kind="contribution", points=1, at=now - timedelta(days=n),
                           action="praise" if n == 0 else None) for n in range(5))])
    chat = Chat()
    await Bot(db).feed([chat.say(SPAMMER, f"联系我 1381234567{n}", seconds=60 * n)
                        for n in range(3)] + [chat.say(SPAMMER, "加微信 abc123", seconds=500,
                                                       chat_id="wrB")])
    async with db.reader() as session:
        return {s.msgid: s.id for s in await session.scalars(select(MemberStrike))}


async def statuses(console: Console) -> dict[int, tuple[str, str | None]]:
    async with console.app.runtime.db.reader() as session:
        return {s.id: (s.status, s.reviewed_by) for s in await session.scalars(
            select(MemberStrike).where(MemberStrike.kind == "violation"))}


async def test_ledger_evidence_and_decisions(console: Console) -> None:
    ids = await seed(console)
    page = await console.client.get("/console/rules")
    assert page.status_code == 200, page.text
    assert '<a href="/console/rules" class="current"' in page.text  # in the menu
    violations = table_rows(page.text, kind="violation")
    # Newest first (by the messages' times): the WeChat id in group 2, then the phones.
    assert [int(r.data["strike"]) for r in violations] == [ids["m4"], ids["m3"], ids["m2"],
                                                           ids["m1"]]
    crossing = violations[1]
    assert "王老板" in crossing.text and "华北门店1群" in crossing.text
    assert "发布手机号" in crossing.text and "已通知群主（待发送）" in crossing.text
    assert "138****5672" in crossing.text and "13812345672" not in page.text  # masked
    assert "群主待办" not in violations[2].text and "已通知" not in violations[2].text

    # Filters: by kind, group and status; a bad value is refused.
    contributions = await console.client.get("/console/rules", params={"kind": "contribution"})
    listed = [r for r in table_rows(contributions.text) if "strike" in r.data]
    assert len(listed) == 5 and {r.data["kind"] for r in listed} == {"contribution"}
    in_b = await console.client.get("/console/rules", params={"group": "wrB"})
    assert [int(r.data["strike"]) for r in table_rows(in_b.text, kind="violation")] == [ids["m4"]]
    bad = await console.client.get("/console/rules", params={"status": "gone"})
    assert bad.status_code == 400 and "未知的状态" in bad.text

    # Praise candidates: the member with 5 contribution points in group 1.
    candidates = [r for r in table_rows(page.text) if "candidate" in r.data]
    assert [(r.data["candidate"], r.data["chat"]) for r in candidates] == [(OTHER, "wrA")]
    assert candidates[0].cells[2] == "5"

    # The evidence whole: only with the session's CSRF token.
    form = {"id": str(ids["m3"])}
    refused = await console.client.post("/console/rules/evidence", data=form)
    assert refused.status_code == 403
    # Each row with text has its evidence form (contributions here have no archived text).
    assert [i["value"] for i in inputs(page.text, "id")] == [
        str(ids[m]) for m in ("m4", "m3", "m2", "m1")]
    shown = await console.post("/console/rules/evidence", form)
    assert shown.status_code == 200
    assert "联系我 13812345672" in shown.text and "本次查看已记录" in shown.text
    assert (await console.post("/console/rules/evidence", {"id": "999999"})).status_code == 404

    # Dismiss, then again (nothing left to dismiss), then confirm (active again).
    done = await console.post("/console/rules/decide", {
        "ids": str(ids["m3"]), "action": "dismiss", "group": "wrA"})
    assert done.status_code == 303 and done.headers["location"] == "/console/rules?group=wrA"
    assert (await statuses(console))[ids["m3"]] == ("dismissed", OPERATOR)
    after = await console.client.get(done.headers["location"])
    assert "已驳回 1 条记录" in after.text
    row = table_rows(after.text, strike=str(ids["m3"]))[0]
    assert row.data["status"] == "dismissed" and f"您（{OPERATOR}）" in row.text
    again = await console.post("/console/rules/decide", {"ids": str(ids["m3"]),
                                                         "action": "dismiss"})
    notice = await console.client.get(again.headers["location"])
    assert "没有驳回任何记录" in notice.text and f"#{ids['m3']}" in notice.text
    await console.post("/console/rules/decide", {"ids": str(ids["m3"]), "action": "confirm"})
    assert (await statuses(console))[ids["m3"]] == ("active", OPERATOR)
    # A decision without the CSRF token, or with an unknown action, changes nothing.
    forged = await console.client.post("/console/rules/decide", data={
        "ids": str(ids["m1"]), "action": "dismiss"})
    assert forged.status_code == 403
    unknown = await console.post("/console/rules/decide", {"ids": str(ids["m1"]),
                                                           "action": "delete"})
    assert unknown.status_code == 400
    assert (await statuses(console))[ids["m1"]] == ("active", None)
