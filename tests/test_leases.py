"""LeaseKeeper on both stores: one holder at a time, renewed while a round runs, quick takeover."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta

from structlog.testing import capture_logs

from leadsync.abc import ScoreUpdate
from leadsync.leases import LeaseKeeper, is_dead_predecessor, new_owner
from leadsync.models import Lead, Notification, Score, utcnow
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


def dead_pid() -> int:
    """The pid of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_dead_predecessors_on_this_host_are_told_apart_from_live_owners():
    me = new_owner()
    host, pid, _ = me.split(":")
    assert is_dead_predecessor(f"{host}:{dead_pid()}:0ld", me)
    assert is_dead_predecessor(f"{host}:{pid}:0ld", me)  # our pid, another token: a restart
    assert not is_dead_predecessor(f"{host}:{os.getppid()}:0ld", me)  # alive
    assert not is_dead_predecessor(f"other-host:{dead_pid()}:0ld", me)  # not ours to judge
    assert not is_dead_predecessor(me, me)
    assert not is_dead_predecessor("replica-a", me)


def test_a_restart_takes_back_its_dead_predecessors_leases_and_claims(store):
    """Without waiting for them to expire; a live owner's lease stays where it is."""
    me = new_owner()
    host = me.split(":")[0]
    dead, alive = f"{host}:{dead_pid()}:0ld", f"{host}:{os.getppid()}:live"
    store.acquire_lease("deliver:sheet", dead, timedelta(minutes=5))
    store.acquire_lease("poll:111", alive, timedelta(minutes=5))
    store.save_leads([Lead("1", utcnow(), "p1", "f1")])
    store.save_scores([ScoreUpdate("1", Score(10, False), ("sheet",))])
    assert store.claim("sheet", 10, dead, timedelta(minutes=5))
    store.add_notifications([Notification("2", "p1"), Notification("3", "p1")])
    assert store.claim_notifications(dead, 1, timedelta(minutes=5))
    assert store.claim_notifications(alive, 1, timedelta(minutes=5))
    assert store.owners() == {dead, alive}

    assert LeaseKeeper(store, me).release_dead_predecessors() == [dead]

    assert store.owners() == {alive}
    assert store.acquire_lease("deliver:sheet", me, TTL)
    assert not store.acquire_lease("poll:111", me, TTL)
    assert [item.lead_id for item in store.claim("sheet", 10, me, TTL)] == ["1"]
    assert [note.lead_id for note in store.claim_notifications(me, 10, TTL)] == ["2"]
