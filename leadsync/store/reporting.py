"""Reporting in the store: the leads created since a moment, as the closed-loop report takes them.

`report_leads(since)` answers in two queries in one read snapshot, however many leads:
the leads created since then (through the `leads_created` index, migration 0005) with
their current score's MQL flag and their owner's name, and the sales stages of those same
leads. Form, campaign and ad names come from the stored lead; a lead not scored yet is
not an MQL, a lead no rule routed has no owner. "lead" and "mql" rows are not sales
stages here: the lead's created time and MQL flag already say them.
`lead_counts_by_owner` counts the same window in SQL, for the status page.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from leadsync.abc import ReportingStore
from leadsync.models import OUTCOMES, Lead, ReportLead
from leadsync.store.outcomes import decimal
from leadsync.store.rows import Row
from leadsync.store.sql import SQLRole

LEADS = """
SELECT l.id, l.payload, s.mql, a.name AS owner FROM leads AS l
LEFT JOIN scores AS s ON s.lead_id = l.id
LEFT JOIN assignments AS a ON a.lead_id = l.id
WHERE l.created_time >= :since ORDER BY l.created_time, l.id
"""

STAGES = """
SELECT st.lead_id, st.stage, st.reached_at, st.value FROM lead_stages AS st
JOIN leads AS l ON l.id = st.lead_id
WHERE l.created_time >= :since AND st.stage = ANY(:stages)
"""

COUNTS = """
SELECT COALESCE(a.name, '') AS owner, COUNT(*) AS leads,
    SUM(CASE WHEN s.mql THEN 1 ELSE 0 END) AS mqls FROM leads AS l
LEFT JOIN scores AS s ON s.lead_id = l.id
LEFT JOIN assignments AS a ON a.lead_id = l.id
WHERE l.created_time >= :since GROUP BY COALESCE(a.name, '')
"""

StageMap = dict[str, tuple[datetime, Decimal | None]]


class Reporting(SQLRole, ReportingStore):
    """The report read of `leadsync.abc.Store`."""

    def report_leads(self, since: datetime) -> list[ReportLead]:
        with self._read() as tx:
            leads = tx.rows(LEADS, {"since": since})
            stages = tx.rows(STAGES, {"since": since, "stages": list(OUTCOMES)})
        by_lead = self._stage_maps(stages)
        return [_report_lead(row, by_lead.get(row["id"], {})) for row in leads]

    def lead_counts_by_owner(self, since: datetime) -> dict[str, tuple[int, int]]:
        rows = self._fetch(COUNTS, {"since": since})
        return {row["owner"]: (int(row["leads"]), int(row["mqls"])) for row in rows}

    def _stage_maps(self, rows: Iterable[Row]) -> dict[str, StageMap]:
        found: dict[str, StageMap] = {}
        for row in rows:
            at = self._rows.decode_time(row["reached_at"])
            found.setdefault(row["lead_id"], {})[row["stage"]] = (at, decimal(row["value"]))
        return found


def _report_lead(row: Row, stages: StageMap) -> ReportLead:
    lead = Lead.from_json(row["payload"])
    return ReportLead(
        lead_id=lead.id,
        created_time=lead.created_time,
        form_id=lead.form_id,
        form_name=lead.form_name,
        campaign_name=lead.campaign_name,
        ad_name=lead.ad_name,
        owner=row["owner"] or None,
        mql=bool(row["mql"]),
        stages=stages,
    )
