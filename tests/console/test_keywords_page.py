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


def hot(html: str) -> dict[str, list[tuple[str, int, str]]]:
    """The groups' hot questions per segment: (text, count, covering rule)."""
    found: dict[str, list[tuple[str, int, str]]] = {}
    for row in table_rows(html):
        if "hot" in row.data:
            found.setdefault(row.data["hot"], []).append(
                (row.cells[0], int(row.data["count"]), row.data["covered"]))
    return found


def group_hits(html: str) -> dict[str, str]:
    return {r.data["rule"]: r.cells[-1] for r in table_rows(html) if "rule" in r.data}


async def archive_seed(console: Console) -> None:
    """A chat archive read here: groups of two segments and one without, their questions
    (answered or not within 30 minutes) and messages that hit keyword rules."""
    from app.archive.models import ArchiveReader
    from app.engine.wecom.archive_events import SEND, ArchiveMessage
    from app.groups.models import CustomerGroup
    from tests.archive.test_questions import feed

    db = console.app.runtime.db
    async with db.unit_of_work() as session:
        session.add(ArchiveReader(corp_id="wwcorp"))
        for chat_id, segment in (("wrN", "shop_north"), ("wrO", "online"), ("wrX", None)):
            session.add(CustomerGroup(chat_id=chat_id, segment=segment, name=chat_id,
                                      owner="zhangsan", status="live"))
    now = utcnow()
    said = [("wrN", "wmA", "可以开VAT发票吗？", 180), ("wrN", "wmB", "可以开 vat 发票吗", 170),
            ("wrN", "wmC", "周末发货吗？", 160), ("wrO", "wmD", "样品怎么申请？", 100),
            ("wrO", "wmE", "有没有夏季新款？", 140), ("wrO", "zhangsan", "下周上新", 139),
            ("wrX", "wmF", "退货运费谁出？", 120), ("wrN", "wmG", "快递到了", 110),
            ("wrO", "wmH", "样品怎么申请", 20 * 24 * 60)]  # only in 30 days
    await feed(db, [ArchiveMessage(n, f"a{n}", SEND, sender, chat_id,
                                   now - timedelta(minutes=minutes), "text", text)
                    for n, (chat_id, sender, text, minutes) in enumerate(said, 1)])


async def test_the_groups_hot_questions_beside_the_rules(console: Console) -> None:
    import html as html_lib
    import re

    import yaml

    from app.keywords.matcher import Matcher
    from app.keywords.rules import Rule

    off = await console.client.get("/console/keywords")
    assert off.status_code == 200 and marked(off.text, "archive")[0]["data-archive"] == "off"
    assert "未配置会话内容存档" in off.text and "群内命中" not in off.text
    await archive_seed(console)
    page = await console.client.get("/console/keywords")
    assert page.status_code == 200, page.text
    assert not marked(page.text, "archive")
    # Per segment, most asked first; a covered one names its rule, the others are suggested.
    assert hot(page.text) == {
        "shop_north": [("可以开 vat 发票吗", 2, ""), ("周末发货吗？", 1, "shipping")],
        "online": [("样品怎么申请？", 1, "")], "": [("退货运费谁出？", 1, "refund")]}
    assert [m["data-hot-segment"] for m in marked(page.text, "hot-segment")] == [
        "shop_north", "online", ""]
    assert "网店群" in page.text and "未分群的群" in page.text
    assert totals(page.text)["group_unanswered"] == "5"
    # The groups' keyword hits beside each rule's kf hits.
    hits = group_hits(page.text)
    assert (hits["shipping"], hits["refund"], hits["verify"]) == ("2", "1", "0")
    # A suggestion is a keywords.yaml rule that answers the question once pasted.
    [north] = re.findall(r'<details class="card" data-suggestions="shop_north">(.*?)</details>',
                         page.text, re.S)
    [snippet] = [html_lib.unescape(s) for s in re.findall(r"<pre[^>]*>(.*?)</pre>", north, re.S)]
    [rule] = yaml.safe_load(snippet)
    parsed = Rule.model_validate(rule)
    assert parsed.keywords == ("可以开 vat 发票吗",) and parsed.id.startswith("group_")
    assert Matcher((parsed,)).match("可以开 VAT 发票吗？") == parsed
    # The segment and the period filter them as they do the rest of the page.
    online = await console.client.get("/console/keywords", params={"segment": "online"})
    assert list(hot(online.text)) == ["online"] and group_hits(online.text)["shipping"] == "0"
    loose = await console.client.get("/console/keywords", params={"segment": "none"})
    assert list(hot(loose.text)) == [""] and group_hits(loose.text)["refund"] == "1"
    month = await console.client.get("/console/keywords", params={"period": "30d"})
    assert hot(month.text)["online"] == [("样品怎么申请？", 2, "")]


async def test_a_phone_number_in_a_group_question_is_masked(console: Console) -> None:
    from app.engine.wecom.archive_events import SEND, ArchiveMessage
    from tests.archive.test_questions import feed

    await archive_seed(console)
    await feed(console.app.runtime.db, [ArchiveMessage(
        99, "a99", SEND, "wmJ", "wrX", utcnow() - timedelta(minutes=90), "text",
        "我的电话13812345678，能回个电话吗？")])
    page = await console.client.get("/console/keywords")
    assert "138****5678" in page.text  # shown, masked: the number is evidence-view only
    assert "13812345678" not in page.text
