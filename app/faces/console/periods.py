"""The period a console page reports on: today, the last 7 or 30 days, or chosen dates.

Days are Asia/Shanghai days, the operators' calendar: "7 days" is today and the six before,
from midnight, not the last 168 hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from app.engine.config import SHANGHAI

PRESETS = {"today": 1, "7d": 7, "30d": 30}
CUSTOM = "custom"
CHOICES = (("today", "今天"), ("7d", "近 7 天"), ("30d", "近 30 天"), (CUSTOM, "自定义"))
MAX_DAYS = 366


class PeriodError(ValueError):
    """A period the page cannot use; the message is shown to the operator (Chinese)."""


@dataclass(frozen=True)
class Period:
    key: str
    first_day: date
    last_day: date
    since_at: datetime
    until_at: datetime | None  # None: up to now

    @property
    def label(self) -> str:
        if self.first_day == self.last_day:
            return f"{self.first_day:%Y-%m-%d}"
        return f"{self.first_day:%Y-%m-%d} 至 {self.last_day:%Y-%m-%d}"


def parse_period(key: str, start: str | None, end: str | None, now: datetime) -> Period:
    """The period named by the page's query parameters, at the moment `now`."""
    today = now.astimezone(SHANGHAI).date()
    if key in PRESETS:
        first = today - timedelta(days=PRESETS[key] - 1)
        return Period(key, first, today, _midnight(first), None)
    if key != CUSTOM:
        raise PeriodError("未知的时间范围。")
    first, last = _day(start, "开始日期"), _day(end, "结束日期")
    if first > last:
        raise PeriodError("开始日期不能晚于结束日期。")
    if (last - first).days >= MAX_DAYS:
        raise PeriodError(f"时间范围最长 {MAX_DAYS} 天。")
    return Period(key, first, last, _midnight(first), _midnight(last + timedelta(days=1)))


def _day(value: str | None, name: str) -> date:
    try:
        return date.fromisoformat((value or "").strip())
    except ValueError:
        raise PeriodError(f"请填写{name}（YYYY-MM-DD）。") from None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), SHANGHAI)
