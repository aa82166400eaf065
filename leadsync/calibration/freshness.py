"""Is the scoring due for a calibration? What the status page says about it.

Two signs say the rules should be checked against outcomes again: a quarter (90 days)
since the last calibration made from the store (`leadsync calibrate` records it in
meta as `calibration.last_run`), or an MQL share over the last 30 days outside the
usual 15–30% band (from at least `MIN_LEADS` leads: a share of a handful is chance).
It also counts the last week's leads and MQLs per owner, in one aggregate query each.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from leadsync.abc import Store
from leadsync.calibration.threshold import MQL_BAND

CALIBRATED_AT = "calibration.last_run"
QUARTER = timedelta(days=90)
SHARE_WINDOW = timedelta(days=30)
OWNER_WINDOW = timedelta(days=7)
MIN_LEADS = 20
UNASSIGNED = "(unassigned)"


@dataclass(frozen=True, slots=True)
class CalibrationStatus:
    """When the rules were last calibrated, the recent MQL share, the signs, MQLs by owner."""

    last_run: datetime | None
    leads: int  # created in the last 30 days
    mqls: int
    notes: tuple[str, ...]
    owners: tuple[tuple[str, int, int], ...]  # (owner, leads, MQLs) of the last 7 days

    @property
    def mql_share(self) -> float | None:
        return self.mqls / self.leads if self.leads else None


def calibration_status(store: Store, now: datetime) -> CalibrationStatus:
    """What the store says at `now` (the caller's clock)."""
    stored = store.get_meta(CALIBRATED_AT)
    last_run = datetime.fromisoformat(stored) if stored else None
    month = store.lead_counts_by_owner(now - SHARE_WINDOW)
    leads, mqls = sum(n for n, _ in month.values()), sum(m for _, m in month.values())
    week = store.lead_counts_by_owner(now - OWNER_WINDOW)
    owners = sorted(((o or UNASSIGNED, n, m) for o, (n, m) in week.items()), key=_busiest)
    return CalibrationStatus(
        last_run, leads, mqls, tuple(notes(last_run, leads, mqls, now)), tuple(owners)
    )


def _busiest(row: tuple[str, int, int]) -> tuple[int, int, str]:
    return (-row[2], -row[1], row[0])


def notes(last_run: datetime | None, leads: int, mqls: int, now: datetime) -> list[str]:
    """The signs that a calibration is due, each with what to do."""
    found = []
    if last_run is None:
        found.append("Never calibrated from the stored outcomes: run leadsync calibrate.")
    elif now - last_run >= QUARTER:
        days = (now - last_run).days
        found.append(f"Last calibrated {days} days ago, over a quarter: run leadsync calibrate.")
    low, high = MQL_BAND
    if leads >= MIN_LEADS and not low <= mqls / leads <= high:
        found.append(
            f"{mqls / leads:.0%} of the last 30 days' {leads} leads are MQLs, outside "
            f"{low:.0%}–{high:.0%}: run leadsync calibrate to check the threshold."
        )
    return found
