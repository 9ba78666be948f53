"""The long-lived objects of one process, built in the app's lifespan and shared by requests."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from app.archive.reader import ArchiveReader
from app.engine.bot.router import Router
from app.engine.bot.scheduler import Scheduler
from app.engine.config import Settings
from app.engine.db import Database
from app.engine.inbox.worker import InboxWorker
from app.engine.inbox.writer import InboxWriter
from app.engine.liveness import Liveness
from app.engine.outbox.sender import OutboxSender
from app.engine.wecom.client import WeComClient
from app.engine.wecom.crypto import WeComCrypto
from app.engine.wecom.tokens import TokenStore
from app.faces.web.metrics import Metrics
from app.flows import Flows
from app.kf.reader import KfReader


@dataclass
class Runtime:
    settings: Settings
    db: Database
    crypto: WeComCrypto
    flows: Flows
    router: Router
    worker: InboxWorker
    writer: InboxWriter
    http: httpx.AsyncClient
    wecom: WeComClient
    tokens: TokenStore
    sender: OutboxSender
    kf_reader: KfReader
    scheduler: Scheduler
    metrics: Metrics
    liveness: Liveness  # the worker's and sender's claims end with this process
    archive_reader: ArchiveReader | None = None  # None: no chat archive configured
