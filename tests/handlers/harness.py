"""A handler harness in the style of python-telegram-bot's conversation tests: typed events go
to the real router (`handlers.build_router()`) with the real flows on a real database, the way
the inbox worker runs them, and a test asserts the outbox rows and records they leave.

    bot = Bot.open(settings)               # or the `bot` fixture (tests/handlers/conftest.py)
    handled = await bot.feed(friend_added("wmA", state="douyin", welcome_code="WC1"))
    assert handled.handler == "handlers.welcome.welcome_new_friend"
    [welcome] = await bot.outbox(kind="welcome")
    assert welcome.body["welcome_code"] == "WC1"
    [member] = await bot.rows(Member)

`feed` runs what is stored with the event before the worker (`intake`: the welcome a callback
stores with itself, the kf welcome the reader stores with its page; and the kf reader's answer
window for a customer's message), then one unit of work with a Ctx built as
`InboxWorker._run_handler` builds it, and `router.dispatch`. There is no HTTP layer, no inbox
row and no sender: nothing leaves the outbox, so every queued call stays there to be read.
`bot.clock` is fixed: handlers see `bot.clock.now` until a test moves it.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from structlog.contextvars import bound_contextvars

import handlers
from app.engine.bot.context import Ctx
from app.engine.bot.env import Env
from app.engine.bot.router import Router
from app.engine.config import Settings
from app.engine.db import Database, utcnow
from app.engine.logs import get_logger
from app.engine.outbox import store as outbox
from app.engine.outbox.models import OutboxMessage
from app.engine.wecom.api_kf import KfMessage
from app.engine.wecom.events import (
    ChatMemberJoined,
    ChatMemberLeft,
    ChatNameChanged,
    ChatNoticeChanged,
    ChatOwnerChanged,
    Event,
    ExternalChatCreated,
    ExternalChatDismissed,
    ExternalChatUpdated,
    ExternalContactAdded,
    ExternalContactHalfAdded,
    FollowUserDeleted,
    KfMsgOrEvent,
    TextMessage,
    UnknownEvent,
)
from app.engine.wecom.kf_events import (
    CUSTOMER,
    PHOTO,
    PHOTO_ERROR,
    KfCustomerMedia,
    KfCustomerText,
    KfPulled,
    KfSendFailed,
    KfSessionChanged,
    KfSessionEntered,
)
from app.engine.wecom.parsing import kf_event
from app.engine.wecom.xmlutil import parse_xml
from app.flows import Flows, load_flows
from app.kf.reader import open_window

CORP_ID = "wwtestcorp0000001"  # tests/conftest.py's settings
AGENT_ID = 1000002
STAFF = "zhangsan"  # a staff member of funnel.yaml's channels
OPEN_KFID = "wkHarness"
_serial = itertools.count(1)
E = TypeVar("E", bound=KfPulled)


# --- the clock, and what a feed returns ------------------------------------------------------


@dataclass
class Clock:
    """The handlers' `ctx.now` (and the callback's received time): fixed until moved."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass(frozen=True)
class Handled:
    """What handled an event (the route's name, None when nothing matched) and its reply."""

    handler: str | None
    reply: str | None  # the passive reply's XML, as the worker stores it

    @property
    def reply_fields(self) -> dict[str, Any]:
        """The passive reply's fields (ToUserName, Content…); empty without a reply."""
        return parse_xml(self.reply) if self.reply else {}

    @property
    def text(self) -> str | None:
        """The passive reply's Content."""
        return self.reply_fields.get("Content")


@dataclass(frozen=True)
class Queued:
    """An outbox row: its idempotency key, kind, API path and request body."""

    key: str
    kind: str
    api: str
    body: dict[str, Any]
    priority: int
    deadline: datetime | None
    status: str


@dataclass
class LogLines:
    """Ctx.log as the worker's logger, with each line also kept for the test to read."""

    lines: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    _log: Any = field(default_factory=lambda: get_logger("sopbot.inbox"))

    def __getattr__(self, level: str) -> Any:
        def write(event: str, **fields: Any) -> None:
            self.lines.append((level, event, fields))
            getattr(self._log, level)(event, **fields)
        return write

    def events(self) -> list[str]:
        return [event for _, event, _ in self.lines]


# --- the bot ---------------------------------------------------------------------------------


