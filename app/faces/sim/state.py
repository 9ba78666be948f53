"""The simulated corp's world: everything WeCom remembers, in memory.

Rule modules (tokens, contacts, groups, masssend, kf, messages) read and change a `World`; they
never do I/O. Callbacks a rule wants WeCom to send are queued on `World.pending_callbacks` and
the server sends them after answering the API call, as WeCom does.
"""

from __future__ import annotations

import itertools
import random
import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from app.faces.sim.clock import SimClock
from app.faces.sim.config import SimSettings

Json = dict[str, Any]


class Reject(Exception):
    """WeCom answers this errcode (HTTP 200) instead of doing the call."""

    def __init__(self, errcode: int, reason: str) -> None:
        super().__init__(f"{errcode}: {reason}")
        self.errcode, self.reason = errcode, reason


class ScenarioError(Exception):
    """A scenario or control request that does not fit the world (answered with HTTP 4xx)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Upload:
    """The `media` part of a multipart upload."""

    filename: str
    content_type: str
    data: bytes


@dataclass
class Call:
    """One API request as the rule functions see it."""

    query: dict[str, str]
    body: Json
    upload: Upload | None = None
    empty_page: bool = False  # an injected fault asks kf/sync_msg for an empty page


@dataclass
class Token:
    value: str
    app: str
    issued_at: float
    expires_at: float
    rejected_with: int | None = None  # set by POST /sim/tokens/invalidate


@dataclass
class Customer:
    external_userid: str
    name: str
    type: int = 1
    gender: int = 0


@dataclass
class Follow:
    """One staff member ↔ customer relationship (what externalcontact/get calls follow_user)."""

    userid: str
    external_userid: str
    createtime: int
    state: str = ""
    add_way: int = 1
    remark: str = ""
    description: str = ""
    tags: set[str] = field(default_factory=set)


@dataclass
class WelcomeCode:
    code: str
    userid: str
    external_userid: str
    issued_at: float
    used_at: float | None = None
    sent: Json | None = None


@dataclass
class TagGroup:
    group_id: str
    group_name: str
    create_time: int
    order: int = 0
    tag_ids: list[str] = field(default_factory=list)


@dataclass
class Tag:
    id: str
    name: str
    group_id: str
    create_time: int
    order: int = 0


@dataclass
class GroupMember:
    userid: str
    type: int  # 1 member, 2 external contact
    join_time: int
    join_scene: int  # groupchat/get codes: 1 direct invite, 2 invite link, 3 QR code
    invitor: str | None = None
    state: str = ""


@dataclass
class Group:
    chat_id: str
    name: str
    owner: str
    create_time: int
    notice: str = ""
    members: dict[str, GroupMember] = field(default_factory=dict)
    version: int = 1
    dismissed: bool = False
    mass_days: set[date] = field(default_factory=set)


@dataclass
class MassTask:
    """One member's share of a mass message: nothing is delivered until they confirm."""

    userid: str
    targets: list[str]
    status: str = "unsent"  # unsent | sent | cancelled
    send_time: int = 0
    results: dict[str, int] = field(default_factory=dict)  # target → send_result status


@dataclass
class MassMessage:
    msgid: str
    chat_type: str
    create_time: int
    text: Json | None
    attachments: list[Json]
    tasks: dict[str, MassTask] = field(default_factory=dict)
    reminders: list[float] = field(default_factory=list)
    cancelled: bool = False


@dataclass
class KfSession:
    open_kfid: str
    external_userid: str
    state: int = 0
    servicer_userid: str = ""
    last_customer_msg_at: float | None = None
    answers: int = 0  # kf/send_msg calls since the last customer message


@dataclass
class KfCode:
    """A code for kf/send_msg_on_event: one message, within its lifetime."""

    code: str
    kind: str  # welcome | trans
    open_kfid: str
    external_userid: str
    expires_at: float
    used: bool = False


@dataclass
class Media:
    media_id: str
    type: str
    filename: str
    size: int
    created_at: int
    content: bytes = b""  # what media/get serves


