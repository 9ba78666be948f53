"""The verification dialog in 微信客服: "认证" starts it, then phone, identity type, region and
one to three photos (pictures the kf reader fetched from WeCom); "取消" ends it at any step.
The submission goes to the same review queue, with the same checks, as the H5 form. Ahead of
the keyword replies in the router: a customer in the dialog is answered by it."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from app.engine.bot.context import Ctx
from app.engine.bot.env import Env
from app.engine.bot.filters import Filter
from app.engine.bot.router import KfPageStep, Router
from app.engine.logs import get_logger
from app.engine.wecom.events import Event
from app.engine.wecom.kf_events import KfCustomerMedia, KfCustomerText, KfPulled
from app.flows import Flows
from app.keywords.rules import Answer, MenuAnswer, MenuItem, normalise
from app.kf import dialog, replies
from app.kf.models import KfDialog
from app.members import service as members
from app.routing.service import after_approval
from app.verify import service as verify
from app.verify.flows import CONSUMER
from app.verify.kf_photos import photo_fetcher
from app.verify.models import APPROVED, PENDING, Verification
from app.verify.phone import normalise_phone
from app.verify.photos import MAX_PHOTOS, discard, discard_on_commit, inspect, megabytes
from app.verify.sweep import sweep_orphan_photos

log = get_logger("sopbot.kf.dialog")
IDENTITY_MENU = "identity."  # menu item ids: identity.<type>
SWEEP_PHOTOS_S = EXPIRE_DIALOGS_S = 3600


class InVerifyDialog(Filter):
    """The customer is in the dialog, or starts it; data: {"dialog": row or None}."""

    async def check(self, event: Event, ctx: Ctx[Flows]) -> Any:
        if not isinstance(event, KfPulled):
            return None
        conversation = await replies.conversation(ctx.session, event)
        if conversation is not None and replies.with_person(conversation, ctx.now):
            return None  # a person has the conversation
        row = await dialog.current(ctx.session, event.open_kfid, event.external_userid)
        if row is not None:
            return {"dialog": row}
        if not isinstance(event, KfCustomerText):
            return None
        said, settings = normalise(event.content), ctx.flows.verify.dialog
        if said in map(normalise, settings.start_words):
            return {"dialog": None}
        # The third photo submitted the dialog already: their "完成" then gets the status.
        if said in map(normalise, settings.done_words) and \
                (latest := await _just_submitted(ctx, event)) is not None:
            return {"dialog": None, "submitted": latest}
        return None


async def _just_submitted(ctx: Ctx[Flows], event: KfCustomerText) -> Verification | None:
    member = await members.by_external_userid(ctx.session, event.external_userid)
    latest = None if member is None else await verify.latest(ctx.session, member.id)
    if latest is None or latest.submitted_at < event.sent_at(ctx.now) - _timeout(ctx):
        return None
    return latest


async def verify_in_dialog(event: KfCustomerText, ctx: Ctx[Flows]) -> None:
    """The dialog's next step for what the customer wrote."""
    row: KfDialog | None = ctx.data["dialog"]
    settings = ctx.flows.verify.dialog
    text, said = event.content.strip(), normalise(event.content)
    if row is None:
        if (submitted := ctx.data.get("submitted")) is not None:
            return await _say(ctx, event, _status_text(ctx, submitted))
        return await _start(event, ctx)
    if row.expires_at <= event.sent_at(ctx.now):
        await _end(ctx, event, row)
        return await _say(ctx, event, settings.texts.expired)
    if said in map(normalise, settings.cancel_words):
        await _end(ctx, event, row)
        log.info("kf_dialog_cancelled", step=row.step)
        return await _say(ctx, event, settings.texts.cancelled)
    step = {dialog.PHONE: _phone, dialog.IDENTITY: _identity, dialog.REGION: _region,
            dialog.PHOTOS: _photos_text}[row.step]
    await step(event, ctx, row, text)


async def _start(event: KfCustomerText, ctx: Ctx[Flows]) -> None:
    texts = ctx.flows.verify.dialog.texts
    member = await members.by_external_userid(ctx.session, event.external_userid)
    if member is None:
        return await _say(ctx, event, texts.not_a_friend)
    latest = await verify.latest(ctx.session, member.id)
    if latest is not None and not await verify.may_resubmit(ctx.session, latest,
                                                            ctx.flows.verify):
        return await _say(ctx, event, _status_text(ctx, latest))
    await dialog.start(ctx.session, event.open_kfid, event.external_userid,
                       event.sent_at(ctx.now), _timeout(ctx))
    log.info("kf_dialog_started", member_id=member.id)
    await _say(ctx, event, texts.ask_phone)


