"""Calibration from the store's own outcomes, for `leadsync calibrate` without a CSV.

The stages sales recorded (sheet status, CRM lifecycle, `POST /events`) say how each
lead of the last year ended: won is the positive class, lost the negative, anything
else open. With fewer than `MIN_WINS` wins the positive class is "reached sql" (or won)
instead: with a handful of wins spread over the score bands, each band's win rate and
so the suggested threshold would follow chance, while SQLs are several times more
common (13–27% of MQLs) and are sales' own verdict that a lead fits. The output says
which class was used. `outcomes_from` is pure; `stored_leads` reads the store in pages.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from leadsync.abc import Store
from leadsync.calibration.calibrate import Outcome
from leadsync.calibration.freshness import CALIBRATED_AT as CALIBRATED_AT  # kept in meta
from leadsync.models import Event, Lead, ReportLead

# Fewer wins than this and the calibration counts SQLs as the positive class (see above).
MIN_WINS = 20
# Outcomes of leads older than a year say little about today's forms and rules.
WINDOW = timedelta(days=365)
# Leads read from the store per query.
_PAGE = 500

LeadsWithEvents = dict[str, tuple[Lead, Sequence[Event]]]


def outcomes_from(leads: Sequence[ReportLead]) -> tuple[list[Outcome], str]:
    """Each lead's outcome from its stages, and a sentence saying what counted as positive."""
    wins = sum(1 for lead in leads if "won" in lead.stages)
    by_sql = wins < MIN_WINS

    def positive(lead: ReportLead) -> bool:
        return "won" in lead.stages or (by_sql and "sql" in lead.stages)

    outcomes = []
    for lead in leads:
        if positive(lead):
            value = lead.stages["won"][1] if "won" in lead.stages else None
            outcomes.append(Outcome(lead.lead_id, "won", None if value is None else float(value)))
        else:
            outcomes.append(Outcome(lead.lead_id, "lost" if "lost" in lead.stages else "open"))
    if by_sql:
        note = (
            f"Only {wins} won leads are stored (fewer than {MIN_WINS}): calibrating on "
            "sales-qualified leads (sql or won) against lost ones; in the tables, 'won' means sql."
        )
    else:
        note = f"Calibrating on the store's outcomes: {wins} won leads against lost ones."
    return outcomes, note


def stored_leads(store: Store, now: datetime) -> tuple[LeadsWithEvents, list[Outcome], str]:
    """The last year's leads with their events, their outcomes, and the positive-class note."""
    rows = store.report_leads(now - WINDOW)
    outcomes, note = outcomes_from(rows)
    return leads_with_events(store, [row.lead_id for row in rows]), outcomes, note


def leads_with_events(store: Store, lead_ids: Sequence[str]) -> LeadsWithEvents:
    """The stored leads among `lead_ids` with their events, read a page at a time."""
    leads: LeadsWithEvents = {}
    for start in range(0, len(lead_ids), _PAGE):
        page = lead_ids[start : start + _PAGE]
        events = store.events_for(page)
        for lead_id, lead in store.get_leads(page).items():
            leads[lead_id] = (lead, events.get(lead_id, []))
    return leads
