"""Scoring into the outbox: routing, revisions only on change, rule changes and decay
re-score stored leads (outbox/enqueue.py), on a real SQLite store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leadsync.config import DestinationSettings
from leadsync.models import Event, Lead, Score
from leadsync.outbox.enqueue import RULES_VERSION_KEY, Enqueuer, destinations_for
from leadsync.scoring.engine import Scorer
from leadsync.scoring.settings import ScoringSettings

# Relative to today: scoring a new lead reads the wall clock, and a fixed date would age
# the lead into the 90-day inactivity rule as the calendar moves.
NOW = datetime.now(UTC).replace(microsecond=0)
SHEET = DestinationSettings(name="sheet", type="google_sheets")
ALERTS = DestinationSettings(name="alerts", type="slack", only_mql=True)
ONE_FORM = DestinationSettings(name="one-form", type="webhook", forms=["f2"])


@pytest.fixture
def store_backend() -> str:
    """These flows run on the default store; tests/test_store*.py cover both backends."""
    return "sqlite"


def lead(lead_id: str, title: str, form_id: str = "f1", size: str = "1,000+") -> Lead:
    answers = {"job_title": (title,), "company_size": (size,), "email": (f"{lead_id}@acme.com",)}
    return Lead(lead_id, NOW - timedelta(hours=1), "p1", form_id, answers=answers)


def pending(store, destination: str) -> set[str]:
    return {i.lead_id for i in store.claim(destination, 100, "test", timedelta(seconds=1))}


@pytest.mark.parametrize(
    ("mql", "already", "form_id", "expected"),
    [
        (False, set(), "f1", ("sheet",)),
        (True, set(), "f1", ("sheet", "alerts")),
        (False, {"alerts"}, "f1", ("sheet", "alerts")),  # an MQL that fell back is updated
        (False, set(), "f2", ("sheet", "one-form")),
    ],
)
def test_routing(mql, already, form_id, expected):
    score = Score(70 if mql else 10, mql)
    chosen = destinations_for(lead("1", "VP", form_id), score, already, [SHEET, ALERTS, ONE_FORM])
    assert chosen == expected


def test_new_leads_are_scored_once_and_routed(store):
    store.save_leads([lead("1", "VP Sales"), lead("2", "Student")])
    enqueuer = Enqueuer(store, Scorer(ScoringSettings.model_validate({})), [SHEET, ALERTS])
    assert enqueuer.score_new() == 2
    assert enqueuer.score_new() == 0  # nothing unscored left
    assert pending(store, "sheet") == {"1", "2"}
    assert pending(store, "alerts") == set()  # 20 + 15 is not an MQL


def test_an_event_that_changes_nothing_makes_no_revision(store):
    store.save_leads([lead("1", "VP Sales")])
    enqueuer = Enqueuer(store, Scorer(ScoringSettings.model_validate({})), [SHEET])
    enqueuer.score_new()
    store.add_events([Event("e1", "no_such_rule", NOW, lead_id="1")])
    assert enqueuer.rescore(["1"], NOW) == {}


def test_engagement_flips_to_mql_and_decay_brings_it_back(store):
    store.save_leads([lead("1", "Director")])  # 15 + 15 = 30
    enqueuer = Enqueuer(store, Scorer(ScoringSettings.model_validate({})), [SHEET, ALERTS])
    enqueuer.score_new()
    store.add_events(
        [
            Event("e1", "webinar_attended", NOW, lead_id="1"),
            Event("e2", "case_study_downloaded", NOW, lead_id="1"),
        ]
    )
    assert enqueuer.rescore(["1"], NOW) == {"1": 2}
    score, revision = store.current_scores(["1"])["1"]
    assert (score.points, score.mql, revision) == (65, True, 2)
    assert pending(store, "alerts") == {"1"}
    # Two half-lives later the engagement points have faded to a quarter: back to nurture.
    assert enqueuer.rescore_all(NOW + timedelta(days=60)) == 1
    score, revision = store.current_scores(["1"])["1"]
    assert not score.mql and revision == 3


def test_a_rule_change_rescores_stored_leads_and_only_changed_ones(store):
    store.save_leads([lead("1", "VP Sales"), lead("2", "Engineer", size="1")])
    old = Enqueuer(store, Scorer(ScoringSettings.model_validate({})), [SHEET])
    old.score_new()
    rules = [
        {
            "name": "VP title",
            "group": "demographic",
            "field": "job_title",
            "matches": "(?i)vp",
            "points": 70,
        }
    ]
    new = Enqueuer(store, Scorer(ScoringSettings.model_validate({"rules": rules})), [SHEET])
    assert new.scorer.version != old.scorer.version
    assert new.rescore_all(NOW) == 1  # the engineer scores 0 under both rule sets
    assert store.current_scores(["1"])["1"][0].mql
    assert store.get_meta(RULES_VERSION_KEY) == new.scorer.version
