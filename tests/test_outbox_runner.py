"""Delivery retries after an outage (outbox/runner.py), on a real SQLite store.

The destination is an in-memory connector that can be down as a whole or refuse
one lead. What is checked is what a user sees after a long outage: the waits are
capped, and the first batch the destination takes again sends everything that
was put off by the outage, while a lead refused on its own keeps its backoff.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

import pytest

from leadsync.abc import ConnectorBase
from leadsync.config import DestinationSettings
from leadsync.errors import TransientError
from leadsync.models import DeliveryResult, Lead, LeadStage, ScoredLead, utcnow
from leadsync.outbox.enqueue import Enqueuer
from leadsync.outbox.runner import DeliveryWorker, backoff_after
from leadsync.scoring.engine import Scorer
from leadsync.scoring.settings import ScoringSettings

DEST = DestinationSettings(name="memory", type="webhook")
AN_HOUR = timedelta(hours=1)


class MemoryDestination(ConnectorBase):
    """A destination that keeps rows by lead id; `down` fails every call, `refuse` one lead."""

    name = "memory"

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.seen: dict[str, ScoredLead] = {}
        self.down = False
        self.refuse: set[str] = set()
        self.batch_sizes: list[int] = []

    def ensure_ready(self) -> None:
        if self.down:
            raise TransientError("memory destination is down")

    def deliver(self, batch: Sequence[ScoredLead]) -> list[DeliveryResult]:
        if self.down:
            raise TransientError("memory destination is down")
        self.batch_sizes.append(len(batch))
        results = []
        for scored in batch:
            if scored.lead.id in self.refuse:
                results.append(DeliveryResult(scored.lead.id, TransientError("refused")))
            else:
                self.rows[scored.lead.id] = scored.score.points
                self.seen[scored.lead.id] = scored
                results.append(DeliveryResult(scored.lead.id))
        return results


@pytest.fixture
def store_backend() -> str:
    """These flows run on the default store; tests/test_store*.py cover both backends."""
    return "sqlite"


def arrive(store, *lead_ids: str) -> None:
    """Stores and scores leads, which puts them in the outbox."""
    now = utcnow()  # scored at the wall clock: a fixed date would age into inactivity
    store.save_leads([Lead(i, now, "p1", "f1", answers={"job_title": ("VP",)}) for i in lead_ids])
    Enqueuer(store, Scorer(ScoringSettings()), [DEST]).score_new()


def put_off(store, destination: MemoryDestination, worker: DeliveryWorker) -> list[int]:
    """Fails one round, then moves its items an hour out, as a long outage's backoff would."""
    items = store.claim(DEST.name, 100, "peek", timedelta(seconds=0))
    worker.run_once()
    store.retry([i.id for i in items], "emulated long outage", utcnow() + AN_HOUR)
    return [i.id for i in items]


def test_backoff_grows_from_seconds_and_is_capped_at_a_minute():
    assert all(backoff_after(1) <= timedelta(seconds=2) for _ in range(50))
    waits = [backoff_after(n) for n in range(1, 60) for _ in range(5)]
    assert max(waits) <= timedelta(seconds=60)
    assert max(backoff_after(20) for _ in range(50)) > timedelta(seconds=30)


def test_first_batch_after_an_outage_sends_what_the_outage_put_off(store):
    destination = MemoryDestination()
    worker = DeliveryWorker(store, DEST.name, destination, owner="w1")
    arrive(store, "1", "2", "3")
    destination.down = True
    put_off(store, destination, worker)
    assert destination.rows == {}
    destination.down = False
    arrive(store, "4")  # the next lead after the outage: due at once, it shows Sheets is back
    worker.run_once()
    assert set(destination.rows) == {"4"}
    worker.run_once()  # no clock moved: the put-off items were made due by the success
    assert set(destination.rows) == {"1", "2", "3", "4"}
    assert store.destination_stats()[0].pending == 0


def test_a_lead_refused_on_its_own_keeps_its_backoff(store):
    destination = MemoryDestination()
    worker = DeliveryWorker(store, DEST.name, destination, owner="w1")
    destination.refuse = {"1"}
    arrive(store, "1", "2")
    put_off(store, destination, worker)  # "2" delivered, "1" refused on its own
    assert set(destination.rows) == {"2"}
    destination.refuse = set()
    arrive(store, "3")
    worker.run_once()
    worker.run_once()
    assert set(destination.rows) == {"2", "3"}  # "1" waits out its own backoff


class PacedDestination(MemoryDestination):
    """A destination with its own request budget; leads keep arriving while it waits."""

    def __init__(self, store, arrivals: list[str]) -> None:
        super().__init__()
        self.store, self.arrivals, self.batches = store, arrivals, []

    def ready_in(self) -> float:
        # The runner asks before claiming: what arrives "while it waits" joins the batch.
        if self.arrivals:
            arrive(self.store, *self.arrivals)
            self.arrivals = []
        return 0.0

    def deliver(self, batch: Sequence[ScoredLead]) -> list[DeliveryResult]:
        self.batches.append(sorted(s.lead.id for s in batch))
        return super().deliver(batch)


def test_a_paced_destination_is_waited_for_before_the_claim(store):
    """Leads that arrive while the connector's budget makes it wait go in the same batch."""
    arrive(store, "1")
    destination = PacedDestination(store, arrivals=["2", "3"])
    worker = DeliveryWorker(store, "memory", destination, owner="w")
    assert worker.run_once() == 3
    assert destination.batches == [["1", "2", "3"]]


def test_a_connector_sees_each_lead_s_stages_in_funnel_order(store):
    arrive(store, "1", "2")
    won = LeadStage("1", "won", utcnow(), Decimal("250"), "events")
    contacted = LeadStage("1", "contacted", utcnow() - AN_HOUR, None, "events")
    sql = LeadStage("2", "sql", utcnow(), None, "events")
    store.record_stages([won, contacted, sql])
    destination = MemoryDestination()
    DeliveryWorker(store, DEST.name, destination, owner="me").run_once()
    assert destination.seen["1"].stages == (contacted, won)
    assert destination.seen["2"].stages == (sql,)


def test_a_connector_s_max_batch_caps_what_one_delivery_takes(store):
    """Email asks for small batches (a crash resends a batch whole): the runner claims no more."""
    arrive(store, *(str(n) for n in range(1, 8)))
    destination = MemoryDestination()
    destination.max_batch = 3
    worker = DeliveryWorker(store, DEST.name, destination, owner="w", batch_size=500)
    worker.run_once()
    assert destination.batch_sizes == [3]
