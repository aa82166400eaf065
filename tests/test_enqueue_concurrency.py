"""Two re-scores of one lead at once (outbox/enqueue.py): the newer read is the one saved.

An event's re-score and the start-up (or daily) re-score of every lead can run at the
same time in the daemon. The chaos test found a row left with the score from before
an event: the start-up re-score read the lead's events just before the event was
stored and saved its result just after the event's own re-score. Here that
interleaving is forced with a real SQLite store whose first events read waits until
the event has been stored and a second re-score started.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from leadsync.config import DestinationSettings
from leadsync.models import Event, Lead
from leadsync.outbox.enqueue import Enqueuer
from leadsync.scoring.engine import Scorer
from leadsync.scoring.settings import ScoringSettings
from leadsync.store.sqlite import SQLiteStore

# Relative to today: scoring a new lead reads the wall clock, and a fixed date would age
# the lead into the 90-day inactivity rule as the calendar moves.
NOW = datetime.now(UTC).replace(microsecond=0)
SHEET = DestinationSettings(name="sheet", type="google_sheets")


class FirstEventsReadWaits(SQLiteStore):
    """The real SQLite store; its first `events_for` returns only once `go` is set."""

    def __init__(self, path) -> None:  # noqa: ANN001
        super().__init__(path)
        self.read_done = threading.Event()
        self.go = threading.Event()

    def events_for(self, lead_ids):  # noqa: ANN001, ANN201
        events = super().events_for(lead_ids)
        if not self.read_done.is_set():
            self.read_done.set()
            self.go.wait(timeout=10)
        return events


def test_an_event_during_a_rescore_of_everything_ends_in_the_row(tmp_path):
    store = FirstEventsReadWaits(tmp_path / "l.db")
    store.migrate()
    answers = {"job_title": ("Office Manager",)}
    store.save_leads([Lead("1", NOW - timedelta(hours=1), "p1", "f1", answers=answers)])
    enqueuer = Enqueuer(store, Scorer(ScoringSettings()), [SHEET])
    everything = threading.Thread(target=enqueuer.rescore_all, args=(NOW,))
    everything.start()  # reads the lead's events (none yet), then waits
    assert store.read_done.wait(timeout=10)
    store.add_events([Event("e1", "demo_requested", NOW, lead_id="1")])
    for_event = threading.Thread(target=enqueuer.rescore, args=(["1"], NOW))
    for_event.start()  # the event's own re-score
    for_event.join(timeout=0.5)  # without one-at-a-time it finishes here, before the other
    store.go.set()
    everything.join(timeout=10)
    for_event.join(timeout=10)
    score, _revision = store.current_scores(["1"])["1"]
    assert "Demo request" in [r.rule for r in score.reasons], score
    store.close()


def test_a_replica_that_scored_from_older_events_scores_again_instead_of_saving(tmp_path):
    """Two replicas (two stores on one file, each with its own Enqueuer) score one lead."""
    replica_a = FirstEventsReadWaits(tmp_path / "l.db")
    replica_a.migrate()
    replica_b = SQLiteStore(tmp_path / "l.db")
    answers = {"job_title": ("Office Manager",)}
    replica_a.save_leads([Lead("1", NOW - timedelta(hours=1), "p1", "f1", answers=answers)])
    scorer = Scorer(ScoringSettings())
    stale_scoring = threading.Thread(
        target=Enqueuer(replica_a, scorer, [SHEET]).rescore, args=(["1"], NOW)
    )
    stale_scoring.start()  # reads revision 0 and no events, then waits
    assert replica_a.read_done.wait(timeout=10)
    replica_b.add_events([Event("e1", "demo_requested", NOW, lead_id="1")])
    assert Enqueuer(replica_b, scorer, [SHEET]).rescore(["1"], NOW) == {"1": 1}
    replica_a.go.set()
    stale_scoring.join(timeout=10)
    score, revision = replica_b.current_scores(["1"])["1"]
    assert "Demo request" in [r.rule for r in score.reasons], score
    assert revision == 1
    replica_a.close()
    replica_b.close()
