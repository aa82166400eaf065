"""The closed-loop report engine: plain leads with their stages in, figures per group out.

Pure: no store, no clock, no I/O. Each group (form, campaign, ad or owner) gets its
leads, MQLs and MQL share, MQL→SQL and MQL→won rates, the win rate of MQLs against
other leads (the lift that says whether the score means anything), median times from
lead to first contact and to won, and deal value; a total row does the same over
every lead. A figure outside the MQL definition guide's bands carries a short note
saying what it suggests. A rate with nothing to divide by is None ("—"), never an error.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from leadsync.models import ReportLead as ReportLead  # where the report's input is defined

# Stages a lead reaches after it was created (its own created_time is the "lead" stage).
STAGES = ("contacted", "sql", "won", "lost")
GROUPINGS = ("form", "campaign", "ad", "owner")
Grouping = Literal["form", "campaign", "ad", "owner"]

# From the MQL definition guide: 15–30% of leads are MQLs in a healthy funnel.
MQL_SHARE_BAND = (0.15, 0.30)
# From the same guide: 13–27% of MQLs become SQLs; under 10% the MQL definition is too
# loose (sales rejects most MQLs), over 40% too strict (good leads never become MQLs).
MQL_TO_SQL_BAND = (0.13, 0.27)
MQL_TO_SQL_LOOSE = 0.10
MQL_TO_SQL_STRICT = 0.40

UNASSIGNED = "(unassigned)"


@dataclass(frozen=True, slots=True)
class Note:
    """A figure outside its band, and what that suggests."""

    figure: str
    text: str


@dataclass(frozen=True, slots=True)
class GroupFigures:
    """The figures of one group (or of every lead, for the total row)."""

    name: str
    leads: int
    mqls: int
    sqls: int  # MQLs that reached sql (or won)
    won: int  # leads that reached won, MQL or not
    mqls_won: int
    mql_share: float | None
    mql_to_sql: float | None
    mql_to_won: float | None
    mql_win_rate: float | None  # won / closed (won + lost) among MQLs
    other_win_rate: float | None  # the same among leads that are not MQLs
    lift: float | None  # mql_win_rate / other_win_rate
    to_contact: timedelta | None  # median, lead → first contact
    to_won: timedelta | None  # median, lead → won
    deal_value: Decimal  # sum of won values
    notes: tuple[Note, ...] = ()


@dataclass(frozen=True, slots=True)
class Report:
    """Every group's figures, largest first, and the total over all leads in the window.

    `outcomes` is False when no lead in the window has any sales stage: the loop is not
    closed yet, so the rates that need stages are None rather than a misleading 0%.
    """

    by: Grouping
    since: datetime
    groups: tuple[GroupFigures, ...]
    total: GroupFigures
    outcomes: bool = True


def build_report(leads: Sequence[ReportLead], since: datetime, by: Grouping) -> Report:
    """The report over the leads created at or after `since`, grouped `by`."""
    if by not in GROUPINGS:
        raise ValueError(f"cannot group by {by!r}; use one of {', '.join(GROUPINGS)}")
    window = [lead for lead in leads if lead.created_time >= since]
    outcomes = any(lead.stages for lead in window)
    key, label = _GROUP_KEYS[by]
    grouped: dict[str, list[ReportLead]] = {}
    names: dict[str, str] = {}
    for lead in window:
        grouped.setdefault(key(lead), []).append(lead)
        names.setdefault(key(lead), label(lead))
    groups = sorted(
        (figures(names[k], members, outcomes) for k, members in grouped.items()),
        key=lambda g: (-g.leads, g.name),
    )
    total = figures("Total", window, outcomes)
    return Report(by=by, since=since, groups=tuple(groups), total=total, outcomes=outcomes)


def _owner(lead: ReportLead) -> str:
    return lead.owner or UNASSIGNED


# Forms are grouped by id (two forms may share a name) and shown by name.
_GROUP_KEYS: dict[str, tuple[Callable[[ReportLead], str], Callable[[ReportLead], str]]] = {
    "form": (lambda lead: lead.form_id, lambda lead: lead.form_name or lead.form_id),
    "campaign": (lambda lead: lead.campaign_name, lambda lead: lead.campaign_name or "(none)"),
    "ad": (lambda lead: lead.ad_name, lambda lead: lead.ad_name or "(none)"),
    "owner": (_owner, _owner),
}


def figures(name: str, leads: Sequence[ReportLead], outcomes: bool = True) -> GroupFigures:
    """The figures of one group of leads; without `outcomes`, no stage-based rate."""
    mqls = [lead for lead in leads if lead.mql]
    others = [lead for lead in leads if not lead.mql]
    sqls = sum(1 for lead in mqls if _reached_sql(lead))
    mqls_won = sum(1 for lead in mqls if "won" in lead.stages)
    mql_win, other_win = _win_rate(mqls), _win_rate(others)
    lift = mql_win / other_win if mql_win is not None and other_win else None
    share = _rate(len(mqls), len(leads))
    to_sql = _rate(sqls, len(mqls)) if outcomes else None
    return GroupFigures(
        name=name,
        leads=len(leads),
        mqls=len(mqls),
        sqls=sqls,
        won=sum(1 for lead in leads if "won" in lead.stages),
        mqls_won=mqls_won,
        mql_share=share,
        mql_to_sql=to_sql,
        mql_to_won=_rate(mqls_won, len(mqls)) if outcomes else None,
        mql_win_rate=mql_win,
        other_win_rate=other_win,
        lift=lift,
        to_contact=_median([_first_contact(lead) for lead in leads]),
        to_won=_median([_since_created(lead, "won") for lead in leads]),
        deal_value=sum(
            (lead.stages["won"][1] or Decimal(0) for lead in leads if "won" in lead.stages),
            Decimal(0),
        ),
        notes=tuple(_notes(share, to_sql, mql_win, other_win)),
    )


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _reached_sql(lead: ReportLead) -> bool:
    # A won deal was qualified by sales on the way, even when nobody recorded the sql stage.
    return "sql" in lead.stages or "won" in lead.stages


def _win_rate(leads: Sequence[ReportLead]) -> float | None:
    won = sum(1 for lead in leads if "won" in lead.stages)
    lost = sum(1 for lead in leads if "lost" in lead.stages and "won" not in lead.stages)
    return _rate(won, won + lost)


def _first_contact(lead: ReportLead) -> timedelta | None:
    # Reaching sql or won means someone talked to the lead by then, recorded or not.
    times = [lead.stages[s][0] for s in ("contacted", "sql", "won") if s in lead.stages]
    return min(times) - lead.created_time if times else None


def _since_created(lead: ReportLead, stage: str) -> timedelta | None:
    return lead.stages[stage][0] - lead.created_time if stage in lead.stages else None


def _median(spans: Sequence[timedelta | None]) -> timedelta | None:
    known = [span for span in spans if span is not None]
    return statistics.median(known) if known else None


_NO_LIFT = (
    "MQLs win no more often than other leads: the score does not predict sales; "
    "run leadsync calibrate."
)


def _notes(
    share: float | None, to_sql: float | None, mql_win: float | None, other_win: float | None
) -> list[Note]:
    notes = []
    low, high = MQL_SHARE_BAND
    if share is not None and share < low:
        notes.append(Note("mql_share", "Few leads become MQLs: the threshold may be too high."))
    elif share is not None and share > high:
        notes.append(Note("mql_share", "Many leads become MQLs: the threshold may be too low."))
    if to_sql is not None:
        notes.extend(_sql_note(to_sql))
    if mql_win is not None and other_win is not None and mql_win <= other_win:
        notes.append(Note("lift", _NO_LIFT))
    return notes


def _sql_note(to_sql: float) -> list[Note]:
    low, high = MQL_TO_SQL_BAND
    if to_sql < MQL_TO_SQL_LOOSE:
        text = "Sales qualifies few MQLs: the MQL definition is too loose."
    elif to_sql < low:
        text = "Fewer MQLs become SQLs than usual: the MQL definition may be loose."
    elif to_sql > MQL_TO_SQL_STRICT:
        text = "Nearly every MQL becomes an SQL: the MQL definition is too strict."
    elif to_sql > high:
        text = "More MQLs become SQLs than usual: the MQL definition may be strict."
    else:
        return []
    return [Note("mql_to_sql", text)]
