"""What the calendar page shows: the coming days' plan (app/calendar/preview.py's, the same as
`sopbot calendar preview`) with what became of each delivery already due, the deliveries
recorded in a period with their outbox and mass-task status, and the owners' confirmation
rates (app/calendar/tracking.py's). Read from the database only: nothing here calls WeCom."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.calendar import tracking
from app.calendar.flows import WEEKDAYS, CalendarFlows
from app.calendar.models import CalendarPost, GroupDay
from app.calendar.planner import APPCHAT, MASS_TASK, OWNER_REMINDER, ROBOT
from app.calendar.posting import QUEUED, SKIPPED, delivery_key
from app.calendar.preview import PlanDay, Planned, plan, short
from app.calendar.talk_invites import INVITATION
from app.calendar.talks import NEWCOMER_QA, Talk, TalkFlows, step_label
from app.engine.outbox.models import OutboxMessage
from app.faces.console.pages.outbox_view import STATUS_LABELS as OUTBOX_LABELS
from app.faces.console.times import NONE, local, local_day
from app.flows import Flows
from app.groups.models import CustomerGroup

TRANSPORT_LABELS = {MASS_TASK: "群发任务", OWNER_REMINDER: "提醒群主", ROBOT: "群机器人",
                    APPCHAT: "应用群聊", INVITATION: "个人邀请"}
TASK_LABELS = {tracking.CREATED: "待群主确认", tracking.REMINDED: "已提醒群主",
               tracking.CONFIRMED: "群主已发送", tracking.MISSED: "超时未发送",
               tracking.FAILED: "创建失败"}
RECORD_LABELS = {QUEUED: "已排队", SKIPPED: "已跳过"}
GREETINGS = {"morning": "早安", "evening": "晚安"}
DAYS = 7  # the plan ahead: today and the 6 days after
TEXT_SHOWN = 40
HISTORY_SHOWN = 500


# posting.py's skip reasons (English, as logged), by how they start.
SKIP_REASONS = {
    "missed": "错过时间（超过补发宽限）",
    "robot not configured": "群机器人未配置（SOPBOT_ROBOTS）",
    "its groups had today's mass message": "这些群今天已收到过群发",
    "the column's content queue is empty": "栏目暂无内容",
    "WECOM_AGENT_ID": "未设置 WECOM_AGENT_ID",
    "cannot be sent": "内容无法发送（如超长）",
}


def skip_reason(reason: str | None) -> str:
    """A skip reason in Chinese (the page shows the stored one on hover), or as stored."""
    text = reason or ""
    return next((label for start, label in SKIP_REASONS.items() if text.startswith(start)), text)


def post_label(calendar: CalendarFlows, segment: str, name: str,
               talks: TalkFlows | None = None) -> str:
    """A post's name (morning, slot1, sop.7d.d3+21d.d1, talk.qa_north.announce) as operators
    know it."""
    if name in GREETINGS:
        return GREETINGS[name]
    if (talk := step_label(talks, name)) is not None:
        return talk
    if name.startswith("slot") and name[4:].isdigit():
        slots = calendar.segments[segment].slots if segment in calendar.segments else ()
        n = int(name[4:])
        return calendar.columns.get(slots[n].column, name) if n < len(slots) else name
    if "+" in name or name.startswith("announce"):  # a group's own posts of the day
        return " + ".join(_own_label(part) for part in name.split("+"))
    if name.startswith("sop."):
        return _own_label(name)
    return name


def _own_label(part: str) -> str:
    """announce12 (an operator's announcement), sop.7d.d3 (onboarding: campaign, day)."""
    if part.startswith("announce"):
        return f"公告 #{part.removeprefix('announce')}"
    campaign, _, day = part.removeprefix("sop.").rpartition(".d")
    return f"新人期 {campaign} 第{day}天" if campaign else part


def posts_label(calendar: CalendarFlows, segment: str, names: str,
                talks: TalkFlows | None = None) -> str:
    return "、".join(post_label(calendar, segment, n, talks) for n in names.split(",") if n)


@dataclass(frozen=True)
class Recorded:
    """What became of a delivery: the calendar_post row and its outbox row's status."""

    status: str
    reason: str | None
    task_status: str | None
    outbox: str | None

    @property
    def label(self) -> str:
        if self.status == SKIPPED:
            return f"已跳过：{skip_reason(self.reason)}"
        outbox = OUTBOX_LABELS.get(self.outbox or "", "")
        return "已排队" + (f"，发件箱：{outbox}" if outbox else "")

    @property
    def task_label(self) -> str:
        return TASK_LABELS.get(self.task_status or "", NONE)


@dataclass(frozen=True)
class PlanText:
    what: str  # the post, as operators name it
    text: str | None  # its first line; None once sent (the preview's would be a guess)
    empty: bool = False  # the column's queue is empty: the slot will be skipped
    generated: bool = False  # ... but sopbot fills it on its day (the 光荣榜)


@dataclass(frozen=True)
class PlanRow:
    time: str
    segment: str
    transport: str
    target: str
    groups: str  # how many groups, or the onboarding group's name
    texts: list[PlanText]
    due: bool  # its time has passed
    recorded: Recorded | None

    @property
    def state(self) -> str:
        if self.recorded is not None:
            return self.recorded.label
        return "时间已过，未记录" if self.due else "计划中"


@dataclass(frozen=True)
class DayView:
    day: str
    weekday: str
    rows: list[PlanRow]


async def plan_views(session: AsyncSession, calendar: CalendarFlows, days: list[PlanDay],
                     names: dict[str, str], now: datetime,
                     talks: TalkFlows | None = None) -> list[DayView]:
    """The plan, each delivery beside what became of it if its time came."""
    keys = [delivery_key(p.delivery) for d in days for s in d.segments for p in s.deliveries]
    recorded = await recorded_by_key(session, keys)
    return [DayView(f"{d.day:%Y-%m-%d}", d.weekday,
                    [_plan_row(calendar, p, names, now, recorded.get(delivery_key(p.delivery)),
                               talks)
                     for p in _by_time(d)])
            for d in days]


def _by_time(day: PlanDay) -> list[Planned]:
    """The day's deliveries in time order (segments in calendar.yaml's order at one time)."""
    return sorted((p for s in day.segments for p in s.deliveries), key=lambda p: p.delivery.at)


def _plan_row(calendar: CalendarFlows, planned: Planned, names: dict[str, str],
              now: datetime, recorded: Recorded | None,
              talks: TalkFlows | None = None) -> PlanRow:
    d = planned.delivery
    own = "公告" if any(p.name.startswith("announce") for p in d.posts) else "新人期"
    groups = (f"{len(d.customers)} 位新人：{names.get(d.label, d.label)}"
              if d.transport == INVITATION
              else f"{own}：{names.get(d.label, d.label)}" if d.label
              else f"{len(d.chat_ids)} 个群" if d.chat_ids else NONE)
    # Once recorded, what went out is in the outbox: the preview renders the content queue as
    # it is now, which has moved on since.
    texts = [PlanText(post_label(calendar, d.segment, t.post.name, talks),
                      None if recorded or t.text is None else short(t.text, TEXT_SHOWN),
                      t.text is None and recorded is None, t.generated)
             for t in planned.texts]
    return PlanRow(local(d.at, "%H:%M"), d.segment, TRANSPORT_LABELS[d.transport], d.target,
                   groups, texts, d.at <= now, recorded)


async def recorded_by_key(session: AsyncSession, keys: list[str]) -> dict[str, Recorded]:
    if not keys:
        return {}
    rows = await session.execute(
        select(CalendarPost.key, CalendarPost.status, CalendarPost.reason,
               CalendarPost.task_status, OutboxMessage.status)
        .outerjoin(OutboxMessage, OutboxMessage.idempotency_key == CalendarPost.key)
        .where(CalendarPost.key.in_(keys)))
    return {key: Recorded(status, reason, task_status, outbox)
            for key, status, reason, task_status, outbox in rows}


@dataclass(frozen=True)
class HistoryRow:
    key: str
    day: str
    time: str
    segment: str
    transport: str
    target: str
    groups: int
    posts: str
    recorded: Recorded
    reminders: int
    confirmed: str


async def history(session: AsyncSession, calendar: CalendarFlows, since: datetime,
                  segment: str, talks: TalkFlows | None = None) -> list[HistoryRow]:
    """The deliveries recorded since `since` (by their planned time), newest first."""
    groups = (select(GroupDay.post_key, func.count().label("n"))
              .group_by(GroupDay.post_key).subquery())
    query = (select(CalendarPost, OutboxMessage.status, groups.c.n)
             .outerjoin(OutboxMessage, OutboxMessage.idempotency_key == CalendarPost.key)
             .outerjoin(groups, groups.c.post_key == CalendarPost.key)
             .where(CalendarPost.at >= since))
    if segment:
        query = query.where(CalendarPost.segment == segment)
    rows = await session.execute(query.order_by(CalendarPost.at.desc(), CalendarPost.id.desc())
                                 .limit(HISTORY_SHOWN))
    return [_history_row(calendar, post, outbox, n or 0, talks) for post, outbox, n in rows]


def _history_row(calendar: CalendarFlows, post: CalendarPost, outbox: str | None,
                 groups: int, talks: TalkFlows | None = None) -> HistoryRow:
    return HistoryRow(post.key, post.day, local(post.at, "%H:%M"), post.segment,
                      TRANSPORT_LABELS.get(post.transport, post.transport), post.target, groups,
                      posts_label(calendar, post.segment, post.posts, talks),
                      Recorded(post.status, post.reason, post.task_status, outbox),
                      post.reminders, local(post.confirmed_at, "%m-%d %H:%M"))


@dataclass(frozen=True)
class TallyView:
    name: str
    tally: tracking.Tally

    @property
    def rate(self) -> str:
        return f"{self.tally.rate:.1%}"

    @property
    def decided(self) -> str:
        """The rate among the tasks decided (confirmed or missed), open ones left out."""
        decided = self.tally.confirmed + self.tally.missed
        return f"{self.tally.confirmed / decided:.1%}" if decided else NONE


def tally_views(calendar: CalendarFlows, found: tracking.Confirmations,
                labels: dict[str, str],
                talks: TalkFlows | None = None) -> tuple[list[TallyView], list[TallyView]]:
    """The tallies per owner and per post (named by the segment's label and the posts')."""
    owners = [TallyView(t.name, t) for t in found.by_owner]
    posts = [TallyView(f"{labels.get(segment, segment)} · "
                       f"{posts_label(calendar, segment, t.name, talks)}", t)
             for t in found.by_post for segment in (t.segment or "",)]
    return owners, posts


@dataclass(frozen=True)
class EmptyColumn:
    """A column whose queue runs out within the plan: the coming slots that will be skipped."""

    column: str
    label: str
    first: str  # MM-DD HH:MM of the first slot left empty
    segment: str  # that slot's segment
    slots: int  # coming slots left empty within the plan


def empty_columns(calendar: CalendarFlows, days: list[PlanDay], now: datetime,
                  labels: dict[str, str]) -> list[EmptyColumn]:
    """Per column, the coming slots (not yet due) the queue as it is now leaves empty, from the
    first; a slot posted to several places (owners, robots) counts once."""
    found: dict[str, list[tuple[datetime, str]]] = {}
    seen: set[str] = set()
    for day in days:
        for seg in day.segments:
            for planned in seg.deliveries:
                for t in planned.texts:
                    key = t.post.item_key(seg.segment)
                    if t.text is None and t.post.column and not t.generated \
                            and t.post.at > now and key not in seen:
                        seen.add(key)
                        found.setdefault(t.post.column, []).append((t.post.at, seg.segment))
    return [EmptyColumn(column, calendar.columns.get(column, column), local(min(slots)[0],
                        "%m-%d %H:%M"), labels.get(min(slots)[1], min(slots)[1]), len(slots))
            for column, slots in sorted(found.items(), key=lambda kv: min(kv[1]))]


@dataclass(frozen=True)
class TalkView:
    """A talk of talks.yaml as the page lists it."""

    name: str
    title: str
    kind: str
    when: str  # 每周三 20:00
    segments: str
    host: str
    topic: str
    steps: str  # when its posts go out, relative to it


def talk_views(talks: TalkFlows, calendar: CalendarFlows,
               labels: dict[str, str]) -> list[TalkView]:
    return [TalkView(name, t.title, "新人答疑会" if t.kind == NEWCOMER_QA else "嘉宾分享会",
                     f"每周{WEEKDAYS[t.weekday - 1]} {t.time}",
                     "、".join(labels.get(s, s) for s in t.segments),
                     t.host.shown + ("（员工）" if t.host.staff else "（嘉宾）"),
                     f"《{calendar.columns.get(t.topic.column, t.topic.column)}》的下一条内容"
                     if t.topic.column else t.topic.text or "", _steps(t))
            for name, t in talks.talks.items()]


def _steps(talk: Talk) -> str:
    invite = "，并一对一邀请上周入群的新人" if talk.kind == NEWCOMER_QA else ""
    return (f"前一天 {talk.announce_time or talk.time} 预告{invite}；提前 {talk.remind_minutes} "
            f"分钟提醒；{talk.time} 开场；{talk.summary_hours} 小时后总结")


async def load(session: AsyncSession, flows: Flows, segment: str, since: datetime,
               now: datetime) -> dict[str, Any]:
    """Everything the page shows for `segment` ("" for all), by the template's names: the plan
    of the DAYS from today, the deliveries recorded since `since`, the confirmation rates."""
    calendar, today = flows.calendar, local_day(now)
    talks = flows.talks
    days = await plan(session, calendar, today, DAYS, segment or None, flows.onboarding, talks)
    labels = flows.routing.segment_labels()
    owners, posts = tally_views(calendar, await tracking.confirmations(session, since), labels,
                                talks)
    names = await _group_names(session)
    return {"days": await plan_views(session, calendar, days, names, now, talks),
            "empty": empty_columns(calendar, days, now, labels),
            "talks": talk_views(talks, calendar, labels),
            "history": await history(session, calendar, since, segment, talks), "owners": owners,
            "posts": [p for p in posts if not segment or p.tally.segment == segment],
            "last_day": today + timedelta(days=DAYS - 1), "shown": HISTORY_SHOWN}


async def _group_names(session: AsyncSession) -> dict[str, str]:
    return dict((await session.execute(select(CustomerGroup.chat_id, CustomerGroup.name))).all())
