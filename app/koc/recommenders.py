"""Recommenders (推荐官) and their personal 联系我 codes.

A verified business member who joined a group becomes a recommender by asking in 微信客服 or
by an operator's nomination. Their code (state `<channel>.<short id>`) is made through the
outbox (add_contact_way is not idempotent: the outbox never sends it twice by itself), and when
WeCom has made it the settle hook stores it and sends it on: in the kf conversation they asked
in, while WeCom's 48-hour window allows, else to their staff member to forward. Codes nobody
came through for `codes.idle_days` are deleted, so the corp's quota is not used up.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.engine.logs import get_logger
from app.engine.outbox import store as outbox
from app.engine.outbox.models import DEAD, EXPIRED, SENT, UNKNOWN
from app.engine.wecom.api import SendMessage, Text
from app.engine.wecom.api_contact import AddContactWay, DelContactWay
from app.engine.wecom.api_kf import KfSendMsg
from app.kf.models import KfConversation
from app.koc.flows import SHORT_ID_LEN, KocFlows
from app.koc.links import KocLinks
from app.koc.models import CODE_READY, CODE_REMOVED, CODE_REQUESTED, NO_CODE, Recommender
from app.members.models import APPROVED, JOINED, LINKED, ROUTED, Member

if TYPE_CHECKING:
    from app.engine.outbox.outcomes import Outcome
    from app.engine.outbox.sender import SettledHook
    from app.engine.outbox.store import Claimed
    from app.funnel.flows import FunnelFlows

log = get_logger("sopbot.koc")
CODE_KIND, DELIVERY_KIND, CODE_DELETE_KIND = "koc_code", "koc_code_delivery", "koc_code_delete"
KF_WINDOW = timedelta(hours=48)
KF_ANSWERS = 5
ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no 0/o, 1/l: read aloud without mistakes

# What becomes of a member's request (Enrolment.outcome).
READY, COMING, NOT_ELIGIBLE, FULL = "ready", "coming", "not_eligible", "full"


@dataclass(frozen=True)
class Enrolment:
    outcome: str
    recommender: Recommender | None = None


def eligible(member: Member) -> bool:
    """A business that passed verification, holds its phone and platform id, and was routed."""
    return (member.link_state == LINKED and member.identity_type not in (None, "consumer")
            and member.status in (APPROVED, ROUTED, JOINED))


async def of_member(session: AsyncSession, member_id: int) -> Recommender | None:
    return await session.scalar(select(Recommender).where(Recommender.member_id == member_id))


async def by_short_id(session: AsyncSession, short_id: str) -> Recommender | None:
    return await session.scalar(select(Recommender).where(Recommender.short_id == short_id))


async def enrol(session: AsyncSession, member: Member, source: str, now: datetime,
                koc: KocFlows, funnel: FunnelFlows, *, kfid: str | None = None) -> Enrolment:
    """Make the member a recommender (or find them one) and see that their code exists."""
    if not eligible(member):
        return Enrolment(NOT_ELIGIBLE)
    rec = await of_member(session, member.id)
    if (rec is None or rec.code not in (CODE_READY, CODE_REQUESTED)) \
            and await codes_in_use(session) >= koc.codes.max:
        log.warning("recommender_codes_full", limit=koc.codes.max)
        return Enrolment(FULL, rec)  # nobody is made a recommender without a code
    if rec is None:
        rec = Recommender(member_id=member.id, short_id=_short_id(), source=source[:80],
                          created_at=now)
        session.add(rec)
        await session.flush()
        log.info("recommender_enrolled", member_id=member.id, recommender_id=rec.id,
                 source=source)
    rec.active = True
    if kfid:  # a nomination keeps the kf account they asked on, if any
        rec.deliver_kfid = kfid
    if rec.code == CODE_READY:
        return Enrolment(READY, rec)
    if rec.code != CODE_REQUESTED:
        await _request_code(session, rec, now, koc, funnel)
    return Enrolment(COMING, rec)


def _short_id() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(SHORT_ID_LEN))


async def codes_in_use(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(Recommender).where(
        Recommender.code.in_((CODE_REQUESTED, CODE_READY)))) or 0


async def _request_code(session: AsyncSession, rec: Recommender, now: datetime,
                        koc: KocFlows, funnel: FunnelFlows) -> None:
    staff = list(funnel.channels[koc.channel].staff)
    call = AddContactWay(type=1 if len(staff) == 1 else 2, scene=2,
                         state=koc.state_of(rec.short_id), remark=f"推荐官 {rec.short_id}",
                         user=staff, skip_verify=True)
    rec.code, rec.code_at = CODE_REQUESTED, now
    await outbox.enqueue(session, f"koccode:{rec.id}:{int(now.timestamp())}", call,
                         kind=CODE_KIND)


@dataclass(frozen=True)
class Delivery:
    """How a ready code reaches its recommender (texts from koc.yaml, links signed)."""

    koc: KocFlows
    links: KocLinks
    agent_id: int | None


def code_settled(delivery: Delivery) -> SettledHook:
    """Settle hook of CODE_KIND: WeCom made the code (store it, send it on) or refused."""
    async def hook(session: AsyncSession, claimed: Claimed, outcome: Outcome,
                   now: datetime) -> None:
        state = json.loads(claimed.request).get("state", "")
        rec = await by_short_id(session, delivery.koc.short_id_of(state) or "")
        if rec is None or rec.code != CODE_REQUESTED:
            return
        if outcome.label != SENT:
            if outcome.label in (DEAD, EXPIRED, UNKNOWN):
                rec.code = NO_CODE  # asking again tries anew
                log.error("recommender_code_failed", recommender_id=rec.id,
                          outcome=outcome.label, errcode=outcome.values.get("errcode"))
            return
        answer = json.loads(outcome.values.get("response") or "{}")
        rec.code, rec.code_at = CODE_READY, now
        rec.config_id, rec.qr_code = answer.get("config_id"), answer.get("qr_code")
        log.info("recommender_code_ready", recommender_id=rec.id, config_id=rec.config_id)
        await send_code(session, rec, now, delivery)
    return hook


async def send_code(session: AsyncSession, rec: Recommender, now: datetime,
                    delivery: Delivery) -> str:
    """The code and links to the recommender: in their kf conversation while the window is
    open, else to their staff member to forward. Which way it went ("kf", "staff", "none")."""
    member = await session.get(Member, rec.member_id)
    assert member is not None
    share, page = delivery.links.share_url(rec.short_id), delivery.links.url(
        member.external_userid)
    key = f"koccode-send:{rec.id}:{int(now.timestamp())}"
    if rec.deliver_kfid and await _kf_open(session, rec.deliver_kfid, member, now):
        text = delivery.koc.texts.joined.format(qr_code=rec.qr_code or "", share_url=share,
                                                page_url=page)
        await outbox.enqueue(session, key, KfSendMsg(
            touser=member.external_userid, open_kfid=rec.deliver_kfid, msgid=_msgid(key),
            msgtype="text", text=Text(content=text)), kind=DELIVERY_KIND)
        return "kf"
    if delivery.agent_id is None:
        log.warning("recommender_code_not_sent", recommender_id=rec.id,
                    reason="no open kf window and WECOM_AGENT_ID is not set")
        return "none"
    text = delivery.koc.texts.to_staff.format(name=display_name(member), share_url=share,
                                              page_url=page)
    await outbox.enqueue(session, key, SendMessage(
        agentid=delivery.agent_id, touser=member.staff_userid, msgtype="text",
        text=Text(content=text)), kind=DELIVERY_KIND)
    return "staff"


def _msgid(key: str) -> str:
    from app.kf.replies import msgid_for  # the kf answers' own msgid rule
    return msgid_for(key)


async def _kf_open(session: AsyncSession, open_kfid: str, member: Member,
                   now: datetime) -> bool:
    """WeCom lets a kf account answer within 48 h of the customer's last message, 5 times."""
    row = await session.scalar(select(KfConversation).where(
        KfConversation.open_kfid == open_kfid,
        KfConversation.external_userid == member.external_userid).with_for_update())
    if row is None or row.last_customer_at is None or now - row.last_customer_at >= KF_WINDOW \
            or row.answers >= KF_ANSWERS or row.handed_off_at is not None:
        return False
    row.answers += 1
    return True


def display_name(member: Member) -> str:
    """How staff and the console name a member without their WeCom name: #id and region."""
    return f"#{member.id} {member.region or ''}".strip()


async def remove_idle_codes(session: AsyncSession, now: datetime, koc: KocFlows,
                            limit: int = 200) -> int:
    """Queue the deletion of codes nobody came through for idle_days (oldest first)."""
    cutoff = now - timedelta(days=koc.codes.idle_days)
    idle = list(await session.scalars(select(Recommender).where(
        Recommender.code == CODE_READY,
        func.coalesce(Recommender.last_referral_at, Recommender.code_at) < cutoff)
        .order_by(Recommender.id).limit(limit).with_for_update()))
    for rec in idle:
        if rec.config_id:
            await outbox.enqueue(session, f"koccode-del:{rec.config_id}",
                                 DelContactWay(config_id=rec.config_id), kind=CODE_DELETE_KIND)
        rec.code, rec.config_id, rec.qr_code = CODE_REMOVED, None, None
    if idle:
        log.info("recommender_codes_removed", count=len(idle), idle_days=koc.codes.idle_days)
    return len(idle)
