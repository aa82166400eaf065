"""The `Store` contract, run against every backend (ids "sqlite" and "postgres").

Each test uses the `store` fixture (tests/store_fixtures.py): a migrated, empty
store on a SQLite file or in a PostgreSQL schema of its own. The outbox part
of the contract is in tests/test_store_outbox.py, with the same fixture.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from leadsync.abc import ScoreUpdate
from leadsync.errors import ConfigError
from leadsync.models import (
    Checkpoint,
    Event,
    Form,
    Lead,
    Notification,
    Reason,
    Score,
    ServiceStatus,
    utcnow,
)
from leadsync.store import open_store
from tests.store_fixtures import race, run_sql

T0 = datetime(2026, 11, 20, 10, 0, 0, 123456, tzinfo=UTC)


def lead(lead_id: str, minutes: int = 0, email: str = "", form_id: str = "f1") -> Lead:
    answers = {"email": (email,)} if email else {}
    return Lead(lead_id, T0 + timedelta(minutes=minutes), "p1", form_id, answers=answers)


def note(lead_id: str) -> Notification:
    return Notification(lead_id, "p1", "f1", "ad1", T0, "webhook")


def score(points: int, *reasons: Reason) -> Score:
    return Score(points, points >= 60, reasons or (Reason("rule", points, "fit"),))


# -- lifecycle -------------------------------------------------------------------------

# Every migration the code ships, once each (both backends ship the same numbers).
VERSIONS = [(1,), (2,), (3,), (4,), (5,), (6,), (7,)]


def test_migrate_again_keeps_data_and_records_version_once(store, store_url):
    store.add_notifications([note("1")])
    store.migrate()
    assert [n.lead_id for n in store.pending_notifications(10)] == ["1"]
    assert run_sql(store_url, "SELECT version FROM schema_version ORDER BY version") == VERSIONS


def test_replicas_migrating_together_apply_each_migration_once(store_backend, store_url_factory):
    url = store_url_factory(store_backend)
    stores = [open_store(url) for _ in range(4)]
    start, errors = threading.Barrier(len(stores)), []

    def migrate(s):
        start.wait()
        try:
            s.migrate()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=migrate, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert run_sql(url, "SELECT version FROM schema_version ORDER BY version") == VERSIONS
        assert stores[0].add_notifications([note("1")]) == 1
    finally:
        for s in stores:
            s.close()


def test_schema_newer_than_the_code_is_refused_with_a_clear_error(store, store_url):
    run_sql(store_url, "INSERT INTO schema_version VALUES (999, 'future', ?)", (T0.isoformat(),))
    newer = open_store(store_url)
    try:
        with pytest.raises(ConfigError) as raised:
            newer.migrate()
    finally:
        newer.close()
    assert raised.value.problems[0].path == "store.url"
    assert "version 999" in str(raised.value)


def test_ping_writes_a_heartbeat(store):
    before = utcnow()
    store.ping()
    heartbeat = datetime.fromisoformat(store.get_meta("heartbeat"))
    assert before <= heartbeat <= utcnow()


# -- ingest --------------------------------------------------------------------------------


def test_add_notifications_counts_only_new_lead_ids(store):
    assert store.add_notifications([note("1"), note("2"), note("1")]) == 2
    assert store.add_notifications([note("2"), note("3")]) == 1
    assert store.add_notifications([]) == 0


def test_notification_of_an_already_stored_lead_is_ignored(store):
    store.save_leads([lead("1")])
    assert store.add_notifications([note("1")]) == 0
    assert store.pending_notifications(10) == []


def test_pending_notifications_come_oldest_first_up_to_the_limit(store):
    for lead_id in ("30", "10", "20"):
        store.add_notifications([note(lead_id)])
    assert [n.lead_id for n in store.pending_notifications(10)] == ["30", "10", "20"]
    assert [n.lead_id for n in store.pending_notifications(2)] == ["30", "10"]
    [first] = store.pending_notifications(1)
    assert first == replace(note("30"), received_at=first.received_at)
    assert first.received_at is not None and utcnow() - first.received_at < timedelta(minutes=1)


def test_pending_skips_stored_dropped_and_deferred_until_their_retry_time(store):
    store.add_notifications([note(str(i)) for i in range(5)])
    store.save_leads([lead("0")])
    store.drop_notification("1", "lead deleted")
    store.defer_notifications(["2"], "Graph 500", utcnow() + timedelta(hours=1))
    store.defer_notifications(["3"], "Graph 500", utcnow() - timedelta(seconds=1))
    assert [n.lead_id for n in store.pending_notifications(10)] == ["3", "4"]


def test_save_leads_dedups_by_id_and_returns_only_new_ids(store):
    store.add_notifications([note("1"), note("2")])
    assert store.save_leads([lead("1"), lead("2"), lead("1")]) == ["1", "2"]
    assert store.save_leads([lead("2"), lead("3")]) == ["3"]
    assert store.count_leads() == 3
    assert store.pending_notifications(10) == []


def test_a_stored_lead_is_kept_as_first_stored(store):
    store.save_leads([lead("1", email="first@example.com")])
    store.save_leads([lead("1", email="second@example.com")])
    assert store.get_leads(["1"])["1"].email == "first@example.com"


def test_lead_round_trips_exactly(store):
    full = Lead(
        id="900",
        created_time=datetime(2026, 11, 20, 11, 30, 5, 7, tzinfo=timezone(timedelta(hours=1))),
        page_id="p1",
        form_id="f1",
        form_name="Démo — “quote”",
        ad_id="a1",
        ad_name="Ad",
        adset_id="s1",
        adset_name="Set",
        campaign_id="c1",
        campaign_name="Campaign",
        platform="ig",
        is_organic=True,
        answers={"zeta": ("z",), "full_name": ("Zoë 李",), "interests": ("a", "b, c"), "x": ()},
        consents={"marketing": True, "terms": False},
    )
    assert store.save_leads([full]) == ["900"]
    stored = store.get_leads(["900", "missing"])
    assert stored == {"900": full}
    assert list(stored["900"].answers) == ["zeta", "full_name", "interests", "x"]
    assert stored["900"].created_time.utcoffset() == timedelta(hours=1)


def test_lead_ids_by_email_ignore_case(store):
    work = Lead("3", T0, "p1", "f1", answers={"work_email": ("Ann@Example.COM",)})
    store.save_leads([lead("1", email="ann@example.com"), lead("2", email="bob@x.io"), work])
    assert store.lead_ids_by_email("ANN@example.com") == ["1", "3"]
    assert store.lead_ids_by_email("nobody@example.com") == []


def test_lead_ids_page_through_every_lead_in_id_order(store):
    store.save_leads([lead(f"L{i:03}") for i in (5, 1, 4, 2, 3)])
    assert store.lead_ids(limit=2) == ["L001", "L002"]
    assert store.lead_ids(after="L002", limit=2) == ["L003", "L004"]
    assert store.lead_ids(after="L004") == ["L005"]
    assert store.lead_ids(after="L005") == []
    assert store.count_leads() == 5


def test_unscored_lead_ids_are_the_leads_without_a_score(store):
    store.save_leads([lead("1"), lead("2"), lead("3")])
    store.save_scores([ScoreUpdate("2", score(10))])
    assert store.unscored_lead_ids(10) == ["1", "3"]
    assert store.unscored_lead_ids(1) == ["1"]


# -- forms and checkpoints ---------------------------------------------------------------------


def test_save_forms_inserts_or_updates_and_filters_by_page(store):
    store.save_forms([Form("f1", "p1", "Old", "ACTIVE", ("email",)), Form("f2", "p2", "Two")])
    store.save_forms([Form("f1", "p1", "New", "ARCHIVED", ("email", "job_title"))])
    assert store.forms("p1") == [Form("f1", "p1", "New", "ARCHIVED", ("email", "job_title"))]
    assert [f.id for f in store.forms()] == ["f1", "f2"]


def test_checkpoint_never_moves_backwards(store):
    assert store.checkpoint("f1") == Checkpoint("f1")
    store.advance_checkpoint("f1", T0)
    store.advance_checkpoint("f1", T0 - timedelta(microseconds=1))
    assert store.checkpoint("f1").last_created_time == T0
    store.advance_checkpoint("f1", T0 + timedelta(minutes=1))
    assert store.checkpoint("f1").last_created_time == T0 + timedelta(minutes=1)


def test_record_poll_keeps_the_last_error_and_clears_it_on_success(store):
    store.advance_checkpoint("f1", T0)
    store.record_poll("f1", "Graph code 190: token expired")
    failed = store.checkpoint("f1")
    assert failed.last_error == "Graph code 190: token expired"
    assert failed.last_created_time == T0 and failed.polled_at is not None
    store.record_poll("f1")
    assert store.checkpoint("f1").last_error == ""
    assert store.checkpoint("f1").polled_at >= failed.polled_at


def test_checkpoints_list_every_known_form_even_never_polled(store):
    store.save_forms([Form("f1", "p1"), Form("f2", "p1")])
    store.advance_checkpoint("f1", T0)
    store.record_poll("f9", "boom")
    assert [(c.form_id, c.last_created_time) for c in store.checkpoints()] == [
        ("f1", T0),
        ("f2", None),
        ("f9", None),
    ]


# -- scores ----------------------------------------------------------------------------------


def test_first_score_is_revision_one_with_one_outbox_item_per_destination(store):
    store.save_leads([lead("1")])
    assert store.save_scores([ScoreUpdate("1", score(40), ("sheet", "crm"))]) == {"1": 1}
    assert store.current_scores(["1", "2"]) == {"1": (score(40), 1)}
    assert store.routed_destinations(["1", "2"]) == {"1": {"sheet", "crm"}}
    assert {(s.destination, s.pending) for s in store.destination_stats()} == {
        ("crm", 1),
        ("sheet", 1),
    }


def test_same_outcome_changes_nothing_even_with_other_fit_or_rules_version(store):
    store.save_leads([lead("1")])
    store.save_scores([ScoreUpdate("1", score(40), ("sheet",))])
    same = Score(40, False, score(40).reasons, fit=40, engagement=0, rules_version="v2")
    assert store.save_scores([ScoreUpdate("1", same, ("sheet", "crm"))]) == {}
    assert store.current_scores(["1"]) == {"1": (score(40), 1)}
    assert store.routed_destinations(["1"]) == {"1": {"sheet"}}


def test_changed_score_raises_the_revision_and_enqueues_it(store):
    store.save_leads([lead("1"), lead("2")])
    store.save_scores([ScoreUpdate("1", score(40), ("sheet",)), ScoreUpdate("2", score(5))])
    changed = store.save_scores(
        [ScoreUpdate("1", score(65), ("sheet",)), ScoreUpdate("2", score(5), ("sheet",))]
    )
    assert changed == {"1": 2}
    assert store.current_scores(["1"])["1"] == (score(65), 2)
    claimed = store.claim("sheet", 10, "w", timedelta(minutes=1))
    assert [(i.lead_id, i.revision) for i in claimed] == [("1", 2)]


def test_a_score_computed_from_a_stale_revision_is_not_saved_and_is_reported(store):
    store.save_leads([lead("1"), lead("2")])
    store.save_scores([ScoreUpdate("1", score(40), ("sheet",), read_revision=0)])
    # Replica B read revision 1 and saved revision 2 from fresher events...
    fresh = store.save_scores([ScoreUpdate("1", score(65), ("sheet",), read_revision=1)])
    assert fresh == {"1": 2} and fresh.stale == frozenset()
    # ...then replica A saves what it computed from revision 1 before B's events arrived.
    stale = store.save_scores(
        [
            ScoreUpdate("1", score(45), ("sheet",), read_revision=1),
            ScoreUpdate("2", score(5), ("sheet",), read_revision=0),
        ]
    )
    assert stale == {"2": 1}
    assert stale.stale == frozenset({"1"})  # the caller re-scores it
    assert store.current_scores(["1"])["1"] == (score(65), 2)
    claimed = store.claim("sheet", 10, "w", timedelta(minutes=1))
    assert sorted((i.lead_id, i.revision) for i in claimed) == [("1", 2), ("2", 1)]


def test_a_first_score_computed_while_another_replica_scored_the_lead_is_stale(store):
    store.save_leads([lead("1")])
    assert store.save_scores([ScoreUpdate("1", score(40), read_revision=0)]) == {"1": 1}
    late = store.save_scores([ScoreUpdate("1", score(10), read_revision=0)])
    assert late == {} and late.stale == frozenset({"1"})
    assert store.current_scores(["1"])["1"] == (score(40), 1)


def test_reasons_round_trip_with_fractional_points_and_groups(store):
    store.save_leads([lead("1")])
    reasons = (Reason("VP title", 20, "demographic"), Reason("Webinar ½", 7.25, "engagement"))
    full = Score(27, False, reasons, fit=20, engagement=7, rules_version="abc123")
    store.save_scores([ScoreUpdate("1", full)])
    assert store.current_scores(["1"]) == {"1": (full, 1)}
    assert store.current_scores(["1"])["1"][0].reasons_text == "VP title +20; Webinar ½ +7"


def test_replicas_scoring_one_lead_at_once_get_distinct_revisions(store, store_url):
    store.save_leads([lead("1")])
    replicas = [open_store(store_url) for _ in range(2)]
    start, revisions = threading.Barrier(2), []

    def rescore(s, offset):
        start.wait()
        for points in range(offset, 40, 2):
            revisions.extend(s.save_scores([ScoreUpdate("1", score(points), ("sheet",))]).values())

    race([(rescore, (r, i)) for i, r in enumerate(replicas)], replicas)
    assert sorted(revisions) == list(range(1, 41))
    assert store.current_scores(["1"])["1"][1] == 40
    assert store.destination_stats()[0].pending == 40


# -- events ----------------------------------------------------------------------------------


def test_add_events_is_idempotent_by_id_and_returns_the_new_ones(store):
    first = Event("e1", "webinar_attended", T0, "1")
    second = Event("e2", "email_open", T0, "1", "Ann@Example.com")
    assert store.add_events([first, second, first]) == [first, second]
    assert store.add_events([second, Event("e3", "site_visit", T0, "2")]) == [
        Event("e3", "site_visit", T0, "2")
    ]


def test_events_for_group_by_lead_oldest_first(store):
    later = Event("e1", "webinar_attended", T0 + timedelta(days=1), "1")
    earlier = Event("e2", "email_open", T0, "1", "Ann@Example.com")
    other = Event("e3", "site_visit", T0, "2")
    store.add_events([later, other, earlier])
    assert store.events_for(["1", "2", "3"]) == {"1": [earlier, later], "2": [other]}


def test_an_event_not_resolved_to_a_lead_is_refused(store):
    with pytest.raises(ValueError, match="e1"):
        store.add_events([Event("e1", "email_open", T0, email="ann@example.com")])


# -- coordination and health -------------------------------------------------------------------


def test_lease_is_exclusive_renewable_taken_over_when_expired_and_releasable(store):
    minute = timedelta(minutes=1)
    assert store.acquire_lease("poller", "a", minute)
    assert not store.acquire_lease("poller", "b", minute)
    assert store.acquire_lease("poller", "a", timedelta(0))  # renewed, expiring at once
    assert store.acquire_lease("poller", "b", minute)  # taken over
    assert not store.acquire_lease("poller", "a", minute)
    store.release_lease("poller", "a")  # not the owner: no-op
    assert not store.acquire_lease("poller", "a", minute)
    store.release_lease("poller", "b")
    assert store.acquire_lease("poller", "a", minute)
    assert store.acquire_lease("other", "b", minute)


def test_set_status_replaces_the_record_of_a_service(store):
    store.set_status(ServiceStatus("facebook", False, "token expired", T0))
    store.set_status(ServiceStatus("sheets:sales", True, "", T0))
    store.set_status(ServiceStatus("facebook", True, "polled", T0 + timedelta(seconds=1)))
    assert store.statuses() == [
        ServiceStatus("facebook", True, "polled", T0 + timedelta(seconds=1)),
        ServiceStatus("sheets:sales", True, "", T0),
    ]


def test_status_without_time_is_stamped_now(store):
    before = utcnow()
    store.set_status(ServiceStatus("poller", True))
    assert before <= store.statuses()[0].at <= utcnow()


def test_meta_values_are_set_replaced_and_read(store):
    assert store.get_meta("rules_version") is None
    store.set_meta("rules_version", "v1")
    store.set_meta("rules_version", "v2")
    assert store.get_meta("rules_version") == "v2"


# -- opening -----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["mysql://db/leads", "leadsync.db", "sqlite://leadsync.db"])
def test_unknown_store_url_is_a_config_error_at_store_url(url):
    with pytest.raises(ConfigError) as raised:
        open_store(url)
    assert raised.value.problems[0].path == "store.url"


def test_scoring_a_lead_takes_it_off_the_unscored_list(store):
    store.save_leads([Lead(str(n), T0, "p1", "f1") for n in range(1, 4)])
    assert store.unscored_lead_ids(10) == ["1", "2", "3"]
    store.save_scores([ScoreUpdate("2", Score(10, False))])
    assert store.unscored_lead_ids(10) == ["1", "3"]
    store.save_scores([ScoreUpdate("2", Score(20, False))])  # a new revision changes nothing here
    assert store.unscored_lead_ids(10) == ["1", "3"]
