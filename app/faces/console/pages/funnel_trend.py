"""The funnel page's daily trend: one small line chart per step, a line per group, drawn as
inline SVG by the template (the console's CSP allows no script). Colours are SVG presentation
attributes, which the CSP's `style-src` does not cover; every point has a <title>, the
browser's own tooltip."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from app.funnel import report, steps
from app.funnel.trend import Daily

# SVG user units: the plot sits right of the y labels and above the x labels.
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 440, 130, 44, 24, 10, 26
COLOURS = ("#3478f6", "#e0533d", "#07c160", "#f5a623", "#8e44ad", "#16a2b8", "#7f8c8d",
           "#d35400")
MAX_TICKS = 8  # x labels ("11-10", 12 units high) that fit side by side
MAX_LINES = len(COLOURS)  # more lines than colours cannot be told apart: the largest groups


@dataclass(frozen=True)
class Point:
    x: int
    y: int
    title: str  # "11-10 抖音：12 人"
    partial: bool = False  # today, counted up to now: drawn hollow, reached by a dashed line


@dataclass(frozen=True)
class Line:
    value: str
    label: str
    colour: str
    points: list[Point]

    @property
    def path(self) -> str:
        """The whole days; today's point, when shown, hangs on `partial_path`."""
        return " ".join(f"{p.x},{p.y}" for p in self.points if not p.partial)

    @property
    def partial_path(self) -> str:
        """A dashed step from the last whole day to today: a day not over is not a drop."""
        if len(self.points) < 2 or not self.points[-1].partial:
            return ""
        return " ".join(f"{p.x},{p.y}" for p in self.points[-2:])


@dataclass(frozen=True)
class StepTrend:
    step: str
    label: str
    top: int  # the y axis' maximum
    lines: list[Line]
    ticks: list[tuple[int, str]]  # the x axis' days: (x, "11-10")

    width, height, left = WIDTH, HEIGHT, LEFT
    plot_right, plot_top, plot_bottom = WIDTH - RIGHT, TOP, HEIGHT - BOTTOM
    label_y = HEIGHT - 8


@dataclass(frozen=True)
class Trend:
    charts: list[StepTrend]  # the steps someone took in the period
    empty: list[str]  # the labels of the others (a flat line each would only take room)
    legend: list[Line]  # the lines drawn, one per group (empty when there is one group)
    left_out: int  # groups not drawn (beyond MAX_LINES)

    @property
    def partial(self) -> bool:
        """Whether today, not over yet, is drawn (its dashed step needs a word)."""
        return any(line.partial_path for chart in self.charts for line in chart.lines)


def days_of(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def trend_view(found: Daily, days: list[date], by: str | None,
               labels: dict[str, str], step_labels: dict[str, str],
               today: date | None = None) -> Trend:
    """The charts for `days`; `labels`: each group value's label (the bar charts' names);
    `today`, when the period runs up to now, is drawn as the partial day it is."""
    totals = {value: sum(sum(by_day.values()) for by_day in per_step.values())
              for value, per_step in found.items()}
    drawn = sorted(totals, key=lambda v: (-totals[v], v))[:MAX_LINES]
    colours = {value: COLOURS[n] for n, value in enumerate(drawn)}
    charts = [_chart(step, step_labels[step], found, days, by, drawn, colours, labels, today)
              for step in steps.ORDER]
    legend = [Line(v, labels.get(v, v), colours[v], []) for v in drawn] if by else []
    return Trend([c for c in charts if c.top], [c.label for c in charts if not c.top], legend,
                 len(totals) - len(drawn))


def _chart(step: str, label: str, found: Daily, days: list[date], by: str | None,
           drawn: list[str], colours: dict[str, str], labels: dict[str, str],
           today: date | None) -> StepTrend:
    # A group without the step (抖音 has no landing page; a segment before routing) gets no
    # line: a flat zero would read as a drop.
    series = {v: [found[v].get(step, {}).get(day, 0) for day in days]
              for v in drawn if report.known(by, v, step) and found[v].get(step)}
    top = max((n for counts in series.values() for n in counts), default=0)
    lines = [Line(v, labels.get(v, v), colours[v], _points(days, counts, max(top, 1),
                                                            labels.get(v, v), today))
             for v, counts in series.items()]
    return StepTrend(step, label, top, lines, _ticks(days, today))


def _x(n: int, days: int) -> int:
    return LEFT + round((WIDTH - LEFT - RIGHT) * n / max(days - 1, 1))


def _ticks(days: list[date], today: date | None) -> list[tuple[int, str]]:
    """Every day's date when they fit (at most MAX_TICKS), else evenly spaced ones."""
    step = max(1, -(-len(days) // MAX_TICKS))
    return [(_x(n, len(days)), _day(day, today)) for n, day in enumerate(days)
            if n % step == 0]


def _day(day: date, today: date | None) -> str:
    return "今天" if day == today else f"{day:%m-%d}"


def _points(days: list[date], counts: list[int], top: int, name: str,
            today: date | None) -> list[Point]:
    span_y = HEIGHT - TOP - BOTTOM
    return [Point(_x(n, len(days)), TOP + round(span_y * (1 - count / top)),
                  f"{_day(day, today)} {name}：{count} 人"
                  + ("（截至现在）" if day == today else ""), day == today)
            for n, (day, count) in enumerate(zip(days, counts, strict=True))]
