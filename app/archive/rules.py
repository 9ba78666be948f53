"""The group rules (群规) on the chat archive: the archive page step `apply_rules`, which puts
strikes on members' ledgers (member_strike) and acts when a member's points reach a threshold.

Strikes. A customer's message (staff and robots never violate) that breaks a rule of
sop_flows/group_rules.yaml is a violation strike of the rule's points, one per rule broken; a
customer's answer to another's question (the questions step marked it: group_question.
answer_msgid) and a newcomer's self-introduction (the newcomers step: speaker.intro_msgid) are
contribution strikes. A strike is unique by (msgid, rule): a page read again adds nothing.

Matching is one pass per message and kind: an Aho-Corasick automaton (pyahocorasick) finds every
keyword of every keywords rule in one scan, and one RE2 set tries every pattern (links, phone
numbers, WeChat ids, the operators' own) in one linear-time scan; only a message the set flags
is looked at again (a link's site against the allow list, a WeChat id's shape). Flooding counts
a member's messages in a group by their own times (msgtime), this page's and the stored ones
before it: a message with more than `max_messages` in the `within_seconds` ending at it is a
strike, unless the burst has one already within those seconds.

Thresholds. Over `window_days` ending at a new strike (by the messages' times), the member's
active violation points in that group reaching `owner_task` queue an app message to the group's
owner (WeCom has no API to remove an external member: the owner reminds them or removes them
by hand); in all groups together reaching `operator_alert` queue one to the operators
(SOPBOT_OPERATORS); active contribution points in the group reaching `praise` make the strike a
praise candidate (nothing is sent). Each fires at the strike whose points cross it, which keeps
what it led to in `action`; the outbox keys name that strike, so a crossing is told once. Points
that fall back below (an operator's dismissal, a recall, the window moving on) can cross again.

A recall voids the strikes of the recalled message (its text is gone already; nothing sent is
taken back). Set-based: a page costs a fixed handful of statements whatever its size, one read
of the ledger for the page's members and one insert of its strikes among them."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import ahocorasick
import re2
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.archive.flows import (
    FLOODING,
    KEYWORDS,
    LINKS,
    PHONE,
    REGEX,
    WECHAT_ID,
    GroupRulesFlows,
    Violation,
)
from app.archive.models import ArchivedMessage, GroupQuestion, MemberStrike, Speaker
from app.directory.models import PlatformUser
from app.engine.bot.env import Env
from app.engine.bot.router import ArchivePageStep
from app.engine.config import SHANGHAI
from app.engine.db import insert_for
from app.engine.logs import get_logger, mask_phones
from app.engine.outbox import store as outbox
from app.engine.wecom.api import SendMessage, Text
from app.engine.wecom.archive_events import CUSTOMER, RECALL, SEND, ArchiveMessage
from app.groups.models import CustomerGroup
from app.keywords.rules import normalise, re2_options
from app.members.models import Member

log = get_logger("sopbot.archive.rules")

VIOLATION, CONTRIBUTION = "violation", "contribution"
ACTIVE, DISMISSED, VOIDED = "active", "dismissed", "voided"
OWNER_TASK, OPERATOR_ALERT, PRAISE = "owner_task", "operator_alert", "praise"
SEVERITY = {PRAISE: 0, OWNER_TASK: 1, OPERATOR_ALERT: 2}  # a strike keeps its gravest action
OUTBOX_KIND = "group_rules"
# The outbox key of what a strike led to: group-rules:<owner|ops>:<msgid>:<rule> (≤ 200).
KEY_CODES = {OWNER_TASK: "owner", OPERATOR_ALERT: "ops"}
EXCERPT_CHARS = 40
TEXT_BYTES = 2048  # an app text message

# A mainland mobile number with +86 and separators allowed, not inside a longer number.
PHONE_PATTERN = r"(?:^|[^0-9])(?:\+?86[- ]?)?1[3-9][0-9](?:[- ]?[0-9]{4}){2}(?:[^0-9]|$)"
# A WeChat id after the usual ways of saying "my WeChat": 6-20 characters from a letter.
WECHAT_PATTERN = (r"(?:微信号?|威信|薇信|v信|加微|加v|\+v|\bvx|\bwx|\bweixin|\bwechat)"
                  r"\s*(?:号|id)?\s*:?\s*([a-z][-_a-z0-9]{5,19})")
LINK_PATTERN = r"https?://([-a-z0-9.]+)|\b(www\.[-a-z0-9.]+)"


class RulesFlows(Protocol):
    """What the rules step reads of the flows (app.flows.Flows)."""

    @property
    def group_rules(self) -> GroupRulesFlows: ...


@dataclass(frozen=True)
class Telling:
    """Who gets the threshold actions' app messages: the app, the operators."""

    agent_id: int | None
    operators: frozenset[str]


