"""/console/funnel's section 推荐官转化: each recommender's referral steps in the chosen period
(app/koc/funnel_steps.py), named by group nickname, rejections by reason in Chinese; absent
without sop_flows/koc.yaml."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

from app.members.models import Member
from tests.console.conftest import Console
from tests.koc.people import T0, recommender
from tests.koc.referred import flag, nickname, referred, settle

ROW = re.compile(r'<tr data-referrer="(\d+)">(.*?)</tr>', re.S)
CELL = re.compile(r'data-step="(\w+)"[^>]*>(\d+)')
NOVEMBER = {"period": "custom", "start": "2026-11-01", "end": "2026-11-30"}


def referrers(html: str) -> dict[int, dict[str, int]]:
    """Each recommender's row: step → count."""
    return {int(member): {step: int(n) for step, n in CELL.findall(cells)}
            for member, cells in ROW.findall(html)}


async def test_the_section_counts_each_recommenders_referees_in_the_period(
        console: Console) -> None:
    db = console.app.runtime.db
    star, quiet = await recommender(db), await recommender(db)
    async with db.reader() as session:
        owner = await session.get(Member, star.member_id)
    assert owner is not None
    await nickname(db, owner, "小王")
    for n in range(2):
        await referred(db, star, T0 + timedelta(hours=n), phone=f"13{n}12345678")
    await referred(db, star, T0 + timedelta(hours=3), identity="consumer", status="rejected",
                   link_state=None)
    await flag(db, quiet, "burst")
    await referred(db, quiet, T0 - timedelta(days=30))  # October: not in the period
    await settle(db)
    page = await console.client.get("/console/funnel", params=NOVEMBER)
    assert page.status_code == 200, page.text
    assert "推荐官转化" in page.text
    rows = referrers(page.text)
    assert list(rows) == [star.member_id, quiet.member_id]
    assert rows[star.member_id] == {"referred": 3, "verified": 2, "joined": 2, "credited": 2,
                                    "flagged": 0, "pending": 0, "rejected": 1}
    assert rows[quiet.member_id]["referred"] == 1 and rows[quiet.member_id]["flagged"] == 1
    assert f"#{star.member_id} 小王</a>" in page.text and "66.7%" in page.text
    assert "（消费者 1）" in page.text


async def test_an_empty_period_says_so_and_without_koc_yaml_there_is_no_section(
        console: Console) -> None:
    page = await console.client.get("/console/funnel", params=NOVEMBER)
    assert 'data-referrers="0"' in page.text and "推荐官转化" in page.text
    runtime = console.app.runtime
    runtime.flows = replace(runtime.flows, koc=None)
    page = await console.client.get("/console/funnel", params=NOVEMBER)
    assert page.status_code == 200 and "推荐官转化" not in page.text