@dataclass
class Bot:
    db: Database
    settings: Settings
    flows: Flows
    router: Router
    clock: Clock
    log: LogLines = field(default_factory=LogLines)
    _inbox_ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    @classmethod
    def open(cls, settings: Settings, now: datetime | None = None) -> Bot:
        """The real router and flows on `settings.database_url` (migrated already)."""
        return cls(Database(settings.database_url), settings, load_flows(settings.flows_path),
                   handlers.build_router(), Clock(now or utcnow().replace(microsecond=0)))

    async def close(self) -> None:
        await self.db.dispose()

    async def feed(self, event: Event, *, with_intake: bool = True, inbox_id: int | None = None,
                   received_at: datetime | None = None) -> Handled:
        """Handle `event` as the worker does, after what is stored with it (`intake`, which
        `with_intake=False` leaves out). The same `inbox_id` again is a retried handler."""
        if with_intake:
            await intake(self, event)
        if isinstance(event, KfPulled):
            await self._open_window(event)
        inbox_id = next(self._inbox_ids) if inbox_id is None else inbox_id
        callback_id = f"harness-{inbox_id}"
        with bound_contextvars(callback_id=callback_id, inbox_id=inbox_id, kind=event.kind):
            async with self.db.unit_of_work() as session:
                ctx = Ctx(session=session, settings=self.settings, flows=self.flows,
                          log=self.log, inbox_id=inbox_id, callback_id=callback_id,
                          now=self.clock(), received_at=received_at or self.clock())
                handler = await self.router.dispatch(event, ctx)
        return Handled(handler, ctx.reply)

    async def _open_window(self, event: KfPulled) -> None:
        """The kf reader opens the customer's answer window with the page: the same function."""
        async with self.db.unit_of_work() as session:
            await open_window(session, event.message, self.clock())

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A unit of work of the test's own, to arrange state before feeding events."""
        async with self.db.unit_of_work() as session:
            yield session

    async def outbox(self, kind: str | None = None) -> list[Queued]:
        """The outbox rows (of `kind`), oldest first."""
        return [Queued(r.idempotency_key, r.kind, r.api, json.loads(r.request), r.priority,
                       r.deadline, r.status)
                for r in await self.rows(OutboxMessage) if kind is None or r.kind == kind]

    async def rows(self, model: type[Any]) -> list[Any]:
        """Every row of a model's table, oldest first."""
        async with self.db.reader() as session:
            return list(await session.scalars(select(model).order_by(model.id)))


# --- INTAKE ----------------------------------------------------------------------------------
# What is stored with an event ahead of the inbox worker: the router's intake (each route's
# `intake=`, app/engine/bot/router.py), which the callback path (app/engine/inbox/writer.py)
# and the kf reader (app/kf/reader.py) run with the event's own transaction. The one place the
# harness asks the router for it.


async def intake(bot: Bot, event: Event) -> set[str]:
    """Queue what the callback (or the kf reader's page) stores with `event`, in a unit of
    work of its own before the handler runs; the keys that were new."""
    rule = bot.router.intake(Env(bot.settings, bot.flows, bot.db, clock=bot.clock))
    message = rule(event, bot.clock())
    async with bot.db.unit_of_work() as session:
        return await outbox.enqueue_many(session, [message] if message is not None else [])


# --- event builders --------------------------------------------------------------------------


def _common(msg_type: str = "event", event: str = "", sender: str = "sys") -> dict[str, Any]:
    return dict(to_user_name=CORP_ID, from_user_name=sender, create_time=int(time.time()),
                msg_type=msg_type, event=event)


def friend_added(external_userid: str, *, state: str = "", welcome_code: str | None = None,
                 staff: str = STAFF, half: bool = False) -> ExternalContactAdded:
    """A customer added `staff` (a 联系我 code's `state`); `half`: add_half_external_contact."""
    cls = ExternalContactHalfAdded if half else ExternalContactAdded
    change = "add_half_external_contact" if half else "add_external_contact"
    return cls(**_common(event="change_external_contact"), change_type=change, user_id=staff,
               external_user_id=external_userid, state=state, welcome_code=welcome_code)


def staff_deleted(external_userid: str, staff: str = STAFF) -> FollowUserDeleted:
    """The customer deleted their staff member (del_follow_user)."""
    return FollowUserDeleted(**_common(event="change_external_contact"),
                             change_type="del_follow_user", user_id=staff,
                             external_user_id=external_userid)


def group_created(chat_id: str) -> ExternalChatCreated:
    return ExternalChatCreated(**_common(event="change_external_chat"), chat_id=chat_id,
                               change_type="create")


def group_dismissed(chat_id: str) -> ExternalChatDismissed:
    return ExternalChatDismissed(**_common(event="change_external_chat"), chat_id=chat_id,
                                 change_type="dismiss")


_UPDATES: dict[str, type[ExternalChatUpdated]] = {
    "add_member": ChatMemberJoined, "del_member": ChatMemberLeft,
    "change_name": ChatNameChanged, "change_owner": ChatOwnerChanged,
    "change_notice": ChatNoticeChanged}


