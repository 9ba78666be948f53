"""Customer groups as far as the funnel needs them: groups and their members are kept from
`change_external_chat` events, a member who joins is marked joined (and flagged when the group
belongs to another segment), and a group that fills leaves its segment's pool."""

from __future__ import annotations

from app.engine.bot.context import Ctx
from app.engine.bot.env import Env
from app.engine.bot.router import Router
from app.engine.logs import get_logger
from app.engine.wecom.events import (
    ChatMemberJoined,
    ChatMemberLeft,
    ChatNameChanged,
    ChatNoticeChanged,
    ChatOwnerChanged,
    ExternalChatCreated,
    ExternalChatDismissed,
    ExternalChatUpdated,
    FollowUserDeleted,
)
from app.flows import Flows
from app.funnel import service as funnel
from app.funnel import steps
from app.groups import hooks, pools
from app.groups import service as groups
from app.groups.migration import plan_migrations
from app.groups.models import CustomerGroup
from app.members import service as members
from app.members.models import JOINED, LEFT

log = get_logger("sopbot.membership")
LIFECYCLE_S = 3600  # zombie groups are looked for every hour
WRONG_SEGMENT, NOT_ROUTED = "wrong_segment", "joined_unrouted"


async def record_new_group(event: ExternalChatCreated, ctx: Ctx[Flows]) -> None:
    """A new customer group is recorded and read from WeCom: its name tells its segment."""
    await groups.group_of(ctx.session, event.chat_id, ctx.now)


async def record_joined_members(event: ChatMemberJoined, ctx: Ctx[Flows]) -> None:
    """Joiners are added to the group; each known member is marked joined, counted once, and
    flagged when the group is not of their segment."""
    group = await _updated_group(event, ctx)
    await groups.members_joined(ctx.session, group, event.mem_change_list, ctx.now,
                                scene=event.join_scene)
    for external_userid in event.mem_change_list:
        await _member_joined(external_userid, group, ctx)
    await pools.after_change(ctx.session, group, ctx.flows, ctx.settings, ctx.now)


async def _member_joined(external_userid: str, group: CustomerGroup, ctx: Ctx[Flows]) -> None:
    member = await members.by_external_userid(ctx.session, external_userid)
    if member is None:
        return  # staff, or a customer who came in another way
    flag = member.flag
    if group.segment is not None and member.segment != group.segment:
        flag = WRONG_SEGMENT if member.segment else NOT_ROUTED
        log.warning("member_in_wrong_group", member_id=member.id, segment=member.segment,
                    group_segment=group.segment, chat_id=group.chat_id)
    elif group.segment is not None and flag in (WRONG_SEGMENT, NOT_ROUTED):
        flag = None  # now in a group of their own segment
    await members.change(ctx.session, member, ctx.now, "callback", group_chat_id=group.chat_id,
                         status=JOINED, flag=flag)
    await funnel.record(ctx.session, steps.JOINED, f"{steps.JOINED}:{member.id}", ctx.now,
                        member=member, detail=group.chat_id)


async def record_left_members(event: ChatMemberLeft, ctx: Ctx[Flows]) -> None:
    """Leavers are marked as gone from the group (kept for churn) and each known member's
    leaving is counted; the pool may change."""
    group = await _updated_group(event, ctx)
    await groups.members_left(ctx.session, group, event.mem_change_list, ctx.now,
                              scene=event.quit_scene)
    for external_userid in event.mem_change_list:
        member = await members.by_external_userid(ctx.session, external_userid)
        if member is None:
            continue
        if member.group_chat_id == group.chat_id:  # their group: still in another one?
            other = await groups.current_group(ctx.session, external_userid)
            still_joined = other is not None and member.status != LEFT  # not gone as a friend
            await members.change(ctx.session, member, ctx.now, "callback", group_chat_id=other,
                                 status=JOINED if still_joined else LEFT)
        await funnel.record(ctx.session, steps.LEFT_GROUP,
                            f"{steps.LEFT_GROUP}:{member.id}:{ctx.inbox_id}", ctx.now,
                            member=member, detail=f"{group.chat_id} quit_scene "
                                                  f"{event.quit_scene}")
    await pools.after_change(ctx.session, group, ctx.flows, ctx.settings, ctx.now)


async def record_deleted_staff(event: FollowUserDeleted, ctx: Ctx[Flows]) -> None:
    """A customer who deleted their staff member is marked left and counted as churn."""
    member = await members.by_external_userid(ctx.session, event.external_user_id)
    if member is None or member.staff_userid != event.user_id:
        return  # not a member of ours, or the friendship of another staff member
    await members.change(ctx.session, member, ctx.now, "callback", status=LEFT)
    await funnel.record(ctx.session, steps.DELETED_STAFF,
                        f"{steps.DELETED_STAFF}:{member.id}:{ctx.inbox_id}", ctx.now,
                        member=member, detail=event.user_id)


async def reread_changed_group(event: ExternalChatUpdated, ctx: Ctx[Flows]) -> None:
    """A new name, owner or notice is not in the event: the group is read again from WeCom."""
    group = await _updated_group(event, ctx)
    await groups.request_sync(ctx.session, group.chat_id, f"{event.update_detail}:{ctx.inbox_id}")


async def record_dismissed_group(event: ExternalChatDismissed, ctx: Ctx[Flows]) -> None:
    """A dismissed group leaves its segment's pool."""
    group = await groups.group_of(ctx.session, event.chat_id, ctx.now)
    await groups.dismissed(ctx.session, group, ctx.now)
    await pools.after_change(ctx.session, group, ctx.flows, ctx.settings, ctx.now)


async def _updated_group(event: ExternalChatUpdated, ctx: Ctx[Flows]) -> CustomerGroup:
    group = await groups.group_of(ctx.session, event.chat_id, ctx.now)
    await groups.follow_version(ctx.session, group, event.last_mem_ver, event.cur_mem_ver)
    return group


async def plan_group_migrations(env: Env[Flows]) -> None:
    """Zombie groups get their migration plan."""
    try:
        async with env.db.unit_of_work() as session:
            planned = await plan_migrations(session, env.flows, env.clock(),
                                            env.settings.agent_id)
    except Exception:
        log.exception("group_migration_failed")
        return
    if planned:
        log.info("group_migrations_planned", count=len(planned))


def router() -> Router:
    membership = Router("membership")
    membership.add(ExternalChatCreated, record_new_group)
    membership.add(ChatMemberJoined, record_joined_members)
    membership.add(ChatMemberLeft, record_left_members)
    membership.add(ChatNameChanged, reread_changed_group)
    membership.add(ChatOwnerChanged, reread_changed_group)
    membership.add(ChatNoticeChanged, reread_changed_group)
    membership.add(ExternalChatDismissed, record_dismissed_group)
    membership.add(FollowUserDeleted, record_deleted_staff)
    membership.on_settled(groups.GROUP_SYNC_KIND, lambda env: hooks.group_synced(env.flows.routing))
    membership.on_settled(pools.JOIN_WAY_KIND, lambda env: pools.join_way_settled)
    membership.after_settled(lambda env: hooks.pools_settled(env.flows, env.settings))
    membership.every(LIFECYCLE_S, plan_group_migrations)
    return membership
