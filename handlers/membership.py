"""Customer-group membership as far as the funnel needs it: a member who joins a group is
marked joined, with the group, and counted once. (Group records, quits and counts per group
come with the group pools.)"""

from __future__ import annotations

from app.bot.context import Ctx
from app.bot.filters import Where
from app.bot.router import Router
from app.funnel import service as funnel
from app.funnel import steps
from app.members import service as members
from app.members.models import JOINED
from app.wecom.events import ExternalChatUpdated


async def record_joined_members(event: ExternalChatUpdated, ctx: Ctx) -> None:
    """Every known member in the join is marked joined (with the group) and counted once."""
    for external_userid in event.mem_change_list:
        member = await members.by_external_userid(ctx.session, external_userid)
        if member is None:
            continue  # staff, or a customer who came in another way
        await members.change(ctx.session, member, ctx.now, "callback",
                             group_chat_id=event.chat_id, status=JOINED)
        await funnel.record(ctx.session, steps.JOINED, f"{steps.JOINED}:{member.id}", ctx.now,
                            member=member, detail=event.chat_id)


def router() -> Router:
    membership = Router("membership")
    membership.add(ExternalChatUpdated, record_joined_members, Where(update_detail="add_member"))
    return membership
