"""One member as the detail page shows them: their fields, their history (newest first), their
verifications and their funnel events, what they said in each group (from the chat archive's
rollups: app/archive/reports.py), and the other members their phone or platform user id is
linked to (the one-to-one record: app/members/links.py). Phones are masked here too, in the
history as well: the whole number is shown only on the review detail, where a reviewer checks
it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.archive import reports
from app.archive.activity import archive_in_use
from app.directory.models import PlatformUser
from app.engine.db import utcnow
from app.engine.logs import mask_phones
from app.faces.console import labels, times
from app.faces.console.pages.funnel_view import STEP_LABELS
from app.faces.console.pages.members_view import MemberRow, member_row
from app.flows import Flows
from app.funnel.models import FunnelEvent
from app.groups.models import CustomerGroup
from app.members import links
from app.members.models import DUPLICATE, LINK_MOVED, LINKED, UNLINKED, Member, MemberHistory
from app.verify import checks
from app.verify.models import Verification

FIELD_LABELS = {
    "staff_userid": "添加的员工", "phone": "手机号", "platform_user_id": "平台用户 ID",
    "identity_type": "身份", "channel": "渠道", "slot": "广告位", "region": "地区",
    "segment": "分群", "group_chat_id": "所在群", "status": "状态", "flag": "标记",
    "link_state": "绑定", "unlinked": "解除绑定",
}
SOURCE_LABELS = {"callback": "企业微信事件", "verify": "提交认证", "routing": "分群规则",
                 "migration:0018": "升级（迁移 0018）"}
LINK_LABELS = {LINKED: "已绑定（手机号与平台用户 ID 归此会员）",
               DUPLICATE: "重复绑定：与其他会员共用，升级前已存在，待处理"}
FLAG_LABELS = {LINK_MOVED: "绑定已转移给其他会员", UNLINKED: "已解除绑定"}
HISTORY_LIMIT = 500  # far more than a member collects; a bound all the same


@dataclass(frozen=True)
class Change:
    at: str
    field: str
    old: str
    new: str
    source: str


@dataclass(frozen=True)
class Submission:
    id: int
    submitted: str
    identity: str
    region: str
    status: str
    status_label: str
    reviewer: str
    decided: str
    reason: str
    notes: list[str]  # why it was not approved by rule


@dataclass(frozen=True)
class Event:
    at: str
    step: str
    label: str
    segment: str
    detail: str


@dataclass(frozen=True)
class GroupTalk:
    """The member in one group, from the archive: 7 and 30 days end today (Asia/Shanghai)."""

    chat_id: str
    group: str
    last_spoke: str
    messages_7d: int
    messages_30d: int
    messages: int
    answers: int
    answers_30d: int
    current: bool  # the group routing put them in


@dataclass(frozen=True)
class MemberDetail:
    row: MemberRow
    facts: list[tuple[str, str]]
    history: list[Change]
    submissions: list[Submission]
    events: list[Event]
    # Other members this one's phone or platform user id is linked to: (id, external_userid).
    sharing: list[tuple[int, str]]
    linked: bool  # the member holds a link (or a `duplicate` one): it may be unlinked
    talk: list[GroupTalk] = field(default_factory=list)  # latest first
    archive: bool = False  # the chat archive is in use: no talk means they did not speak




async def load(session: AsyncSession, member_id: int, flows: Flows, me: str,
               now: datetime | None = None) -> MemberDetail | None:
    found = (await session.execute(
        select(Member, PlatformUser.name, CustomerGroup.name)
        .outerjoin(PlatformUser, PlatformUser.platform_user_id == Member.platform_user_id)
        .outerjoin(CustomerGroup, CustomerGroup.chat_id == Member.group_chat_id)
        .where(Member.id == member_id))).first()
    if found is None:
        return None
    member, name, group = found
    row = member_row(member, name, group, flows)
    return MemberDetail(row, _facts(member, row, flows),
                        await _history(session, member_id, flows),
                        await _submissions(session, member_id, flows, me),
                        await _events(session, member_id, flows),
                        [(m.id, m.external_userid) for m in await links.holders(
                            session, member.phone, member.platform_user_id, member.id)],
                        member.link_state is not None,
                        await _talk(session, member.external_userid, member.group_chat_id,
                                    now or utcnow()),
                        await archive_in_use(session))


async def _talk(session: AsyncSession, userid: str, current: str | None,
                now: datetime) -> list[GroupTalk]:
    found = await reports.member_activity(session, userid, now)
    names = dict((await session.execute(select(CustomerGroup.chat_id, CustomerGroup.name).where(
        CustomerGroup.chat_id.in_([t.chat_id for t in found])))).all())
    return [GroupTalk(t.chat_id, names.get(t.chat_id) or t.chat_id, times.local(t.last_spoke),
                      t.messages_7d, t.messages_30d, t.messages, t.answers, t.answers_30d,
                      t.chat_id == current) for t in found]


def _facts(member: Member, row: MemberRow, flows: Flows) -> list[tuple[str, str]]:
    """The member's fields in the order an operator reads them: who, how they came, where."""
    return [("external_userid", member.external_userid), ("姓名", row.name),
            ("平台用户 ID", member.platform_user_id or labels.NONE), ("手机号", row.phone),
            ("身份", labels.identity(flows, member.identity_type)), ("渠道", row.channel),
            ("广告位", member.slot or labels.NONE), ("地区", row.region),
            ("分群", row.segment), ("所在群", row.group), ("添加的员工", member.staff_userid),
            ("联系我 state", member.state or labels.NONE),
            ("绑定", LINK_LABELS.get(member.link_state or "", "未绑定")),
            ("标记", FLAG_LABELS.get(member.flag or "", member.flag or labels.NONE)),
            ("添加时间", row.added), ("最后更新", times.local(member.updated_at))]


