"""The closed-loop report's charts, as shapes (`leadsync.svg`) that `charts.html` draws.

A funnel per group (leads → MQLs → SQLs → won, bars scaled to the largest group)
and a rate per group against its usual band (MQL share against 15–30%, MQL→SQL
against 13–27%), the band shaded and each bar green inside it, red outside.
"""

from __future__ import annotations

from collections.abc import Sequence

from leadsync.report.figures import GroupFigures
from leadsync.svg import BAD, BAND, BAR, GOOD, INK, MUTED, WIDTH, Chart, Label, Line, Rect

# A chart with more rows than this stops being read; the table above it has every group.
CHART_GROUPS = 12
# Group names are typed by whoever runs the ads; long ones are cut in charts, whole in tables.
LABEL_CHARS = 28
_LEFT = 200
_FUNNEL = (("leads", "#9fb3c8"), ("MQLs", BAR), ("SQLs", "#2d5f8b"), ("MQLs won", GOOD))


def _label(name: str) -> str:
    return name if len(name) <= LABEL_CHARS else name[: LABEL_CHARS - 1] + "…"


def funnel_chart(title: str, groups: Sequence[GroupFigures]) -> Chart:
    """Four bars per group, leads → MQLs → SQLs → won, on one scale."""
    bar, gap, top = 12, 14, 48
    shown = list(groups[:CHART_GROUPS])
    if len(groups) > len(shown):
        title += f" (largest {len(shown)} of {len(groups)})"
    height = top + len(shown) * (4 * bar + gap) + 10
    scale = (WIDTH - _LEFT - 60) / max([1, *(g.leads for g in shown)])
    chart = Chart(title, height)
    for index, (stage, colour) in enumerate(_FUNNEL):  # the legend
        x = _LEFT + index * 100
        chart.add(Rect(x, 28, 10, 10, colour), Label(x + 14, 37, stage, "start", MUTED))
    for row, group in enumerate(shown):
        y = top + row * (4 * bar + gap)
        chart.add(Label(_LEFT - 8, y + 2 * bar + 4, _label(group.name), "end"))
        counts = (group.leads, group.mqls, group.sqls, group.mqls_won)
        for step, (count, (_, colour)) in enumerate(zip(counts, _FUNNEL, strict=True)):
            top_of_bar = y + step * bar
            chart.add(Rect(_LEFT, top_of_bar + 1, count * scale, bar - 2, colour))
            chart.add(Label(_LEFT + count * scale + 4, top_of_bar + bar - 2, str(count), "start"))
    return chart


def band_chart(
    title: str, names: Sequence[str], rates: Sequence[float | None], band: tuple[float, float]
) -> Chart:
    """One horizontal bar per group for a rate (0–1), with the usual band shaded."""
    row, top = 22, 44
    shown = list(zip(names, rates, strict=True))[:CHART_GROUPS]
    if len(names) > len(shown):
        title += f" (largest {len(shown)} of {len(names)})"
    height = top + row * len(shown) + 24
    top_rate = max([0.5, *(rate or 0 for _, rate in shown)])
    scale = (WIDTH - _LEFT - 60) / top_rate
    low, high = band
    chart = Chart(title, height)
    chart.add(Rect(_LEFT + low * scale, top - 6, (high - low) * scale, row * len(shown) + 8, BAND))
    chart.add(Label(_LEFT + (low + high) / 2 * scale, top - 10, f"usual {low:.0%}–{high:.0%}"))
    for index, (name, rate) in enumerate(shown):
        y = top + row * index
        chart.add(Label(_LEFT - 8, y + 14, _label(name), "end"))
        if rate is None:
            chart.add(Label(_LEFT + 4, y + 14, "— (no leads to divide by)", "start", MUTED))
            continue
        colour = GOOD if low <= rate <= high else BAD
        chart.add(Rect(_LEFT, y + 3, rate * scale, row - 8, colour))
        chart.add(Label(_LEFT + rate * scale + 4, y + 14, f"{rate:.0%}", "start"))
    axis = top + row * len(shown) + 4
    chart.add(Line(_LEFT, top - 6, _LEFT, axis, INK))
    chart.add(Label(_LEFT, axis + 14, "0%", "middle", MUTED))
    chart.add(Label(_LEFT + top_rate * scale, axis + 14, f"{top_rate:.0%}", "middle", MUTED))
    return chart
