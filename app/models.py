"""Every table's model, imported in one place so metadata is complete (Alembic drift test)."""

from app.db import Base
from app.inbox.models import InboxEvent
from app.outbox.models import OutboxMessage, RateSlot
from app.wecom.tokens import AccessToken

__all__ = ["AccessToken", "Base", "InboxEvent", "OutboxMessage", "RateSlot"]
