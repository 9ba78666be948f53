"""/console/funnel: the numbers of the funnel events in the chosen period, grouped, as bars and
as a table."""

from __future__ import annotations

from datetime import datetime, timedelta
from html.parser import HTMLParser

from app.console.periods import SHANGHAI
from app.db import utcnow
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
    async with console.app.services.db.unit_of_work() as session:
        for n, (step, user, channel, at) in enumerate(events):
            await record(session, step, f"app:{n}", at, platform_user_id=user, channel=channel)


class FunnelParser(HTMLParser):
    """The numbers a browser would read: each chart's bars, and the table's count cells."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: dict[str, dict[str, tuple[int, str]]] = {}
        self.table: dict[str, list[int]] = {}
        self._chart: str | None = None
        self._row: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "figure" and "data-group" in a:
            self._chart = a["data-group"]
            self.charts[self._chart] = {}
        elif tag == "g" and "data-step" in a and self._chart:
            self.charts[self._chart][a["data-step"]] = (int(a["data-count"]),
                                                        a["data-conversion"])
        elif tag == "tr" and "data-step" in a:
            self._row = a["data-step"]
            self.table[self._row] = []
        elif tag == "td" and "data-count" in a and self._row:
            self.table[self._row].append(int(a["data-count"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self._chart = None


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
