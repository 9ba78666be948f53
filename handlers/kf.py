"""微信客服 (kf): a callback's news is read by the kf reader (app/kf/puller.py); the messages it
pulls come back here through the router like any event. A customer entering a conversation is
welcomed through the event's code; a message WeCom could not deliver is recorded."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.bot.context import Ctx
from app.bot.router import Router
from app.kf import store
from app.kf.models import KfSendFailure
from app.logs import get_logger
from app.outbox.models import FAST
from app.wecom.api import Text
from app.wecom.api_kf import KfSendMsgOnEvent
from app.wecom.events import KfMsgOrEvent
from app.wecom.kf_events import KfSendFailed, KfSessionEntered

log = get_logger("sopbot.kf")
KF_WELCOME_KIND = "kf_welcome"
# The enter-session code lives 20 s from the event; past 18 s the welcome is dropped.
WELCOME_DEADLINE = timedelta(seconds=18)


async def note_kf_news(event: KfMsgOrEvent, ctx: Ctx) -> None:
    """The kf account has news: the kf reader pulls it (with this token) once this commits."""
    await store.note_news(ctx.session, event.open_kf_id, event.token, ctx.now)


async def welcome_kf_customer(event: KfSessionEntered, ctx: Ctx) -> None:
    """A customer opening a kf conversation gets the welcome for the link's scene, once."""
    entered = event.message.event
    if entered is None or not entered.welcome_code:
        log.info("kf_welcome_skipped", open_kfid=event.open_kfid, reason="no welcome_code")
        return
    text = ctx.flows.kf.welcome.for_scene(entered.scene)
    sent_at = datetime.fromtimestamp(event.create_time, ctx.now.tzinfo) if event.create_time \
        else ctx.now
    # Our own msgid: WeCom drops a second message with it, so a resend after a lost answer
    # is harmless.
    msgid = hashlib.sha256(entered.welcome_code.encode()).hexdigest()[:32]
    await ctx.send(f"kfwelcome:{msgid}", KfSendMsgOnEvent(
        code=entered.welcome_code, msgid=msgid, msgtype="text", text=Text(content=text)),
        kind=KF_WELCOME_KIND, priority=FAST, deadline=sent_at + WELCOME_DEADLINE)


async def record_send_failure(event: KfSendFailed, ctx: Ctx) -> None:
    """A message WeCom accepted but could not deliver is kept with the reason (fail_type)."""
    failed = event.message.event
    assert failed is not None
    insert = pg_insert if ctx.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    await ctx.session.execute(insert(KfSendFailure).values(
        open_kfid=event.open_kfid, external_userid=event.external_userid,
        fail_msgid=failed.fail_msgid or "", fail_type=failed.fail_type,
        msgid=event.message.msgid, at=ctx.now).on_conflict_do_nothing(index_elements=["msgid"]))
    log.warning("kf_message_not_delivered", open_kfid=event.open_kfid,
                fail_msgid=failed.fail_msgid, fail_type=failed.fail_type)


def router() -> Router:
    kf = Router("kf")
    kf.add(KfMsgOrEvent, note_kf_news)
    kf.add(KfSessionEntered, welcome_kf_customer)
    kf.add(KfSendFailed, record_send_failure)
    return kf
