"""What the funnel page shows, computed from app/funnel/report.py's groups: Chinese labels,
bar geometry for the inline SVG chart, and the table's rows."""

from __future__ import annotations

from dataclasses import dataclass

from app.flows import Flows
from app.funnel import report, steps
from app.funnel.labels import IN_EACH_GROUP, NOT_KNOWN_YET, value_labels
from app.koc.funnel_steps import ReferrerSteps

STEP_LABELS = {
    steps.TARGETED: "目标用户", steps.IMPRESSION: "广告曝光", steps.CLICK: "广告点击",
    steps.LANDING: "落地页访问", steps.FRIEND_ADDED: "添加好友", steps.WELCOME_SENT: "欢迎语已发",
    steps.VERIFY_OPENED: "打开认证", steps.SUBMITTED: "提交认证", steps.APPROVED: "审核通过",
    steps.REJECTED: "审核拒绝", steps.ROUTED: "分配社群", steps.JOINED: "已入群",
    steps.WELCOME_SKIPPED: "欢迎语未接管", steps.WELCOME_MISSED: "欢迎语未送达",
    steps.DEFAULT_CHANNEL_USED: "记入默认渠道", steps.LEFT_GROUP: "退群",
    steps.DELETED_STAFF: "删除员工",
}
DIMENSION_LABELS = {"": "不分组", "channel": "渠道", "slot": "广告位", "segment": "分群",
                    "region": "地区"}

# The chart's geometry in SVG user units (text is 15 units high, console.css). The SVG scales
# to its card: on a phone ~0.7, so the labels stay readable; the longest value text ("12345 ·
# 100.0%") still fits right of a full bar.
WIDTH, LABEL_W, BAR_MAX, ROW_H, BAR_H = 460, 84, 250, 26, 16
BAR_X = LABEL_W + 8


@dataclass(frozen=True)
class Bar:
    step: str
    label: str
    count: int
    conversion: str  # "75.0%", or "-" for the first step or a zero base
    base_label: str  # the step the conversion is measured from
    y: int
    width: int
    within: str = ""  # the channels counted, when others lack the base step
    unknown: str = ""  # e.g. 未分群: the grouping is not known at this step (report.known)

    label_x, bar_x, bar_h = LABEL_W, BAR_X, BAR_H

    @property
    def text_x(self) -> int:
        return BAR_X + self.width + 6

    @property
    def text_y(self) -> int:
        return self.y + ROW_H // 2 + 5

    @property
    def rect_y(self) -> int:
        return self.y + (ROW_H - BAR_H) // 2


@dataclass(frozen=True)
class GroupView:
    value: str
    label: str
    bars: list[Bar]
    extras: list[tuple[str, int]]
    latency: str

    chart_width = WIDTH

    @property
    def chart_height(self) -> int:
        return ROW_H * len(self.bars)

    @property
    def note(self) -> str:
        """Why some steps have no count here: the grouping is known only from one step on."""
        unknown = [bar for bar in self.bars if bar.unknown]
        if not unknown:
            return ""
        shown = unknown[0].unknown
        if self.bars[0].unknown:  # a value's group: its steps start where the value is known
            first = next(bar for bar in self.bars if not bar.unknown)
            return f"“{shown}”：分组要到{first.label}时才确定，之前的步骤计在“{shown}”一组。"
        first = unknown[0]  # the valueless group: it holds the steps before the grouping
        return f"本组只计{first.label}之前的步骤；从{first.label}起每人计在自己的一组（{shown}）。"


def group_views(groups: list[report.Group], by: str | None, flows: Flows) -> list[GroupView]:
    labels, channels = value_labels(flows, by), value_labels(flows, "channel")
    return [GroupView(g.value, value_label(by, g.value, labels), _bars(g, by, channels),
                      [(STEP_LABELS[e], g.counts.get(e, 0)) for e in report.EXTRAS],
                      _latency(g.latencies))
            for g in groups]


def value_label(by: str | None, value: str, labels: dict[str, str]) -> str:
    """The group's name as operators know it, with the stored value beside a label."""
    if by is None:
        return "全部"
    if value == report.NO_VALUE or value not in labels or labels[value] == value:
        return labels.get(value, value)
    return f"{labels[value]}（{value}）"


def _bars(group: report.Group, by: str | None, channels: dict[str, str]) -> list[Bar]:
    counts = group.counts
    top = max((counts.get(step, 0) for step in steps.ORDER), default=0) or 1
    bars = []
    for row, step in enumerate(steps.ORDER):
        if not report.known(by, group.value, step):
            shown = IN_EACH_GROUP if group.value == report.NO_VALUE else NOT_KNOWN_YET
            bars.append(Bar(step, STEP_LABELS[step], 0, "", "", ROW_H * row, 0,
                            unknown=shown[by or ""]))
            continue
        count, rate = counts.get(step, 0), report.conversion(group, step, by)
        within = "、".join(channels.get(c, c) for c in rate.within)
        bars.append(Bar(step, STEP_LABELS[step], count, rate.text, STEP_LABELS.get(rate.base, ""),
                        ROW_H * row, round(BAR_MAX * count / top), within))
    return bars


def _latency(latencies: list[int]) -> str:
    if not latencies:
        return "—"
    p50, p99 = report.percentile(latencies, 50), report.percentile(latencies, 99)
    return f"p50 {p50} ms，p99 {p99} ms（{len(latencies)} 条）"


@dataclass(frozen=True)
class TableRow:
    step: str
    label: str
    cells: list[Bar]


def table_rows(views: list[GroupView]) -> list[TableRow]:
    """One row per step, one cell per group (the groups' bars are in the same step order)."""
    return [TableRow(step, STEP_LABELS[step], [view.bars[index] for view in views])
            for index, step in enumerate(steps.ORDER)]


REFERRERS_SHOWN = 50  # the section 推荐官转化 lists the recommenders who referred most


@dataclass(frozen=True)
class ReferrerRow:
    """One recommender's referral steps (app/koc/funnel_steps.py), reasons in Chinese."""

    steps: ReferrerSteps
    rejected: str  # "消费者 1、推荐人本人 1"

    @property
    def rate(self) -> str:
        """Credited ÷ referred."""
        if not self.steps.referred:
            return "-"
        return f"{100 * self.steps.credited / self.steps.referred:.1f}%"


def referrer_rows(rows: list[ReferrerSteps], reasons: dict[str, str]) -> list[ReferrerRow]:
    return [ReferrerRow(row, "、".join(f"{reasons.get(reason, reason)} {n}"
                                       for reason, n in sorted(row.rejected.items())))
            for row in rows]
