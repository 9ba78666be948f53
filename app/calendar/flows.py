"""sop_flows/calendar.yaml: the posting calendar (PLAYBOOK.md "basic service"). Times are
Asia/Shanghai. Per segment: the morning and evening greetings, the weekly activity calendar
(sent with Monday's morning greeting) and the daily slots, each slot taking the next item of
its column (《今日上新》, 《星品推荐》, ...) from the content queue (/api/content).

WeCom lets a service post into a customer group only as a mass-send task its owner confirms,
and a group receives at most one mass message a day (wecom-reference §5.9): a day that asks
for more is reported when the file loads, and `daily_cap_policy` says what happens instead.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.engine.placeholders import allow_placeholders

TIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
SLOT_PLACEHOLDERS = ("column", "title", "body", "link")
TEXT_BYTES = 4000  # add_msg_template's text
WEEK = [date(2026, 1, 5) + timedelta(days=n) for n in range(7)]  # a Monday to Sunday

# remind_owner (the default: every post keeps its time): the highest-priority post as the
# task, the others to the group owner as app-message reminders at their own times; merge: one
# task a day with every post of the day in it, at the first post's time (an evening greeting
# goes out in the morning); highest_priority: only the day's highest-priority post.
CapPolicy = Literal["merge", "highest_priority", "remind_owner"]


WEEKDAYS = "一二三四五六日"  # 周一 … 周日, by date.weekday()


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_time(value: str) -> str:
    """A validator for HH:MM times, shared by every flow file that has them."""
    if not TIME.fullmatch(value):
        raise ValueError(f"time {value!r}: HH:MM from 00:00 to 23:59 (Asia/Shanghai)")
    return value


class Greeting(Strict):
    time: str
    text: str = Field(min_length=1)
    priority: int = Field(1, ge=0, le=100)

    _t = field_validator("time")(check_time)
    _p = field_validator("text")(allow_placeholders())


class Slot(Strict):
    time: str
    column: str
    priority: int = Field(5, ge=0, le=100)
    # How an item of the column becomes a post; by default the calendar's slot_template.
    template: str | None = None
    # The days of the week it runs (1 = Monday ... 7 = Sunday); none: every day. A weekly
    # column (《嘉宾分享会》 on Wednesdays) is a slot with one weekday.
    weekdays: tuple[Annotated[int, Field(ge=1, le=7)], ...] = ()

    _t = field_validator("time")(check_time)
    _p = field_validator("template")(allow_placeholders(*SLOT_PLACEHOLDERS))

    def runs_on(self, day: date) -> bool:
        return not self.weekdays or day.isoweekday() in self.weekdays


class SegmentCalendar(Strict):
    morning: Greeting | None = None
    evening: Greeting | None = None
    weekly: str | None = None  # added to Monday's morning greeting
    slots: tuple[Slot, ...] = ()

    _w = field_validator("weekly")(allow_placeholders())


class InternalTarget(Strict):
    """A staff group posted to directly (no owner confirms, no daily cap): a group robot
    (SOPBOT_ROBOTS name) or an app group chat (appchat chatid). It gets the posts of the
    segments it lists."""

    transport: Literal["robot", "appchat"]
    robot: str | None = None
    chatid: str | None = None
    segments: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _address(self) -> InternalTarget:
        if self.transport == "robot" and not self.robot:
            raise ValueError("a robot target names its robot (SOPBOT_ROBOTS)")
        if self.transport == "appchat" and not self.chatid:
            raise ValueError("an appchat target gives its chatid")
        return self


class CalendarTexts(Strict):
    # To a group owner under remind_owner: {groups} (their names), {text} (the post).
    owner_reminder: str = Field(min_length=1)

    _r = field_validator("owner_reminder")(allow_placeholders("groups", "text"))


class CalendarFlows(Strict):
    daily_cap_policy: CapPolicy = "remind_owner"
    # How a column's item becomes a post, unless its slot says otherwise.
    slot_template: str = Field(min_length=1)
    texts: CalendarTexts
    # A post the scheduler missed (a restart) is still made within this many minutes.
    grace_minutes: int = Field(30, ge=0, le=720)
    columns: dict[str, str] = {}  # column → its label, e.g. new_arrivals: 今日上新
    # Columns sopbot fills itself on their day (the weekly 光荣榜, sop_flows/koc.yaml): an
    # empty queue before then is no gap, and no operator is asked to add content.
    generated: tuple[str, ...] = ()
    segments: dict[str, SegmentCalendar] = {}
    internal: dict[str, InternalTarget] = {}

    _st = field_validator("slot_template")(allow_placeholders(*SLOT_PLACEHOLDERS))

    @model_validator(mode="after")
    def _columns_known(self) -> CalendarFlows:
        for n, column in enumerate(self.generated):
            if column not in self.columns:
                raise ValueError(f"generated.{n}: unknown column {column!r} "
                                 f"(columns: {', '.join(self.columns)})")
        for name, segment in self.segments.items():
            for n, slot in enumerate(segment.slots):
                if slot.column not in self.columns:
                    raise ValueError(f"segments.{name}.slots.{n}: unknown column "
                                     f"{slot.column!r} (columns: {', '.join(self.columns)})")
        return self


def calendar_problem(calendar: CalendarFlows, segments: set[str]) -> str | None:
    """A segment or robot the calendar names that is not declared, or None."""
    for name in calendar.segments:
        if name not in segments:
            return f"segments.{name}: unknown segment (sop_flows/routing.yaml)"
    for name, target in calendar.internal.items():
        for segment in target.segments:
            if segment not in segments:
                return f"internal.{name}: unknown segment {segment!r}"
    return None
