"""The long-lived objects of one process, built in the app's lifespan and shared by requests."""

from __future__ import annotations

from dataclasses import dataclass

from app.bot.router import Router
from app.config import Settings
from app.db import Database
from app.flows import Flows
from app.inbox.worker import InboxWorker
from app.inbox.writer import InboxWriter
from app.wecom.crypto import WeComCrypto


@dataclass
class Services:
    settings: Settings
    db: Database
    crypto: WeComCrypto
    flows: Flows
    router: Router
    worker: InboxWorker
    writer: InboxWriter
