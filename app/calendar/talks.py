"""sop_flows/talks.yaml: the talks (PLAYBOOK.md: 《嘉宾分享会》, the best-performing column, and
the newcomers' Q&A 新人答疑会). A talk happens every week on its weekday and time, for its
segments, and runs as a sequence of posts: an announcement the day before, a reminder before
it starts, its opening text at its time and a summary afterwards.

The posts are the calendar's posts of their days (app/calendar/planner.py plans them with the
calendar's, under its daily_cap_policy: a group still gets one mass message a day, the others
go to its owner as reminders at their times). A talk's topic is fixed or the next item of a
content column (guest_talk): one item per occurrence, the same in its four posts. A newcomers'
Q&A also invites each of the past week's joiners personally (app/calendar/talk_invites.py).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Final, Literal

from pydantic import Field, field_validator, model_validator

from app.calendar.flows import WEEKDAYS, CalendarFlows, Strict, check_time
from app.calendar.posts import Post, at_time
from app.engine.config import SHANGHAI
from app.engine.placeholders import allow_placeholders

GUEST: Final = "guest"
NEWCOMER_QA: Final = "newcomer_qa"
STEPS = ("announce", "reminder", "opening", "summary")
STEP_LABELS = {"announce": "预告", "reminder": "开场提醒", "opening": "开场", "summary": "总结",
               "invite": "个人邀请"}
# What a talk's texts may use: the talk's title, its topic (a fixed text or the item's
# title), the item's body and link, the host's name, the talk's date, weekday and time.
TALK_PLACEHOLDERS = ("talk", "topic", "details", "link", "host", "date", "weekday", "time")


class Host(Strict):
    """Who speaks: a staff member (userid, shown by `name` if given) or a guest by name."""

    staff: str | None = None
    guest: str | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _staff_or_guest(self) -> Host:
        if (self.staff is None) == (self.guest is None):
            raise ValueError("a host is either staff (a userid) or guest (a name)")
        if self.guest is not None and self.name is not None:
            raise ValueError("a guest is shown by its name already (name: is for staff)")
        return self

    @property
    def shown(self) -> str:
        return self.guest or self.name or self.staff or ""


class Topic(Strict):
    """A fixed topic, or the next item of a calendar column (its title is the topic)."""

    text: str | None = None
    column: str | None = None

    @model_validator(mode="after")
    def _text_or_column(self) -> Topic:
        if (self.text is None) == (self.column is None):
            raise ValueError("a topic is either text (fixed) or column (its next item)")
        return self


class TalkTexts(Strict):
    announce: str = Field(min_length=1)  # the day before
    reminder: str = Field(min_length=1)  # remind_minutes before it starts
    opening: str = Field(min_length=1)  # at its time
    summary: str = Field(min_length=1)  # summary_hours after it started
    # newcomer_qa: the personal invitation each of the past week's joiners gets, with the
    # announcement; {group} is the group they joined.
    invite: str | None = None

    _texts = field_validator(*STEPS)(allow_placeholders(*TALK_PLACEHOLDERS))
    _invite = field_validator("invite")(allow_placeholders(*TALK_PLACEHOLDERS, "group"))


class Priorities(Strict):
    """Each post's priority against the calendar's posts of its day (the highest is the day's
    mass task under remind_owner and highest_priority)."""

    announce: int = Field(8, ge=0, le=100)
    reminder: int = Field(2, ge=0, le=100)
    opening: int = Field(6, ge=0, le=100)
    summary: int = Field(4, ge=0, le=100)


class Talk(Strict):
    kind: Literal["guest", "newcomer_qa"] = GUEST
    title: str = Field(min_length=1, max_length=32)  # {talk}: 嘉宾分享会, 新人答疑会
    segments: tuple[str, ...] = Field(min_length=1)
    weekday: int = Field(ge=1, le=7)  # 1 = Monday ... 7 = Sunday
    time: str
    host: Host
    topic: Topic
    texts: TalkTexts
    announce_time: str | None = None  # the day before, at this time (default: the talk's)
    remind_minutes: int = Field(60, ge=5, le=720)
    summary_hours: int = Field(14, ge=1, le=72)
    invite_days: int = Field(7, ge=1, le=30)  # newcomer_qa: who joined within these days
    priority: Priorities = Priorities()

    _t = field_validator("time", "announce_time")(
        lambda value: value if value is None else check_time(value))

    @model_validator(mode="after")
    def _invitation(self) -> Talk:
        if self.kind == NEWCOMER_QA and self.texts.invite is None:
            raise ValueError("a newcomer_qa talk has texts.invite (each joiner's invitation)")
        if self.kind == GUEST and self.texts.invite is not None:
            raise ValueError("texts.invite is for newcomer_qa talks")
        return self

    def moments(self, occurrence: date) -> dict[str, datetime]:
        """When each post of the talk held on `occurrence` goes out (Asia/Shanghai)."""
        start = at_time(occurrence, self.time)
        return {"announce": at_time(occurrence - timedelta(days=1),
                                    self.announce_time or self.time),
                "reminder": start - timedelta(minutes=self.remind_minutes),
                "opening": start,
                "summary": start + timedelta(hours=self.summary_hours)}


class TalkFlows(Strict):
    talks: dict[str, Talk] = {}

    @field_validator("talks")
    @classmethod
    def _names(cls, value: dict[str, Talk]) -> dict[str, Talk]:
        for name in value:
            if not name.replace("_", "").isalnum() or not name.isascii() or len(name) > 32:
                raise ValueError(f"talk name {name!r}: 1-32 of [A-Za-z0-9_]")
        return value


def talks_problem(talks: TalkFlows, segments: set[str], calendar: CalendarFlows) -> str | None:
    """A segment or column a talk names that is not declared, or None."""
    for name, talk in talks.talks.items():
        for segment in talk.segments:
            if segment not in segments:
                return f"talks.{name}.segments: unknown segment {segment!r} (routing.yaml)"
        column = talk.topic.column
        if column is not None and column not in calendar.columns:
            return (f"talks.{name}.topic: unknown column {column!r} (calendar.yaml columns: "
                    f"{', '.join(calendar.columns)})")
    return None


def occurrence_key(name: str, occurrence: date) -> str:
    """The content key of one occurrence: its posts take (and share) one item under it."""
    return f"talk:{name}:{occurrence:%Y%m%d}"


def talk_posts(talks: TalkFlows, segment: str, day: date) -> list[Post]:
    """The segment's talk posts that go out on `day` (an announcement of tomorrow's talk, a
    summary of yesterday's, ...)."""
    posts = []
    for name, talk in talks.talks.items():
        if segment not in talk.segments:
            continue
        for occurrence in occurrences(talk, day):
            posts += [step_post(name, talk, occurrence, step, at)
                      for step, at in talk.moments(occurrence).items()
                      if at.astimezone(SHANGHAI).date() == day]
    return sorted(posts, key=lambda p: (p.at, p.name))


