"""/metrics figures read from the store at scrape time (metrics.py), on a real SQLite store."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from leadsync.metrics import Metrics
from leadsync.models import Notification, utcnow
from leadsync.store.sqlite import encode_time
from tests.store_fixtures import run_sql


@pytest.fixture
def store_backend() -> str:
    """The figures come from `notification_backlog`, whose contract runs on both backends."""
    return "sqlite"


def samples(metrics: Metrics) -> dict[str, float]:
    families = text_string_to_metric_families(metrics.render().decode())
    return {s.name: s.value for family in families for s in family.samples}


def test_the_fetch_backlog_and_its_oldest_age_are_read_at_each_scrape(store, store_url):
    metrics = Metrics(backlog=store.notification_backlog)
    assert samples(metrics)["leadsync_notifications_backlog"] == 0
    assert samples(metrics)["leadsync_notifications_backlog_age_seconds"] == 0
    store.add_notifications([Notification("1", "p"), Notification("2", "p")])
    old = encode_time(utcnow() - timedelta(minutes=7))
    run_sql(store_url, "UPDATE notifications SET received_at = ? WHERE lead_id = '1'", (old,))
    figures = samples(metrics)
    assert figures["leadsync_notifications_backlog"] == 2
    assert 7 * 60 <= figures["leadsync_notifications_backlog_age_seconds"] < 8 * 60


def test_no_backlog_figure_while_the_store_has_not_opened():
    figures = samples(Metrics(backlog=lambda: None))
    assert "leadsync_notifications_backlog" not in figures
    assert "leadsync_notifications_backlog_age_seconds" not in figures
