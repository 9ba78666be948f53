"""Answering a customer in 微信客服 within WeCom's rules: only within 48 h of their last
message and at most 5 answers per message (counted in kf_conversation, in the handler's unit
of work), never while a person has the conversation, each answer with our own msgid so a
resend after a lost answer is dropped by WeCom. A hand-off moves the session to the queue
(kf/service_state/trans, state 2); the message that says so goes out with the code WeCom
returns for it (send_msg_on_event), since sopbot may no longer write in state 2."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal, Required, TypedDict

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.engine.logs import get_logger
from app.engine.outbox import store as outbox
from app.engine.outbox.models import DEAD, EXPIRED, SENT, UNKNOWN
from app.engine.wecom.api import Text
from app.engine.wecom.api_kf import (
    KfLink,
    KfSendMsg,
    KfSendMsgOnEvent,
    KfTransServiceState,
    MenuClick,
    MsgMenu,
    MsgMenuItem,
)
from app.kf.models import KfConversation

if TYPE_CHECKING:
    from app.engine.bot.context import Ctx
    from app.engine.outbox.outcomes import Outcome
    from app.engine.outbox.sender import SettledHook
    from app.engine.outbox.store import Claimed
    from app.engine.wecom.kf_events import KfPulled
    from app.keywords.rules import Answer

log = get_logger("sopbot.kf")
REPLY_KIND, HANDOFF_KIND = "kf_reply", "kf_handoff"
WINDOW = timedelta(hours=48)
ANSWERS_PER_MESSAGE = 5
QUEUE: Final = 2  # service_state: waiting in the pool for a person


def msgid_for(key: str) -> str:
    """Our msgid for an outbox key (≤32 of [0-9a-f]): the same key, the same msgid."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


async def conversation(session: AsyncSession, event: KfPulled) -> KfConversation | None:
    """The customer's window row (made by the kf reader with their message), locked."""
    return await session.scalar(select(KfConversation).where(
        KfConversation.open_kfid == event.open_kfid,
        KfConversation.external_userid == event.external_userid).with_for_update())


def with_person(row: KfConversation, now: datetime) -> bool:
    return row.handed_off_at is not None and now - row.handed_off_at < WINDOW


async def answer(ctx: Ctx[Any], event: KfPulled, row: KfConversation, reply: Answer,
                 key: str) -> bool:
    """Queue `reply` if WeCom's window allows it; False (logged) when it does not."""
    if row.last_customer_at is None or ctx.now - row.last_customer_at >= WINDOW \
            or row.answers >= ANSWERS_PER_MESSAGE or with_person(row, ctx.now):
        log.info("kf_answer_not_allowed", open_kfid=event.open_kfid, answers=row.answers)
        return False
    row.answers += 1
    call = KfSendMsg(touser=event.external_userid, open_kfid=event.open_kfid,
                     msgid=msgid_for(key), **_body(reply))
    await ctx.queue(key, call, kind=REPLY_KIND)
    return True


class _Body(TypedDict, total=False):
    """What an answer adds to a kf/send_msg: its type, and the part of that type."""

    msgtype: Required[Literal["text", "link", "msgmenu"]]
    text: Text
    link: KfLink
    msgmenu: MsgMenu


def _body(reply: Answer) -> _Body:
    if reply.text is not None:
        return {"msgtype": "text", "text": Text(content=reply.text)}
    if reply.link is not None:
        link = reply.link
        return {"msgtype": "link", "link": KfLink(title=link.title, desc=link.desc or None,
                                                  url=link.url,
                                                  thumb_media_id=link.thumb_media_id)}
    assert reply.menu is not None
    items = [MsgMenuItem(type="click", click=MenuClick(id=item.id, content=item.content))
             for item in reply.menu.items]
    return {"msgtype": "msgmenu", "msgmenu": MsgMenu(
        head_content=reply.menu.head or None, items=items, tail_content=reply.menu.tail or None)}


async def hand_off(ctx: Ctx[Any], event: KfPulled, row: KfConversation, reason: str) -> None:
    """Queue the session for a person; once WeCom has taken it (the settle hook), sopbot keeps
    quiet until it ends. A hand-off WeCom refuses leaves sopbot answering."""
    row.misses = 0
    await ctx.queue(f"kftrans:{event.message.msgid}", KfTransServiceState(
        open_kfid=event.open_kfid, external_userid=event.external_userid,
        service_state=QUEUE), kind=HANDOFF_KIND)
    log.info("kf_handed_off", open_kfid=event.open_kfid, reason=reason)


async def session_ended(session: AsyncSession, event: KfPulled) -> None:
    """The person (or WeCom) closed the session: sopbot answers again."""
    await session.execute(update(KfConversation).where(
        KfConversation.open_kfid == event.open_kfid,
        KfConversation.external_userid == event.external_userid).values(handed_off_at=None))


def handoff_settled(text_of: Callable[[], str]) -> SettledHook:
    """Settle hook for the hand-off: the conversation is with a person from now on, and the
    msg_code WeCom returns carries the one message that says so."""
    async def hook(session: AsyncSession, claimed: Claimed, outcome: Outcome,
                   now: datetime) -> None:
        request = json.loads(claimed.request)
        if outcome.label != SENT:
            if outcome.label in (DEAD, EXPIRED, UNKNOWN):
                log.error("kf_handoff_failed", open_kfid=request["open_kfid"],
                          outcome=outcome.label, errcode=outcome.values.get("errcode"))
            return
        await session.execute(update(KfConversation).where(
            KfConversation.open_kfid == request["open_kfid"],
            KfConversation.external_userid == request["external_userid"])
            .values(handed_off_at=now))
        if not outcome.values.get("response"):
            return
        code = json.loads(outcome.values["response"]).get("msg_code")
        if not code:
            return  # WeCom gives a code only the first time a session is queued
        key = f"kfhandoff-text:{claimed.idempotency_key}"
        await outbox.enqueue(session, key, KfSendMsgOnEvent(
            code=code, msgid=msgid_for(key), msgtype="text", text=Text(content=text_of())),
            kind=REPLY_KIND)
    return hook