def build_rules_step(env: Env[RulesFlows]) -> ArchivePageStep:
    """The archive page step of the group rules (register it after the questions and newcomers
    steps: it reads what they marked)."""
    book = RuleBook(env.flows.group_rules)
    telling = Telling(env.settings.agent_id, env.settings.operators)

    async def step(session: AsyncSession, messages: Sequence[ArchiveMessage],
                   now: datetime) -> None:
        await apply_rules(session, messages, now, book, telling)
    return step


class RuleBook:
    """The rules of group_rules.yaml, compiled for one pass per message."""

    def __init__(self, flows: GroupRulesFlows) -> None:
        self.flows = flows
        self.violations = tuple(rule for rule in flows.violations if rule.kind != FLOODING)
        self.flooding = next((r for r in flows.violations if r.kind == FLOODING), None)
        self._words = ahocorasick.Automaton()
        self._set = re2.Set.SearchSet(re2_options())
        self._set_rules: list[list[int]] = []  # by set index: the rules its pattern serves
        patterns: dict[str, int] = {}
        for n, rule in enumerate(self.violations):
            if rule.kind == KEYWORDS:
                for word in {normalise(k) for k in rule.keywords}:
                    self._words.add_word(word, [*self._words.get(word, ()), n])
            else:
                pattern = _pattern_of(rule)
                if pattern not in patterns:
                    patterns[pattern] = self._set.Add(pattern)
                    self._set_rules.append([])
                self._set_rules[patterns[pattern]].append(n)
        if len(self._words):
            self._words.make_automaton()
        if patterns:
            self._set.Compile()
        self._links = re2.compile(LINK_PATTERN, options=re2_options())
        self._wechat = re2.compile(WECHAT_PATTERN, options=re2_options())

    def broken(self, text: str) -> list[Violation]:
        """The rules (not flooding) a message's text breaks, in the file's order."""
        text = normalise(text)
        found: set[int] = set()
        if len(self._words):
            for _, rules in self._words.iter(text):
                found.update(rules)
        if self._set_rules:
            for index in self._set.Match(text) or ():
                found.update(n for n in self._set_rules[index] if self._confirmed(n, text))
        return [self.violations[n] for n in sorted(found)]

    def _confirmed(self, n: int, text: str) -> bool:
        rule = self.violations[n]
        if rule.kind == LINKS:
            hosts = (a or b for a, b in self._links.findall(text))
            return any(not _allowed(host.strip("."), rule.domains) for host in hosts)
        if rule.kind == WECHAT_ID:
            return any(any(c.isdigit() or c in "_-" for c in found)
                       for found in self._wechat.findall(text))
        return True


def _pattern_of(rule: Violation) -> str:
    if rule.kind == PHONE:
        return PHONE_PATTERN
    if rule.kind == WECHAT_ID:
        return WECHAT_PATTERN
    if rule.kind == LINKS:
        return LINK_PATTERN
    assert rule.kind == REGEX and rule.pattern is not None
    return rule.pattern


def _allowed(host: str, domains: Iterable[str]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)


@dataclass
class Strike:
    """A strike about to be written (a row of member_strike)."""

    chat_id: str
    userid: str
    msgid: str
    rule: str
    kind: str
    points: int
    at: datetime
    order: int  # the message's seq: the order of strikes at the same time
    action: str | None = None

    def row(self) -> dict[str, Any]:
        return {"chat_id": self.chat_id, "userid": self.userid, "msgid": self.msgid,
                "rule": self.rule, "kind": self.kind, "points": self.points, "at": self.at,
                "status": ACTIVE, "action": self.action, "reviewed_by": None,
                "reviewed_at": None}


@dataclass(frozen=True)
class _Held:
    """A strike on the ledger already."""

    chat_id: str
    userid: str
    msgid: str
    rule: str
    kind: str
    points: int
    at: datetime
    status: str


@dataclass(frozen=True)
class Crossing:
    action: str
    strike: Strike
    points: int
    threshold: int
    groups: int  # the groups the points come from


