"""Newcomers' self-introductions (the archive page step `note_intros`), and who has not
introduced themselves yet.

A customer's first message in a group, sent within `intro_within_days` of joining it
(group_member.joined_at) and with at least `min_chars` letters or digits, is their
self-introduction: speaker.intro_msgid. Only the first message counts (the activity step, which
runs before, made the speaker row: its first_at is that message's time); a later one never
does. A recalled introduction is no introduction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.archive.flows import GroupRulesFlows, NewcomerSettings
from app.archive.models import Speaker
from app.archive.question_text import key_of
from app.engine.bot.env import Env
from app.engine.bot.router import ArchivePageStep
from app.engine.wecom.archive_events import CUSTOMER, RECALL, SEND, ArchiveMessage
from app.groups.models import CustomerGroup, GroupMember

# group_member.joined_at is when sopbot heard of the join: a quick first message may carry an
# earlier time than that.
JOIN_SKEW = timedelta(minutes=10)
CUSTOMER_MEMBER = 2  # group_member.type


class NewcomerSources(Protocol):
    """What the newcomers step reads of the flows."""

    @property
    def group_rules(self) -> GroupRulesFlows: ...


def build_newcomers_step(env: Env[NewcomerSources]) -> ArchivePageStep:
    """The archive page step with the settings of sop_flows/group_rules.yaml."""
    rules = env.flows.group_rules.newcomers

    async def note(session: AsyncSession, messages: Sequence[ArchiveMessage],
                   now: datetime) -> None:
        await note_intros(session, messages, now, rules)
    return note


async def note_intros(session: AsyncSession, messages: Sequence[ArchiveMessage],
                      now: datetime, rules: NewcomerSettings) -> None:
    """The page step: customers' first messages that introduce them; recalled ones undone."""
    firsts: dict[tuple[str, str], ArchiveMessage] = {}
    for message in messages:
        if message.action == SEND and message.chat_id and message.sender_kind == CUSTOMER:
            firsts.setdefault((message.chat_id, message.sender), message)
    if firsts:
        intros = [m for m in await _first_ever(session, firsts, rules) if
                  m.text and len(key_of(m.text)) >= max(rules.min_chars, 1)]
        if intros:
            speaker = Speaker.__table__
            await session.execute(
                update(speaker).where(speaker.c.chat_id == bindparam("c"),
                                      speaker.c.userid == bindparam("u"),
                                      speaker.c.intro_msgid.is_(None))
                .values(intro_msgid=bindparam("m")),
                [{"c": m.chat_id, "u": m.sender, "m": m.msgid} for m in intros])
    recalled = [m.recalled_msgid for m in messages if m.action == RECALL and m.recalled_msgid]
    if recalled:
        await session.execute(update(Speaker).where(Speaker.intro_msgid.in_(recalled))
                              .values(intro_msgid=None))


async def _first_ever(session: AsyncSession, firsts: dict[tuple[str, str], ArchiveMessage],
                      rules: NewcomerSettings) -> list[ArchiveMessage]:
    """Of the page's first message per person and group: those that are the person's first
    message there ever, sent within the intro window of their joining."""
    window = timedelta(days=rules.intro_within_days)
    # By the page's senders (ix_speaker_userid; a person is in few groups), pairs checked here.
    senders = sorted({userid for _, userid in firsts})
    earliest = min(m.msgtime for m in firsts.values())
    rows = await session.execute(
        select(Speaker.chat_id, Speaker.userid, Speaker.first_at, GroupMember.joined_at)
        .join(GroupMember, and_(GroupMember.chat_id == Speaker.chat_id,
                                GroupMember.userid == Speaker.userid))
        .where(Speaker.userid.in_(senders), Speaker.first_at >= earliest,
               Speaker.intro_msgid.is_(None)))
    found = []
    for chat_id, userid, first_at, joined_at in rows:
        message = firsts.get((chat_id, userid))
        if message is not None and first_at == message.msgtime and \
                joined_at - JOIN_SKEW <= message.msgtime <= joined_at + window:
            found.append(message)
    return found


# Who has not introduced themselves yet.

async def introduced(session: AsyncSession, chat_ids: Iterable[str]) -> set[tuple[str, str]]:
    """(chat_id, userid) of everyone with a self-introduction in these groups."""
    rows = await session.execute(select(Speaker.chat_id, Speaker.userid).where(
        Speaker.chat_id.in_(set(chat_ids)), Speaker.intro_msgid.is_not(None)))
    return {(chat_id, userid) for chat_id, userid in rows}


def _not_introduced_conditions() -> list[Any]:
    return [GroupMember.type == CUSTOMER_MEMBER, GroupMember.left_at.is_(None),
            Speaker.intro_msgid.is_(None)]


def _with_speaker(query: Any) -> Any:
    return query.outerjoin(Speaker, and_(Speaker.chat_id == GroupMember.chat_id,
                                         Speaker.userid == GroupMember.userid))


async def not_introduced(session: AsyncSession, since: datetime, until: datetime,
                         segment: str | None = None) -> dict[str, list[GroupMember]]:
    """Per group (chat_id), the customers who joined in [since, until), are still in it and
    have not introduced themselves, in the order they joined."""
    query = _with_speaker(select(GroupMember)).where(
        *_not_introduced_conditions(), GroupMember.joined_at >= since,
        GroupMember.joined_at < until).order_by(GroupMember.joined_at, GroupMember.id)
    if segment is not None:
        query = query.join(CustomerGroup, CustomerGroup.chat_id == GroupMember.chat_id).where(
            CustomerGroup.segment == segment)
    found: dict[str, list[GroupMember]] = {}
    for member in await session.scalars(query):
        found.setdefault(member.chat_id, []).append(member)
    return found


async def not_introduced_counts(session: AsyncSession, chat_ids: Iterable[str],
                                since: datetime | None = None) -> dict[str, int]:
    """Per group, how many of its customers (who joined since `since`, if given) have not
    introduced themselves."""
    query = _with_speaker(select(GroupMember.chat_id, func.count())).where(
        *_not_introduced_conditions(), GroupMember.chat_id.in_(set(chat_ids))
    ).group_by(GroupMember.chat_id)
    if since is not None:
        query = query.where(GroupMember.joined_at >= since)
    return {chat_id: n for chat_id, n in await session.execute(query)}
