"""The recommender's (推荐官) H5 pages, texts from sop_flows/koc_pages.yaml.

- GET /koc/me/{token}: their own page, the link signed for them (app/koc/links.py): their
  referrals as they may read them (a masked group nickname or a neutral word, never a phone
  or an id), their credited count, the next tier, their rewards and their share link. A forged
  link gets 403, an expired one 410, a member who is no recommender 404: each a Chinese page.
- GET /koc/r/{short_id}: the share page, public by design: the QR code of their 联系我 code
  and the invitation, nothing about the recommender. 404 for an unknown id, 410 for a code
  that was removed or is not made yet.

Inputs are bounded before any lookup (a token of at most TOKEN_MAX characters, an id of the
code alphabet). The pages carry the verification page's security headers (no script, styles
and the stylesheet from this site, QR images from WeCom) and are never cached.
"""

from __future__ import annotations

import re
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, PackageLoader, select_autoescape

from app.engine.config import SHANGHAI
from app.engine.logs import get_logger
from app.faces.web.runtime import Runtime
from app.faces.web.verify.pages import SECURITY_HEADERS, STYLESHEET_URL
from app.koc import report
from app.koc.flows import KocFlows
from app.koc.links import LinkError, koc_links
from app.koc.models import CODE_READY, Recommender
from app.koc.page_texts import KocPages
from app.koc.recommenders import by_short_id
from app.members.service import by_external_userid

log = get_logger("sopbot.koc")
router = APIRouter(prefix="/koc")

TOKEN_MAX = 512  # a signed token is about 90 characters; anything much longer is not one
SHORT_ID = re.compile(r"^[a-z0-9]{1,16}$")
HEADERS = {**SECURITY_HEADERS, "Cache-Control": "no-store"}

# The verification pages' base.html frames these pages too (one stylesheet, one head).
_env = Environment(loader=ChoiceLoader([PackageLoader("app.faces.web", "koc_templates"),
                                        PackageLoader("app.faces.web.verify", "templates")]),
                   autoescape=select_autoescape(default=True), auto_reload=False,
                   trim_blocks=True, lstrip_blocks=True)
_env.globals["stylesheet"] = STYLESHEET_URL


def _texts(runtime: Runtime) -> KocPages | None:
    """The pages' texts, checked at start with the other flows; None without the programme
    (sop_flows/koc.yaml absent: then no koc_pages.yaml is read either)."""
    return runtime.flows.koc_pages if runtime.flows.koc is not None else None


def page(name: str, status_code: int = 200, **ctx: object) -> HTMLResponse:
    return HTMLResponse(_env.get_template(name).render(**ctx), status_code, headers=HEADERS)


def message(title: str, text: str, status_code: int) -> HTMLResponse:
    return page("koc_message.html", status_code, title=title, text=text)


@router.get("/me/{token}", response_class=HTMLResponse)
async def own_page(token: str, request: Request) -> HTMLResponse:
    """A recommender's referrals, credits, rewards and share link."""
    runtime: Runtime = request.app.state.runtime
    if (t := _texts(runtime)) is None or runtime.flows.koc is None:
        return HTMLResponse("not found", 404, headers=HEADERS)
    userid = _member_of(runtime, token, t)
    if isinstance(userid, HTMLResponse):
        return userid
    async with runtime.db.reader() as session:
        member = await by_external_userid(session, userid)
        view = await report.own_view(session, member.id) if member is not None else None
    if view is None:
        return message(t.me.title, t.me.not_recommender, 404)
    return _own(runtime, t, runtime.flows.koc, view)


def _member_of(runtime: Runtime, token: str, t: KocPages) -> str | HTMLResponse:
    if len(token) > TOKEN_MAX:
        return message(t.me.title, t.me.link_invalid, 403)
    try:
        return koc_links(runtime.settings).member_of(token)
    except LinkError as exc:
        log.info("koc_link_rejected", expired=exc.expired)
        if exc.expired:
            return message(t.me.title, t.me.link_expired, 410)
        return message(t.me.title, t.me.link_invalid, 403)


def _own(runtime: Runtime, t: KocPages, koc: KocFlows, view: report.OwnView) -> HTMLResponse:
    rec = view.recommender
    ready = rec.code == CODE_READY and rec.active
    more = t.me.more.format(shown=report.OWN_MAX) if view.referred > len(view.referrals) \
        else None
    return page("koc_me.html", t=t, summary=t.me.summary.format(count=view.credited,
                                                                total=view.referred),
                next_tier=_next_tier(t, koc, view.credited),
                share_url=koc_links(runtime.settings).share_url(rec.short_id) if ready else None,
                qr_code=rec.qr_code if ready else None, more=more,
                referrals=[(r.referee or t.me.referee, _day(r.added_at), r.shown,
                            t.referral_status.get(r.shown, "")) for r in view.referrals],
                rewards=[(w.label, w.period, w.status, t.reward_status.get(w.status, ""))
                         for w in view.rewards])


def _day(moment: datetime) -> str:
    return f"{moment.astimezone(SHANGHAI):%Y-%m-%d}"


def _next_tier(t: KocPages, koc: KocFlows, credited: int) -> str | None:
    """The first tier not reached yet: how many more credited referrals it takes."""
    tier = next((tier for tier in koc.tiers if tier.referrals > credited), None)
    if tier is None:
        return None
    return t.me.next_tier.format(left=tier.referrals - credited, reward=tier.reward)


@router.get("/r/{short_id}", response_class=HTMLResponse)
async def share_page(short_id: str, request: Request) -> HTMLResponse:
    """The recommender's QR code and the invitation: nothing else about them."""
    runtime: Runtime = request.app.state.runtime
    if (t := _texts(runtime)) is None:
        return HTMLResponse("not found", 404, headers=HEADERS)
    rec: Recommender | None = None
    if SHORT_ID.fullmatch(short_id):
        async with runtime.db.reader() as session:
            rec = await by_short_id(session, short_id)
    if rec is None:
        return message(t.share.title, t.share.unknown, 404)
    if rec.code != CODE_READY or not rec.qr_code or not rec.active:
        return message(t.share.title, t.share.removed, 410)
    return page("koc_share.html", t=t, qr_code=rec.qr_code)
