"""New friends: recorded, attributed to their channel and slot (or to the recommender whose
code they came through), and welcomed within 20 s.

The welcome is built from the event alone (`welcome_intake`), so the callback path stores it
with the callback itself and the sender has it at once, whatever the inbox worker's backlog; the
handler queues the same key again (a no-op then) and records the member and the funnel steps.
When the outbox settles it, the funnel counts it sent (with its latency) or missed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from app.engine.bot.context import Ctx
from app.engine.bot.env import Env
from app.engine.bot.router import IntakeRule, Router
from app.engine.outbox import store as outbox
from app.engine.outbox.models import FAST
from app.engine.outbox.store import Message
from app.engine.wecom.api import Attachment, SendWelcomeMsg, Text
from app.engine.wecom.events import Event, ExternalContactAdded, ExternalContactHalfAdded
from app.flows import Flows
from app.funnel import delivery, steps
from app.funnel import service as funnel
from app.funnel.delivery import WELCOME_KIND
from app.koc import referrals
from app.members import service as members
from app.members.models import Member
from app.verify.links import VerifyLinks, links_for

# WeCom's welcome code lives 20 s from the event; a welcome still unsent 18 s after the
# callback arrived is dropped (expired) rather than racing the code's end.
WELCOME_DEADLINE = timedelta(seconds=18)

FriendAdded = ExternalContactAdded | ExternalContactHalfAdded


def welcome_for(event: Event, flows: Flows, links: VerifyLinks,
                received: datetime) -> Message | None:
    """The welcome a friend add gets, for its channel and slot; None without a WelcomeCode."""
    if not isinstance(event, FriendAdded) or not event.welcome_code:
        return None
    channel, slot, _ = flows.funnel.attribute(event.state)
    variant = flows.funnel.welcome_for(channel, slot)
    text = variant.text.format(verify_url=links.url(event.external_user_id), channel=channel,
                               slot=slot or "")
    attachments = ([Attachment(msgtype="link", link=variant.welfare)] if variant.welfare
                   else None)
    call = SendWelcomeMsg(welcome_code=event.welcome_code, text=Text(content=text),
                          attachments=attachments)
    return Message(welcome_key(event.welcome_code), call, WELCOME_KIND, FAST,
                   received + WELCOME_DEADLINE)


def welcome_key(code: str) -> str:
    return f"welcome:{code}"


def welcome_intake(env: Env[Flows]) -> IntakeRule[FriendAdded]:
    """A friend add's welcome, stored with the callback itself."""
    links = links_for(env.settings)
    return lambda event, received: welcome_for(event, env.flows, links, received)


async def welcome_new_friend(event: FriendAdded, ctx: Ctx[Flows]) -> None:
    """A friend add is welcomed first (fast lane, 20 s window), then recorded and counted."""
    received = ctx.received_at or ctx.now
    # Normally queued by the callback already. Locked either way: ordered with the sender
    # settling it (PostgreSQL: concurrent), one of the two always sees the other's funnel row
    # or member, so the welcome step gets its member.
    key = welcome_key(event.welcome_code or "")
    if event.welcome_code and not await outbox.lock(ctx.session, key):
        welcome = welcome_for(event, ctx.flows, links_for(ctx.settings), received)
        assert welcome is not None
        await ctx.queue(key, welcome.call, kind=welcome.kind, priority=welcome.priority,
                       deadline=welcome.deadline)
        await outbox.lock(ctx.session, key)
    channel, slot, known = ctx.flows.funnel.attribute(event.state)
    member, new = await _member(event, ctx, channel, slot)
    if ctx.flows.koc is not None and channel == ctx.flows.koc.channel:
        await referrals.touch(ctx.session, member, event.state, received, ctx.flows.koc,
                              new_member=new)
    if event.welcome_code:
        await delivery.attach(ctx.session, event.welcome_code, member)
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


async def _member(event: FriendAdded, ctx: Ctx[Flows], channel: str,
                  slot: str | None) -> tuple[Member, bool]:
    """The member's row, and whether this add made it: created on the first add; a later add
    only records the new staff."""
    member = await members.by_external_userid(ctx.session, event.external_user_id)
    if member is None:
        return await members.create(
            ctx.session, ctx.received_at or ctx.now, "callback",
            external_userid=event.external_user_id, staff_userid=event.user_id,
            channel=channel, slot=slot, state=event.state[:32],
            welcome_code=event.welcome_code), True
    await members.change(ctx.session, member, ctx.now, "callback", staff_userid=event.user_id,
                         welcome_code=event.welcome_code or member.welcome_code)
    return member, False


def router() -> Router:
    welcomes = Router("welcome")
    welcomes.add(ExternalContactAdded, welcome_new_friend, intake=welcome_intake)
    welcomes.add(ExternalContactHalfAdded, welcome_new_friend, intake=welcome_intake)
    welcomes.on_settled(WELCOME_KIND, lambda env: delivery.welcome_settled)
    return welcomes
