"""微信客服 (kf): a callback's news is read by the kf reader (app/kf/reader.py); the messages it
pulls come back here through the router like any event. A customer entering a conversation is
welcomed through the event's code; a message WeCom could not deliver is recorded."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from app.engine.bot.context import Ctx
from app.engine.bot.env import Env
from app.engine.bot.router import IntakeRule, Router
from app.engine.db import insert_for
from app.engine.logs import get_logger
from app.engine.outbox.models import FAST
from app.engine.outbox.store import Message
from app.engine.wecom.api import Text
from app.engine.wecom.api_kf import KfSendMsgOnEvent
from app.engine.wecom.events import KfMsgOrEvent
from app.engine.wecom.kf_events import KfSendFailed, KfSessionEntered
from app.flows import Flows
from app.kf import store
from app.kf.models import KfSendFailure

log = get_logger("sopbot.kf")
KF_WELCOME_KIND = "kf_welcome"
# The enter-session code lives 20 s from the event; past 18 s the welcome is dropped.
WELCOME_DEADLINE = timedelta(seconds=18)


async def note_kf_news(event: KfMsgOrEvent, ctx: Ctx[Flows]) -> None:
    """The kf account has news: the kf reader pulls it (with this token) once this commits."""
    await store.note_news(ctx.session, event.open_kf_id, event.token, ctx.now)


def kf_welcome(event: KfSessionEntered, flows: Flows, received: datetime) -> Message | None:
    """The welcome for a customer entering a conversation, for the kf link's scene; None
    without a welcome code (WeCom gives none when its console has a welcome, or the customer
    wrote in the last 48 h)."""
    entered = event.message.event
    if entered is None or not entered.welcome_code:
        return None
    # Our own msgid: WeCom drops a second message with it, so a resend after a lost answer
    # is harmless.
    msgid = hashlib.sha256(entered.welcome_code.encode()).hexdigest()[:32]
    call = KfSendMsgOnEvent(code=entered.welcome_code, msgid=msgid, msgtype="text",
                            text=Text(content=flows.kf.welcome.for_scene(entered.scene)))
    return Message(f"kfwelcome:{msgid}", call, KF_WELCOME_KIND, FAST,
                   deadline=event.sent_at(received) + WELCOME_DEADLINE)


def kf_welcome_intake(env: Env[Flows]) -> IntakeRule[KfSessionEntered]:
    """Stored by the kf reader with the page that brought an enter_session: the welcome
    reaches the sender at once, not after the inbox worker's backlog."""
    return lambda event, received: kf_welcome(event, env.flows, received)


async def welcome_kf_customer(event: KfSessionEntered, ctx: Ctx[Flows]) -> None:
    """A customer opening a kf conversation gets the welcome for the link's scene, once (the
    reader queued it already; the same key queues nothing twice)."""
    welcome = kf_welcome(event, ctx.flows, ctx.now)
    if welcome is None:
        log.info("kf_welcome_skipped", open_kfid=event.open_kfid, reason="no welcome_code")
        return
    await ctx.queue(welcome.key, welcome.call, kind=welcome.kind, priority=welcome.priority,
                   deadline=welcome.deadline)


async def record_send_failure(event: KfSendFailed, ctx: Ctx[Flows]) -> None:
    """A message WeCom accepted but could not deliver is kept with the reason (fail_type)."""
    failed = event.message.event
    assert failed is not None
    await ctx.session.execute(insert_for(ctx.session, KfSendFailure).values(
        open_kfid=event.open_kfid, external_userid=event.external_userid,
        fail_msgid=failed.fail_msgid or "", fail_type=failed.fail_type,
        msgid=event.message.msgid, at=ctx.now).on_conflict_do_nothing(index_elements=["msgid"]))
    log.warning("kf_message_not_delivered", open_kfid=event.open_kfid,
                fail_msgid=failed.fail_msgid, fail_type=failed.fail_type)


def router() -> Router:
    kf = Router("kf")
    kf.add(KfMsgOrEvent, note_kf_news)
    kf.add(KfSessionEntered, welcome_kf_customer, intake=kf_welcome_intake)
    kf.add(KfSendFailed, record_send_failure)
    return kf
