"""Routing an approved member: the segment its rules give, counted, and its staff member told
whom to invite (an app message through the outbox). Flushes only; the caller's unit of work
commits, so the decision, the member's new state and the message land together."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from app.engine.logs import get_logger, mask_phones
from app.engine.outbox import store as outbox
from app.engine.wecom.api import MarkTag, SendMessage, Text
from app.funnel import service as funnel
from app.funnel import steps
from app.groups import pools
from app.members import service as members
from app.members.models import ROUTED, Member
from app.routing import tags
from app.routing.flows import RoutingSources

if TYPE_CHECKING:
    from app.engine.config import Settings
    from app.verify.service import OnApproved

log = get_logger("sopbot.routing")
STAFF_NOTICE_KIND, TAG_KIND = "staff_notice", "mark_tag"


async def route(session: AsyncSession, member: Member, now: datetime, flows: RoutingSources,
                settings: Settings) -> str | None:
    """An approved member gets its segment and its staff member an app message; None for a
    member the rules do not route (a consumer)."""
    identity = member.identity_type or ""
    segment = flows.routing.segment_for(identity, member.channel, member.region)
    if segment is None:
        log.info("member_not_routed", member_id=member.id, identity_type=identity)
        return None
    await members.change(session, member, now, "routing", segment=segment, status=ROUTED)
    await funnel.record(session, steps.ROUTED, f"{steps.ROUTED}:{member.id}", now,
                        member=member)
    await _tell_staff(session, member, flows, settings)
    await _tag(session, member)
    log.info("member_routed", member_id=member.id, segment=segment)
    return segment


async def _tag(session: AsyncSession, member: Member) -> None:
    """Identity type, channel and region as corp tags on the member (as its staff's customer)."""
    ids = await tags.tag_ids(session, member)
    if not ids:
        log.warning("member_not_tagged", member_id=member.id, reason="run `sopbot tags sync`")
        return
    call = MarkTag(userid=member.staff_userid, external_userid=member.external_userid,
                   add_tag=ids)
    await outbox.enqueue(session, f"tags:{member.id}", call, kind=TAG_KIND)


async def _tell_staff(session: AsyncSession, member: Member, flows: RoutingSources,
                      settings: Settings) -> None:
    if settings.agent_id is None:
        log.warning("staff_not_told", member_id=member.id, reason="WECOM_AGENT_ID is not set")
        return
    assert member.segment is not None
    channel = flows.funnel.channels.get(member.channel)
    seat = await pools.seat_for(session, member.segment)
    texts = flows.routing.texts
    text = texts.staff_routed.format(
        segment=flows.routing.segments[member.segment].label,
        identity=flows.verify.identity_types.get(member.identity_type or "", ""),
        region=member.region or "", external_userid=member.external_userid,
        channel=channel.label if channel else member.channel,
        phone=mask_phones(member.phone or ""),
        group=seat.group_name if seat else texts.no_group,
        group_qr=seat.qr_code if seat else texts.no_group)
    call = SendMessage(agentid=settings.agent_id, touser=member.staff_userid, msgtype="text",
                       text=Text(content=text))
    await outbox.enqueue(session, f"routed:{member.id}", call, kind=STAFF_NOTICE_KIND)


def after_approval(flows: RoutingSources, settings: Settings) -> OnApproved:
    """The hook the verification service runs when a member is approved."""
    async def hook(session: AsyncSession, member: Member, now: datetime) -> object:
        return await route(session, member, now, flows, settings)
    return hook
