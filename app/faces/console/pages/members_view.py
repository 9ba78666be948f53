"""What the member pages show: a search over members, and one member with their history,
verifications and funnel events.

Members have no name of their own: the name is the platform directory's (app/directory), found
through the member's platform user id, so "search by name" searches the directory's names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.directory.models import PlatformUser
from app.faces.console import labels, times
from app.flows import Flows
from app.groups.models import CustomerGroup
from app.members.models import Member
from app.verify.phone import normalise_phone

PAGE_SIZE = 50
LAST_DIGITS = re.compile(r"\d{4}")


@dataclass(frozen=True)
class MemberRow:
    id: int
    external_userid: str
    name: str
    phone: str  # masked
    status: str
    status_label: str
    segment: str
    channel: str
    region: str
    group: str
    added: str


@dataclass(frozen=True)
class Search:
    text: str
    status: str
    page: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * PAGE_SIZE


async def search(session: AsyncSession, wanted: Search, flows: Flows,
                 ) -> tuple[int, list[MemberRow]]:
    """(how many members match, the page asked for), newest first."""
    where = _conditions(wanted)
    count = await session.scalar(_joined(select(func.count()).select_from(Member)).where(*where))
    rows = await session.execute(_joined(select(Member, PlatformUser.name, CustomerGroup.name))
                                 .where(*where).order_by(Member.id.desc())
                                 .offset(wanted.offset).limit(PAGE_SIZE))
    return count or 0, [member_row(m, name, group, flows) for m, name, group in rows]


def _joined(query: Any) -> Any:
    return (query.outerjoin(PlatformUser, PlatformUser.platform_user_id == Member.platform_user_id)
            .outerjoin(CustomerGroup, CustomerGroup.chat_id == Member.group_chat_id))


def _conditions(wanted: Search) -> list[Any]:
    where = [Member.status == wanted.status] if wanted.status else []
    if wanted.text:
        where.append(or_(*_matches(wanted.text)))
    return where


def _matches(text: str) -> list[Any]:
    """Every key the text could be: an external_userid or platform user id (exactly), a phone
    (whole, in any usual spelling, or its last 4 digits), a part of a directory name."""
    found = [Member.external_userid == text, Member.platform_user_id == text,
             PlatformUser.name.contains(text, autoescape=True)]
    if phone := normalise_phone(text):
        found.append(Member.phone == phone)
    if LAST_DIGITS.fullmatch(text):
        found.append(Member.phone.endswith(text))
    return found


def member_row(member: Member, name: str | None, group: str | None, flows: Flows) -> MemberRow:
    return MemberRow(
        id=member.id, external_userid=member.external_userid, name=name or labels.NONE,
        phone=labels.phone_masked(member.phone), status=member.status,
        status_label=labels.member_status(member.status),
        segment=labels.segment(flows, member.segment),
        channel=labels.channel(flows, member.channel), region=member.region or labels.NONE,
        group=group or member.group_chat_id or labels.NONE,
        added=times.local(member.added_at))
