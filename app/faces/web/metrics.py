"""GET /metrics in Prometheus' text format. Counters and the welcome latency histogram are
this process's own (each replica is scraped); the depths and the funnel's step counts are read
from the database at scrape time, so every replica reports the same, whole picture of them."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.archive.status import archive_status
from app.engine.db import utcnow
from app.engine.inbox.models import PENDING as INBOX_PENDING
from app.engine.inbox.models import InboxEvent
from app.engine.outbox.models import DEAD, PENDING, SENT, UNKNOWN, OutboxMessage
from app.engine.outbox.outcomes import Outcome
from app.engine.outbox.store import Claimed
from app.funnel.delivery import WELCOME_KIND
from app.funnel.models import FunnelEvent
from app.groups.pool_alerts import empty_pools

router = APIRouter()
OPEN = (PENDING, DEAD, UNKNOWN)
WELCOME_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 18, 20, 30)


class Metrics:
    """One registry per app (tests run many apps in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.callbacks = Counter("sopbot_callbacks", "Callbacks received, by event kind and "
                                 "outcome (stored, duplicate, rejected).", ["kind", "outcome"],
                                 registry=r)
        self.sends = Counter("sopbot_sends", "Outbox attempts settled, by API, result and "
                             "errcode.", ["api", "result", "errcode"], registry=r)
        self.welcome_latency = Histogram(
            "sopbot_welcome_latency_seconds", "Callback stored to WeCom's answer to its "
            "welcome.", buckets=WELCOME_BUCKETS, registry=r)
        self.inbox_pending = Gauge("sopbot_inbox_pending", "Inbox rows not handled yet.",
                                   registry=r)
        self.inbox_lag = Gauge("sopbot_inbox_lag_seconds", "Age of the oldest pending inbox "
                               "row.", registry=r)
        self.outbox_depth = Gauge("sopbot_outbox_depth", "Outbox rows waiting (pending) or "
                                  "waiting for an operator (dead, unknown), by kind.",
                                  ["kind", "status"], registry=r)
        self.funnel = Gauge("sopbot_funnel_steps", "Funnel events recorded, by step (all "
                            "time).", ["step"], registry=r)
        self.pool_empty = Gauge("sopbot_group_pool_empty", "1 for each segment whose 加入群聊 "
                                "code has no group with room (new members fill its newest "
                                "group past its ideal size).", ["segment"], registry=r)

        self.archive_lag = Gauge("sopbot_archive_lag_seconds", "Time since the chat archive "
                                 "reader last read to the end (WeCom keeps the data for days).",
                                 registry=r)
        self.archive_quarantined = Gauge("sopbot_archive_quarantined", "Chat archive records "
                                         "that could not be opened, waiting for a replay.",
                                         registry=r)

        self.archive_children = Gauge("sopbot_archive_child_starts", "Chat archive SDK "
                                      "processes this process started (more than one: a "
                                      "record killed one, or it hung).", registry=r)

    def settled(self, claimed: Claimed, outcome: Outcome, now: datetime) -> None:
        """A settled outbox row: its result, and a welcome's latency when it went out."""
        errcode = outcome.values.get("errcode")
        self.sends.labels(claimed.api, outcome.label,
                          "" if errcode is None else str(errcode)).inc()
        if claimed.kind == WELCOME_KIND and outcome.label == SENT:
            self.welcome_latency.observe((now - claimed.created_at).total_seconds())

    async def refresh(self, session: AsyncSession) -> None:
        """The database-backed gauges, as they are now."""
        pending, oldest = (await session.execute(
            select(func.count(), func.min(InboxEvent.received_at))
            .where(InboxEvent.status == INBOX_PENDING))).one()
        self.inbox_pending.set(pending)
        self.inbox_lag.set((utcnow() - oldest).total_seconds() if oldest else 0)
        self.outbox_depth.clear()
        for kind, status, count in await session.execute(
                select(OutboxMessage.kind, OutboxMessage.status, func.count())
                .where(OutboxMessage.status.in_(OPEN))  # not the whole history
                .group_by(OutboxMessage.kind, OutboxMessage.status)):
            self.outbox_depth.labels(kind, status).set(count)
        self.funnel.clear()
        for step, count in await session.execute(
                select(FunnelEvent.step, func.count()).group_by(FunnelEvent.step)):
            self.funnel.labels(step).set(count)
        self.pool_empty.clear()
        for pool in await empty_pools(session):
            self.pool_empty.labels(pool.segment).set(1)
        if (archive := await archive_status(session, utcnow())) is not None:
            self.archive_lag.set(archive.lag_s or 0)
            self.archive_quarantined.set(archive.quarantined)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    runtime = request.app.state.runtime
    async with runtime.db.reader() as session:
        await runtime.metrics.refresh(session)
    if runtime.archive_reader is not None:
        runtime.metrics.archive_children.set(runtime.archive_reader.source.child_starts)
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)
