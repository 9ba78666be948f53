"""/console/keywords: each rule's hits in a period and the unanswered questions, repeated ones
counted together; the period, segment and order filters. One test goes through the real
微信客服 path (the simulator's callbacks, the kf reader, the keyword handler)."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.engine.db import utcnow
from app.faces.console.periods import SHANGHAI
from app.kf.models import KeywordHit, UnansweredQuestion
from tests.conftest import OPERATOR, serve_app, wait_until
from tests.console.conftest import PASSWORD, Console, console_settings, give_password, logged_in
from tests.console.tables import marked, table_rows
from tests.e2e.sim_server import AES_KEY, CORP_ID, SECRET, TOKEN, running_sim

KF = "wkSimKf0001"


def at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)


async def seed(console: Console) -> None:
    now = utcnow()
    async with console.app.runtime.db.unit_of_work() as session:
        for rule_id, customer, segment, when in (
                ("shipping", "wm1", "shop_north", now - timedelta(hours=1)),
                ("shipping", "wm1", "shop_north", now - timedelta(hours=2)),
                ("shipping", "wm2", None, now - timedelta(days=2)),
                ("refund", "wm3", "online", now - timedelta(days=3)),
                ("refund", "wm3", "online", now - timedelta(days=20)),  # only in 30 days
                ("old_rule", "wm4", None, now - timedelta(days=1))):  # no longer in the file
            session.add(KeywordHit(rule_id=rule_id, segment=segment, external_userid=customer,
                                   at=when))
        for text, customer, segment, when in (
                ("可以开ＶＡＴ发票吗", "wm5", "online", now - timedelta(hours=5)),
                ("可以开vat发票吗", "wm6", None, now - timedelta(hours=3)),
                ("可以开VAT发票吗", "wm5", "online", now - timedelta(days=4)),
                ("周末发货吗", "wm7", "shop_north", now - timedelta(hours=1)),
                ("有样品吗", "wm8", None, now - timedelta(days=10))):  # only in 30 days
            session.add(UnansweredQuestion(open_kfid=KF, external_userid=customer,
                                           segment=segment, text=text, at=when))


def rules(html: str) -> dict[str, str]:
    return {r.data["rule"]: r.data["hits"] for r in table_rows(html) if "rule" in r.data}


def questions(html: str) -> list[tuple[str, int]]:
    return [(r.cells[0], int(r.data["count"])) for r in table_rows(html) if "question" in r.data]


def totals(html: str) -> dict[str, str]:
    return {item["data-total"]: item["data-count"] for item in marked(html, "total")}


async def test_hits_per_rule_and_questions_counted_together(console: Console) -> None:
    await seed(console)
    page = await console.client.get("/console/keywords")  # the last 7 days
    assert page.status_code == 200, page.text
    hits = rules(page.text)
    assert list(hits)[:3] == ["shipping", "refund", "old_rule"]  # most hit first
    assert (hits["shipping"], hits["refund"], hits["old_rule"]) == ("3", "1", "1")
    assert hits["verify"] == "0"  # a rule of keywords.yaml nobody asked for is shown too
    [old] = table_rows(page.text, rule="old_rule")
    assert "已不在 keywords.yaml 中" in old.text
    [shipping] = table_rows(page.text, rule="shipping")
    assert "发货、物流、快递、几天到" in shipping.text and shipping.cells[-1] == "2"  # customers
    # Newest first; width and case do not make another question; the newest wording is shown.
    assert questions(page.text) == [("周末发货吗", 1), ("可以开vat发票吗", 3)]
    [vat] = table_rows(page.text, question="2")
    assert vat.cells[2] == "2" and vat.cells[3] == "网店群"  # two askers, one segment known
    assert totals(page.text) == {"hits": "5", "unanswered": "4", "answered": "55.6%"}


async def test_period_segment_and_order(console: Console) -> None:
    await seed(console)
    month = await console.client.get("/console/keywords", params={"period": "30d",
                                                                  "order": "count"})
    assert rules(month.text)["refund"] == "2"
    assert questions(month.text) == [("可以开vat发票吗", 3), ("周末发货吗", 1), ("有样品吗", 1)]
    north = await console.client.get("/console/keywords", params={"segment": "shop_north"})
    assert rules(north.text)["shipping"] == "2" and rules(north.text)["refund"] == "0"
    assert questions(north.text) == [("周末发货吗", 1)]
    unsegmented = await console.client.get("/console/keywords", params={"segment": "none"})
    assert rules(unsegmented.text)["shipping"] == "1"
    assert questions(unsegmented.text) == [("可以开vat发票吗", 1)]
    today = datetime.now(SHANGHAI).date()
    custom = await console.client.get("/console/keywords", params={
        "period": "custom", "start": str(today - timedelta(days=60)),
        "end": str(today - timedelta(days=8))})
    assert questions(custom.text) == [("有样品吗", 1)]
    assert rules(custom.text)["refund"] == "1"
    for params, message in (({"period": "year"}, "未知的时间范围"),
                            ({"segment": "mars"}, "未知的分群或排序"),
                            ({"order": "random"}, "未知的分群或排序")):
        bad = await console.client.get("/console/keywords", params=params)
        assert bad.status_code == 400 and message in bad.text


async def test_questions_asked_in_kf_show_on_the_page(db_url: str) -> None:
    async with running_sim(SOPBOT_SIM_KF_ACCOUNTS=KF) as sim:
        settings = console_settings(db_url, corp_id=CORP_ID, callback_token=TOKEN,
                                    callback_aes_key=AES_KEY, agent_secret=SECRET,
                                    api_base=sim.base_url, outbox_retry_base_s=0.05)
        async with serve_app(settings, simulator=True) as app:
            sim.sim.callbacks.bot_url = f"{app.base_url}/wecom/callback"
            await give_password(app, OPERATOR, PASSWORD)
            console = await logged_in(app, app.client)
            for customer, text in (("wmKwA", "几天到货？"), ("wmKwB", "能开发票吗"),
                                   ("wmKwC", "能开发票吗")):
                await sim.scenario("kf_message", open_kfid=KF, external_userid=customer,
                                   text=text)

            async def recorded() -> bool:
                page = await console.client.get("/console/keywords")
                return rules(page.text).get("shipping") == "1" and bool(questions(page.text))
            await wait_until(recorded, 10)
            await app.idle()
            page = await console.client.get("/console/keywords", params={"period": "today"})
    assert rules(page.text)["shipping"] == "1"
    assert questions(page.text) == [("能开发票吗", 2)]
