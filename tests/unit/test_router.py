"""The router: ordered, first match wins, isinstance matching, composable filters."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

import handlers
from app.engine.bot.context import Ctx
from app.engine.bot.env import Env
from app.engine.bot.filters import Command, FromOperator, Predicate, Where
from app.engine.bot.router import Router
from app.engine.db import Database
from app.engine.outbox.store import Message as Message_
from app.engine.wecom.events import (
    ChatMemberJoined,
    Event,
    ExternalChatEvent,
    ExternalChatUpdated,
    ExternalContactAdded,
    Message,
    TextMessage,
)
from app.engine.wecom.parsing import event_from_xml
from app.flows import load_flows
from handlers import kf, welcome
from tests.conftest import REPO, make_settings
from tests.fakes import payloads


def ctx() -> Ctx:
    settings = make_settings("sqlite://", operators=frozenset({"boss"}))
    return Ctx(session=None, settings=settings, flows=load_flows(REPO / "sop_flows"),  # type: ignore[arg-type]
               log=None, inbox_id=1, callback_id="cb", now=datetime.now(UTC))


def text(content: str, sender: str = "boss") -> TextMessage:
    event = event_from_xml(payloads.text_message(content, from_user=sender))
    assert isinstance(event, TextMessage)
    return event


def recorder(log: list[str], name: str) -> Any:
    async def handler(event: Any, ctx: Ctx) -> None:
        """Test rule: note that this handler ran."""
        log.append(name)
    handler.__qualname__ = name
    return handler


async def test_first_match_wins_in_registration_then_include_order() -> None:
    log: list[str] = []
    inner = Router("inner")
    inner.add(TextMessage, recorder(log, "inner_text"))
    root = Router("root")
    root.add(TextMessage, recorder(log, "root_cmd"), Command("help"))
    root.include(inner)
    root.add(Message, recorder(log, "root_any_message"))  # own routes come before children

    assert (await root.dispatch(text("/help"), ctx())).endswith("root_cmd")
    assert (await root.dispatch(text("hello"), ctx())).endswith("root_any_message")
    assert log == ["root_cmd", "root_any_message"]


async def test_route_on_base_class_catches_subclasses() -> None:
    log: list[str] = []
    router = Router("chat")
    router.add(ExternalChatUpdated, recorder(log, "updates"), Where(update_detail="del_member"))
    router.add(ExternalChatEvent, recorder(log, "any_chat"))
    joined = event_from_xml(payloads.external_chat("update", update_detail="add_member"))
    left = event_from_xml(payloads.external_chat("update", update_detail="del_member"))
    assert isinstance(joined, ChatMemberJoined)
    await router.dispatch(joined, ctx())
    await router.dispatch(left, ctx())
    assert log == ["any_chat", "updates"]


async def test_nothing_matches_returns_none() -> None:
    router = Router("r")
    router.add(TextMessage, recorder([], "cmd"), Command("stats"))
    assert await router.dispatch(text("/help"), ctx()) is None


async def test_filters_compose_and_extract_values() -> None:
    c = ctx()
    assert await Command("help")(text("/help  me please"), c) == {"command": "help",
                                                                 "args": "me please"}
    assert await Command()(text("／STATS 7d"), c) == {"command": "stats", "args": "7d"}
    assert await Command()(text("not a command"), c) is None
    assert await (Command("help") & FromOperator())(text("/help"), c) == {"command": "help",
                                                                         "args": ""}
    assert await (Command("help") & FromOperator())(text("/help", sender="x"), c) is None
    assert await (~FromOperator())(text("/help", sender="x"), c) == {}
    either = Command("a") | Command("b")
    assert (await either(text("/b"), c))["command"] == "b"
    assert await either(text("/c"), c) is None


async def test_async_predicate_filter() -> None:
    async def is_long(event: TextMessage, ctx: Ctx) -> bool:
        return len(event.content) > 5

    assert await Predicate(is_long)(text("long enough"), ctx()) == {}
    assert await Predicate(is_long)(text("no"), ctx()) is None


async def test_filter_data_reaches_the_handler_through_ctx() -> None:
    seen: dict[str, Any] = {}

    async def take_args(event: TextMessage, ctx: Ctx) -> None:
        """Test rule: remember the command arguments."""
        seen.update(ctx.data)

    router = Router("r")
    router.add(TextMessage, take_args, Command("announce"))
    await router.dispatch(text("/announce 实体店 今晚八点直播"), ctx())
    assert seen == {"command": "announce", "args": "实体店 今晚八点直播"}


def test_handlers_need_a_docstring_and_routers_no_cycles() -> None:
    async def undocumented(event: Any, ctx: Ctx) -> None:
        pass

    router = Router("r")
    with pytest.raises(ValueError, match="docstring"):
        router.add(TextMessage, undocumented)
    child = Router("child")
    router.include(child)
    with pytest.raises(ValueError, match="cycle"):
        child.include(router)


def test_production_router_order_puts_refusal_before_help() -> None:
    import handlers

    names = [route.name for route in handlers.build_router().routes()]
    assert names.index("handlers.commands.refuse_non_operator") < names.index(
        "handlers.commands.answer_help") < names.index("handlers.commands.answer_unknown_command")


# --- what a behaviour registers besides its handler ----------------------------------------

def env() -> Env[Any]:
    settings = make_settings("sqlite://")
    return Env(settings, load_flows(REPO / "sop_flows"), Database("sqlite://"))


def friend_add(code: str | None = "WC1") -> Event:
    return event_from_xml(payloads.external_contact(welcome_code=code or ""))


def test_intake_is_asked_of_the_routes_and_built_once() -> None:
    built: list[str] = []

    def intake(env: Env[Any]) -> Any:
        built.append("built")
        return lambda event, received: Message_(f"k:{event.welcome_code}", None, "welcome")  # type: ignore[arg-type]

    child = Router("child")
    child.add(ExternalContactAdded, recorder([], "welcome"), intake=intake)
    root = Router("root")
    root.include(child)
    rule = root.intake(env())
    received = datetime.now(UTC)
    assert rule(friend_add("WC9"), received).key == "k:WC9"  # type: ignore[union-attr]
    assert rule(text("hello"), received) is None  # no route with intake for a text
    assert built == ["built"]


def test_the_real_behaviours_declare_the_welcome_intakes_settle_hooks_and_jobs() -> None:
    router = handlers.build_router()
    rule = router.intake(env())
    welcome = rule(friend_add("WC7"), datetime.now(UTC))
    assert welcome is not None and welcome.key == "welcome:WC7" and welcome.kind == "welcome"
    assert rule(friend_add(None), datetime.now(UTC)) is None  # no code, nothing to store
    hooks, after = router.settled_hooks(env())
    assert {kind for kind, _ in hooks} == {"welcome", "group_sync", "join_way", "calendar_post",
                                          "kf_handoff", "koc_code"}
    assert len(after) == 1  # the group pools, after every row hook
    assert {(job.name, job.every_s, job.on_lead) for job in router.jobs()} == {
        ("post_due_slots", 60, True),  # every minute, and at once when a process takes the lead
        ("track_mass_tasks", 600, False), ("plan_group_migrations", 3600, False),
        ("sweep_photos", 3600, False), ("expire_dialogs", 3600, False),
        ("purge_archive_text", 3600, True), ("tell_quarantined", 60, False),
        ("read_owner_group_stats", 3600, True),
        # the recommender programme (sop_flows/koc.yaml)
        ("settle_referrals", 60, True), ("issue_rewards", 60, False),
        ("rank_last_month", 3600, True), ("make_honor_roll", 3600, True),
        ("remove_idle_codes", 6 * 3600, False)}
    with_wecom = replace(env(), wecom=object())
    assert len(router.kf_page_steps(with_wecom)) == 1  # the verification dialog's photos
    # The archive's page steps in order: activity first (the others read its rollups).
    assert [step.__name__ for step in router.archive_page_steps(env())][:1] == ["count_page"]


def test_a_router_missing_a_behaviours_intake_fails_loudly_unless_partial() -> None:
    incomplete = Router("mine")
    incomplete.add(ExternalContactAdded, recorder([], "welcome"))
    with pytest.raises(handlers.IncompleteRouter, match="handlers.welcome.welcome_new_friend"):
        handlers.check_router(incomplete)
    handlers.check_router(Router("mine", partial=True))  # says so: accepted
    complete = Router("mine")
    complete.include(welcome.router(), kf.router())
    handlers.check_router(complete)


def test_jobs_need_a_docstring_and_a_name_of_their_own() -> None:
    async def nameless(env: Env[Any]) -> None:
        pass
    with pytest.raises(ValueError, match="docstring"):
        Router("r").every(60, nameless)

    async def job(env: Env[Any]) -> None:
        """Test job."""
    first, second = Router("a"), Router("b")
    first.every(60, job)
    second.every(30, job)
    first.include(second)
    with pytest.raises(ValueError, match="share a name"):
        first.jobs()


def test_an_intake_that_raises_is_passed_over_for_the_next() -> None:
    def broken(env: Env[Any]) -> Any:
        def rule(event: Any, received: datetime) -> Any:
            raise RuntimeError("broken rule")
        return rule

    def working(env: Env[Any]) -> Any:
        return lambda event, received: Message_(f"k:{event.welcome_code}", None, "welcome")  # type: ignore[arg-type]

    router = Router("r")
    router.add(ExternalContactAdded, recorder([], "first"), intake=broken)
    router.add(ExternalContactAdded, recorder([], "second"), intake=working)
    rule = router.intake(env())
    message = rule(friend_add("WC5"), datetime.now(UTC))
    assert message is not None and message.key == "k:WC5"