async def apply_rules(session: AsyncSession, messages: Sequence[ArchiveMessage], now: datetime,
                      book: RuleBook, telling: Telling) -> None:
    """The page step: void the strikes of recalled messages, strike the page's new violations
    and contributions, and act on the thresholds they cross."""
    recalled = {m.recalled_msgid for m in messages if m.action == RECALL and m.recalled_msgid}
    if recalled:
        await session.execute(update(MemberStrike).where(
            MemberStrike.msgid.in_(recalled), MemberStrike.status != VOIDED)
            .values(status=VOIDED))
    sends = [m for m in messages if m.action == SEND and m.chat_id
             and m.sender_kind == CUSTOMER and m.msgid not in recalled]
    if not sends:
        return
    strikes = [Strike(m.chat_id, m.sender, m.msgid, rule.id, VIOLATION, rule.points,
                      m.msgtime, m.seq)
               for m in sends if m.text for rule in book.broken(m.text)]
    strikes += await _contributions(session, sends, book.flows)
    over = await _over_limit(session, sends, book.flooding) if book.flooding else []
    if not strikes and not over:
        return
    flows = book.flows
    window = timedelta(days=flows.thresholds.window_days)
    times = [s.at for s in strikes] + [m.msgtime for m in over]
    held = await _ledger(session, {s.userid for s in strikes} | {m.sender for m in over},
                         min(times) - window, max(times))
    if book.flooding and over:
        strikes += _floods(over, book.flooding, held)
    have = {(h.msgid, h.rule) for h in held}
    new = sorted((s for s in strikes if (s.msgid, s.rule) not in have),
                 key=lambda s: (s.at, s.order))
    if not new:
        return
    crossings = sorted(_crossings([h for h in held if h.status == ACTIVE], new, flows, window),
                       key=lambda c: (c.strike.at, c.strike.order, SEVERITY[c.action]))
    for crossing in crossings:
        strike = crossing.strike
        if strike.action is None or SEVERITY[crossing.action] > SEVERITY[strike.action]:
            strike.action = crossing.action
    await session.execute(insert_for(session, MemberStrike).on_conflict_do_nothing(
        index_elements=["msgid", "rule"]), [s.row() for s in new])
    told = [c for c in crossings if c.action in KEY_CODES]
    if told:
        await _tell(session, told, {m.msgid: m for m in sends}, flows, telling)


async def _contributions(session: AsyncSession, sends: list[ArchiveMessage],
                         flows: GroupRulesFlows) -> list[Strike]:
    """Customers' answers to others' questions and newcomers' introductions in this page (the
    questions and newcomers steps marked them in this transaction)."""
    by_id = {m.msgid: m for m in sends}
    found: list[Strike] = []
    answer, intro = flows.contributions.answer, flows.contributions.intro
    if answer.points:
        asked_from = min(m.msgtime for m in sends) - timedelta(
            minutes=flows.questions.answer_within_min)
        rows = await session.execute(select(GroupQuestion.answer_msgid).where(
            GroupQuestion.asked_at >= asked_from,
            GroupQuestion.asked_at <= max(m.msgtime for m in sends),
            GroupQuestion.answer_msgid.in_(list(by_id)), GroupQuestion.answer_kind == CUSTOMER))
        for m in (by_id[msgid] for msgid in set(rows.scalars()) if msgid):
            found.append(Strike(m.chat_id, m.sender, m.msgid, "answer", CONTRIBUTION,
                                answer.points, m.msgtime, m.seq))
    if intro.points:
        # By the senders' index (a few rows each); the page's introductions kept.
        rows = await session.execute(select(Speaker.intro_msgid).where(
            Speaker.userid.in_({m.sender for m in sends}), Speaker.intro_msgid.is_not(None)))
        for m in (by_id[msgid] for msgid in set(rows.scalars()) if msgid in by_id):
            found.append(Strike(m.chat_id, m.sender, m.msgid, "intro", CONTRIBUTION,
                                intro.points, m.msgtime, m.seq))
    return found


@dataclass(frozen=True)
class _Sent:
    chat_id: str
    sender: str
    msgid: str
    msgtime: datetime
    seq: int


