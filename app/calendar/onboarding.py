"""Onboarding campaigns (sop_flows/onboarding_*.yaml): one action a day for a group's first
days, from when it reaches its segment's ideal size (or is created, per the campaign). Each
group's run is a row (sop_run): visible and pausable (`sopbot sop`). A day's action joins
that group's calendar post of the day, so the group still gets one mass message a day.

A day's text may say how many of the group's customers have not introduced themselves yet
(`{not_introduced}`: the campaign's `not_introduced` sentence with the count, from the chat
archive's self-introductions, app/archive/newcomers.py). Without the archive, or when everyone
has, it is empty: nothing is claimed that sopbot cannot see."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.archive.activity import archive_in_use
from app.archive.newcomers import not_introduced_counts
from app.calendar.flows import check_time
from app.calendar.models import SopRun
from app.calendar.posts import Post, at_time
from app.engine.config import SHANGHAI
from app.engine.placeholders import allow_placeholders, placeholders
from app.groups.models import LIVE, CustomerGroup

ACTIVE, PAUSED, DONE = "active", "paused", "done"
NOT_INTRODUCED = "not_introduced"  # the placeholder of a day's text


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Action(Strict):
    # What the day is for (the playbook's 新人期): post; nickname (the nickname template);
    # self_intro; rules_reminder (群规); welfare; qa_notice (新人答疑会); column (a column
    # introduced); topic (a discussion); koc_spotlight (public praise); koc_invite (推荐官).
    # All are a text the group gets with its post of the day.
    action: Literal["post", "nickname", "self_intro", "rules_reminder", "welfare", "qa_notice",
                    "column", "topic", "koc_spotlight", "koc_invite"]
    text: str = Field(min_length=1)

    _text = field_validator("text")(allow_placeholders("group", "day", NOT_INTRODUCED))

    @property
    def names_newcomers(self) -> bool:
        return NOT_INTRODUCED in placeholders(self.text)


class Campaign(Strict):
    start: Literal["filled", "created"] = "filled"
    segments: tuple[str, ...] = ()  # none: every segment
    time: str = "10:00"  # when the day's action is posted (alone, or merged per the policy)
    priority: int = Field(10, ge=0, le=100)
    days: dict[int, Action] = Field(min_length=1)
    # What {not_introduced} becomes when some have not introduced themselves: {count} of them.
    not_introduced: str = ""

    _t = field_validator("time")(check_time)
    _n = field_validator("not_introduced")(allow_placeholders("count"))

    @model_validator(mode="after")
    def _sentence_for_the_placeholder(self) -> Campaign:
        if not self.not_introduced and any(a.names_newcomers for a in self.days.values()):
            raise ValueError("a day's text uses {not_introduced}: the campaign needs its "
                             "not_introduced sentence (with {count})")
        return self

    @field_validator("days")
    @classmethod
    def _days(cls, value: dict[int, Action]) -> dict[int, Action]:
        if any(day < 1 or day > 90 for day in value):
            raise ValueError("days are numbered from 1 (the day after it starts) to 90")
        return value

    @property
    def length(self) -> int:
        return max(self.days)

    @property
    def days_without_action(self) -> list[int]:
        """Days of the campaign with no action: the playbook asks for one every day."""
        return [day for day in range(1, self.length + 1) if day not in self.days]


def campaign_notes(campaigns: dict[str, Campaign]) -> list[str]:
    """`sopbot check` warnings: a campaign that skips days (allowed: a rest day may be meant)."""
    return [f"onboarding_{name}.yaml: no action on day {', '.join(map(str, missing))} of "
            f"{campaign.length} (the playbook plans one action every day)"
            for name, campaign in sorted(campaigns.items())
            if (missing := campaign.days_without_action)]


@dataclass(frozen=True)
class Today:
    chat_id: str
    post: Post


async def start_due(session: AsyncSession, campaigns: dict[str, Campaign], now: datetime) -> int:
    """A run for every live group that meets a campaign's start and has none yet."""
    started = 0
    have = {(r.chat_id, r.campaign) for r in await session.scalars(select(SopRun))}
    groups = await session.scalars(select(CustomerGroup).where(
        CustomerGroup.status == LIVE, CustomerGroup.segment.is_not(None)))
    for group in groups:
        for name, campaign in campaigns.items():
            since = group.filled_at if campaign.start == "filled" else group.created_at
            if (group.chat_id, name) in have or since is None or since > now or \
                    (campaign.start == "filled" and group.filled_on_arrival) or \
                    (campaign.segments and group.segment not in campaign.segments):
                continue
            # Day 1 is the next day: the group may have had its one mass message today.
            day = since.astimezone(SHANGHAI).date() + timedelta(days=1)
            last = (now.astimezone(SHANGHAI).date() - day).days + 1 > campaign.length
            session.add(SopRun(chat_id=group.chat_id, campaign=name, started_on=day.isoformat(),
                               status=DONE if last else ACTIVE, last_day=0, created_at=now))
            started += 1
    await session.flush()
    return started


def day_of(run: SopRun, day: date) -> int:
    return (day - date.fromisoformat(run.started_on)).days + 1


async def today(session: AsyncSession, campaigns: dict[str, Campaign], day: date,
                names: dict[str, str]) -> list[Today]:
    """The actions due on `day`, one post per group (active runs only): a group in two
    campaigns that day gets both texts in it, at the earlier time and the higher priority."""
    due: list[tuple[SopRun, Campaign, int, Action]] = []
    for run in await session.scalars(select(SopRun).where(SopRun.status == ACTIVE)
                                     .order_by(SopRun.id)):
        campaign = campaigns.get(run.campaign)
        number = day_of(run, day)
        action = campaign.days.get(number) if campaign else None
        if campaign is not None and action is not None:
            due.append((run, campaign, number, action))
    silent = await _not_introduced(session, {r.chat_id for r, _, _, a in due
                                             if a.names_newcomers})
    found: dict[str, list[tuple[Campaign, str, str]]] = {}
    for run, campaign, number, action in due:
        count = silent.get(run.chat_id, 0)
        text = action.text.format(group=names.get(run.chat_id, run.chat_id), day=number,
                                  not_introduced=campaign.not_introduced.format(count=count)
                                  if count else "").strip()
        found.setdefault(run.chat_id, []).append((campaign, f"{run.campaign}.d{number}", text))
    return [Today(chat_id, Post(min(at_time(day, c.time) for c, _, _ in due),
                                "sop." + "+".join(name for _, name, _ in due),
                                max(c.priority for c, _, _ in due),
                                text="\n\n".join(text for _, _, text in due)))
            for chat_id, due in found.items()]


async def _not_introduced(session: AsyncSession, chat_ids: set[str]) -> dict[str, int]:
    """Per group, its customers who have not introduced themselves (none known without the
    chat archive)."""
    if not chat_ids or not await archive_in_use(session):
        return {}
    return await not_introduced_counts(session, chat_ids)


async def advance(session: AsyncSession, campaigns: dict[str, Campaign], day: date) -> None:
    """Runs past their last day are done (they stay for the record)."""
    for run in await session.scalars(select(SopRun).where(SopRun.status == ACTIVE)):
        campaign = campaigns.get(run.campaign)
        number = day_of(run, day)
        run.last_day = max(run.last_day, min(number, campaign.length if campaign else number))
        if campaign is None or number > campaign.length:
            run.status = DONE
