"""What the outbox page shows: counts by kind and status, the rows an operator must decide on
(dead, or an unknown outcome) and the ones given up on lately, with the reason. Reads only."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.engine.outbox.models import DEAD, EXPIRED, PENDING, SENT, UNKNOWN, OutboxMessage
from app.engine.outbox.store import BEFORE, DROPPED, was_dropped
from app.faces.console.times import NONE, local

STATUS_LABELS = {PENDING: "待发送", SENT: "已发送", DEAD: "失败", EXPIRED: "已过期",
                 UNKNOWN: "结果未知"}
# The rows the page lists for a decision, by the status filter's values ("" is both).
DECIDE = {"": (DEAD, UNKNOWN), DEAD: (DEAD,), UNKNOWN: (UNKNOWN,)}
STATUS_CHOICES = [(status, STATUS_LABELS[status]) for status in DECIDE if status]
KIND_LABELS = {
    "welcome": "好友欢迎语", "kf_welcome": "客服欢迎语", "kf_reply": "客服回复",
    "kf_handoff": "转人工", "late_reply": "补发回复", "operator_answer": "运营指令回复",
    "staff_notice": "员工通知", "mark_tag": "打标签", "group_sync": "群信息同步",
    "join_way": "加入群聊码", "group_migration": "僵尸群迁移", "announcement": "公告",
    "calendar_post": "日历发布", "calendar_reminder": "群发提醒", "calendar_cancel": "取消群发",
    "group_rules": "群规提醒", "archive_alert": "会话存档告警",
}
SHOWN = 200  # rows listed for a decision; the rest wait for the next page view
RECENTLY_DROPPED = 20
ERROR_SHOWN = 60  # characters of the last error in the table (all of it on hover)


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind)


@dataclass(frozen=True)
class KindCounts:
    kind: str
    label: str
    counts: list[int]  # in STATUS_LABELS' order
    total: int


@dataclass(frozen=True)
class Counts:
    kinds: list[KindCounts]
    totals: list[int]

    @property
    def total(self) -> int:
        return sum(self.totals)

    @property
    def kind_choices(self) -> list[tuple[str, str]]:
        """The kind filter's choices: the kinds the outbox holds."""
        return [(k.kind, k.label) for k in self.kinds]


@dataclass(frozen=True)
class RowView:
    id: int
    kind: str
    kind_label: str
    api: str
    key: str
    status: str
    status_label: str
    attempts: int
    errcode: str
    error: str  # as stored (the title shows all of it)
    error_short: str
    created: str
    finished: str

    @property
    def dropped(self) -> bool:
        """Given up on by an operator (rather than by WeCom or the sender)."""
        return self.status == DEAD and self.error.startswith(DROPPED)

    @property
    def reason(self) -> str:
        """An operator's reason, for a row given up on ("" otherwise)."""
        return self._dropped()[0]

    @property
    def before(self) -> str:
        """The error the row had when an operator gave it up ("" if none)."""
        return self._dropped()[1]

    def _dropped(self) -> tuple[str, str]:
        if not self.error.startswith(DROPPED):
            return "", ""
        reason, _, before = self.error.removeprefix(DROPPED).partition(BEFORE)
        return reason, before


async def counts(session: AsyncSession) -> Counts:
    found: dict[str, dict[str, int]] = {}
    for kind, status, n in await session.execute(
            select(OutboxMessage.kind, OutboxMessage.status, func.count())
            .group_by(OutboxMessage.kind, OutboxMessage.status)):
        found.setdefault(kind, {})[status] = n
    kinds = [KindCounts(kind, kind_label(kind), [by.get(s, 0) for s in STATUS_LABELS],
                        sum(by.values()))
             for kind, by in sorted(found.items())]
    totals = [sum(k.counts[i] for k in kinds) for i in range(len(STATUS_LABELS))]
    return Counts(kinds, totals)


def _to_decide(status: str, kind: str) -> Select[OutboxMessage]:
    query = select(OutboxMessage).where(OutboxMessage.status.in_(DECIDE[status]),
                                        ~was_dropped())
    return query.where(OutboxMessage.kind == kind) if kind else query


async def to_decide(session: AsyncSession, status: str, kind: str) -> tuple[list[RowView], int]:
    """The dead and unknown rows not given up on (newest first, at most SHOWN), and how many
    there are in all."""
    query = _to_decide(status, kind)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(query.order_by(OutboxMessage.id.desc()).limit(SHOWN))
    return [row_view(r) for r in rows], total or 0


async def dropped(session: AsyncSession, kind: str) -> list[RowView]:
    """The rows operators gave up on most recently."""
    query = select(OutboxMessage).where(OutboxMessage.status == DEAD, was_dropped())
    if kind:
        query = query.where(OutboxMessage.kind == kind)
    rows = await session.scalars(query.order_by(OutboxMessage.finished_at.desc(),
                                                OutboxMessage.id.desc())
                                 .limit(RECENTLY_DROPPED))
    return [row_view(r) for r in rows]


async def listing(session: AsyncSession, status: str, kind: str) -> dict[str, object]:
    """Everything the page lists, by the template's names."""
    rows, total = await to_decide(session, status, kind)
    return {"counts": await counts(session), "rows": rows, "total": total,
            "dropped": await dropped(session, kind)}


def row_view(row: OutboxMessage) -> RowView:
    error = row.last_error or ""
    short = error if len(error) <= ERROR_SHOWN else error[:ERROR_SHOWN - 1] + "…"
    return RowView(row.id, row.kind, kind_label(row.kind), row.api, row.idempotency_key,
                   row.status, STATUS_LABELS.get(row.status, row.status), row.attempts,
                   NONE if row.errcode is None else str(row.errcode), error, short or NONE,
                   local(row.created_at), local(row.finished_at))