def group_updated(chat_id: str, detail: str, members: tuple[str, ...] = (), *,
                  last_ver: str = "", cur_ver: str = "", **fields: Any) -> ExternalChatUpdated:
    """A change_external_chat update (`detail`: add_member, del_member, change_name…)."""
    return _UPDATES[detail](**_common(event="change_external_chat"), chat_id=chat_id,
                            change_type="update", update_detail=detail,
                            mem_change_list=list(members), mem_change_cnt=len(members) or None,
                            last_mem_ver=last_ver, cur_mem_ver=cur_ver, **fields)


def group_joined(chat_id: str, *members: str, scene: int = 3, last_ver: str = "",
                 cur_ver: str = "") -> ExternalChatUpdated:
    """`members` joined (scene 3: the group QR code, 0: invited)."""
    return group_updated(chat_id, "add_member", members, last_ver=last_ver, cur_ver=cur_ver,
                         join_scene=scene)


def group_quit(chat_id: str, *members: str, scene: int = 0) -> ExternalChatUpdated:
    """`members` left (scene 0: by themselves, 1: removed)."""
    return group_updated(chat_id, "del_member", members, quit_scene=scene)


def member_text(content: str, sender: str = "op_alice") -> TextMessage:
    """A member of the corp wrote `content` to the self-built app."""
    return TextMessage(**_common(msg_type="text", sender=sender), agent_id=AGENT_ID,
                       msg_id=str(next(_serial)), content=content)


def unknown_event(reason: str = "unknown Event 'brand_new'") -> UnknownEvent:
    return UnknownEvent(reason=reason, msg_type="event", event="brand_new",
                        raw={"Event": "brand_new"})


def kf_news(token: str = "kftoken1", open_kfid: str = OPEN_KFID) -> KfMsgOrEvent:
    """kf_msg_or_event: the kf account has messages to pull."""
    return KfMsgOrEvent(**_common(event="kf_msg_or_event"), token=token, open_kf_id=open_kfid)


def _pulled(cls: type[E], **message: Any) -> E:
    """A pulled kf message as the reader types it (kf_event), checked to be a `cls`."""
    event = kf_event(KfMessage.model_validate({"msgid": f"msg{next(_serial)}", **message}))
    assert isinstance(event, cls), f"{message} is a {type(event).__name__}, not {cls.__name__}"
    return event


def kf_text(content: str, customer: str, *, menu_id: str | None = None,
            sent: datetime | None = None, open_kfid: str = OPEN_KFID) -> KfCustomerText:
    """A customer's text (or a menu click, `menu_id`) in 微信客服; `sent`: WeCom's send_time
    (none: when handled)."""
    text = {"content": content, **({"menu_id": menu_id} if menu_id else {})}
    return _pulled(KfCustomerText, msgtype="text", origin=CUSTOMER, open_kfid=open_kfid,
                   external_userid=customer, text=text, send_time=_stamp(sent))


def kf_image(customer: str, *, photo: str | None = None, photo_error: str | None = None,
             open_kfid: str = OPEN_KFID) -> KfCustomerMedia:
    """A customer's picture; the reader's verdict: the stored `photo`, or `photo_error`."""
    fetched = {PHOTO: photo} if photo else {PHOTO_ERROR: photo_error} if photo_error else {}
    return _pulled(KfCustomerMedia, msgtype="image", origin=CUSTOMER, open_kfid=open_kfid,
                   external_userid=customer, image={"media_id": "MEDIA1"}, **fetched)


def _kf_event(cls: type[E], event_type: str, customer: str, open_kfid: str,
              **fields: Any) -> E:
    return _pulled(cls, msgtype="event", origin=4, event={
        "event_type": event_type, "open_kfid": open_kfid, "external_userid": customer, **fields})


def kf_enter_session(customer: str, *, welcome_code: str | None = "KFWELCOME1",
                     scene: str | None = None, open_kfid: str = OPEN_KFID) -> KfSessionEntered:
    """enter_session: the customer opened the conversation (a welcome code valid 20 s)."""
    return _kf_event(KfSessionEntered, "enter_session", customer, open_kfid,
                     welcome_code=welcome_code, scene=scene)


def kf_send_failed(customer: str, fail_msgid: str, fail_type: int = 4,
                   open_kfid: str = OPEN_KFID) -> KfSendFailed:
    """msg_send_fail: one of our messages did not reach the customer."""
    return _kf_event(KfSendFailed, "msg_send_fail", customer, open_kfid,
                     fail_msgid=fail_msgid, fail_type=fail_type)


def kf_session_changed(customer: str, change_type: int,
                       open_kfid: str = OPEN_KFID) -> KfSessionChanged:
    """session_status_change (change_type 3: a person ended the session)."""
    return _kf_event(KfSessionChanged, "session_status_change", customer, open_kfid,
                     change_type=change_type)


def _stamp(at: datetime | None) -> int | None:
    return None if at is None else int(at.timestamp())
