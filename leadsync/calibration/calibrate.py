"""`leadsync calibrate`: checks the scoring rules against what sales actually closed.

Given leads (already scored, or with their answers and events to score now)
and their outcomes (won, lost or open, with an optional deal size), it reports
the win rate by score band, the lift of each rule (win rate of the leads it
fired on over the win rate of all closed leads), the share of leads that are
MQLs against the usual 15–30% band, the MQL-to-won rate, and a suggested
threshold with the reasoning behind it. Win rates count closed leads only
(won / (won + lost)); open leads count in shares. `calibrate` does no I/O;
`read_outcomes` is the thin loader for the outcomes CSV. The threshold choice
is in threshold.py, the tables and the HTML report in report.py.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from leadsync.calibration.report import render_html, render_tables
from leadsync.calibration.threshold import (
    MQL_BAND,
    Suggestion,
    ThresholdPoint,
    suggest,
    threshold_curve,
)
from leadsync.errors import BadLead
from leadsync.models import Event, Lead, Score
from leadsync.scoring.amounts import parse_amount
from leadsync.scoring.engine import Scorer

__all__ = [
    "Band",
    "CalibrationReport",
    "Outcome",
    "RuleLift",
    "calibrate",
    "read_outcomes",
    "render_html",
    "render_tables",
]

OutcomeKind = Literal["won", "lost", "open"]
_SPELLINGS: dict[str, OutcomeKind] = {
    "won": "won",
    "closedwon": "won",
    "win": "won",
    "lost": "lost",
    "closedlost": "lost",
    "loss": "lost",
    "open": "open",
    "": "open",
    "pending": "open",
    "inprogress": "open",
}
# Fewer closed leads than this behind a rate, and the report says the rate is a hint.
FEW_CLOSED = 10
# Score bands are this many points wide: the first width that makes at most six bands.
_BAND_WIDTHS = (5, 10, 20, 25, 50, 100, 200, 500, 1000, 10_000)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one lead."""

    lead_id: str
    outcome: OutcomeKind
    deal_size: float | None = None


@dataclass(frozen=True, slots=True)
class Band:
    """Leads whose score is in [low, high] (infinite at the open ends) and how they closed."""

    label: str
    low: float
    high: float
    leads: int
    won: int
    lost: int
    won_value: float

    @property
    def closed(self) -> int:
        return self.won + self.lost

    @property
    def win_rate(self) -> float | None:
        return self.won / self.closed if self.closed else None


@dataclass(frozen=True, slots=True)
class RuleLift:
    """How leads a rule fired on closed, against all closed leads."""

    rule: str
    part: str
    leads: int
    closed: int
    won: int
    win_rate: float | None
    lift: float | None


@dataclass(frozen=True)
class CalibrationReport:
    """Everything `calibrate` found; rendered by report.py."""

    threshold: float
    rules_version: str
    leads: int
    won: int
    lost: int
    open: int
    missing: int
    base_win_rate: float | None
    bands: tuple[Band, ...]
    lifts: tuple[RuleLift, ...]
    mql_share: float
    mql_band: tuple[float, float]
    mql_to_won: float | None
    non_mql_win_rate: float | None
    curve: tuple[ThresholdPoint, ...]
    suggestion: Suggestion

    @property
    def suggested_threshold(self) -> int:
        return self.suggestion.threshold

    @property
    def reasoning(self) -> tuple[str, ...]:
        return self.suggestion.reasoning


ScoredOrNot = Score | tuple[Lead, Sequence[Event]]


def calibrate(
    scorer: Scorer,
    leads: Mapping[str, ScoredOrNot],
    outcomes: Sequence[Outcome],
    now: datetime,
) -> CalibrationReport:
    """Compares scores with outcomes. `leads` maps a lead id to its Score, or to (lead, events)
    to be scored at `now`. Outcomes of leads not in `leads` are counted as missing."""
    scored: list[tuple[Score, Outcome]] = []
    for outcome in outcomes:
        entry = leads.get(outcome.lead_id)
        if entry is None:
            continue
        score = entry if isinstance(entry, Score) else scorer.score(entry[0], entry[1], now)
        scored.append((score, outcome))
    won = sum(1 for _, o in scored if o.outcome == "won")
    lost = sum(1 for _, o in scored if o.outcome == "lost")
    curve = threshold_curve([(s.points, o.outcome, o.deal_size or 0.0) for s, o in scored])
    mqls = [(s, o) for s, o in scored if s.points >= scorer.threshold]
    rest = [(s, o) for s, o in scored if s.points < scorer.threshold]
    return CalibrationReport(
        threshold=scorer.threshold,
        rules_version=scorer.version,
        leads=len(scored),
        won=won,
        lost=lost,
        open=len(scored) - won - lost,
        missing=len(outcomes) - len(scored),
        base_win_rate=_win_rate(scored),
        bands=_bands(scored),
        lifts=_lifts(scorer, scored),
        mql_share=len(mqls) / len(scored) if scored else 0.0,
        mql_band=MQL_BAND,
        mql_to_won=_win_rate(mqls),
        non_mql_win_rate=_win_rate(rest),
        curve=tuple(curve),
        suggestion=suggest(curve, scorer.threshold, closed=won + lost),
    )


