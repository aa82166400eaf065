"""Small inline SVG charts for the calibration report: no script, no font, no link.

Each function returns one `<svg>` element as text, sized in its own viewBox so
the page scales it, with every label escaped. Inline SVG in HTML needs no
namespace, so the report holds no URL at all. They know nothing of scoring:
they draw bars, horizontal bars and lines from plain numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

_WIDTH = 640
_INK = "#1f2933"
_MUTED = "#7b8794"
_BAR = "#3e7cb1"
_GOOD = "#2f9e44"
_BAD = "#c92a2a"
_BAND = "#e6f4ea"


def _svg(height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg viewBox="0 0 {_WIDTH} {height}" '
        f'width="100%" role="img" aria-label="{escape(title)}" '
        f'font-family="system-ui, sans-serif" font-size="12">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "middle", fill: str = _INK) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}">{escape(text)}</text>'
    )


def bar_chart(
    title: str, labels: Sequence[str], rates: Sequence[float | None], notes: Sequence[str]
) -> str:
    """Vertical bars of rates between 0 and 1, one per label; a missing rate draws no bar."""
    height, top, bottom, left = 260, 30, 50, 40
    plot = height - top - bottom
    slot = (_WIDTH - left - 10) / max(len(labels), 1)
    body = [_text(_WIDTH / 2, 18, title)]
    for tick in (0.0, 0.5, 1.0):
        y = top + plot * (1 - tick)
        body.append(
            f'<line x1="{left}" x2="{_WIDTH - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e7eb"/>'
        )
        body.append(_text(left - 4, y + 4, f"{tick:.0%}", "end", _MUTED))
    for index, (label, rate, note) in enumerate(zip(labels, rates, notes, strict=True)):
        x = left + slot * index + slot * 0.15
        if rate is not None:
            bar = plot * rate
            body.append(
                f'<rect x="{x:.1f}" y="{top + plot - bar:.1f}" width="{slot * 0.7:.1f}" '
                f'height="{bar:.1f}" fill="{_BAR}"/>'
            )
            body.append(_text(x + slot * 0.35, top + plot - bar - 4, f"{rate:.0%}"))
        body.append(_text(x + slot * 0.35, height - bottom + 16, label))
        body.append(_text(x + slot * 0.35, height - bottom + 32, note, fill=_MUTED))
    return _svg(height, title, body)


def lift_chart(title: str, names: Sequence[str], lifts: Sequence[float]) -> str:
    """Horizontal bars of lift, with a line at 1 (no better than average)."""
    row, top, left = 22, 30, 220
    height = top + row * len(names) + 20
    biggest = max([2.0, *lifts])
    scale = (_WIDTH - left - 50) / biggest
    body = [_text(_WIDTH / 2, 18, title)]
    for index, (name, lift) in enumerate(zip(names, lifts, strict=True)):
        y = top + row * index
        colour = _GOOD if lift >= 1 else _BAD
        body.append(_text(left - 6, y + 14, name, "end"))
        body.append(
            f'<rect x="{left}" y="{y + 3}" width="{lift * scale:.1f}" height="{row - 8}" '
            f'fill="{colour}"/>'
        )
        body.append(_text(left + lift * scale + 4, y + 14, f"{lift:.2f}×", "start"))
    one = left + scale
    body.append(
        f'<line x1="{one:.1f}" x2="{one:.1f}" y1="{top - 4}" y2="{height - 16}" '
        f'stroke="{_INK}" stroke-dasharray="4 3"/>'
    )
    body.append(_text(one, height - 4, "1× = average", fill=_MUTED))
    return _svg(height, title, body)


def share_chart(
    title: str,
    thresholds: Sequence[int],
    shares: Sequence[float],
    band: tuple[float, float],
    markers: Sequence[tuple[float, str]],
) -> str:
    """MQL share (0–1) by threshold as a line, the usual band shaded, marked thresholds."""
    height, top, bottom, left, right = 260, 30, 40, 40, 20
    plot_w, plot_h = _WIDTH - left - right, height - top - bottom
    low_t = min([*thresholds, *(m for m, _ in markers)])
    high_t = max([*thresholds, *(m for m, _ in markers)])
    span = (high_t - low_t) or 1

    def x(value: float) -> float:
        return left + plot_w * (value - low_t) / span

    def y(share: float) -> float:
        return top + plot_h * (1 - share)

    body = [_text(_WIDTH / 2, 18, title)]
    body.append(
        f'<rect x="{left}" y="{y(band[1]):.1f}" width="{plot_w}" '
        f'height="{y(band[0]) - y(band[1]):.1f}" fill="{_BAND}"/>'
    )
    for tick in (0.0, band[0], band[1], 1.0):
        body.append(_text(left - 4, y(tick) + 4, f"{tick:.0%}", "end", _MUTED))
    line = " ".join(f"{x(t):.1f},{y(s):.1f}" for t, s in zip(thresholds, shares, strict=True))
    body.append(f'<polyline points="{line}" fill="none" stroke="{_BAR}" stroke-width="2"/>')
    for index, (value, label) in enumerate(markers):
        body.append(
            f'<line x1="{x(value):.1f}" x2="{x(value):.1f}" y1="{top}" y2="{top + plot_h}" '
            f'stroke="{_INK}" stroke-dasharray="4 3"/>'
        )
        body.append(_text(x(value), top + 12 + 14 * index, label))
    body.append(_text(left, height - 10, f"{low_t:g}", "start", _MUTED))
    body.append(_text(_WIDTH - right, height - 10, f"{high_t:g}", "end", _MUTED))
    body.append(_text(_WIDTH / 2, height - 10, "threshold (points)", fill=_MUTED))
    return _svg(height, title, body)
