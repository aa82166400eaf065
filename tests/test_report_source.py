"""The store as the report's source (`report_leads`), on a real SQLite file; `seed_store`
is the data the report CLI and route tests read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from leadsync.abc import ScoreUpdate
from leadsync.models import Lead, Owner, Pool, RouteRequest, Score
from leadsync.store import open_store

NOW = datetime.now(UTC)
ANA = Owner("Ana")


def seed_store(url: str) -> None:
    """Three recent leads on two forms (one MQL, one scored nurture, one unscored), one old;
    the MQL is Ana's."""
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
        pool = Pool("Ana", "ana", (ANA,), (1,))
        store.assign_owners([RouteRequest("a1", "", pool)], {"Ana": ANA})
    finally:
        store.close()


def test_leads_come_with_their_mql_flag_origin_and_owner_and_no_stages_yet(tmp_path):
    url = f"sqlite:///{tmp_path / 'l.db'}"
    seed_store(url)
    store = open_store(url)
    try:
        leads = {lead.lead_id: lead for lead in store.report_leads(NOW - timedelta(days=90))}
    finally:
        store.close()
    assert set(leads) == {"a1", "a2", "b1"}  # the 400-day-old lead is outside the window
    assert (leads["a1"].mql, leads["a2"].mql, leads["b1"].mql) == (True, False, False)
    assert (leads["a1"].form_name, leads["a1"].campaign_name) == ("Demo", "Q4")
    assert leads["b1"].ad_name == "Blue" and leads["b1"].owner is None
    assert leads["a1"].owner == "Ana"
    assert all(lead.stages == {} for lead in leads.values())