@dataclass(frozen=True)
class Binary:
    """An API answer that is a file (media/get), not JSON."""

    content: bytes
    content_type: str
    filename: str


@dataclass
class Robot:
    key: str
    sent: list[Json] = field(default_factory=list)
    recent: deque[float] = field(default_factory=deque)  # accept times within the last minute


@dataclass
class ArchiveRecord:
    """One record of the corp's chat archive (app/faces/sim/archive.py), as GetChatData serves
    it: `encrypt_chat_msg` is the message JSON in base64 (the simulator encrypts nothing), or
    whatever a poisoning scenario gave."""

    seq: int
    msgid: str
    encrypt_chat_msg: str
    message: Json | None = None  # None: a poisoned record, not a message


@dataclass
class PendingCallback:
    kind: str
    plaintext: str
    agent_id: int | None = None


class World:
    """All state of one simulated corp."""

    def __init__(self, settings: SimSettings, clock: SimClock) -> None:
        self.settings, self.clock = settings, clock
        self._serial = itertools.count(1)
        self._ids = random.Random(f"ids-{settings.seed}")
        self.members: set[str] = set(settings.members)
        self.tokens: dict[str, Token] = {}
        self.current_tokens: dict[str, str] = {}  # secret's app → token value
        self.customers: dict[str, Customer] = {}
        self.follows: dict[tuple[str, str], Follow] = {}
        self.welcome_codes: dict[str, WelcomeCode] = {}
        self.customer_mass_days: dict[str, set[date]] = {}
        self.tag_groups: dict[str, TagGroup] = {}
        self.tags: dict[str, Tag] = {}
        self.contact_ways: dict[str, Json] = {}
        self.join_ways: dict[str, Json] = {}
        self.groups: dict[str, Group] = {}
        self.mass: dict[str, MassMessage] = {}
        self.welcome_templates: dict[str, Json] = {}
        self.kf_accounts: set[str] = set(settings.kf_accounts)
        self.kf_sessions: dict[tuple[str, str], KfSession] = {}
        self.kf_log: list[Json] = []  # what kf/sync_msg serves, in order
        self.kf_epoch = secrets.token_hex(3)  # in every kf cursor: this run's, no other
        self.kf_tokens: dict[str, float] = {}  # callback Token → expiry
        self.kf_codes: dict[str, KfCode] = {}
        self.kf_sent: list[Json] = []  # what the bot sent through kf, with the outcome
        self.media: dict[str, Media] = {}
        self.robots: dict[str, Robot] = {key: Robot(key) for key in settings.robots}
        self.appchats: dict[str, Json] = {}
        self.app_messages: list[Json] = []  # message/send and appchat/send, as accepted
        self.archive: list[ArchiveRecord] = []  # seq n is archive[n - 1]
        self.archived: dict[str, ArchiveRecord] = {}  # msgid → record
        self.archive_notified_s = 0  # the CreateTime of the last msgaudit_notify sent
        self.pending_callbacks: list[PendingCallback] = []

    def now(self) -> float:
        return self.clock.now()

    def now_s(self) -> int:
        return int(self.clock.now())

    def new_id(self, prefix: str, random_len: int = 0) -> str:
        """A unique id; the random tail is seeded, so runs with one seed produce the same ids."""
        tail = "".join(self._ids.choice("0123456789abcdef") for _ in range(random_len))
        return f"{prefix}{next(self._serial):08d}{tail}"

    def customer(self, external_userid: str, name: str | None = None) -> Customer:
        """The customer, created on first sight (scenarios bring new customers into the world)."""
        if external_userid not in self.customers:
            self.customers[external_userid] = Customer(external_userid,
                                                       name or f"客户{len(self.customers) + 1}")
        return self.customers[external_userid]

    def queue_callback(self, kind: str, plaintext: str, agent_id: int | None = None) -> None:
        self.pending_callbacks.append(PendingCallback(kind, plaintext, agent_id))

    def take_callbacks(self) -> list[PendingCallback]:
        taken, self.pending_callbacks = self.pending_callbacks, []
        return taken
