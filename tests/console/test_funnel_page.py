"""/console/funnel: the numbers of the funnel events in the chosen period, grouped, as bars and
as a table."""

from __future__ import annotations

from datetime import datetime, timedelta
from html.parser import HTMLParser

from app.engine.db import utcnow
from app.faces.console.periods import SHANGHAI
from app.funnel.service import record
from tests.console.conftest import Console

# (step, app user, channel, Asia/Shanghai time): three users from douyin, two from the app.
EVENTS = [
    ("targeted", "u1", "douyin", "2026-11-10 09:00"),
    ("targeted", "u2", "douyin", "2026-11-10 10:00"),
    ("targeted", "u3", "douyin", "2026-11-11 23:59"),
    ("targeted", "u4", "app", "2026-11-12 00:00"),
    ("targeted", "u5", "app", "2026-11-12 08:00"),
    ("impression", "u1", "douyin", "2026-11-10 09:05"),
    ("impression", "u1", "douyin", "2026-11-10 09:06"),
    ("impression", "u2", "douyin", "2026-11-10 10:05"),
    ("impression", "u4", "app", "2026-11-12 00:05"),
    ("click", "u1", "douyin", "2026-11-10 09:10"),
    # Outside 2026-11-10 .. 2026-11-12: the last minute before, the first minute after.
    ("targeted", "u8", "douyin", "2026-11-09 23:59"),
    ("targeted", "u9", "app", "2026-11-13 00:00"),
]


def shanghai(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)


async def seed(console: Console, events: list[tuple[str, str, str, datetime]]) -> None:
    async with console.app.runtime.db.unit_of_work() as session:
        for n, (step, user, channel, at) in enumerate(events):
            await record(session, step, f"app:{n}", at, platform_user_id=user, channel=channel)