async def _history(session: AsyncSession, member_id: int, flows: Flows) -> list[Change]:
    rows = await session.scalars(select(MemberHistory).where(MemberHistory.member_id == member_id)
                                 .order_by(MemberHistory.at.desc(), MemberHistory.id.desc())
                                 .limit(HISTORY_LIMIT))
    return [Change(times.local(h.at), FIELD_LABELS.get(h.field, h.field),
                   _value(h.field, h.old, flows), _value(h.field, h.new, flows),
                   _source(h.source)) for h in rows]


def _value(field: str, value: str | None, flows: Flows) -> str:
    if value is None:
        return labels.NONE
    shown: dict[str, Callable[[str], str]] = {
        "phone": labels.phone_masked, "status": labels.member_status,
        "segment": lambda v: labels.segment(flows, v),
        "channel": lambda v: labels.channel(flows, v),
        "identity_type": lambda v: labels.identity(flows, v),
        "link_state": lambda v: LINK_LABELS.get(v, v), "flag": lambda v: FLAG_LABELS.get(v, v)}
    return shown[field](value) if field in shown else value


def _source(source: str) -> str:
    if source.startswith("review:"):
        return f"审核：{labels.reviewer(source.removeprefix('review:'))}"
    return SOURCE_LABELS.get(source, source)


async def _submissions(session: AsyncSession, member_id: int, flows: Flows,
                       me: str) -> list[Submission]:
    rows = await session.scalars(select(Verification).where(Verification.member_id == member_id)
                                 .order_by(Verification.id.desc()))
    return [Submission(v.id, times.local(v.submitted_at),
                       labels.identity(flows, v.identity_type), v.region, v.status,
                       labels.REVIEW_STATUS.get(v.status, v.status),
                       labels.reviewer(v.reviewer, me), times.local(v.decided_at),
                       v.reason or labels.NONE,
                       [checks.describe(c, flows.verify.review_notes) for c in v.checks or ()])
            for v in rows]


async def _events(session: AsyncSession, member_id: int, flows: Flows) -> list[Event]:
    rows = await session.scalars(select(FunnelEvent).where(FunnelEvent.member_id == member_id)
                                 .order_by(FunnelEvent.at.desc(), FunnelEvent.id.desc()))
    return [Event(times.local(e.at), e.step, STEP_LABELS.get(e.step, e.step),
                  labels.segment(flows, e.segment) if e.segment else labels.NONE,
                  mask_phones(e.detail) if e.detail else labels.NONE) for e in rows]
