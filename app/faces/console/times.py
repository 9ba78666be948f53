"""How the console shows moments: Asia/Shanghai wall-clock time, the operators' calendar
(the database keeps UTC)."""

from __future__ import annotations

from datetime import date, datetime

from app.engine.config import SHANGHAI

NONE = "—"


def local(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """`moment` in Asia/Shanghai, or a dash when there is none."""
    return moment.astimezone(SHANGHAI).strftime(fmt) if moment is not None else NONE


def local_day(moment: datetime) -> date:
    return moment.astimezone(SHANGHAI).date()
