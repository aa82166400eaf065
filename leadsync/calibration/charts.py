"""The calibration report's charts, as shapes (`leadsync.svg`) that `charts.html` draws.

Win rate by score band (vertical bars), lift per rule (horizontal bars with a
line at 1×) and MQL share by threshold (a line over the usual band). They know
nothing of scoring: they place bars, lines and labels from plain numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

from leadsync.svg import BAD, BAND, GOOD, INK, MUTED, WIDTH, Chart, Label, Line, Polyline, Rect


def bar_chart(
    title: str, labels: Sequence[str], rates: Sequence[float | None], notes: Sequence[str]
) -> Chart:
    """Vertical bars of rates between 0 and 1, one per label; a missing rate draws no bar."""
    height, top, bottom, left = 260, 30, 50, 40
    plot = height - top - bottom
    slot = (WIDTH - left - 10) / max(len(labels), 1)
    chart = Chart(title, height)
    for tick in (0.0, 0.5, 1.0):
        y = top + plot * (1 - tick)
        chart.add(Line(left, y, WIDTH - 10, y), Label(left - 4, y + 4, f"{tick:.0%}", "end", MUTED))
    for index, (label, rate, note) in enumerate(zip(labels, rates, notes, strict=True)):
        x = left + slot * index + slot * 0.15
        middle = x + slot * 0.35
        if rate is not None:
            bar = plot * rate
            chart.add(Rect(x, top + plot - bar, slot * 0.7, bar))
            chart.add(Label(middle, top + plot - bar - 4, f"{rate:.0%}"))
        chart.add(Label(middle, height - bottom + 16, label))
        chart.add(Label(middle, height - bottom + 32, note, fill=MUTED))
    return chart


def lift_chart(title: str, names: Sequence[str], lifts: Sequence[float]) -> Chart:
    """Horizontal bars of lift, with a line at 1 (no better than average)."""
    row, top, left = 22, 30, 220
    height = top + row * len(names) + 20
    scale = (WIDTH - left - 50) / max([2.0, *lifts])
    chart = Chart(title, height)
    for index, (name, lift) in enumerate(zip(names, lifts, strict=True)):
        y = top + row * index
        chart.add(
            Label(left - 6, y + 14, name, "end"),
            Rect(left, y + 3, lift * scale, row - 8, GOOD if lift >= 1 else BAD),
            Label(left + lift * scale + 4, y + 14, f"{lift:.2f}×", "start"),
        )
    one = left + scale
    chart.add(Line(one, top - 4, one, height - 16, INK, dashed=True))
    chart.add(Label(one, height - 4, "1× = average", fill=MUTED))
    return chart


def share_chart(
    title: str,
    thresholds: Sequence[int],
    shares: Sequence[float],
    band: tuple[float, float],
    markers: Sequence[tuple[float, str]],
) -> Chart:
    """MQL share (0–1) by threshold as a line, the usual band shaded, marked thresholds."""
    height, top, bottom, left, right = 260, 30, 40, 40, 20
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    low_t = min([*thresholds, *(m for m, _ in markers)])
    high_t = max([*thresholds, *(m for m, _ in markers)])
    span = (high_t - low_t) or 1

    def x(value: float) -> float:
        return left + plot_w * (value - low_t) / span

    def y(share: float) -> float:
        return top + plot_h * (1 - share)

    chart = Chart(title, height)
    chart.add(Rect(left, y(band[1]), plot_w, y(band[0]) - y(band[1]), BAND))
    for tick in (0.0, band[0], band[1], 1.0):
        chart.add(Label(left - 4, y(tick) + 4, f"{tick:.0%}", "end", MUTED))
    points = tuple((x(t), y(s)) for t, s in zip(thresholds, shares, strict=True))
    chart.add(Polyline(points))
    for index, (value, label) in enumerate(markers):
        chart.add(Line(x(value), top, x(value), top + plot_h, INK, dashed=True))
        chart.add(Label(x(value), top + 12 + 14 * index, label))
    chart.add(
        Label(left, height - 10, f"{low_t:g}", "start", MUTED),
        Label(WIDTH - right, height - 10, f"{high_t:g}", "end", MUTED),
        Label(WIDTH / 2, height - 10, "threshold (points)", fill=MUTED),
    )
    return chart