async def _over_limit(session: AsyncSession, sends: list[ArchiveMessage],
                      rule: Violation) -> list[_Sent]:
    """This page's messages that have more than max_messages of their sender's in their group
    within the within_seconds ending at them (the messages stored before the page count too)."""
    assert rule.max_messages is not None
    span = timedelta(seconds=rule.within_seconds)
    timeline: dict[tuple[str, str], list[_Sent]] = defaultdict(list)
    for m in sends:
        timeline[m.chat_id, m.sender].append(_Sent(m.chat_id, m.sender, m.msgid, m.msgtime,
                                                   m.seq))
    # Only what was read before this page: the page's own rows are in hand already.
    rows = await session.execute(select(
        ArchivedMessage.chat_id, ArchivedMessage.sender, ArchivedMessage.msgid,
        ArchivedMessage.msgtime, ArchivedMessage.seq).where(
        ArchivedMessage.chat_id.in_({m.chat_id for m in sends}),
        ArchivedMessage.msgtime > min(m.msgtime for m in sends) - span,
        ArchivedMessage.msgtime <= max(m.msgtime for m in sends),
        ArchivedMessage.seq < min(m.seq for m in sends),
        ArchivedMessage.sender.in_({m.sender for m in sends}),
        ArchivedMessage.recalled.is_(False), ArchivedMessage.msgtype != "revoke"))
    for chat_id, sender, msgid, msgtime, seq in rows:
        if (chat_id, sender) in timeline:
            timeline[chat_id, sender].append(_Sent(chat_id, sender, msgid, msgtime, seq))
    page = {m.msgid for m in sends}
    over: list[_Sent] = []
    for sent in timeline.values():
        if len(sent) <= rule.max_messages:
            continue  # nobody floods with this few, whenever they were sent
        ordered = sorted(sent, key=lambda s: (s.msgtime, s.seq))
        times = [s.msgtime for s in ordered]
        for i, s in enumerate(ordered):
            first = bisect.bisect_right(times, s.msgtime - span)
            if i - first + 1 > rule.max_messages and s.msgid in page:
                over.append(s)
    return over


def _floods(over: list[_Sent], rule: Violation, held: list[_Held]) -> list[Strike]:
    """One strike per burst: a message over the limit is one unless its sender has a flooding
    strike in that group within the within_seconds ending at it."""
    span = timedelta(seconds=rule.within_seconds)
    struck: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for h in held:
        if h.rule == rule.id and h.status != VOIDED:
            struck[h.chat_id, h.userid].append(h.at)
    for times in struck.values():
        times.sort()
    found = []
    for s in sorted(over, key=lambda s: (s.msgtime, s.seq)):
        times = struck[s.chat_id, s.sender]
        last = bisect.bisect_right(times, s.msgtime)
        if last and times[last - 1] > s.msgtime - span:
            continue
        bisect.insort(times, s.msgtime)
        found.append(Strike(s.chat_id, s.sender, s.msgid, rule.id, VIOLATION, rule.points,
                            s.msgtime, s.seq))
    return found


async def _ledger(session: AsyncSession, users: set[str], since: datetime,
                  until: datetime) -> list[_Held]:
    """The page's members' strikes in (since, until], whatever their status (one query)."""
    rows = await session.execute(select(
        MemberStrike.chat_id, MemberStrike.userid, MemberStrike.msgid, MemberStrike.rule,
        MemberStrike.kind, MemberStrike.points, MemberStrike.at, MemberStrike.status).where(
        MemberStrike.userid.in_(users), MemberStrike.at > since, MemberStrike.at <= until))
    return [_Held(*row) for row in rows]


def _crossings(held: list[_Held], new: list[Strike], flows: GroupRulesFlows,
               window: timedelta) -> list[Crossing]:
    """The thresholds the new strikes cross, each at the strike that reaches it."""
    thresholds = flows.thresholds
    plans = ((OWNER_TASK, VIOLATION, thresholds.owner_task, True),
             (OPERATOR_ALERT, VIOLATION, thresholds.operator_alert, False),
             (PRAISE, CONTRIBUTION, thresholds.praise, True))
    found = []
    for action, kind, threshold, per_group in plans:
        lines: dict[tuple[str, ...], list[tuple[datetime, int, int, str, int, Strike | None]]]
        lines = defaultdict(list)
        for h in held:
            if h.kind == kind:
                key = (h.chat_id, h.userid) if per_group else (h.userid,)
                lines[key].append((h.at, 0, 0, h.chat_id, h.points, None))
        for s in new:
            if s.kind == kind:
                key = (s.chat_id, s.userid) if per_group else (s.userid,)
                lines[key].append((s.at, 1, s.order, s.chat_id, s.points, s))
        for events in lines.values():
            if any(e[5] is not None for e in events):
                found += _crossed(events, threshold, window, action)
    return found