async def _phone(event: KfCustomerText, ctx: Ctx[Flows], row: KfDialog, text: str) -> None:
    phone = normalise_phone(text)
    if phone is None:
        return await _say(ctx, event, ctx.flows.verify.errors.phone_invalid)
    row.phone = phone
    dialog.touch(row, event.sent_at(ctx.now), _timeout(ctx), dialog.IDENTITY)
    await _ask_identity(event, ctx)


async def _identity(event: KfCustomerText, ctx: Ctx[Flows], row: KfDialog, text: str) -> None:
    labels = ctx.flows.verify.identity_types
    chosen = (event.menu_id or "").removeprefix(IDENTITY_MENU) if event.menu_id else None
    chosen = chosen if chosen in labels else next(
        (key for key, label in labels.items() if normalise(label) == normalise(text)), None)
    if chosen is None:
        await _say(ctx, event, ctx.flows.verify.errors.identity_invalid)
        return await _ask_identity(event, ctx)
    row.identity_type = chosen
    if chosen == CONSUMER:  # turned away politely, at once, like on the form
        return await _submit(event, ctx, row)
    dialog.touch(row, event.sent_at(ctx.now), _timeout(ctx), dialog.REGION)
    await _say(ctx, event, ctx.flows.verify.dialog.texts.ask_region)


async def _region(event: KfCustomerText, ctx: Ctx[Flows], row: KfDialog, text: str) -> None:
    region = dialog.region_of(text, ctx.flows.verify.regions)
    if region is None:
        return await _say(ctx, event, ctx.flows.verify.dialog.texts.region_invalid)
    row.region = region
    dialog.touch(row, event.sent_at(ctx.now), _timeout(ctx), dialog.PHOTOS)
    await _say(ctx, event, ctx.flows.verify.dialog.texts.ask_photos)


async def _photos_text(event: KfCustomerText, ctx: Ctx[Flows], row: KfDialog, text: str) -> None:
    texts = ctx.flows.verify.dialog.texts
    if normalise(text) not in map(normalise, ctx.flows.verify.dialog.done_words):
        return await _say(ctx, event, texts.ask_photos)
    if not dialog.photos(row):
        return await _say(ctx, event, texts.need_photo)
    await _submit(event, ctx, row)


async def verify_photo(event: KfCustomerMedia, ctx: Ctx[Flows]) -> None:
    """A picture in the photo step: kept (the third submits), or why it cannot be used."""
    row: KfDialog | None = ctx.data["dialog"]
    texts = ctx.flows.verify.dialog.texts
    if row is None or row.step != dialog.PHOTOS or row.expires_at <= event.sent_at(ctx.now):
        if event.photo:  # fetched in case it was one; it was not
            discard_on_commit(ctx.session, [event.photo], ctx.settings.photo_dir)
        return
    if event.photo is None:
        return await _say(ctx, event, _photo_problem(ctx, event.photo_error))
    count = dialog.add_photo(row, event.photo)
    dialog.touch(row, event.sent_at(ctx.now), _timeout(ctx))
    if count >= MAX_PHOTOS:
        return await _submit(event, ctx, row)
    await _say(ctx, event, texts.photo_received.format(count=count, left=MAX_PHOTOS - count))


def _photo_problem(ctx: Ctx[Flows], error: str | None) -> str:
    texts, errors = ctx.flows.verify.dialog.texts, ctx.flows.verify.errors
    if error == "photo_not_image":
        return texts.photo_bad.format(reason=errors.photo_not_image)
    if error == "photo_too_large":
        size = megabytes(ctx.settings.photo_max_bytes)
        return texts.photo_bad.format(reason=errors.photo_too_large.format(max_mb=size))
    return texts.photo_download_failed


