"""/console/koc (推荐官): the referral programme's leaderboard, reward ledger, flagged referrals,
credits, KOC candidates and KOCs, and an operator's decisions on them.

Every decision is a POST carrying the CSRF token (the router-level guard) and is
POST-redirect-GET: the outcome travels in the flash cookie to the page, filters kept. A form
that cannot be acted on (unknown member, a missing reason, the KOC tag not made yet) answers
with the page and the error (4xx), nothing changed. Without sop_flows/koc.yaml there is no
programme: the page says so and every decision is refused (409).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.engine.db import utcnow
from app.engine.logs import get_logger
from app.faces.console import flash
from app.faces.console.auth import operator_required
from app.faces.console.pages import koc_view as view
from app.faces.console.params import MAX_REASON, ROW_ID_MAX, possible_row_id
from app.faces.console.render import render
from app.koc import kocs, recommenders, referrals, rewards, stats
from app.koc.links import koc_links
from app.koc.models import CREDITED, REJECTED, ReferralCredit
from app.members.models import Member

log = get_logger("sopbot.console")
router = APIRouter()

PAGE = "/console/koc"
FLASH_PAGE = "koc"
OFF = "推荐官计划未开启：没有 sop_flows/koc.yaml。"
NO_TAG = "企业微信中还没有 KOC 标签：请先在服务器上运行 `sopbot tags sync`，再设置 KOC。"
NOT_ENROLLED = {
    recommenders.NOT_ELIGIBLE: ("会员 #{id} 还不能成为推荐官：需以商家身份通过认证、"
                                "绑定手机号和平台账号，并已分群。"),
    recommenders.FULL: "推荐码数量已达上限（koc.yaml codes.max），请先扩充名额。"}
Operator = Annotated[str, Depends(operator_required)]
FormText = Annotated[str, Form(max_length=64)]
FormPage = Annotated[int, Form(ge=1, le=100_000)]
QueryPage = Annotated[int, Query(ge=1, le=100_000)]
MemberId = Annotated[int, Form(ge=1, le=ROW_ID_MAX)]
RowId = Annotated[int, Form(ge=1, le=ROW_ID_MAX)]


async def kept(reward: FormText = "", referral: FormText = "", page: FormPage = 1,
               wpage: FormPage = 1, rpage: FormPage = 1) -> view.Form:
    """The page's filters, carried by every decision's form so the redirect keeps them."""
    return view.Form(reward, referral, page, wpage, rpage)


Kept = Annotated[view.Form, Depends(kept)]


@router.get("/koc")
async def koc_page(request: Request, operator: Operator, reward: str = Query("", max_length=64),
                   referral: str = Query("", max_length=64), page: QueryPage = 1,
                   wpage: QueryPage = 1, rpage: QueryPage = 1) -> Response:
    form = view.Form(reward, referral, page, wpage, rpage)
    outcome = flash.take(request, operator, FLASH_PAGE)
    response = await _page(request, operator, form,
                           notice=view.notice(outcome) if outcome else None)
    flash.clear(request, response)  # shown once
    return response


@router.post("/koc/rewards")
async def decide_rewards(request: Request, operator: Operator, form: Kept,
                         ids: Annotated[list[int] | None, Form()] = None,
                         action: FormText = "",
                         note: Annotated[str, Form(max_length=MAX_REASON)] = "") -> Response:
    """Approve, decline or mark issued by hand the rewards ticked (those whose status allows)."""
    if (off := await _off(request, operator, form)) is not None:
        return off
    if action not in rewards.DECISIONS:
        return await _page(request, operator, form, error="未知的操作。", code=400)
    wanted = sorted({n for n in ids or [] if possible_row_id(n)})
    if not wanted or len(wanted) > view.PAGE_SIZE:
        return await _page(request, operator, form, code=400,
                           error=f"请勾选要处理的奖励（一次最多 {view.PAGE_SIZE} 条）。")
    async with request.app.state.runtime.db.unit_of_work() as session:
        done = await rewards.decide(session, wanted, action, operator, utcnow(),
                                    note.strip() or None)
    log.info("console_rewards_decided", operator=operator, action=action, asked=wanted,
             done=done)
    return _done(request, operator, form, {"a": action, "done": done,
                                           "left": sorted(set(wanted) - set(done))})


@router.post("/koc/referrals")
async def decide_referral(request: Request, operator: Operator, form: Kept, id: RowId,
                          action: FormText = "") -> Response:
    """Credit (every other rule still applies) or reject a flagged referral."""
    runtime = request.app.state.runtime
    if (off := await _off(request, operator, form)) is not None:
        return off
    if action not in ("credit", "reject"):
        return await _page(request, operator, form, error="未知的操作。", code=400)
    async with runtime.db.unit_of_work() as session:
        row = await stats.flagged_referral(session, id)
        if row is None:
            return _done(request, operator, form, {"a": "still", "id": id,
                                                   "why": "它不是待人工判断的推荐。"})
        status = await referrals.decide_flagged(session, row, action == "credit", operator,
                                                utcnow(), runtime.flows.koc)
        reason = row.reason
    log.info("console_referral_decided", operator=operator, referral_id=id, action=action,
             status=status)
    return _done(request, operator, form, _decided(id, status, reason))


def _decided(referral_id: int, status: str, reason: str | None) -> dict[str, Any]:
    if status == CREDITED:
        return {"a": "credited", "id": referral_id}
    if status == REJECTED and reason == referrals.BY_OPERATOR:
        return {"a": "rejected", "id": referral_id}
    if status == REJECTED:
        why = f"未能计入（{view.REASON_LABELS.get(reason or '', reason)}），已标记为不计入。"
        return {"a": "still", "id": referral_id, "why": why}
    return {"a": "still", "id": referral_id, "why": "被推荐人尚未完成认证或不在群内，稍后再试。"}


@router.post("/koc/revoke")
async def revoke_credit(request: Request, operator: Operator, form: Kept, id: RowId,
                        reason: Annotated[str, Form(max_length=MAX_REASON)] = "") -> Response:
    """Take a credit back (the referee turned out fake): it stops counting, for ever."""
    if (off := await _off(request, operator, form)) is not None:
        return off
    if not reason.strip():
        return await _page(request, operator, form, code=400,
                           error=f"撤销计入需要填写原因（{MAX_REASON} 字以内）。")
    async with _refusals(request, operator, form) as refused, \
            request.app.state.runtime.db.unit_of_work() as session:
        credit = await session.scalar(select(ReferralCredit).where(
            ReferralCredit.referral_id == id).with_for_update())
        if credit is None:
            raise Refused(f"推荐 #{id} 没有计入记录。", 404)
        done = await referrals.revoke(session, credit, operator, reason.strip(), utcnow())
    if refused.response is not None:
        return refused.response
    log.info("console_credit_revoked", operator=operator, referral_id=id, done=done)
    return _done(request, operator, form, {"a": "revoked" if done else "not_revoked", "id": id})


@router.post("/koc/kocs")
async def set_koc(request: Request, operator: Operator, form: Kept, member_id: MemberId,
                  action: FormText = "") -> Response:
    """Promote a member to KOC or demote them (the corp tag follows through the outbox)."""
    if (off := await _off(request, operator, form)) is not None:
        return off
    if action not in ("promote", "demote"):
        return await _page(request, operator, form, error="未知的操作。", code=400)
    async with _refusals(request, operator, form) as refused, \
            request.app.state.runtime.db.unit_of_work() as session:
        try:
            changed = await kocs.set_koc(session, await _member(session, member_id),
                                         action == "promote", operator, utcnow())
        except kocs.NoKocTag:
            raise Refused(NO_TAG, 409) from None
    if refused.response is not None:
        return refused.response
    code = ("promoted" if action == "promote" else "demoted") if changed else "unchanged"
    return _done(request, operator, form, {"a": code, "id": member_id})


@router.post("/koc/nominate")
async def nominate(request: Request, operator: Operator, form: Kept,
                   member_id: MemberId) -> Response:
    """Make a member a recommender; their code is sent now if ready, else once WeCom made it
    (the code's settle hook)."""
    runtime = request.app.state.runtime
    if (off := await _off(request, operator, form)) is not None:
        return off
    koc, now = runtime.flows.koc, utcnow()
    async with _refusals(request, operator, form) as refused, \
            runtime.db.unit_of_work() as session:
        done = await recommenders.enrol(session, await _member(session, member_id),
                                        f"nominated:{operator}", now, koc, runtime.flows.funnel)
        if done.outcome in NOT_ENROLLED:  # nothing kept: a FULL enrolment leaves no row
            raise Refused(NOT_ENROLLED[done.outcome].format(id=member_id), 409)
        via = None
        if done.outcome == recommenders.READY and done.recommender is not None:
            via = await recommenders.send_code(session, done.recommender, now,
                                               recommenders.Delivery(
                                                   koc, koc_links(runtime.settings),
                                                   runtime.settings.agent_id))
    if refused.response is not None:
        return refused.response
    log.info("console_recommender_nominated", operator=operator, member_id=member_id,
             outcome=done.outcome, via=via)
    return _done(request, operator, form, {"a": done.outcome, "id": member_id,
                                           "via": view.DELIVERY_LABELS.get(via or "", "")})


@router.post("/koc/assign")
async def assign(request: Request, operator: Operator, form: Kept, member_id: MemberId,
                 kind: FormText = "", title: Annotated[str, Form(max_length=200)] = "",
                 ) -> Response:
    """Give a KOC a 话题讨论 topic to lead or a 嘉宾分享会 invitation (their staff is told)."""
    runtime = request.app.state.runtime
    if (off := await _off(request, operator, form)) is not None:
        return off
    title = " ".join(title.split())
    if kind not in view.ASSIGN_LABELS or not title or len(title) > 128:
        return await _page(request, operator, form, code=400,
                           error="请选择安排类型，并填写标题（128 字以内）。")
    async with _refusals(request, operator, form) as refused, \
            runtime.db.unit_of_work() as session:
        try:
            await kocs.assign(session, await _member(session, member_id), kind, title,
                              operator, utcnow(), runtime.flows.koc, runtime.settings.agent_id)
        except kocs.NotKoc:
            raise Refused(f"会员 #{member_id} 不是 KOC：请先设为 KOC。", 409) from None
    if refused.response is not None:
        return refused.response
    return _done(request, operator, form, {"a": "assigned", "id": member_id,
                                           "kind": view.ASSIGN_LABELS[kind], "title": title})


async def _off(request: Request, operator: str, form: view.Form) -> Response | None:
    if request.app.state.runtime.flows.koc is None:
        return await _page(request, operator, form, error=OFF, code=409)
    return None


class Refused(Exception):
    """A decision that cannot be made: its unit of work rolls back, the page says why."""

    def __init__(self, error: str, code: int) -> None:
        super().__init__(error)
        self.error, self.code = error, code


@dataclass
class Refusal:
    response: Response | None = None


@asynccontextmanager
async def _refusals(request: Request, operator: str,
                    form: view.Form) -> AsyncIterator[Refusal]:
    """Catches Refused (outside the unit of work, which rolled back) into the error page."""
    found = Refusal()
    try:
        yield found
    except Refused as exc:
        found.response = await _page(request, operator, form, error=exc.error, code=exc.code)


async def _member(session: AsyncSession, member_id: int) -> Member:
    member = await session.get(Member, member_id)
    if member is None:
        raise Refused(f"没有会员 #{member_id}。", 404)
    return member


def _done(request: Request, operator: str, form: view.Form,
          payload: dict[str, Any]) -> Response:
    query = urlencode(form.query())
    response = RedirectResponse(f"{PAGE}?{query}" if query else PAGE, 303)
    flash.put(request, response, operator, FLASH_PAGE, payload)
    return response


async def _page(request: Request, operator: str, form: view.Form, *, code: int = 200,
                **ctx: Any) -> Response:
    runtime = request.app.state.runtime
    if runtime.flows.koc is None:
        return _render(request, form, code, off=True, **ctx)
    if error := form.problem():
        return _render(request, form, 400, error=error, off=False)
    async with runtime.db.reader() as session:
        data = await view.listing(session, form, runtime.flows, operator, utcnow())
    return _render(request, form, code, off=False, **(data | ctx))


def _render(request: Request, form: view.Form, code: int, **ctx: Any) -> Response:
    return render(request, "koc.html", status_code=code, form=form,
                  referral_labels=view.REFERRAL_LABELS, reward_labels=view.REWARD_LABELS,
                  decisions=view.REWARD_DECISIONS, assign_labels=view.ASSIGN_LABELS, **ctx)
