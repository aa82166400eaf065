"""Owners and repeats in the scoring step (outbox/enqueue.py) on a real SQLite store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leadsync.config import DestinationSettings
from leadsync.models import Lead
from leadsync.outbox.enqueue import Enqueuer
from leadsync.routing import Router, RoutingSettings
from leadsync.scoring.engine import Scorer
from leadsync.scoring.settings import ScoringSettings

NOW = datetime.now(UTC).replace(microsecond=0)
SHEET = DestinationSettings(name="sheet", type="google_sheets")
SCORING = ScoringSettings.model_validate(
    {
        "threshold": 50,
        "rules": [
            {"name": "VP", "field": "job_title", "matches": "VP", "points": 50},
            {"name": "Came back", "event": "repeat_submission", "points": 20},
        ],
    }
)
ROUTING = RoutingSettings.model_validate(
    {
        "owners": [
            {"name": "Ana", "email": "ana@example.com", "slack_id": "U0ANA", "weight": 2},
            {"name": "Bo", "hubspot_owner_id": 77},
            {"name": "Cy"},
        ],
        "rules": [
            {"field": "state", "any_of": ["CA", "NV"], "owners": ["Cy"]},
            {"forms": ["vip"], "only_mql": True, "owners": ["Bo"]},
            {"forms": ["f1", "f2"], "owners": ["Ana", "Bo", "Cy"]},
        ],
    }
)


@pytest.fixture
def store_backend() -> str:
    """These flows run on the default store; tests/test_store_routing.py covers both backends."""
    return "sqlite"


def lead(lead_id: str, form_id: str = "f1", minutes: int = 60, **answers: str) -> Lead:
    answers.setdefault("email", f"{lead_id}@acme.com")
    values = {name: (value,) for name, value in answers.items()}
    return Lead(lead_id, NOW - timedelta(minutes=minutes), "p1", form_id, answers=values)


def enqueuer(store) -> Enqueuer:
    return Enqueuer(store, Scorer(SCORING), [SHEET], Router(ROUTING), "GB")


def owners(store, *ids: str) -> dict[str, str]:
    return {lead_id: owner.name for lead_id, owner in store.assignments(list(ids)).items()}


def test_the_first_matching_rule_picks_the_pool_and_turns_follow_weights(store):
    store.save_leads([lead(str(n)) for n in range(1, 9)] + [lead("ca", state="ca")])
    enqueuer(store).score_new()
    split = owners(store, *[str(n) for n in range(1, 9)])
    assert sorted(split.values()) == ["Ana"] * 4 + ["Bo"] * 2 + ["Cy"] * 2
    assert owners(store, "ca") == {"ca": "Cy"}
    assert store.assignments(["1"])["1"].slack_id == "U0ANA"


def test_a_repeat_is_marked_rewarded_and_goes_to_the_persons_owner(store):
    store.save_leads([lead("1", "f1", 60, job_title="Analyst")])
    enqueuer(store).score_new()
    first_owner = owners(store, "1")["1"]
    store.save_leads(
        [lead("2", "f2", 1, email=" 1@ACME.com", job_title="Analyst")]
    )  # the same person, another form, email typed otherwise
    enqueuer(store).score_new()
    assert owners(store, "2") == {"2": first_owner}
    assert store.contacts(["2"])["2"].repeat_of == "1"
    score, _ = store.current_scores(["2"])["2"]
    assert [reason.rule for reason in score.reasons] == ["Came back"]


def test_an_only_mql_rule_routes_a_lead_once_it_becomes_an_mql(store):
    store.save_leads([lead("1", "vip", job_title="Analyst")])
    router = enqueuer(store)
    router.score_new()
    assert owners(store, "1") == {}  # not an MQL, and no other rule takes form "vip"
    router.scorer = Scorer(SCORING.model_copy(update={"threshold": 0}))
    router.rescore_all()
    assert owners(store, "1") == {"1": "Bo"}


def test_re_scoring_never_changes_an_owner_and_the_phone_is_recorded(store):
    store.save_leads([lead("1", phone_number="07911 123456"), lead("2", phone_number="12")])
    first = enqueuer(store)
    first.score_new()
    before = owners(store, "1", "2")
    other = Enqueuer(store, Scorer(SCORING), [SHEET], Router(ROUTING.model_copy(
        update={"rules": []})), "GB")  # fmt: skip
    other.rescore_all(NOW + timedelta(days=3))
    assert owners(store, "1", "2") == before
    contacts = store.contacts(["1", "2"])
    assert (contacts["1"].phone_e164, contacts["1"].phone_valid) == ("+447911123456", True)
    assert (contacts["2"].phone_typed, contacts["2"].phone_valid) == ("12", False)


def test_without_owners_nothing_is_assigned_but_contacts_are_recorded(store):
    store.save_leads([lead("1"), lead("2", email="1@acme.com")])
    Enqueuer(store, Scorer(SCORING), [SHEET]).score_new()
    assert store.assignments(["1", "2"]) == {}
    assert store.contacts(["2"])["2"].repeat_of == "1"


def test_turning_routing_on_leaves_scored_leads_alone_but_knows_their_people(store):
    store.save_leads([lead("old", job_title="Analyst")])
    Enqueuer(store, Scorer(SCORING), [SHEET]).score_new()  # scored before routing existed
    store.save_leads([lead("new", "f2", 1, email="old@acme.com", job_title="Analyst")])
    routed = enqueuer(store)
    routed.rescore_all()
    assert owners(store, "old", "new") == {"new": owners(store, "new")["new"]}
    assert store.contacts(["new"])["new"].repeat_of == "old"