def _win_rate(pairs: Sequence[tuple[Score, Outcome]]) -> float | None:
    won = sum(1 for _, o in pairs if o.outcome == "won")
    closed = won + sum(1 for _, o in pairs if o.outcome == "lost")
    return won / closed if closed else None


def _bands(scored: Sequence[tuple[Score, Outcome]]) -> tuple[Band, ...]:
    """Bands of a round width, about six of them from 0 to the top score, and one below 0."""
    if not scored:
        return ()
    top = max(score.points for score, _ in scored)
    step = next((s for s in _BAND_WIDTHS if top / s <= 6), _BAND_WIDTHS[-1])
    edges = [(-math.inf, -1.0)]
    edges += [(float(low), float(low + step - 1)) for low in range(0, max(top, 0) + 1, step)]
    edges[-1] = (edges[-1][0], math.inf)
    bands = []
    for low, high in edges:
        inside = [(s, o) for s, o in scored if low <= s.points <= high]
        if low == -math.inf and not inside:
            continue
        label = _band_label(low, high)
        bands.append(
            Band(
                label=label,
                low=low,
                high=high,
                leads=len(inside),
                won=sum(1 for _, o in inside if o.outcome == "won"),
                lost=sum(1 for _, o in inside if o.outcome == "lost"),
                won_value=sum(o.deal_size or 0.0 for _, o in inside if o.outcome == "won"),
            )
        )
    return tuple(bands)


def _band_label(low: float, high: float) -> str:
    if low == -math.inf:
        return "below 0"
    return f"{low:g}+" if high == math.inf else f"{low:g}–{high:g}"


def _lifts(scorer: Scorer, scored: Sequence[tuple[Score, Outcome]]) -> tuple[RuleLift, ...]:
    """Each rule's win rate among the leads it fired on, over the win rate of all closed leads."""
    base = _win_rate(scored)
    fired = [(frozenset(reason.rule for reason in s.reasons), o) for s, o in scored]
    lifts = []
    for name in scorer.rule_names:
        outcomes = [o.outcome for rules, o in fired if name in rules]
        won, lost = outcomes.count("won"), outcomes.count("lost")
        rate = won / (won + lost) if won + lost else None
        lift = rate / base if rate is not None and base else None
        lifts.append(
            RuleLift(name, scorer.part_of(name), len(outcomes), won + lost, won, rate, lift)
        )
    return tuple(sorted(lifts, key=lambda lift: (lift.lift is None, -(lift.lift or 0.0))))


def read_outcomes(path: Path) -> list[Outcome]:
    """The outcomes CSV: lead_id, outcome (won, lost or open), optional deal_size."""
    outcomes = []
    with open(path, newline="", encoding="utf-8-sig") as source:
        reader = csv.DictReader(source)
        missing = {"lead_id", "outcome"} - set(reader.fieldnames or ())
        if missing:
            raise BadLead(
                f"{path}: no {', '.join(sorted(missing))} column; "
                "the header needs lead_id,outcome[,deal_size]"
            )
        for number, row in enumerate(reader, start=2):
            outcomes.append(_outcome(row, number))
    return outcomes


def _outcome(row: Mapping[str, str | None], number: int) -> Outcome:
    lead_id = (row.get("lead_id") or "").strip()
    said = (row.get("outcome") or "").strip()
    kind = _SPELLINGS.get("".join(ch for ch in said.casefold() if ch.isalnum()))
    if not lead_id or kind is None:
        raise BadLead(
            f"row {number}: needs a lead_id and an outcome of won, lost or open "
            f"(got outcome {said!r})"
        )
    size_text = (row.get("deal_size") or "").strip()
    amount = parse_amount(size_text) if size_text else None
    if size_text and amount is None:
        raise BadLead(f"row {number}: deal_size {size_text!r} is not an amount")
    return Outcome(lead_id, kind, amount[0] if amount else None)
