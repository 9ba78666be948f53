"""GET/POST /verify/{token}: the member's H5 form, and their status once they have submitted.

A forged link gets 403 and an expired one 410, each a polite page; nothing is stored for
either, nor for a POST the browser says another site sent (403, before the body is read). A form
with mistakes comes back with what was typed (browsers cannot refill files). The pages' headers
and stylesheet are pages.py's."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException

from app.engine.config import Settings
from app.engine.db import utcnow
from app.engine.logs import get_logger
from app.faces.web.runtime import Runtime
from app.faces.web.verify.origin import cross_site
from app.faces.web.verify.pages import (
    STYLESHEET_PATH,
    JoinCode,
    form_page,
    message_page,
    status_page,
    stylesheet,
)
from app.groups import pools
from app.members.models import Member
from app.members.service import by_external_userid
from app.routing.service import after_approval
from app.verify import service
from app.verify.flows import CONSUMER, VerifyFlows
from app.verify.links import LinkError, links_for
from app.verify.models import Verification
from app.verify.phone import normalise_phone
from app.verify.photos import (
    MAX_PHOTOS,
    Photo,
    PhotoError,
    chosen,
    discard,
    inspect,
    megabytes,
    read_photos,
    store,
)

log = get_logger("sopbot.verify")
FIELDS = ("phone", "identity_type", "region")
FORM_OVERHEAD = 64 * 1024  # the text fields and multipart framing around the photos

router = APIRouter(prefix="/verify")


def max_body_size(settings: Settings) -> int:
    """The bound the app puts on this router's bodies (FastAPI's max_body_size): well above the
    form's own (photos and their framing), which `submit_form` enforces with a page of its
    own before reading; the app's bound only stops what the form would never see."""
    return 2 * (MAX_PHOTOS * settings.photo_max_bytes + FORM_OVERHEAD)


@router.get(STYLESHEET_PATH.removeprefix("/verify"), include_in_schema=False)
async def verify_css() -> Response:
    """The pages' stylesheet: a file of sopbot's own, as the pages' CSP allows no inline style."""
    return stylesheet()


@router.get("/{token}", response_class=HTMLResponse)
async def show_form(token: str, request: Request) -> HTMLResponse:
    """The form for a member who has not submitted yet; their status for one who has."""
    runtime: Runtime = request.app.state.runtime
    t = runtime.flows.verify
    external_userid = _member_of(runtime, token)
    if isinstance(external_userid, HTMLResponse):
        return external_userid
    async with runtime.db.unit_of_work() as session:
        member = await by_external_userid(session, external_userid)
        if member is None:
            return message_page(t, t.pages.unknown_member, "problem", 404)
        row, retry, join = await _standing(session, runtime, member)
        if row is None:
            await service.form_opened(session, member, utcnow())
    if row is not None and retry:
        notice = t.pages.rejected_retry.format(reason=row.reason or "")
        return form_page(t, runtime.settings.photo_max_bytes, notice=notice)
    if row is not None:
        return status_page(t, row, join)
    return form_page(t, runtime.settings.photo_max_bytes)


@router.post("/{token}", response_class=HTMLResponse)
async def submit_form(token: str, request: Request) -> HTMLResponse:
    runtime: Runtime = request.app.state.runtime
    t, max_bytes = runtime.flows.verify, runtime.settings.photo_max_bytes
    if cross_site(request, runtime.settings.public_url):
        log.info("verify_cross_site_refused", origin=request.headers.get("origin", "")[:100],
                 fetch_site=request.headers.get("sec-fetch-site", "")[:40])
        return message_page(t, t.pages.cross_site, "problem", 403)
    external_userid = _member_of(runtime, token)
    if isinstance(external_userid, HTMLResponse):
        return external_userid
    # Browsers always send Content-Length with a form, and the server holds the body to it,
    # so checking it bounds what is read (a chunked body of any size is refused).
    length = request.headers.get("content-length", "")
    if not length.isdigit():
        return message_page(t, t.pages.too_large, "problem", 411)
    if int(length) > MAX_PHOTOS * max_bytes + FORM_OVERHEAD:
        return message_page(t, t.pages.too_large, "problem", 413)
    refused = await _may_not_submit(runtime, external_userid)
    if refused is not None:
        return refused
    # A few spare file parts, so four photos get the "at most three" text, not a 400.
    try:
        async with request.form(max_files=MAX_PHOTOS + 5, max_fields=20) as form:
            values = {name: _text(form, name) for name in FIELDS}
            errors = _field_errors(values, t)
            photos = await _photos(form, values, errors, t, max_bytes)
    except HTTPException as exc:  # Starlette's answer to a broken or over-full multipart body
        return message_page(t, t.pages.too_large, "problem", exc.status_code)
    if errors:
        return form_page(t, max_bytes, values, errors, status_code=422)
    return await _store(runtime, external_userid, values, photos)


