"""What /healthz reports, decided from the store (health.py), on a real SQLite store."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from leadsync.abc import ScoreUpdate
from leadsync.health import DELIVERY_STALLED_AFTER, INGEST_BACKLOG_OLD_AFTER, assess
from leadsync.models import Lead, Notification, Score, ServiceStatus, utcnow
from leadsync.store.sqlite import encode_time
from tests.store_fixtures import run_sql


@pytest.fixture
def store_backend() -> str:
    """These flows run on the default store; tests/test_store*.py cover both backends."""
    return "sqlite"


@pytest.fixture
def store(store):
    """The store with a poller that has just polled (so polling is not stalled)."""
    store.set_status(ServiceStatus("poller", True, "", utcnow()))
    return store


def verdict(store, **kwargs):
    args = {"jobs_alive": {"fetch": True}, "poll_interval": timedelta(minutes=5)}
    return assess(store, started_at=utcnow(), **(args | kwargs))


def waiting_lead(store, store_url: str, age: timedelta) -> None:
    """A lead whose delivery to "sheet" has waited `age` (its outbox item's created_at)."""
    store.save_leads([Lead("1", utcnow(), "p", "f")])
    store.save_scores([ScoreUpdate("1", Score(10, False), ("sheet",))])
    (item,) = store.claim("sheet", 1, "w", timedelta(seconds=1))
    store.retry([item.id], "TransientError: 503", utcnow())
    # The store dates items itself; to have one that waited long, age it behind its back.
    run_sql(store_url, "UPDATE outbox SET created_at = ?", (encode_time(utcnow() - age),))


def waiting_notifications(store, store_url: str, age: timedelta, count: int = 2) -> None:
    """`count` notifications not fetched yet, received `age` ago (aged behind the store's back)."""
    store.add_notifications([Notification(str(n), "p") for n in range(count)])
    run_sql(store_url, "UPDATE notifications SET received_at = ?", (encode_time(utcnow() - age),))


def test_healthy_when_nothing_is_wrong(store):
    assert verdict(store).ok


def test_a_failing_destination_with_an_old_waiting_lead_is_stalled(store, store_url):
    waiting_lead(store, store_url, DELIVERY_STALLED_AFTER + timedelta(minutes=1))
    store.set_status(ServiceStatus("destination:sheet", False, "TransientError: 503", utcnow()))
    report = verdict(store)
    assert not report.ok
    assert report.reasons[0].startswith("destination_stalled: sheet: waiting since")


def test_a_short_outage_is_not_yet_a_problem(store, store_url):
    waiting_lead(store, store_url, timedelta(minutes=2))
    store.set_status(ServiceStatus("destination:sheet", False, "TransientError: 503", utcnow()))
    assert verdict(store).ok


def test_dead_jobs_and_a_bad_token_are_named(store):
    store.set_status(ServiceStatus("facebook", False, "token expired", utcnow()))
    report = verdict(store, jobs_alive={"fetch": False})
    assert report.reasons == ["job_dead: fetch", "facebook_token_invalid: token expired"]


def test_notifications_waiting_too_long_to_be_fetched_are_named_with_their_count(store, store_url):
    waiting_notifications(store, store_url, INGEST_BACKLOG_OLD_AFTER + timedelta(minutes=1))
    (reason,) = verdict(store).reasons
    assert reason.startswith("ingest_backlog_old: 2 notifications waiting since ")
    since = datetime.fromisoformat(reason.rpartition("since ")[2])
    assert utcnow() - since > INGEST_BACKLOG_OLD_AFTER


def test_a_backlog_younger_than_the_limit_is_not_yet_a_problem(store, store_url):
    waiting_notifications(store, store_url, INGEST_BACKLOG_OLD_AFTER - timedelta(minutes=1))
    assert verdict(store).ok


def test_a_refused_token_explains_the_backlog_on_its_own(store, store_url):
    waiting_notifications(store, store_url, INGEST_BACKLOG_OLD_AFTER + timedelta(minutes=1))
    store.set_status(ServiceStatus("facebook", False, "token expired", utcnow()))
    assert verdict(store).reasons == ["facebook_token_invalid: token expired"]