def occurrences(talk: Talk, day: date) -> list[date]:
    """The talk's days whose posts may fall on `day`: from 4 days before (a summary up to 72
    hours after) to the day after (the announcement)."""
    near = (day + timedelta(days=n) for n in range(-4, 2))
    return [d for d in near if d.isoweekday() == talk.weekday]


def step_post(name: str, talk: Talk, occurrence: date, step: str, at: datetime) -> Post:
    fields = talk_fields(talk, occurrence)
    column = talk.topic.column
    if column is None:
        fields |= {"topic": talk.topic.text or "", "details": "", "link": ""}
    return Post(at, f"talk.{name}.{step}", getattr(talk.priority, step), column=column,
                template=getattr(talk.texts, step),
                content_key=occurrence_key(name, occurrence) if column else None,
                fields=tuple(fields.items()))


def talk_fields(talk: Talk, occurrence: date) -> dict[str, str]:
    return {"talk": talk.title, "host": talk.host.shown,
            "date": f"{occurrence.month}月{occurrence.day}日",
            "weekday": f"周{WEEKDAYS[occurrence.weekday()]}", "time": talk.time}


def step_label(talks: TalkFlows | None, name: str) -> str | None:
    """A talk post's name (talk.guest_north.announce) as operators know it, or None."""
    if not name.startswith("talk."):
        return None
    talk_name, _, step = name.removeprefix("talk.").rpartition(".")
    talk = talks.talks.get(talk_name) if talks is not None else None
    return f"{talk.title if talk else talk_name}·{STEP_LABELS.get(step, step)}"


def schedule_lines(talks: TalkFlows, segment: str | None = None) -> list[str]:
    """Each talk (of the segment) in a line: when, for whom, by whom, on what."""
    return [f"{name}: {talk.title} every 周{WEEKDAYS[talk.weekday - 1]} {talk.time}, "
            f"{', '.join(talk.segments)}, host {talk.host.shown}, topic "
            + (f"from column {talk.topic.column}" if talk.topic.column
               else repr(talk.topic.text))
            for name, talk in talks.talks.items() if segment in (None, *talk.segments)]
