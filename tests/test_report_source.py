"""The temporary adapter from the store to the report (report/source.py), on a real SQLite file."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from leadsync.abc import ScoreUpdate
from leadsync.models import Lead, Score
from leadsync.report.source import StoreReportSource, report_leads, stages_of
from leadsync.store import open_store
from leadsync.store.sqlite import SQLiteStore

NOW = datetime.now(UTC)


def seed_store(url: str) -> None:
    """Three recent leads on two forms (one MQL, one scored nurture, one unscored), one old."""
    store = open_store(url)
    store.migrate()
    try:
        store.save_leads(
            [
                Lead(
                    "a1", NOW - timedelta(days=3), "p", "F1", form_name="Demo", campaign_name="Q4"
                ),
                Lead(
                    "a2", NOW - timedelta(days=2), "p", "F1", form_name="Demo", campaign_name="Q4"
                ),
                Lead("b1", NOW - timedelta(days=1), "p", "F2", form_name="Ebook", ad_name="Blue"),
                Lead("old", NOW - timedelta(days=400), "p", "F1", form_name="Demo"),
            ]
        )
        store.save_scores([ScoreUpdate("a1", Score(70, True)), ScoreUpdate("a2", Score(20, False))])
    finally:
        store.close()


def test_leads_come_with_their_mql_flag_and_origin_and_no_stages_yet(tmp_path):
    url = f"sqlite:///{tmp_path / 'l.db'}"
    seed_store(url)
    store = open_store(url)
    try:
        leads = {lead.lead_id: lead for lead in report_leads(store, NOW - timedelta(days=90))}
        assert StoreReportSource(store).report_leads(NOW - timedelta(days=90)) == list(
            leads.values()
        )
    finally:
        store.close()
    assert set(leads) == {"a1", "a2", "b1"}  # the 400-day-old lead is outside the window
    assert (leads["a1"].mql, leads["a2"].mql, leads["b1"].mql) == (True, False, False)
    assert (leads["a1"].form_name, leads["a1"].campaign_name) == ("Demo", "Q4")
    assert leads["b1"].ad_name == "Blue" and leads["b1"].owner is None
    assert all(lead.stages == {} for lead in leads.values())


@dataclass(frozen=True)
class Stage:
    """The fields of the lead-stages work's `LeadStage` that the adapter reads."""

    lead_id: str
    stage: str
    reached_at: datetime
    value: Decimal | None
    source: str = "sheet"


def test_stage_records_count_from_their_first_time_with_the_newest_value():
    t = NOW - timedelta(days=5)
    records = [
        Stage("x", "won", t + timedelta(hours=9), Decimal("900")),  # re-typed later, new value
        Stage("x", "lead", t, None),  # the created time already says it
        Stage("x", "contacted", t + timedelta(hours=1), None),
        Stage("x", "won", t + timedelta(hours=5), Decimal("500")),
        Stage("x", "mql", t, None),
    ]
    assert stages_of(records) == {
        "contacted": (t + timedelta(hours=1), None),
        "won": (t + timedelta(hours=5), Decimal("900")),
    }


class StoreWithStages(SQLiteStore):
    """The real SQLite store plus the `stages_for` the lead-stages work adds (its seam only)."""

    def __init__(self, path, stages: dict[str, list[Stage]]) -> None:
        super().__init__(path)
        self.recorded = stages

    def stages_for(self, lead_ids):
        return {i: self.recorded[i] for i in lead_ids if i in self.recorded}


def test_a_store_with_stages_gives_the_report_its_sales_stages(tmp_path):
    seed_store(f"sqlite:///{tmp_path / 'l.db'}")
    created = {lead.lead_id: lead.created_time for lead in _leads(tmp_path)}
    won = created["a1"] + timedelta(days=1)
    store = StoreWithStages(
        tmp_path / "l.db",
        {"a1": [Stage("a1", "sql", won, None), Stage("a1", "won", won, Decimal("250"))]},
    )
    try:
        leads = {lead.lead_id: lead for lead in report_leads(store, NOW - timedelta(days=90))}
    finally:
        store.close()
    assert leads["a1"].stages == {"sql": (won, None), "won": (won, Decimal("250"))}
    assert leads["a2"].stages == {} and leads["b1"].stages == {}


def _leads(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'l.db'}")
    try:
        return report_leads(store, NOW - timedelta(days=90))
    finally:
        store.close()
