"""The outcome part of the `Store` contract (lead stages), run against every backend.

Uses the `store` fixture (tests/store_fixtures.py): a migrated, empty store on a
SQLite file or in a PostgreSQL schema of its own. Times are relative to now.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from leadsync.abc import ScoreUpdate
from leadsync.models import STAGES, DeliveryResult, Lead, LeadStage, Reason, Score, utcnow
from leadsync.store import open_store

NOW = utcnow()


def lead(lead_id: str) -> Lead:
    return Lead(lead_id, NOW - timedelta(days=3), "p1", "f1")


def score(points: int) -> Score:
    return Score(points, points >= 60, (Reason("rule", points, "fit"),))


def stage(lead_id: str, name: str, hours_ago: float = 1, value: str | None = None) -> LeadStage:
    amount = None if value is None else Decimal(value)
    return LeadStage(lead_id, name, NOW - timedelta(hours=hours_ago), amount, "test")  # type: ignore[arg-type]


def names(found: dict[str, list[LeadStage]], lead_id: str) -> list[str]:
    return [s.stage for s in found.get(lead_id, [])]


def test_stages_are_the_funnel_in_order():
    assert STAGES == ("lead", "mql", "contacted", "sql", "won", "lost")


def test_a_stage_is_checked_when_made():
    with pytest.raises(ValueError, match="unknown stage 'closed'"):
        LeadStage("1", "closed", NOW)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="0 or more"):
        LeadStage("1", "won", NOW, Decimal("-5"))
    with pytest.raises(ValueError, match="0 or more"):
        LeadStage("1", "won", NOW, Decimal("NaN"))


def test_record_stages_returns_the_new_ones_and_keeps_them(store):
    store.save_leads([lead("1"), lead("2")])
    new = store.record_stages([stage("1", "contacted", 5), stage("2", "won", 2, "1200.50")])
    assert [(s.lead_id, s.stage) for s in new] == [("1", "contacted"), ("2", "won")]
    found = store.stages_for(["1", "2", "3"])
    assert found["1"] == [stage("1", "contacted", 5)]
    [won] = found["2"]
    assert won == stage("2", "won", 2, "1200.50")
    assert won.value == Decimal("1200.50") and str(won.value) == "1200.50"  # exact, not a float
    assert "3" not in found


def test_a_stage_reached_again_is_not_a_second_stage(store):
    store.save_leads([lead("1")])
    store.record_stages([stage("1", "contacted", 5)])
    assert store.record_stages([stage("1", "contacted", 1)]) == []  # typed again later
    assert store.stages_for(["1"])["1"] == [stage("1", "contacted", 5)]  # the first time stays


def test_one_batch_reading_a_stage_twice_keeps_the_earliest(store):
    store.save_leads([lead("1")])
    new = store.record_stages([stage("1", "sql", 1), stage("1", "sql", 3, "90")])
    assert new == [stage("1", "sql", 3, "90")]
    assert store.stages_for(["1"])["1"] == [stage("1", "sql", 3, "90")]


def test_a_later_value_fills_in_a_stage_stored_without_one(store):
    store.save_leads([lead("1")])
    store.record_stages([stage("1", "won", 5)])
    assert store.record_stages([stage("1", "won", 1, "300")]) == []  # no new stage...
    assert store.stages_for(["1"])["1"] == [stage("1", "won", 5, "300")]  # ...but its value
    store.record_stages([stage("1", "won", 0.5, "999")])
    assert store.stages_for(["1"])["1"][0].value == Decimal("300")  # a value is never replaced


def test_stages_of_unknown_leads_are_ignored(store):
    store.save_leads([lead("1")])
    assert store.record_stages([stage("404", "won", 1, "10"), stage("1", "lost")]) == [
        stage("1", "lost")
    ]
    assert store.stages_for(["404"]) == {}


def test_stages_for_come_in_funnel_order(store):
    store.save_leads([lead("1")])
    reached = [stage("1", "lost", 1), stage("1", "contacted", 9), stage("1", "sql", 12)]
    store.record_stages(reached)
    assert names(store.stages_for(["1"]), "1") == ["contacted", "sql", "lost"]
    assert store.stages_for([]) == {}


def test_stages_since_are_those_reached_since_oldest_first(store):
    store.save_leads([lead("1"), lead("2")])
    store.record_stages(
        [stage("1", "contacted", 30), stage("2", "contacted", 5), stage("1", "won", 2, "5")]
    )
    since = store.stages_since(NOW - timedelta(hours=10))
    assert [(s.lead_id, s.stage) for s in since] == [("2", "contacted"), ("1", "won")]
    assert since[1].value == Decimal("5")
    assert len(store.stages_since(NOW - timedelta(days=2), limit=2)) == 2
    assert store.stages_since(NOW) == []


def test_a_lead_scored_an_mql_reaches_the_mql_stage_once(store):
    store.save_leads([lead("1"), lead("2")])
    before = utcnow()
    store.save_scores([ScoreUpdate("1", score(75)), ScoreUpdate("2", score(30))])
    after = utcnow()
    found = store.stages_for(["1", "2"])
    [mql] = found["1"]
    assert (mql.stage, mql.source) == ("mql", "scoring")
    assert before <= mql.reached_at <= after
    assert "2" not in found  # not an MQL
    store.save_scores([ScoreUpdate("1", score(40))])  # falls back to nurture...
    store.save_scores([ScoreUpdate("1", score(80))])  # ...and is an MQL again: the same stage
    assert store.stages_for(["1"])["1"] == [mql]
    store.save_scores([ScoreUpdate("2", score(65))])
    assert names(store.stages_for(["2"]), "2") == ["mql"]


def test_a_stale_score_records_no_mql_stage(store):
    store.save_leads([lead("1")])
    store.save_scores([ScoreUpdate("1", score(20), read_revision=0)])
    saved = store.save_scores([ScoreUpdate("1", score(90), read_revision=0)])
    assert saved.stale == {"1"}
    assert store.stages_for(["1"]) == {}


def test_stages_are_shared_by_replicas(store_url):
    other = open_store(store_url)
    other.migrate()
    try:
        other.save_leads([lead("1")])
        assert other.record_stages([stage("1", "sql", 4)]) == [stage("1", "sql", 4)]
        replica = open_store(store_url)
        try:
            assert replica.record_stages([stage("1", "sql", 1)]) == []
            assert replica.stages_for(["1"])["1"] == [stage("1", "sql", 4)]
        finally:
            replica.close()
    finally:
        other.close()


def test_leads_are_found_by_what_a_destination_called_them(store):
    older = Lead("1", NOW - timedelta(days=5), "p1", "f1")
    store.save_leads([older, lead("2"), lead("3")])
    store.save_scores([ScoreUpdate(i, score(10), ("crm", "sheet")) for i in ("1", "2", "3")])
    items = store.claim("crm", 10, "me", timedelta(minutes=1))
    store.complete(items, [DeliveryResult("1", None, "c-7"), DeliveryResult("2", None, "c-7")])
    assert store.leads_by_external_id("crm", ["c-7", "c-404"]) == {"c-7": "2"}  # the newest
    assert store.leads_by_external_id("sheet", ["c-7"]) == {}
    assert store.leads_by_external_id("crm", []) == {}


def claimed(store, destination: str) -> list[tuple[str, int]]:
    items = store.claim(destination, 10, "me", timedelta(minutes=1))
    store.complete(items)
    return [(item.lead_id, item.revision) for item in items]


def test_a_new_stage_queues_a_delivery_only_for_destinations_that_take_stages(store):
    store.save_leads([lead("1"), lead("2"), lead("3")])
    store.save_scores([ScoreUpdate(i, score(30), ("meta", "sheet")) for i in ("1", "2")])
    store.save_scores([ScoreUpdate("3", score(30), ("sheet",))])  # routed to the sheet only
    assert sorted(claimed(store, "meta")) == [("1", 1), ("2", 1)]
    assert sorted(claimed(store, "sheet")) == [("1", 1), ("2", 1), ("3", 1)]
    new = store.record_stages(
        [stage("1", "won", 1, "50"), stage("3", "sql")], destinations=["meta"]
    )
    assert len(new) == 2
    assert claimed(store, "meta") == [("1", 2)]  # at once, not with the next score change
    assert claimed(store, "sheet") == []  # other destinations are not re-sent
    score_now, revision = store.current_scores(["1"])["1"]
    assert (score_now, revision) == (score(30), 2)  # the score itself is unchanged
    assert store.record_stages([stage("1", "won")], destinations=["meta"]) == []
    assert claimed(store, "meta") == []  # a stage read again queues nothing


def test_the_sheet_keeps_its_score_changes_after_a_stage_revision(store):
    store.save_leads([lead("1")])
    store.save_scores([ScoreUpdate("1", score(30), ("meta", "sheet"))])
    store.record_stages([stage("1", "contacted")], destinations=["meta"])
    saved = store.save_scores([ScoreUpdate("1", score(80), ("meta", "sheet"), read_revision=2)])
    assert saved == {"1": 3}
    assert claimed(store, "sheet") == [("1", 3)]  # the newest only; revision 1 settled with it
    assert claimed(store, "meta") == [("1", 3)]
    assert store.claim("sheet", 10, "me", timedelta(minutes=1)) == []


def test_a_score_read_before_a_stage_revision_is_stale(store):
    store.save_leads([lead("1")])
    store.save_scores([ScoreUpdate("1", score(30), ("meta",))])
    store.record_stages([stage("1", "sql")], destinations=["meta"])
    saved = store.save_scores([ScoreUpdate("1", score(90), ("meta",), read_revision=1)])
    assert saved.stale == {"1"}


def test_an_unscored_lead_gets_its_stage_with_its_first_delivery(store):
    store.save_leads([lead("1")])
    assert store.record_stages([stage("1", "sql")], destinations=["meta"])
    assert store.current_scores(["1"]) == {}
    assert store.claim("meta", 10, "me", timedelta(minutes=1)) == []


def test_expired_stages_are_read_from_the_newest_receipt(store):
    store.save_leads([lead("1"), lead("2")])
    store.save_scores([ScoreUpdate(i, score(30), ("meta",)) for i in ("1", "2")])
    items = store.claim("meta", 10, "me", timedelta(minutes=1))
    store.complete(
        items,
        [
            DeliveryResult("1", None, "lead,sql!expired,won!expired"),
            DeliveryResult("2", None, "lead"),
        ],
    )
    found = {(e.lead_id, e.destination, e.stage) for e in store.expired_stages()}
    assert found == {("1", "meta", "sql"), ("1", "meta", "won")}
