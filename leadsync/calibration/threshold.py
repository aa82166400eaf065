"""Chooses an MQL threshold from outcomes, and says why in plain sentences.

For every score some lead has, `threshold_curve` works out what making it the
threshold would do: the share of leads that become MQLs, how those MQLs closed,
how the other leads closed, and what share of won deals (and won deal value)
the MQLs include. `suggest` picks, among thresholds that keep the MQL share in
the usual 15–30% band, the one that best balances the MQLs' win rate against
the share of won deals they include (the harmonic mean of the two, as F1 does
for precision and recall); ties go to the threshold nearest the current one.
When no threshold lands in the band it takes the nearest, and it says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# The share of leads that usually qualify as MQLs (the MQL definition guide's benchmark).
MQL_BAND = (0.15, 0.30)

# Below this many closed leads, the suggestion is called a hint.
ENOUGH_CLOSED = 30


@dataclass(frozen=True, slots=True)
class ThresholdPoint:
    """What threshold `threshold` (MQL when points >= it) would do to these leads."""

    threshold: int
    mql_share: float
    mql_win_rate: float | None
    rest_win_rate: float | None
    won_captured: float | None
    value_captured: float | None


@dataclass(frozen=True, slots=True)
class Suggestion:
    """The suggested threshold and the sentences that explain it."""

    threshold: int
    reasoning: tuple[str, ...]


def threshold_curve(leads: Sequence[tuple[int, str, float]]) -> list[ThresholdPoint]:
    """`leads` are (points, outcome, deal size); one point per distinct score, ascending."""
    if not leads:
        return []
    total = len(leads)
    won_all = sum(1 for _, outcome, _ in leads if outcome == "won")
    lost_all = sum(1 for _, outcome, _ in leads if outcome == "lost")
    value_all = sum(size for _, outcome, size in leads if outcome == "won")
    curve = []
    count = won = lost = 0
    value = 0.0
    ordered = sorted(leads, key=lambda lead: -lead[0])
    for index, (points, outcome, size) in enumerate(ordered):
        count += 1
        won += outcome == "won"
        lost += outcome == "lost"
        value += size if outcome == "won" else 0.0
        if index + 1 < total and ordered[index + 1][0] == points:
            continue  # the threshold takes every lead with this score at once
        curve.append(
            ThresholdPoint(
                threshold=points,
                mql_share=count / total,
                mql_win_rate=_rate(won, lost),
                rest_win_rate=_rate(won_all - won, lost_all - lost),
                won_captured=won / won_all if won_all else None,
                value_captured=value / value_all if value_all else None,
            )
        )
    return curve[::-1]


def _rate(won: int, lost: int) -> float | None:
    return won / (won + lost) if won + lost else None


def suggest(curve: Sequence[ThresholdPoint], current: float, closed: int) -> Suggestion:
    """The threshold to suggest for this curve, with its reasoning."""
    if not curve:
        reason = "No lead had an outcome; keep the current threshold."
        return Suggestion(math.ceil(current), (reason,))
    low, high = MQL_BAND
    in_band = [point for point in curve if low <= point.mql_share <= high]
    if in_band:
        best = max(in_band, key=lambda point: (_balance(point), -abs(point.threshold - current)))
    else:
        best = min(
            curve,
            key=lambda p: (_band_distance(p.mql_share), -_balance(p), abs(p.threshold - current)),
        )
    at_current = next((point for point in curve if point.threshold >= current), None)
    # Points are whole numbers: the current threshold picks the same MQLs as its ceiling.
    keep = at_current is best
    threshold = math.ceil(current) if keep else best.threshold
    reasoning = _reasoning(best, threshold, at_current, current, in_band, keep)
    return Suggestion(threshold, tuple(reasoning + _caveat(closed)))


def _balance(point: ThresholdPoint) -> float:
    """Harmonic mean of the MQL win rate and the won deals (or value) the MQLs include."""
    precision = point.mql_win_rate or 0.0
    recall = point.value_captured if point.value_captured is not None else point.won_captured
    if not recall or not precision:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def _band_distance(share: float) -> float:
    low, high = MQL_BAND
    return max(low - share, share - high, 0.0)


def _verdict(share: float) -> str:
    low, high = MQL_BAND
    if share < low:
        return f"below the usual {low:.0%}–{high:.0%}"
    if share > high:
        return f"above the usual {low:.0%}–{high:.0%}"
    return f"inside the usual {low:.0%}–{high:.0%}"


def _reasoning(
    best: ThresholdPoint,
    threshold: int,
    at_current: ThresholdPoint | None,
    current: float,
    in_band: Sequence[ThresholdPoint],
    keep: bool,
) -> list[str]:
    share = best.mql_share
    lines = [f"At {threshold}, {share:.0%} of leads are MQLs, {_verdict(share)}."]
    if not in_band:
        lines.append(
            "No threshold puts the MQL share inside the band (scores bunch up); "
            "this one comes nearest."
        )
    lines += _performance(best)
    if keep:
        lines.append("The current threshold already makes these leads MQLs: keep it.")
    elif at_current is None:
        lines.append(f"The current threshold {current:g} is above every score: no lead is an MQL.")
    else:
        rate = at_current.mql_win_rate
        closing = f", closing at {rate:.0%}" if rate is not None else ""
        lines.append(
            f"The current threshold {current:g} makes {at_current.mql_share:.0%} of leads MQLs "
            f"({_verdict(at_current.mql_share)}){closing}."
        )
    return lines


def _caveat(closed: int) -> list[str]:
    if closed >= ENOUGH_CLOSED:
        return []
    return [f"Only {closed} leads have closed: a hint; calibrate again as deals close."]


def _performance(point: ThresholdPoint) -> list[str]:
    if point.won_captured is None:
        return ["No deal has been won yet, so only the MQL share guided this choice."]
    rate = point.mql_win_rate
    text = (
        f"Those MQLs closed at {rate:.0%}"
        if rate is not None
        else "None of those MQLs has closed yet"
    )
    if point.rest_win_rate is not None:
        text += f", the other leads at {point.rest_win_rate:.0%}"
    text += f"; the MQLs include {point.won_captured:.0%} of won deals"
    if point.value_captured is not None:
        text += f" and {point.value_captured:.0%} of won deal value"
    return [text + "."]
