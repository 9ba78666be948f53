"""Keyword replies in 微信客服 (keywords.yaml): a customer's question gets the answer of the rule
it matches, for their segment; "人工" or repeated misses hand them to a person. Last in the
router: every more specific behaviour comes first."""

from __future__ import annotations

from app.engine.bot.context import Ctx
from app.engine.bot.env import Env
from app.engine.bot.router import Router
from app.engine.outbox.sender import SettledHook
from app.engine.wecom.kf_events import KfCustomerText, KfSessionChanged
from app.flows import Flows
from app.keywords.book import book_for
from app.keywords.rules import Answer, KeywordsFile, normalise
from app.kf import replies
from app.kf.models import KeywordHit, UnansweredQuestion
from app.members import service as members

SESSION_ENDED = 3  # session_status_change change_type


async def answer_by_keyword(event: KfCustomerText, ctx: Ctx[Flows]) -> None:
    """The matching rule's answer for the member's segment; a miss is recorded, and asking
    for a person (or missing too often) hands the conversation over."""
    row = await replies.conversation(ctx.session, event)
    if row is None or replies.with_person(row, ctx.now):
        return  # not a customer message the reader saw, or a person has the conversation
    loaded = book_for(ctx.settings.keywords_path, set(ctx.flows.routing.segments)).current()
    keywords, key = loaded.keywords, f"kfreply:{event.message.msgid}"
    if _asks_for_person(event.content, keywords):
        await replies.hand_off(ctx, event, row, "asked")
        return
    member = await members.by_external_userid(ctx.session, event.external_userid)
    segment = member.segment if member else None
    clicked = loaded.matcher.by_id(event.menu_id) if event.menu_id else None
    rule = clicked or (loaded.matcher.match(event.content) if event.content.strip() else None)
    if rule is not None:
        row.misses = 0
        ctx.session.add(KeywordHit(rule_id=rule.id, segment=segment,
                                   external_userid=event.external_userid, at=ctx.now))
        await replies.answer(ctx, event, row, rule.answer_for(segment), key)
        return
    row.misses += 1
    ctx.session.add(UnansweredQuestion(open_kfid=event.open_kfid, segment=segment,
                                       external_userid=event.external_userid,
                                       text=event.content[:2000], at=ctx.now))
    if row.misses >= keywords.handoff.after_misses:
        await replies.hand_off(ctx, event, row, "misses")
    else:
        await replies.answer(ctx, event, row, _text(keywords.texts.unanswered), key)


def _asks_for_person(text: str, keywords: KeywordsFile) -> bool:
    said = normalise(text)
    return any(normalise(k) == said for k in keywords.handoff.keywords)


def _text(content: str) -> Answer:
    return Answer(text=content)


async def resume_after_session(event: KfSessionChanged, ctx: Ctx[Flows]) -> None:
    """A session a person ended gives the conversation back to sopbot."""
    changed = event.message.event
    if changed is not None and changed.change_type == SESSION_ENDED:
        await replies.session_ended(ctx.session, event)


def router() -> Router:
    keywords = Router("keywords")
    keywords.add(KfSessionChanged, resume_after_session)
    keywords.add(KfCustomerText, answer_by_keyword)
    keywords.on_settled(replies.HANDOFF_KIND, _handoff_settled)
    return keywords


def _handoff_settled(env: Env[Flows]) -> SettledHook:
    """The hand-off, once WeCom took it: the conversation is with a person from now on."""
    book = book_for(env.settings.keywords_path, set(env.flows.routing.segments))
    return replies.handoff_settled(lambda: book.current().keywords.handoff.text)