class FunnelParser(HTMLParser):
    """The numbers a browser would read: each chart's bars, and the table's count cells."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: dict[str, dict[str, tuple[int, str]]] = {}
        self.within: dict[str, dict[str, str]] = {}  # chart → step → the channels counted
        self.unknown: dict[str, dict[str, str]] = {}  # chart → step → 未分群
        self.table: dict[str, list[int]] = {}
        self.trends: dict[str, dict[str, list[str]]] = {}  # step → series → point titles
        self._chart: str | None = None
        self._row: str | None = None
        self._trend: tuple[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "figure" and "data-group" in a:
            self._chart = a["data-group"]
            self.charts[self._chart], self.within[self._chart] = {}, {}
            self.unknown[self._chart] = {}
        elif tag == "g" and "data-unknown" in a and self._chart:
            self.unknown[self._chart][a["data-step"]] = a["data-unknown"]
        elif tag == "g" and "data-step" in a and self._chart:
            self.charts[self._chart][a["data-step"]] = (int(a["data-count"]),
                                                        a["data-conversion"])
            if "data-within" in a:
                self.within[self._chart][a["data-step"]] = a["data-within"]
        elif tag == "figure" and "data-trend" in a:
            self._trend = (a["data-trend"], "")
            self.trends[a["data-trend"]] = {}
        elif tag == "g" and "data-series" in a and self._trend:
            self._trend = (self._trend[0], a["data-series"])
            self.trends[self._trend[0]][a["data-series"]] = []
        elif tag == "tr" and "data-step" in a:
            self._row = a["data-step"]
            self.table[self._row] = []
        elif tag == "td" and "data-count" in a and self._row:
            self.table[self._row].append(int(a["data-count"]))

    def handle_data(self, data: str) -> None:
        if self._trend and self._trend[1] and self.lasttag == "title" and data.strip():
            self.trends[self._trend[0]][self._trend[1]].append(data.strip())

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self._chart, self._trend = None, None


def parse(html: str) -> FunnelParser:
    parser = FunnelParser()
    parser.feed(html)
    return parser


async def test_custom_period_grouped_by_channel(console: Console) -> None:
    await seed(console, [(s, u, c, shanghai(t)) for s, u, c, t in EVENTS])
    page = await console.client.get("/console/funnel", params={
        "period": "custom", "start": "2026-11-10", "end": "2026-11-12", "by": "channel"})
    assert page.status_code == 200, page.text
    assert "2026-11-10 至 2026-11-12" in page.text
    found = parse(page.text)
    assert list(found.charts) == ["app", "douyin"]
    douyin, app = found.charts["douyin"], found.charts["app"]
    assert douyin["targeted"] == (3, "-")
    assert douyin["impression"] == (2, "66.7%")  # u1 twice counts once
    assert douyin["click"] == (1, "50.0%")
    assert douyin["landing"] == (0, "0.0%")
    assert app["targeted"] == (2, "-") and app["impression"] == (1, "50.0%")
    assert found.table["targeted"] == [2, 3] and found.table["impression"] == [1, 2]
    # The groups under funnel.yaml's labels.
    assert "App 内广告位（app）" in page.text and "抖音（douyin）" in page.text


async def test_one_day_and_all_events_together(console: Console) -> None:
    await seed(console, [(s, u, c, shanghai(t)) for s, u, c, t in EVENTS])
    page = await console.client.get("/console/funnel", params={
        "period": "custom", "start": "2026-11-10", "end": "2026-11-10"})
    found = parse(page.text)
    assert list(found.charts) == ["all"]
    whole = found.charts["all"]
    assert (whole["targeted"], whole["impression"], whole["click"]) == (
        (2, "-"), (2, "100.0%"), (1, "50.0%"))
    assert found.table["click"] == [1]


async def test_today_counts_from_midnight_in_shanghai(console: Console) -> None:
    now = utcnow()
    midnight = datetime.combine(now.astimezone(SHANGHAI).date(), datetime.min.time(), SHANGHAI)
    await seed(console, [("targeted", "u1", "douyin", now),
                         ("targeted", "u2", "douyin", midnight),
                         ("targeted", "u3", "douyin", midnight - timedelta(seconds=1))])
    today = parse((await console.client.get("/console/funnel?period=today")).text)
    week = parse((await console.client.get("/console/funnel?period=7d")).text)
    assert today.charts["all"]["targeted"][0] == 2
    assert week.charts["all"]["targeted"][0] == 3


async def test_an_empty_period_and_bad_choices(console: Console) -> None:
    empty = await console.client.get("/console/funnel?period=30d&by=region")
    assert empty.status_code == 200 and "这段时间没有漏斗数据" in empty.text
    for params, message in (({"period": "custom", "start": "2026-11-12", "end": "2026-11-10"},
                             "开始日期不能晚于结束日期"),
                            ({"period": "custom", "start": "", "end": "2026-11-10"},
                             "请填写开始日期"),
                            ({"period": "year"}, "未知的时间范围"),
                            ({"by": "city"}, "未知的分组方式")):
        page = await console.client.get("/console/funnel", params=params)
        assert page.status_code == 400 and message in page.text


# (step, subject, channel, slot, segment, Asia/Shanghai time): ten app users reach the landing
# page, four of them add; six add from douyin (no landing page); two are routed to shop_north.
READABLE = ([("landing", f"u{n}", "app", "home_popup", None, "2026-11-10 09:00")
             for n in range(10)]
            + [("friend_added", f"u{n}", "app", "home_popup", None, "2026-11-10 10:00")
               for n in range(4)]
            + [("friend_added", f"d{n}", "douyin", None, None, "2026-11-11 10:00")
               for n in range(6)]
            + [("routed", f"u{n}", "app", "home_popup", "shop_north", "2026-11-12 10:00")
               for n in range(2)])
THREE_DAYS = {"period": "custom", "start": "2026-11-10", "end": "2026-11-12"}


async def seed_readable(console: Console) -> None:
    async with console.app.runtime.db.unit_of_work() as session:
        for n, (step, user, channel, slot, segment, at) in enumerate(READABLE):
            await record(session, step, f"r:{n}", shanghai(at), platform_user_id=user,
                         channel=channel, slot=slot, segment=segment)


async def test_the_add_friend_rate_counts_only_channels_with_a_landing_page(
        console: Console) -> None:
    await seed_readable(console)
    whole = parse((await console.client.get("/console/funnel", params=THREE_DAYS)).text)
    # 4 of the app's 10 landings, not all 10 adds over 10 landings.
    assert whole.charts["all"]["friend_added"] == (10, "40.0%")
    assert whole.within["all"]["friend_added"] == "App 内广告位"
    by_channel = parse((await console.client.get(
        "/console/funnel", params=THREE_DAYS | {"by": "channel"})).text)
    assert by_channel.charts["app"]["friend_added"] == (4, "40.0%")
    assert by_channel.charts["douyin"]["friend_added"] == (6, "-")
    assert by_channel.within["app"] == {}


async def test_slots_and_empty_values_read_by_their_labels(console: Console) -> None:
    await seed_readable(console)
    page = await console.client.get("/console/funnel", params=THREE_DAYS | {"by": "slot"})
    assert "首页弹窗（home_popup）" in page.text and "无广告位" in page.text
    assert "未记录" not in page.text


async def test_steps_before_routing_show_as_not_segmented(console: Console) -> None:
    await seed_readable(console)
    page = await console.client.get("/console/funnel", params=THREE_DAYS | {"by": "segment"})
    found = parse(page.text)
    assert list(found.charts) == ["shop_north", "(none)"]
    north = found.unknown["shop_north"]
    assert north["friend_added"] == north["approved"] == "未分群"
    assert "friend_added" not in found.charts["shop_north"]  # no count, no 0 %
    assert found.charts["shop_north"]["routed"] == (2, "-")
    assert found.charts["(none)"]["friend_added"] == (10, "40.0%")
    assert found.unknown["(none)"]["routed"] == found.unknown["(none)"]["joined"] == "见各分群"
    assert "routed" not in found.charts["(none)"]  # not "0 · 0.0%" routed
    assert "本组只计分配社群之前的步骤" in page.text
    assert "实体店·北方群（shop_north）" in page.text
    assert "未记录" not in page.text


async def test_a_daily_trend_per_step(console: Console) -> None:
    await seed_readable(console)
    found_text = (await console.client.get("/console/funnel", params=THREE_DAYS)).text
    found = parse(found_text)
    # A chart per step someone took; the others are named in one line.
    assert list(found.trends) == ["landing", "friend_added", "routed"]
    assert "这段时间无人经过的步骤：目标用户、广告曝光、广告点击、欢迎语已发" in found_text
    assert found.trends["friend_added"]["all"] == [
        "11-10 全部：4 人", "11-11 全部：6 人", "11-12 全部：0 人"]
    by_channel = await console.client.get("/console/funnel", params=THREE_DAYS | {"by": "channel"})
    lines = parse(by_channel.text).trends["friend_added"]
    assert lines["douyin"] == ["11-10 抖音（douyin）：0 人", "11-11 抖音（douyin）：6 人",
                               "11-12 抖音（douyin）：0 人"]
    assert 'data-series="app"' in by_channel.text.split('class="charts trends"')[0]  # legend
    segments = parse((await console.client.get(
        "/console/funnel", params=THREE_DAYS | {"by": "segment"})).text).trends
    assert list(segments["friend_added"]) == ["(none)"]  # not a flat zero line for shop_north
    assert list(segments["routed"]) == ["shop_north"]  # no line where nobody was routed
    one_day = await console.client.get("/console/funnel", params={
        "period": "custom", "start": "2026-11-10", "end": "2026-11-10"})
    assert "data-trend" not in one_day.text and "选择多于一天的时间范围" in one_day.text


async def test_today_not_over_is_drawn_as_a_partial_day(console: Console) -> None:
    """A period up to now ends on today, counted only so far: a solid line down to today's
    few would read as a collapse (seen in the demo's console at 05:00)."""
    now = utcnow()
    async with console.app.runtime.db.unit_of_work() as session:
        for n, at in enumerate([now - timedelta(days=1)] * 5 + [now]):
            await record(session, "friend_added", f"p:{n}", at, platform_user_id=f"u{n}",
                         channel="app")
    page = (await console.client.get("/console/funnel", params={"period": "7d"})).text
    titles = parse(page).trends["friend_added"]["all"]
    assert titles[-1] == "今天 全部：1 人（截至现在）" and titles[-2].endswith("全部：5 人")
    chart = page.split('data-trend="friend_added"')[1].split("</figure>")[0]
    assert chart.count('class="partial"') == 2  # the dashed step and the hollow point
    assert "虚线与空心点：今天尚未结束" in page
    fixed = (await console.client.get("/console/funnel", params=THREE_DAYS)).text
    assert 'class="partial"' not in fixed  # a period with an end has no day in progress
