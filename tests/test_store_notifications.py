"""The notification part of the `Store` contract: claims of fetch rounds and the backlog.

Run against every backend with the `store` fixture (a SQLite file, a
PostgreSQL schema), like tests/test_store.py. Concurrent claimers each have a
store object of their own, as replicas do. That a restart takes back a dead
predecessor's claims is in tests/test_leases.py, with its leases and outbox claims.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from leadsync.models import Lead, Notification, utcnow
from leadsync.store import open_store
from tests.store_fixtures import race, run_sql

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def note(lead_id: str) -> Notification:
    return Notification(lead_id, "p1", "f1", "ad1", T0, "webhook")


def ids(notes: list[Notification]) -> list[str]:
    return [n.lead_id for n in notes]


def test_a_claim_takes_due_notifications_oldest_first_up_to_the_limit(store):
    for lead_id in ("30", "10", "20", "40", "50"):
        store.add_notifications([note(lead_id)])
    store.save_leads([Lead("40", T0, "p1", "f1")])
    store.defer_notifications(["50"], "Graph 500", utcnow() + timedelta(hours=1))
    first = store.claim_notifications("r1", 2, MINUTE)
    # Whole notifications, as they were added, with the time they were received.
    assert [replace(n, received_at=None) for n in first] == [note("30"), note("10")]
    assert all(n.received_at and utcnow() - n.received_at < MINUTE for n in first)
    assert ids(store.claim_notifications("r2", 5, MINUTE)) == ["20"]
    assert store.claim_notifications("r3", 5, MINUTE) == []  # stored, deferred or claimed


def test_a_claim_holds_until_its_lease_expires_then_another_owner_takes_over(store):
    store.add_notifications([note("1"), note("2")])
    assert ids(store.claim_notifications("crashed", 1, timedelta(0))) == ["1"]
    assert ids(store.claim_notifications("alive", 1, MINUTE)) == ["1"]  # expired: taken over
    assert ids(store.claim_notifications("other", 5, MINUTE)) == ["2"]
    assert store.claim_notifications("crashed", 5, MINUTE) == []


def test_storing_dropping_or_deferring_ends_the_claim(store, store_url):
    store.add_notifications([note(str(n)) for n in range(4)])
    assert len(store.claim_notifications("r1", 4, MINUTE)) == 4
    assert store.owners() == {"r1"}
    store.save_leads([Lead("0", T0, "p1", "f1")])
    store.drop_notification("1", "lead deleted")
    store.defer_notifications(["2"], "Graph 500", utcnow() - timedelta(seconds=1))
    claims = run_sql(store_url, "SELECT lead_id, claimed_by FROM notifications ORDER BY lead_id")
    assert claims == [("0", None), ("1", None), ("2", None), ("3", "r1")]
    # The deferred one is due again and free: another replica takes it; "3" is still held.
    assert ids(store.claim_notifications("r2", 5, MINUTE)) == ["2"]


def test_concurrent_claimers_never_get_the_same_notification(store, store_url):
    store.add_notifications([note(f"L{n:04}") for n in range(600)])
    replicas = [open_store(store_url) for _ in range(3)]
    start, taken = threading.Barrier(6), {}

    def drain(replica, owner):
        start.wait()
        mine = taken.setdefault(owner, [])
        while batch := replica.claim_notifications(owner, 7, MINUTE):
            mine.extend(ids(batch))

    race(
        [(drain, (replica, f"{n}-{t}")) for n, replica in enumerate(replicas) for t in range(2)],
        replicas,
    )
    everything = [lead_id for claimed in taken.values() for lead_id in claimed]
    assert len(everything) == len(set(everything)) == 600
    assert sum(1 for claimed in taken.values() if claimed) > 1, "the claimers took turns"


def test_the_backlog_counts_every_notification_waiting_and_the_oldest_arrival(store):
    assert store.notification_backlog().waiting == 0
    assert store.notification_backlog().oldest_received_at is None
    before = utcnow()
    store.add_notifications([note("1"), note("2")])
    after = utcnow()
    store.add_notifications([note(str(n)) for n in range(3, 7)])
    store.save_leads([Lead("3", T0, "p1", "f1")])
    store.drop_notification("4", "lead deleted")
    store.defer_notifications(["5"], "Graph 500", utcnow() + timedelta(hours=1))
    store.claim_notifications("r1", 1, MINUTE)
    backlog = store.notification_backlog()
    assert backlog.waiting == 4  # 1 (claimed), 2, 5 (deferred) and 6; not stored 3, dropped 4
    assert backlog.oldest_received_at is not None
    assert before <= backlog.oldest_received_at <= after
