"""LeaseKeeper on both stores: one holder at a time, renewed while a round runs, quick takeover."""

from __future__ import annotations

import time
from datetime import timedelta

from structlog.testing import capture_logs

from leadsync.leases import LeaseKeeper
from tests.daemon_harness import wait_until

TTL = timedelta(seconds=0.6)


def test_a_round_longer_than_the_lease_keeps_it_and_others_wait(store):
    ours, theirs = LeaseKeeper(store, "replica-a"), LeaseKeeper(store, "replica-b")
    with ours.hold("deliver:sheet", TTL) as held:
        assert held
        started = time.monotonic()
        while time.monotonic() - started < TTL.total_seconds() * 3:  # three lease times
            with theirs.hold("deliver:sheet", TTL) as also:
                assert not also
    # Kept between rounds, then free once it runs out without renewal.
    assert not store.acquire_lease("deliver:sheet", "replica-b", TTL)
    wait_until(lambda: store.acquire_lease("deliver:sheet", "replica-b", TTL), 5, "takeover")


def test_takeover_and_loss_are_logged(store):
    ours, theirs = LeaseKeeper(store, "replica-a"), LeaseKeeper(store, "replica-b")
    with capture_logs() as logs:
        with ours.hold("poll:111", timedelta(0)) as held:  # expires at once, as if we had died
            assert held
        with theirs.hold("poll:111", TTL) as taken:
            assert taken
        with ours.hold("poll:111", TTL) as again:
            assert not again
    events = [(entry["event"], entry["owner"]) for entry in logs if "owner" in entry]
    assert events == [
        ("lease.taken", "replica-a"),
        ("lease.taken", "replica-b"),
        ("lease.lost", "replica-a"),
    ]


def test_release_hands_the_lease_over_at_once(store):
    ours = LeaseKeeper(store, "replica-a")
    with ours.hold("deliver:sheet", timedelta(minutes=5)) as held:
        assert held
    ours.release("deliver:sheet")
    assert store.acquire_lease("deliver:sheet", "replica-b", TTL)