def _crossed(events: list[tuple[datetime, int, int, str, int, Strike | None]], threshold: int,
             window: timedelta, action: str) -> list[Crossing]:
    """Where the sum of points over the window ending at a new strike reaches the threshold
    from below (held strikes first at equal times, new ones by seq)."""
    ordered = sorted(events, key=lambda e: e[:3])
    times = [e[0] for e in ordered]
    sums = [0]
    for event in ordered:
        sums.append(sums[-1] + event[4])
    found = []
    for i, (at, _, _, _, points, strike) in enumerate(ordered):
        if strike is None:
            continue
        first = bisect.bisect_right(times, at - window)
        before = sums[i] - sums[first]
        if before < threshold <= before + points:
            groups = len({e[3] for e in ordered[first:i + 1]})
            found.append(Crossing(action, strike, before + points, threshold, groups))
    return found


async def _tell(session: AsyncSession, crossings: list[Crossing],
                messages: dict[str, ArchiveMessage], flows: GroupRulesFlows,
                telling: Telling) -> None:
    """Queue the owners' tasks and the operators' alerts (exactly once: keyed by strike)."""
    texts = flows.texts
    assert texts is not None  # violations need texts (app/archive/flows.py)
    if telling.agent_id is None:
        for c in crossings:
            log.warning("group_rule_threshold", action=c.action, chat_id=c.strike.chat_id,
                        rule=c.strike.rule, points=c.points,
                        told="nobody: WECOM_AGENT_ID is not set")
        return
    rows = await session.execute(select(CustomerGroup.chat_id, CustomerGroup.name,
                                        CustomerGroup.owner).where(
        CustomerGroup.chat_id.in_({c.strike.chat_id for c in crossings})))
    groups = {chat_id: (name, owner) for chat_id, name, owner in rows}
    names = await member_names(session, {c.strike.userid for c in crossings})
    queued = []
    for c in crossings:
        strike = c.strike
        name, owner = groups.get(strike.chat_id, ("", ""))
        message = messages.get(strike.msgid)
        values = {"member": names.get(strike.userid) or anonymous(strike.userid),
                  "group": name or strike.chat_id, "rule": flows.label_of(strike.rule),
                  "points": c.points, "threshold": c.threshold,
                  "days": flows.thresholds.window_days,
                  "time": strike.at.astimezone(SHANGHAI).strftime("%m-%d %H:%M"),
                  "excerpt": excerpt(message), "groups": c.groups}
        if c.action == OWNER_TASK:
            to, text = owner, texts.owner_task
        else:
            to, text = "|".join(sorted(telling.operators)), texts.operator_alert
        if not to:
            log.warning("group_rule_threshold", action=c.action, chat_id=strike.chat_id,
                        rule=strike.rule, points=c.points,
                        told="nobody: " + ("the group's owner is not known"
                                           if c.action == OWNER_TASK
                                           else "SOPBOT_OPERATORS is empty"))
            continue
        queued.append(outbox.Message(
            outbox_key(c.action, strike.msgid, strike.rule),
            SendMessage(agentid=telling.agent_id, touser=to, msgtype="text",
                        text=Text(content=_cut(text.format(**values)))), OUTBOX_KIND))
        log.info("group_rule_threshold", action=c.action, chat_id=strike.chat_id,
                 userid=strike.userid, rule=strike.rule, points=c.points)
    await outbox.enqueue_many(session, queued)


def outbox_key(action: str, msgid: str, rule: str) -> str:
    return f"group-rules:{KEY_CODES[action]}:{msgid}:{rule}"


async def member_names(session: AsyncSession, userids: set[str]) -> dict[str, str]:
    """How the members are called: the directory's name, else the last digits of their
    phone (never the whole number)."""
    rows = await session.execute(
        select(Member.external_userid, PlatformUser.name, Member.phone)
        .outerjoin(PlatformUser, PlatformUser.platform_user_id == Member.platform_user_id)
        .where(Member.external_userid.in_(userids)))
    names = {}
    for userid, name, phone in rows:
        if name or phone:
            names[userid] = name or f"（手机尾号 {(phone or '')[-4:]}）"
    return names


def anonymous(userid: str) -> str:
    return f"（未登记，ID 末 6 位 {userid[-6:]}）"


def excerpt(message: ArchiveMessage | None) -> str:
    if message is None:
        return ""
    if not message.text:
        return f"[{message.msgtype or '消息'}]"
    text = " ".join(mask_phones(message.text).split())
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "…"


def _cut(text: str) -> str:
    data = text.encode("utf-8")
    return text if len(data) <= TEXT_BYTES else data[:TEXT_BYTES].decode("utf-8", "ignore")