async def _submit(event: KfPulled, ctx: Ctx[Flows], row: KfDialog) -> None:
    """The same submission as the form's: the review queue, auto-decisions, routing."""
    member = await verify.locked_member(ctx.session, event.external_userid)
    names = dialog.photos(row)
    await dialog.end(ctx.session, event.open_kfid, event.external_userid)
    if member is None:
        return await _say(ctx, event, ctx.flows.verify.dialog.texts.not_a_friend)
    submission = verify.Submission(row.phone or "", row.identity_type or CONSUMER,
                                   row.region or "")
    photos = await inspect(names, ctx.settings.photo_dir, ctx.flows.verify.photo_checks.max_pixels)
    verification, created = await verify.submit(
        ctx.session, member, submission, photos, ctx.flows.verify, ctx.now,
        after_approval(ctx.flows, ctx.settings))
    if not created:
        discard_on_commit(ctx.session, names, ctx.settings.photo_dir)
    log.info("verification_submitted" if created else "verification_duplicate",
             verification_id=verification.id, member_id=member.id, via="kf",
             identity_type=verification.identity_type, status=verification.status)
    await _say(ctx, event, _status_text(ctx, verification))


def _status_text(ctx: Ctx[Flows], row: Verification) -> str:
    pages = ctx.flows.verify.pages
    if row.status == PENDING:
        return pages.pending
    if row.status == APPROVED:
        return pages.approved
    if row.identity_type == CONSUMER:
        return pages.consumer
    return pages.rejected.format(reason=row.reason or "")


async def _ask_identity(event: KfPulled, ctx: Ctx[Flows]) -> None:
    items = tuple(MenuItem(id=f"{IDENTITY_MENU}{key}", content=label)
                  for key, label in ctx.flows.verify.identity_types.items())
    menu = MenuAnswer(head=ctx.flows.verify.dialog.texts.ask_identity, items=items)
    await _say(ctx, event, Answer(menu=menu))


async def _say(ctx: Ctx[Flows], event: KfPulled, what: str | Answer) -> None:
    row = await replies.conversation(ctx.session, event)
    if row is None:
        return
    answer = what if isinstance(what, Answer) else Answer(text=what)
    # Several answers to one message (a problem, then the question again) need their own keys.
    digest = hashlib.sha256(answer.model_dump_json().encode()).hexdigest()[:12]
    await replies.answer(ctx, event, row, answer, f"kfdialog:{event.message.msgid}:{digest}")


async def _end(ctx: Ctx[Flows], event: KfPulled, row: KfDialog) -> None:
    """The dialog is over without a submission: its photos go too, once that has committed."""
    discard_on_commit(ctx.session, dialog.photos(row), ctx.settings.photo_dir)
    await dialog.end(ctx.session, event.open_kfid, event.external_userid)


def _timeout(ctx: Ctx[Flows]) -> timedelta:
    return timedelta(minutes=ctx.flows.verify.dialog.timeout_minutes)


async def sweep_photos(env: Env[Flows]) -> None:
    """Delete verification photos no row names any more."""
    try:
        deleted = await sweep_orphan_photos(env.db, env.settings.photo_dir, env.clock())
    except Exception:
        log.exception("photo_sweep_failed")
        return
    if deleted:
        log.info("orphan_photos_deleted", count=len(deleted))


async def expire_dialogs(env: Env[Flows]) -> None:
    """kf verification dialogs abandoned for a week go, with their photos."""
    try:
        async with env.db.unit_of_work() as session:
            count, names = await dialog.drop_abandoned(session, env.clock())
    except Exception:
        log.exception("dialog_expiry_failed")
        return
    discard(names, env.settings.photo_dir)
    if count:
        log.info("abandoned_dialogs_dropped", count=count, photos=len(names))


def _fetch_photos(env: Env[Flows]) -> KfPageStep:
    """The dialog's photos are fetched by the kf reader, before their page is stored."""
    assert env.wecom is not None, "the kf reader runs with a WeCom client"
    return photo_fetcher(env.db, env.wecom, env.settings, env.clock)


def router() -> Router:
    verify_dialog = Router("verify_dialog")
    verify_dialog.add(KfCustomerText, verify_in_dialog, InVerifyDialog())
    verify_dialog.add(KfCustomerMedia, verify_photo, InVerifyDialog())
    verify_dialog.before_kf_store(_fetch_photos)
    verify_dialog.every(SWEEP_PHOTOS_S, sweep_photos)
    verify_dialog.every(EXPIRE_DIALOGS_S, expire_dialogs)
    return verify_dialog
