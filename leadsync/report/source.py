"""Where the closed-loop report gets its leads: the `ReportSource` interface and, for now,
an adapter that builds `ReportLead`s from what the store already keeps.

The CLI and `/report` depend only on `ReportSource.report_leads(since)`. `report_leads`
(store, since) is a temporary bridge until the store answers that itself: it pages
through every stored lead (the store has no "created since" query yet), takes the MQL
flag from the current score, leaves `owner` None (no routing yet), and reads sales
stages from `store.stages_for` only when the store has it (the lead-stages work adds it;
`hasattr` marks the seam). When the store grows `report_leads`, `StoreReportSource`
and this module's adapter go away and the store object is the source.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from leadsync.abc import Store
from leadsync.models import Lead, Score
from leadsync.report.figures import STAGES, ReportLead

# Leads read per store query while building the report.
_PAGE = 500


class ReportSource(Protocol):
    """Anything that can list the leads created since a moment, with their stages."""

    def report_leads(self, since: datetime) -> list[ReportLead]: ...


class StoreReportSource:
    """A `ReportSource` over a store that does not have `report_leads` itself yet."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def report_leads(self, since: datetime) -> list[ReportLead]:
        return report_leads(self.store, since)


def report_leads(store: Store, since: datetime) -> list[ReportLead]:
    """The stored leads created at or after `since`, as the report engine takes them."""
    found: list[ReportLead] = []
    after = ""
    while page := store.lead_ids(after, _PAGE):
        after = page[-1]
        leads = [lead for lead in store.get_leads(page).values() if lead.created_time >= since]
        ids = [lead.id for lead in leads]
        scores = store.current_scores(ids) if ids else {}
        stages = _stages(store, ids) if ids else {}
        found.extend(
            _report_lead(lead, scores.get(lead.id), stages.get(lead.id, {})) for lead in leads
        )
    return found


def _report_lead(
    lead: Lead,
    scored: tuple[Score, int] | None,
    stages: Mapping[str, tuple[datetime, Decimal | None]],
) -> ReportLead:
    return ReportLead(
        lead_id=lead.id,
        created_time=lead.created_time,
        form_id=lead.form_id,
        form_name=lead.form_name,
        campaign_name=lead.campaign_name,
        ad_name=lead.ad_name,
        owner=None,  # owners arrive with routing
        mql=bool(scored and scored[0].mql),
        stages=stages,
    )


def _stages(
    store: Store, lead_ids: Sequence[str]
) -> dict[str, dict[str, tuple[datetime, Decimal | None]]]:
    """Each lead's sales stages from `store.stages_for`, or none while the store lacks it."""
    if not hasattr(store, "stages_for"):  # temporary bridge: see the module docstring
        return {}
    stored: Mapping[str, Iterable[Any]] = store.stages_for(lead_ids)
    return {lead_id: stages_of(records) for lead_id, records in stored.items()}


def stages_of(records: Iterable[Any]) -> dict[str, tuple[datetime, Decimal | None]]:
    """`LeadStage` records (stage, reached_at, value) as the report's stage map.

    A stage reached twice (a sheet edited back and forth) counts from its first time,
    with the newest value recorded for it. "lead" and "mql" are not sales stages here:
    the lead's created_time and MQL flag already say them.
    """
    first: dict[str, datetime] = {}
    value: dict[str, Decimal | None] = {}
    for record in sorted(records, key=lambda r: r.reached_at):
        if record.stage not in STAGES:
            continue
        first.setdefault(record.stage, record.reached_at)
        if record.value is not None or record.stage not in value:
            value[record.stage] = record.value
    return {stage: (at, value[stage]) for stage, at in first.items()}