async def _may_not_submit(runtime: Runtime, external_userid: str) -> HTMLResponse | None:
    """The answer for a member who may not submit (unknown, or submitted already and not free to
    correct), before the body is read: replaying a link costs a query, never a photo's decode.
    `service.submit` decides again under the member's lock (two posts may pass this at once)."""
    t = runtime.flows.verify
    async with runtime.db.reader() as session:
        member = await by_external_userid(session, external_userid)
        if member is None:
            return message_page(t, t.pages.unknown_member, "problem", 404)
        row, retry, join = await _standing(session, runtime, member)
    if row is None or retry:
        return None
    log.info("verification_duplicate", verification_id=row.id, member_id=member.id,
             status=row.status)
    return status_page(t, row, join)


async def _store(runtime: Runtime, external_userid: str, values: dict[str, str],
                 photos: list[Photo]) -> HTMLResponse:
    t, photo_dir = runtime.flows.verify, runtime.settings.photo_dir
    names = await store(photos, photo_dir)
    # Decoded before the unit of work: its locks are not held while a photo decodes.
    inspected = await inspect(names, photo_dir, t.photo_checks.max_pixels)
    submission = service.Submission(normalise_phone(values["phone"]) or "",
                                    values["identity_type"], values["region"])
    try:
        async with runtime.db.unit_of_work() as session:
            member = await service.locked_member(session, external_userid)
            if member is None:
                discard(names, photo_dir)
                return message_page(t, t.pages.unknown_member, "problem", 404)
            row, created = await service.submit(
                session, member, submission, inspected, t, utcnow(),
                after_approval(runtime.flows, runtime.settings))
            join = await _join_code(session, runtime, member)
    except BaseException:
        discard(names, photo_dir)
        raise
    if not created:
        discard(names, photo_dir)
    log.info("verification_submitted" if created else "verification_duplicate",
             verification_id=row.id, member_id=row.member_id, identity_type=row.identity_type,
             directory_match=row.platform_user_id is not None, status=row.status)
    return status_page(t, row, join)


async def _standing(session: AsyncSession, runtime: Runtime, member: Member,
                    ) -> tuple[Verification | None, bool, JoinCode | None]:
    """The member's latest submission, whether they may correct it, and their group code."""
    row = await service.latest(session, member.id)
    retry = row is not None and await service.may_resubmit(session, row, runtime.flows.verify)
    return row, retry, await _join_code(session, runtime, member)


async def _join_code(session: AsyncSession, runtime: Runtime, member: Member) -> JoinCode | None:
    """A routed member's segment and its 加入群聊 code, once the segment has a pool."""
    if member.segment is None:
        return None
    seat = await pools.seat_for(session, member.segment)
    segment = runtime.flows.routing.segments.get(member.segment)
    if seat is None or segment is None or not seat.qr_code:
        return None
    return JoinCode(segment.label, seat.qr_code)


def _member_of(runtime: Runtime, token: str) -> str | HTMLResponse:
    """The external_userid the link was made for, or the page saying why it cannot be used."""
    t = runtime.flows.verify
    try:
        return links_for(runtime.settings).member_of(token)
    except LinkError as exc:
        log.info("verify_link_rejected", expired=exc.expired)
        if exc.expired:
            return message_page(t, t.pages.link_expired, "problem", 410)
        return message_page(t, t.pages.link_invalid, "problem", 403)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip()[:64] if isinstance(value, str) else ""


def _field_errors(values: dict[str, str], t: VerifyFlows) -> dict[str, str]:
    errors = {}
    if normalise_phone(values["phone"]) is None:
        errors["phone"] = t.errors.phone_invalid
    if values["identity_type"] not in t.identity_types:
        errors["identity_type"] = t.errors.identity_invalid
    if values["region"] not in t.regions:
        errors["region"] = t.errors.region_invalid
    return errors


async def _photos(form: FormData, values: dict[str, str], errors: dict[str, str],
                  t: VerifyFlows, max_bytes: int) -> list[Photo]:
    """The checked photos; a consumer needs none (they are turned away, their files unread)."""
    if values["identity_type"] == CONSUMER:
        return []
    try:
        return await read_photos(chosen(form.getlist("photos")), max_bytes)
    except PhotoError as exc:
        text = getattr(t.errors, exc.kind)
        errors["photos"] = text.format(max_photos=MAX_PHOTOS, max_mb=megabytes(max_bytes))
        return []
