"""A newcomers' Q&A (新人答疑会) invites each of the past week's joiners personally, with its
announcement the day before.

The record holds no customer's name, and a mass message to a group cannot @mention anyone, so
the group's announcement speaks to the newcomers as a whole and each joiner gets the talk's
`invite` text one to one: a single-chat mass task from the staff member who added them
(member.staff_userid), naming the group they joined. It is a customer's message, not a
group's: the groups' one-mass-message-a-day cap is not used by it. Joiners are those who
joined one of the segment's live groups within `invite_days` calendar days up to the
announcement and are still in it (app/groups/newcomers.py); someone sopbot never recorded as
a member (no staff member of theirs known) is left out.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.calendar.planner import Delivery
from app.calendar.talks import NEWCOMER_QA, Talk, TalkFlows, step_post
from app.engine.config import SHANGHAI
from app.groups.models import LIVE, CustomerGroup
from app.groups.newcomers import day_bounds, joined_between

INVITATION = "invitation"


async def joiners(session: AsyncSession, segment: str, until: datetime,
                  days: int) -> dict[str, tuple[CustomerGroup, dict[str, str]]]:
    """Per live group of the segment: its customers who joined within `days` calendar days up
    to `until` and are still in it, external userid → the staff member who added them."""
    found: dict[str, tuple[CustomerGroup, dict[str, str]]] = {}
    first = day_bounds(until.astimezone(SHANGHAI).date() - timedelta(days=days - 1))[0]
    for group, joined in await joined_between(session, first, until, segment):
        for row, member in joined:
            if group.status == LIVE and member is not None:
                found.setdefault(group.chat_id, (group, {}))[1][row.userid] = member.staff_userid
    return found


async def invitations(session: AsyncSession, talks: TalkFlows | None, segment: str,
                      day: date, due: tuple[datetime, datetime] | None = None,
                      ) -> list[Delivery]:
    """The personal invitations of the segment's Q&As announced on `day`: one per staff
    member and group, with the joiners it invites (as of now for a coming day). With `due`
    (the posting run's window), only those announced within it: the joiners are read once
    there, not on every minute's run of the day."""
    found: list[Delivery] = []
    for name, talk in (talks.talks.items() if talks is not None else ()):
        occurrence = day + timedelta(days=1)
        at = talk.moments(occurrence)["announce"]
        if talk.kind == NEWCOMER_QA and segment in talk.segments \
                and occurrence.isoweekday() == talk.weekday \
                and (due is None or due[0] <= at <= due[1]):
            found += await _for_talk(session, name, talk, segment, occurrence, at)
    return found


async def _for_talk(session: AsyncSession, name: str, talk: Talk, segment: str,
                    occurrence: date, at: datetime) -> list[Delivery]:
    announce = step_post(name, talk, occurrence, "announce", at)
    found = []
    for chat, (group, staff_of) in (await joiners(session, segment, at,
                                                  talk.invite_days)).items():
        post = replace(announce, name=f"talk.{name}.invite", template=talk.texts.invite,
                       fields=(*announce.fields, ("group", group.name or chat)))
        by_staff: dict[str, list[str]] = {}
        for customer, staff in staff_of.items():
            by_staff.setdefault(staff, []).append(customer)
        found += [Delivery(at, INVITATION, staff, segment, (post,), (chat,), label=chat,
                           customers=tuple(customers))
                  for staff, customers in sorted(by_staff.items())]
    return found
