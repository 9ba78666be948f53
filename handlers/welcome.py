"""New friends: recorded, attributed to their channel and slot, and welcomed within 20 s."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.bot.context import Ctx
from app.bot.router import Router
from app.funnel import service as funnel
from app.funnel import steps
from app.members import service as members
from app.members.models import Member
from app.outbox.models import FAST
from app.verify.links import links_for
from app.wecom.api import Attachment, SendWelcomeMsg, Text
from app.wecom.events import ExternalContactAdded, ExternalContactHalfAdded

# WeCom's welcome code lives 20 s from the event; a welcome still unsent 18 s after the
# callback arrived is dropped (expired) rather than racing the code's end.
WELCOME_DEADLINE = timedelta(seconds=18)

FriendAdded = ExternalContactAdded | ExternalContactHalfAdded


async def welcome_new_friend(event: FriendAdded, ctx: Ctx) -> None:
    """A friend add is welcomed first (fast lane, 20 s window), then recorded and counted."""
    received = ctx.received_at or ctx.now
    channel, slot, known = ctx.flows.funnel.attribute(event.state)
    member = await _member(event, ctx, channel, slot)
    if event.welcome_code:
        await _send_welcome(event.welcome_code, member, ctx, received)
    else:
        # A welcome set in the admin console, or another app, has the code: not an error.
        await funnel.record(ctx.session, steps.WELCOME_SKIPPED, f"welcome_skipped:{ctx.inbox_id}",
                            ctx.now, member=member)
        ctx.log.info("welcome_skipped", external_userid=event.external_user_id)
    await funnel.record(ctx.session, steps.FRIEND_ADDED, f"friend_added:{member.id}", received,
                        member=member)
    if not known:
        await funnel.record(ctx.session, steps.DEFAULT_CHANNEL_USED, f"default:{member.id}",
                            received, member=member, detail=event.state[:200])


async def _member(event: FriendAdded, ctx: Ctx, channel: str, slot: str | None) -> Member:
    """The member's row: created on the first add; a later add only records the new staff."""
    member = await members.by_external_userid(ctx.session, event.external_user_id)
    if member is None:
        return await members.create(
            ctx.session, ctx.received_at or ctx.now, "callback",
            external_userid=event.external_user_id, staff_userid=event.user_id,
            channel=channel, slot=slot, state=event.state[:32],
            welcome_code=event.welcome_code)
    await members.change(ctx.session, member, ctx.now, "callback", staff_userid=event.user_id,
                         welcome_code=event.welcome_code or member.welcome_code)
    return member


async def _send_welcome(code: str, member: Member, ctx: Ctx, received: datetime) -> None:
    assert member.channel is not None
    variant = ctx.flows.funnel.welcome_for(member.channel, member.slot)
    text = variant.text.format(verify_url=links_for(ctx.settings).url(member.external_userid),
                               channel=member.channel, slot=member.slot or "")
    attachments = ([Attachment(msgtype="link", link=variant.welfare)] if variant.welfare
                   else None)
    await ctx.send(f"welcome:{code}", SendWelcomeMsg(welcome_code=code, text=Text(content=text),
                                                       attachments=attachments),
                   kind="welcome", priority=FAST, deadline=received + WELCOME_DEADLINE)


def router() -> Router:
    welcomes = Router("welcome")
    welcomes.add(ExternalContactAdded, welcome_new_friend)
    welcomes.add(ExternalContactHalfAdded, welcome_new_friend)
    return welcomes
