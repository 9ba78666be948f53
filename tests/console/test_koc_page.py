"""/console/koc (推荐官): the leaderboard (most credited first, phones masked), the reward
ledger's decisions, flagged referrals credited or rejected, a credit revoked with a reason,
KOC candidates promoted (only once `sopbot tags sync` made the tag) and given a topic, a member
nominated, and the page without sop_flows/koc.yaml. The data is made by the domain itself."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

from app.calendar.models import ContentItem
from app.engine.db import Database
from app.engine.outbox.models import OutboxMessage
from app.koc import referrals
from app.koc.models import KocMember, Recommender, Referral, ReferralCredit, Reward
from app.members.models import Member
from app.routing.models import CorpTag
from tests.conftest import OPERATOR, REPO, rows_of, serve_app
from tests.console.conftest import (
    PASSWORD,
    Console,
    console_settings,
    give_password,
    logged_in,
)
from tests.console.tables import table_rows
from tests.koc.people import T0, koc, member, recommender

PAGE = "/console/koc"


async def refer(db: Database, rec: Recommender, who: Member) -> None:
    async with db.unit_of_work() as session:
        row = await session.get(Member, who.id)
        assert row is not None
        await referrals.touch(session, row, koc().state_of(rec.short_id), T0, koc(),
                              new_member=True)


async def seed(db: Database) -> tuple[Recommender, Recommender]:
    """A star with three credited friends (bronze earned) and a recommender whose four friends
    share a phone range (flagged)."""
    star = await recommender(db, await member(db, phone="13811110001"))
    for phone in ("13511112222", "13622223333", "13733334444"):
        await refer(db, star, await member(db, phone=phone))
    ranged = await recommender(db, await member(db, phone="13911110002"))
    for n in range(4):
        await refer(db, ranged, await member(db, phone=f"1590000{n:04d}"))
    async with db.unit_of_work() as session:
        await referrals.settle(session, T0 + timedelta(hours=1), koc())
    return star, ranged


async def by_status(db: Database) -> dict[int, str]:
    return {r.id: r.status for r in await rows_of(db, Referral)}


async def notice_after(console: Console, response) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == 303, response.text
    page = await console.client.get(response.headers["location"])
    notice = [line for line in page.text.splitlines() if "data-notice" in line]
    return notice[0] if notice else ""


async def test_leaderboard_and_referral_decisions(console: Console) -> None:
    db = console.app.runtime.db
    star, ranged = await seed(db)
    page = await console.client.get(PAGE)
    assert page.status_code == 200, page.text
    assert f'<a href="{PAGE}" class="current"' in page.text  # in the menu
    board = table_rows(page.text, recommender=str(star.id)) + table_rows(
        page.text, recommender=str(ranged.id))
    assert [r.data["recommender"] for r in table_rows(page.text) if "recommender" in r.data] \
        == [str(star.id), str(ranged.id)]  # most credited first
    assert board[0].cells[4:8] == ["3", "3", "0", "0"]
    assert board[1].cells[4:8] == ["4", "0", "4", "0"]
    assert "50 元进货券：待审批" in board[0].text
    assert "138****0001" in page.text and "13811110001" not in page.text  # masked
    listed = [r for r in table_rows(page.text) if "referral" in r.data]
    assert [r.data["status"] for r in listed[:4]] == ["flagged"] * 4  # flagged first
    flagged = [int(r.data["referral"]) for r in listed[:4]]

    credited = await console.post(f"{PAGE}/referrals", {"id": str(flagged[0]),
                                                        "action": "credit"})
    assert f"推荐 #{flagged[0]} 已计入" in await notice_after(console, credited)
    rejected = await console.post(f"{PAGE}/referrals", {"id": str(flagged[1]),
                                                        "action": "reject", "referral": "flagged"})
    assert rejected.headers["location"] == f"{PAGE}?referral=flagged"
    assert "已驳回" in await notice_after(console, rejected)
    again = await console.post(f"{PAGE}/referrals", {"id": str(flagged[1]), "action": "credit"})
    assert "未改动" in await notice_after(console, again)
    statuses = await by_status(db)
    assert (statuses[flagged[0]], statuses[flagged[1]]) == ("credited", "rejected")
    # Without the CSRF token nothing happens.
    forged = await console.client.post(f"{PAGE}/referrals", data={"id": str(flagged[2]),
                                                                  "action": "credit"})
    assert forged.status_code == 403 and (await by_status(db))[flagged[2]] == "flagged"

    # Revoking a credit needs a reason; then it no longer counts, for good.
    missing = await console.post(f"{PAGE}/revoke", {"id": str(flagged[0]), "reason": " "})
    assert missing.status_code == 400 and "需要填写原因" in missing.text
    revoked = await console.post(f"{PAGE}/revoke", {"id": str(flagged[0]),
                                                    "reason": "假店铺 13912345678"})
    assert "已撤销" in await notice_after(console, revoked)
    credit = next(c for c in await rows_of(db, ReferralCredit) if c.referral_id == flagged[0])
    assert (credit.revoked_by, credit.revoke_reason) == (OPERATOR, "假店铺 13912345678")
    after = await console.client.get(PAGE)
    row = table_rows(after.text, referral=str(flagged[0]))[0]
    assert "已撤销" in row.text and "139****5678" in row.text and "13912345678" not in after.text
    assert table_rows(after.text, recommender=str(ranged.id))[0].cells[5] == "0"
    twice = await console.post(f"{PAGE}/revoke", {"id": str(flagged[0]), "reason": "x"})
    assert "之前已被撤销" in await notice_after(console, twice)


async def test_the_reward_ledger_approve_issue_decline(console: Console) -> None:
    db = console.app.runtime.db
    await seed(db)
    reward, = await rows_of(db, Reward)
    page = await console.client.get(PAGE, params={"reward": "earned"})
    assert [r.data["reward"] for r in table_rows(page.text) if "reward" in r.data] == [
        str(reward.id)]
    issued_first = await console.post(f"{PAGE}/rewards", {"ids": str(reward.id),
                                                          "action": "issued"})
    assert "没有标记已发放任何奖励" in await notice_after(console, issued_first)
    approved = await console.post(f"{PAGE}/rewards", {"ids": str(reward.id),
                                                      "action": "approve", "note": "核对无误"})
    assert "已批准 1 条奖励" in await notice_after(console, approved)
    done = await console.post(f"{PAGE}/rewards", {"ids": str(reward.id), "action": "issued"})
    assert "已标记已发放 1 条奖励" in await notice_after(console, done)
    reward, = await rows_of(db, Reward)
    assert (reward.status, reward.decided_by, reward.issued_by, reward.note) == (
        "issued", OPERATOR, f"hand:{OPERATOR}", "核对无误")
    late = await console.post(f"{PAGE}/rewards", {"ids": str(reward.id), "action": "decline"})
    assert f"#{reward.id} 的状态不允许拒绝" in await notice_after(console, late)
    shown = table_rows((await console.client.get(PAGE)).text, reward=str(reward.id))[0]
    assert "已发放" in shown.text and "手动" in shown.text
    bad = await console.post(f"{PAGE}/rewards", {"ids": str(reward.id), "action": "pay"})
    assert bad.status_code == 400
    filtered = await console.client.get(PAGE, params={"reward": "gone"})
    assert filtered.status_code == 400 and "未知的奖励状态" in filtered.text


async def test_candidates_promotion_and_topics(console: Console) -> None:
    db = console.app.runtime.db
    star, _ = await seed(db)
    page = await console.client.get(PAGE)
    candidate = table_rows(page.text, candidate=str(star.member_id))[0]
    assert candidate.data["koc"] == "no" and candidate.cells[1] == "9"  # 3 credited × 3
    # Named like everywhere else on the page: #id and the masked phone (no nickname here).
    assert candidate.cells[0].startswith(f"#{star.member_id} 138****0001")
    form = {"member_id": str(star.member_id), "action": "promote"}
    untagged = await console.post(f"{PAGE}/kocs", form)
    assert untagged.status_code == 409 and "sopbot tags sync" in untagged.text
    assert await rows_of(db, KocMember) == []
    async with db.unit_of_work() as session:
        session.add(CorpTag(dimension="koc", value="koc", tag_id="etKOC", group_id="etG",
                            synced_at=T0))
    assert "已设为 KOC" in await notice_after(console, await console.post(f"{PAGE}/kocs", form))
    tagged = [json.loads(r.request) for r in await rows_of(db, OutboxMessage)]
    assert [t.get("add_tag") for t in tagged] == [["etKOC"]]
    page = await console.client.get(PAGE)
    assert table_rows(page.text, candidate=str(star.member_id))[0].data["koc"] == "yes"
    assert table_rows(page.text, koc_member=str(star.member_id))

    topic = await console.post(f"{PAGE}/assign", {"member_id": str(star.member_id),
                                                  "kind": "topic", "title": "冬季备货怎么选"})
    assert "话题讨论「冬季备货怎么选」" in await notice_after(console, topic)
    item, = await rows_of(db, ContentItem)
    assert (item.column_name, item.title) == ("topic", "冬季备货怎么选")
    not_koc = await console.post(f"{PAGE}/assign", {"member_id": str(star.member_id + 1),
                                                    "kind": "guest", "title": "分享"})
    assert not_koc.status_code == 409 and "不是 KOC" in not_koc.text
    empty = await console.post(f"{PAGE}/assign", {"member_id": str(star.member_id),
                                                  "kind": "guest", "title": "  "})
    assert empty.status_code == 400
    demoted = await console.post(f"{PAGE}/kocs", form | {"action": "demote"})
    assert "已取消 KOC" in await notice_after(console, demoted)
    assert [k.status for k in await rows_of(db, KocMember)] == ["former"]


async def test_nominating_a_member(console: Console) -> None:
    db = console.app.runtime.db
    consumer = await member(db, identity="consumer", status="rejected", link_state=None)
    refused = await console.post(f"{PAGE}/nominate", {"member_id": str(consumer.id)})
    assert refused.status_code == 409 and "还不能成为推荐官" in refused.text
    unknown = await console.post(f"{PAGE}/nominate", {"member_id": "999999"})
    assert unknown.status_code == 404
    assert await rows_of(db, Recommender) == []

    shop = await member(db)
    coming = await console.post(f"{PAGE}/nominate", {"member_id": str(shop.id)})
    assert "推荐码生成后将自动发送" in await notice_after(console, coming)
    rec, = await rows_of(db, Recommender)
    assert (rec.member_id, rec.source, rec.code) == (shop.id, f"nominated:{OPERATOR}",
                                                     "requested")
    assert [r.kind for r in await rows_of(db, OutboxMessage)] == ["koc_code"]

    ready = await recommender(db)  # its code made already: sent again, to the staff member
    again = await console.post(f"{PAGE}/nominate", {"member_id": str(ready.member_id)})
    assert "推荐码已重新发送（通过对接员工转发）" in await notice_after(console, again)
    sent = [r for r in await rows_of(db, OutboxMessage) if r.kind == "koc_code_delivery"]
    assert len(sent) == 1 and f"/koc/r/{ready.short_id}" in json.loads(sent[0].request)[
        "text"]["content"]


async def test_without_koc_yaml_the_page_says_the_programme_is_off(
        db_url: str, tmp_path: Path) -> None:
    flows = tmp_path / "sop_flows"
    shutil.copytree(REPO / "sop_flows", flows)
    (flows / "koc.yaml").unlink()
    async with serve_app(console_settings(db_url, flows_path=flows), run_worker=False) as app:
        await give_password(app, OPERATOR, PASSWORD)
        console = await logged_in(app, app.client)
        page = await console.client.get(PAGE)
        assert page.status_code == 200 and "推荐官计划未开启" in page.text
        assert "data-koc-section" not in page.text
        shop = await member(app.runtime.db)
        refused = await console.post(f"{PAGE}/nominate", {"member_id": str(shop.id)})
        assert refused.status_code == 409 and "推荐官计划未开启" in refused.text
        assert await rows_of(app.runtime.db, Recommender) == []


async def test_a_rank_reward_names_its_month_and_segment(console: Console) -> None:
    """Each segment has its own first place: the ledger must say which."""
    db = console.app.runtime.db
    north, south = await seed(db)
    async with db.unit_of_work() as session:
        for rec, segment in ((north, "shop_north"), (south, "shop_south")):
            session.add(Reward(key=f"rank:2026-11:{segment}:1", recommender_id=rec.id,
                               kind="rank", name="top1", label="月度推荐之星一等奖",
                               period="2026-11", status="earned", earned_at=T0, attempts=0))
    page = await console.client.get(PAGE, params={"reward": "earned"})
    labels = console.app.runtime.flows.routing.segment_labels()
    ranks = [r.text for r in table_rows(page.text) if "reward" in r.data and "排名" in r.text]
    assert len(ranks) == 2
    assert {segment for segment in ("shop_north", "shop_south")
            if any(f"2026-11 · {labels[segment]}" in text for text in ranks)} == {
        "shop_north", "shop_south"}
