"""The outbox part of the `Store` contract, run against every backend.

Claims, settling, retries, the dead letter and queue figures, with the same
`store` fixture as tests/test_store.py (a SQLite file, a PostgreSQL schema).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from leadsync.abc import ScoreUpdate
from leadsync.models import DeliveryResult, Lead, Reason, Score, utcnow
from leadsync.store import open_store
from tests.store_fixtures import race

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def enqueue(store, lead_id: str, points: int, *destinations: str) -> int:
    """Stores the lead if needed and saves a score for it; returns the new revision."""
    store.save_leads([Lead(lead_id, T0, "p1", "f1")])
    reasons = (Reason("rule", points, "fit"),)
    return store.save_scores(
        [ScoreUpdate(lead_id, Score(points, points >= 60, reasons), destinations)]
    )[lead_id]


def claimed(items) -> list[tuple[str, int]]:
    return [(item.lead_id, item.revision) for item in items]


def test_claim_takes_due_items_of_one_destination_oldest_first_up_to_the_limit(store):
    for lead_id in ("5", "3", "1", "4", "2"):
        enqueue(store, lead_id, 10, "sheet", "crm")
    first = store.claim("sheet", 3, "w1", MINUTE)
    assert claimed(first) == [("5", 1), ("3", 1), ("1", 1)]
    assert {item.destination for item in first} == {"sheet"}
    assert claimed(store.claim("sheet", 3, "w2", MINUTE)) == [("4", 1), ("2", 1)]
    assert store.claim("sheet", 3, "w3", MINUTE) == []
    assert len(store.claim("crm", 10, "w1", MINUTE)) == 5


def test_a_claim_holds_until_its_lease_expires_then_another_owner_takes_over(store):
    enqueue(store, "1", 10, "sheet")
    enqueue(store, "2", 10, "sheet")
    assert claimed(store.claim("sheet", 1, "crashed", timedelta(0))) == [("1", 1)]
    assert claimed(store.claim("sheet", 1, "alive", MINUTE)) == [("1", 1)]  # expired: taken over
    assert claimed(store.claim("sheet", 5, "other", MINUTE)) == [("2", 1)]
    assert store.claim("sheet", 5, "crashed", MINUTE) == []


def test_concurrent_claimers_never_get_the_same_item(store, store_url):
    lead_ids = [f"L{i:03}" for i in range(120)]
    store.save_leads([Lead(lead_id, T0, "p1", "f1") for lead_id in lead_ids])
    store.save_scores([ScoreUpdate(i, Score(1, False), ("sheet",)) for i in lead_ids])
    replicas = [open_store(store_url) for _ in range(2)]
    start, taken = threading.Barrier(4), {}

    def drain(replica, owner):
        start.wait()
        mine = taken.setdefault(owner, [])
        while batch := replica.claim("sheet", 4, owner, MINUTE):
            mine.extend(item.id for item in batch)

    race(
        [(drain, (replica, f"{n}-{t}")) for n, replica in enumerate(replicas) for t in range(2)],
        replicas,
    )
    everything = [item_id for ids in taken.values() for item_id in ids]
    assert len(everything) == len(set(everything)) == 120


def test_retry_counts_an_attempt_keeps_the_error_and_waits_for_the_retry_time(store):
    enqueue(store, "1", 10, "sheet")
    [item] = store.claim("sheet", 10, "w", MINUTE)
    store.retry([item.id], "HTTP 503", utcnow() + timedelta(hours=1))
    assert store.claim("sheet", 10, "w", MINUTE) == []
    store.retry([item.id], "HTTP 502", utcnow() - timedelta(seconds=1))
    [again] = store.claim("sheet", 10, "other", MINUTE)
    assert (again.id, again.attempts, again.last_error) == (item.id, 2, "HTTP 502")


def test_release_gives_items_back_without_counting_an_attempt(store):
    enqueue(store, "1", 10, "sheet")
    [item] = store.claim("sheet", 10, "w", MINUTE)
    store.release([item.id])
    [again] = store.claim("sheet", 10, "other", MINUTE)
    assert (again.id, again.attempts) == (item.id, 0)


def test_only_the_newest_revision_is_claimed_and_delivering_it_settles_older_ones(store):
    enqueue(store, "1", 10, "sheet")
    enqueue(store, "1", 20, "sheet")
    items = store.claim("sheet", 10, "w", MINUTE)
    assert claimed(items) == [("1", 2)]
    store.complete(items, [DeliveryResult("1", external_id="row-7")])
    [stats] = store.destination_stats()
    assert (stats.pending, stats.delivered) == (0, 2)


def test_external_ids_give_back_what_the_destination_answered_last(store):
    enqueue(store, "1", 10, "sheet", "slack")
    enqueue(store, "2", 10, "sheet")
    store.complete(store.claim("slack", 10, "w", MINUTE), [DeliveryResult("1", external_id="r1")])
    store.complete(
        store.claim("sheet", 10, "w", MINUTE), [DeliveryResult("1"), DeliveryResult("2")]
    )
    enqueue(store, "1", 70, "slack")
    store.complete(store.claim("slack", 10, "w", MINUTE), [DeliveryResult("1", external_id="r2")])
    assert store.external_ids("slack", ["1", "2"]) == {"1": "r2"}
    assert store.external_ids("sheet", ["1", "2"]) == {}


def test_a_lead_in_flight_is_not_claimed_again_through_a_newer_revision(store):
    enqueue(store, "1", 10, "sheet")
    in_flight = store.claim("sheet", 10, "w1", MINUTE)
    enqueue(store, "1", 20, "sheet")
    assert store.claim("sheet", 10, "w2", MINUTE) == []
    store.complete(in_flight)
    assert claimed(store.claim("sheet", 10, "w2", MINUTE)) == [("1", 2)]


def test_bury_moves_items_to_the_dead_letter_with_their_error(store):
    enqueue(store, "1", 10, "sheet", "crm")
    enqueue(store, "2", 10, "sheet")
    [item, _] = store.claim("sheet", 10, "w", MINUTE)
    store.bury([item.id], "PermanentError: sheet deleted")
    [dead] = store.dead_letters()
    assert (dead.item.id, dead.item.lead_id, dead.item.state) == (item.id, "1", "dead")
    assert dead.last_error == "PermanentError: sheet deleted"
    assert dead.dead_at <= utcnow()
    assert store.dead_letters(destination="crm") == []
    assert store.dead_letters(lead_id="2") == []
    assert [d.item.id for d in store.dead_letters("sheet", "1")] == [item.id]
    assert {(s.destination, s.dead) for s in store.destination_stats()} == {
        ("crm", 0),
        ("sheet", 1),
    }


def test_burying_the_newest_revision_takes_older_pending_ones_along(store):
    enqueue(store, "1", 10, "sheet")
    [first] = store.claim("sheet", 10, "w", MINUTE)
    store.retry([first.id], "HTTP 503", utcnow() + timedelta(hours=1))
    enqueue(store, "1", 20, "sheet")
    [newest] = store.claim("sheet", 10, "w", MINUTE)
    store.bury([newest.id], "gave up")
    assert sorted(d.item.revision for d in store.dead_letters()) == [1, 2]
    assert store.destination_stats()[0].pending == 0


def test_replay_makes_dead_items_pending_due_now_and_counts_their_age_afresh(store):
    enqueue(store, "1", 10, "sheet")
    enqueue(store, "2", 10, "crm")
    for destination in ("sheet", "crm"):
        [item] = store.claim(destination, 10, "w", MINUTE)
        store.retry([item.id], "HTTP 503", utcnow() - timedelta(seconds=1))
        store.bury([item.id], "gave up")
    before = utcnow()
    assert store.replay(lead_id="9") == 0
    assert store.replay(destination="sheet") == 1
    [again] = store.claim("sheet", 10, "w", MINUTE)
    assert (again.lead_id, again.state, again.attempts) == ("1", "pending", 0)
    assert again.created_at >= before
    assert [d.item.lead_id for d in store.dead_letters()] == ["2"]
    assert store.replay() == 1


def test_delivering_a_newer_revision_clears_older_dead_ones(store):
    enqueue(store, "1", 10, "sheet")
    [first] = store.claim("sheet", 10, "w", MINUTE)
    store.bury([first.id], "gave up")
    enqueue(store, "1", 20, "sheet")
    store.complete(store.claim("sheet", 10, "w", MINUTE))
    assert store.dead_letters() == []
    assert store.destination_stats()[0].delivered == 2


def test_destination_stats_count_pending_oldest_dead_and_delivered(store):
    enqueue(store, "1", 10, "sheet", "crm")
    after_first = utcnow()
    enqueue(store, "2", 10, "sheet")
    enqueue(store, "3", 10, "sheet")
    store.complete(store.claim("crm", 10, "w", MINUTE))
    [one, two, _] = store.claim("sheet", 10, "w", MINUTE)
    store.complete([one])
    store.bury([two.id], "gave up")
    crm, sheet = store.destination_stats()
    assert (crm.destination, crm.pending, crm.dead, crm.delivered) == ("crm", 0, 0, 1)
    assert crm.oldest_pending is None
    assert (sheet.destination, sheet.pending, sheet.dead, sheet.delivered) == ("sheet", 1, 1, 1)
    assert after_first < sheet.oldest_pending <= utcnow()  # item 3's, not item 1's


def test_recent_leads_show_newest_first_with_score_and_latest_state_per_destination(store):
    enqueue(store, "1", 70, "sheet", "crm")
    store.complete(store.claim("crm", 10, "w", MINUTE))
    enqueue(store, "1", 20, "crm")
    store.save_leads([Lead("2", T0, "p1", "f2")])
    recent = store.recent_leads()
    assert [(r.lead_id, r.form_id, r.points, r.mql) for r in recent] == [
        ("2", "f2", None, None),
        ("1", "f1", 20, False),
    ]
    assert recent[1].created_time == T0
    assert dict(recent[1].destinations) == {"sheet": "pending", "crm": "pending"}
    store.complete(store.claim("crm", 10, "w", MINUTE))
    assert dict(store.recent_leads(1)[0].destinations) == {}
    assert dict(store.recent_leads(2)[1].destinations) == {"sheet": "pending", "crm": "delivered"}
