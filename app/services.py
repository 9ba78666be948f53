"""The long-lived objects of one process, built in the app's lifespan and shared by requests."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from app.bot.router import Router
from app.bot.scheduler import Scheduler
from app.config import Settings
from app.db import Database
from app.flows import Flows
from app.inbox.worker import InboxWorker
from app.inbox.writer import InboxWriter
from app.kf.puller import KfPuller
from app.liveness import Liveness
from app.metrics import Metrics
from app.outbox.sender import OutboxSender
from app.wecom.client import WeComClient
from app.wecom.crypto import WeComCrypto
from app.wecom.tokens import TokenStore


@dataclass
class Services:
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
    kf_reader: KfPuller
    scheduler: Scheduler
    metrics: Metrics
    liveness: Liveness  # the worker's and sender's claims end with this process
