"""Every table's model, imported in one place so metadata is complete (Alembic drift test)."""

from app.db import Base
from app.inbox.models import InboxEvent

__all__ = ["Base", "InboxEvent"]
