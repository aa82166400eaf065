"""The scoring engine (scoring/engine.py): tables of (lead, expected score) for each rule kind,
events and decay, caps, inactivity, fit/engagement parts, and the guide's personas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leadsync.models import Event, Lead
from leadsync.scoring import compiled
from leadsync.scoring.engine import Scorer, round_points
from leadsync.scoring.settings import ScoringSettings

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def lead(created: datetime = NOW, **answers: str | tuple[str, ...]) -> Lead:
    """A lead with these answers; keyword names are question names, a tuple is multi-value."""
    values = {k: v if isinstance(v, tuple) else (v,) for k, v in answers.items()}
    return Lead(id="L1", created_time=created, page_id="p1", form_id="f1", answers=values)


def scorer(*rules: dict, **scoring: object) -> Scorer:
    """A scorer with exactly these rules (no default rule set, no inactivity)."""
    return Scorer(ScoringSettings.model_validate({"rules": list(rules), **scoring}))


def event(kind: str, days_ago: float = 0, ident: str = "") -> Event:
    return Event(id=ident or f"{kind}-{days_ago}", type=kind, at=NOW - timedelta(days=days_ago))


def rule(condition: dict, field: str = "answer", points: float = 10) -> dict:
    return {"name": "R", "field": field, "points": points, **condition}


@pytest.mark.parametrize(
    ("condition", "answer", "points"),
    [
        ({"matches": r"(?i)\bvp\b"}, "VP of Sales", 10),
        ({"matches": r"(?i)\bvp\b"}, "MVP engineer", 0),
        ({"matches": "^CEO$"}, "ceo", 0),
        ({"equals": "Yes"}, "  yes ", 10),
        ({"equals": "Yes"}, "yes please", 0),
        ({"equals": 1000}, "1,000", 10),
        ({"equals": True}, "TRUE", 10),
        ({"any_of": ["Software", "SaaS"]}, "saas", 10),
        ({"any_of": ["Software", "SaaS"]}, "Hardware", 0),
        ({"at_least": 500}, "500-1000", 10),
        ({"at_least": 600}, "500-1000", 0),
        ({"at_most": 1000}, "500-1000", 10),
        ({"at_least": 1000}, "1,000+", 10),
        ({"at_most": 5000}, "1,000+", 0),
        ({"at_least": 50_000_000}, "$50M", 10),
        ({"at_least": 50_000_000}, "50 million", 10),
        ({"at_least": 50_000_000}, "$10M-$50M", 0),
        ({"at_least": 10_000, "at_most": 10_000}, "10k", 10),
        ({"at_least": 1}, "a lot", 0),
        ({"present": True}, "anything", 10),
        ({"present": True}, "   ", 0),
        ({"present": False}, "   ", 10),
        ({"present": False}, "x", 0),
        ({"matches": "(?i)demo", "any_of": ["Book a demo"]}, "book a demo", 10),
        ({"matches": "(?i)demo", "any_of": ["Book a demo"]}, "demo day", 0),
    ],
)
def test_each_condition_kind_scores_as_documented(condition, answer, points):
    assert scorer(rule(condition)).score(lead(answer=answer), [], NOW).points == points


@pytest.mark.parametrize(
    ("condition", "points"),
    [({"present": True}, 0), ({"present": False}, 10), ({"matches": ".*"}, 0), ({"at_most": 5}, 0)],
)
def test_an_unanswered_question_only_satisfies_present_false(condition, points):
    assert scorer(rule(condition)).score(lead(other="x"), [], NOW).points == points


def test_multi_value_answers_match_any_value_or_the_joined_text():
    answer = ("Sales", "Marketing")
    assert scorer(rule({"any_of": ["marketing"]})).score(lead(answer=answer), [], NOW).points == 10
    joined = rule({"matches": "^Sales, Marketing$"})
    assert scorer(joined).score(lead(answer=answer), [], NOW).points == 10


@pytest.mark.parametrize(
    ("field", "condition"),
    [
        ("form_id", {"equals": "f1"}),
        ("form_name", {"matches": "(?i)spring"}),
        ("campaign_name", {"matches": "(?i)retarget"}),
        ("ad_name", {"any_of": ["Video A"]}),
        ("platform", {"equals": "ig"}),
        ("is_organic", {"equals": True}),
    ],
)
def test_rules_read_lead_attributes(field, condition):
    source = Lead(
        id="L1",
        created_time=NOW,
        page_id="p1",
        form_id="f1",
        form_name="Spring offer",
        ad_name="Video A",
        campaign_name="Retargeting Q2",
        platform="ig",
        is_organic=True,
    )
    assert scorer(rule(condition, field=field)).score(source, [], NOW).points == 10
    plain = Lead(id="L2", created_time=NOW, page_id="p1", form_id="other")
    assert scorer(rule(condition, field=field)).score(plain, [], NOW).points == 0


def test_email_rule_falls_back_from_the_email_question_to_work_email():
    free = rule({"matches": "@gmail\\."}, field="email", points=-10)
    assert scorer(free).score(lead(work_email="Ann@Gmail.com"), [], NOW).points == -10
    assert (
        scorer(free).score(lead(email="a@acme.com", work_email="a@gmail.com"), [], NOW).points == 0
    )


def test_an_event_rule_counts_its_latest_event_once_by_default():
    webinar = {"name": "Webinar", "event": "webinar_attended", "points": 20}
    events = [event("webinar_attended", 30), event("webinar_attended", 0), event("other", 0)]
    score = scorer(webinar, half_life_days=30).score(lead(), events, NOW)
    assert (score.points, score.reasons_text) == (20, "Webinar +20")


def test_count_each_adds_every_event_and_each_one_fades_on_its_own():
    opens = {"name": "Opened", "event": "email_opened", "points": 4, "count": "each"}
    events = [
        event("email_opened", 0, "a"),
        event("email_opened", 0, "b"),
        event("email_opened", 30),
    ]
    assert scorer(opens, half_life_days=30).score(lead(), events, NOW).points == 4 + 4 + 2


@pytest.mark.parametrize(("days", "points"), [(0, 20), (30, 10), (60, 5), (90, 3), (-5, 20)])
def test_event_points_halve_every_half_life(days, points):
    demo = {"name": "Demo", "event": "demo_requested", "points": 20}
    assert (
        scorer(demo, half_life_days=30).score(lead(), [event("demo_requested", days)], NOW).points
        == points
    )


def test_half_life_zero_and_decays_false_keep_full_points():
    demo = {"name": "Demo", "event": "demo_requested", "points": 20}
    old = [event("demo_requested", 365)]
    assert scorer(demo, half_life_days=0).score(lead(), old, NOW).points == 20
    assert scorer({**demo, "decays": False}, half_life_days=30).score(lead(), old, NOW).points == 20


def test_a_decaying_field_rule_ages_from_the_lead_created_time():
    ask = rule({"matches": "demo"}, points=30) | {"decays": True}
    assert (
        scorer(ask, half_life_days=10)
        .score(lead(NOW - timedelta(days=10), answer="demo"), [], NOW)
        .points
        == 15
    )


def test_a_fully_faded_event_leaves_no_reason():
    demo = {"name": "Demo", "event": "demo_requested", "points": 20}
    score = scorer(demo, half_life_days=1).score(lead(), [event("demo_requested", 60)], NOW)
    assert (score.points, score.reasons) == (0, ())


def test_group_cap_shows_as_a_reason_and_holds():
    opens = {"name": "Email opened", "group": "passive", "event": "email_opened", "points": 3}
    visit = {"name": "Site visit", "group": "passive", "event": "site_visit", "points": 4}
    settings = {"groups": {"passive": {"cap": 5}}, "half_life_days": 0}
    score = scorer({**opens, "count": "each"}, visit, **settings).score(
        lead(), [event("email_opened", 1), event("email_opened", 2), event("site_visit", 1)], NOW
    )
    assert score.reasons_text == "Email opened +6; Site visit +4; passive cap -5"
    assert score.points == 5


def test_negative_points_are_not_capped():
    rules = [
        {
            "name": "Student",
            "group": "g",
            "field": "job_title",
            "matches": "Student",
            "points": -20,
        },
        {"name": "Junior", "group": "g", "field": "job_title", "matches": "Junior", "points": -5},
    ]
    score = scorer(*rules, groups={"g": {"cap": 3}}).score(
        lead(job_title="Junior Student"), [], NOW
    )
    assert score.points == -25 and "cap" not in score.reasons_text


def test_inactivity_penalty_after_days_without_any_activity():
    idle = {"days": 90, "points": -10}
    webinar = {"name": "Webinar", "event": "webinar_attended", "points": 10, "decays": False}
    scoring = scorer(webinar, inactivity=idle)
    created = NOW - timedelta(days=200)
    assert scoring.score(lead(created), [], NOW).reasons_text == "No activity for 90 days -10"
    assert scoring.score(lead(created), [event("webinar_attended", 89)], NOW).points == 10
    assert scoring.score(lead(NOW - timedelta(days=89)), [], NOW).points == 0


def test_fit_and_engagement_parts_add_up_and_follow_the_groups():
    rules = [
        {"name": "VP", "group": "demographic", "field": "job_title", "matches": "VP", "points": 20},
        {"name": "Big", "group": "firmographic", "field": "size", "at_least": 1000, "points": 15},
        {"name": "Demo", "group": "intent", "event": "demo_requested", "points": 35},
        {
            "name": "Free email",
            "group": "negative",
            "field": "email",
            "matches": "gmail",
            "points": -10,
        },
        {"name": "Unsub", "group": "negative", "event": "unsubscribed", "points": -50},
    ]
    score = scorer(*rules).score(
        lead(job_title="VP", size="1000+", email="x@gmail.com"),
        [event("demo_requested"), event("unsubscribed")],
        NOW,
    )
    assert (score.fit, score.engagement, score.points) == (25, -15, 10)


def test_reasons_list_fields_then_events_then_caps_then_inactivity():
    rules = [
        {"name": "Demo", "group": "intent", "event": "demo_requested", "points": 35},
        {"name": "VP", "field": "job_title", "matches": "VP", "points": 20},
        {"name": "Trial", "group": "intent", "event": "trial_started", "points": 30},
    ]
    score = scorer(
        *rules, groups={"intent": {"cap": 40}}, inactivity={"days": 1, "points": -1}
    ).score(
        lead(NOW - timedelta(days=9), job_title="VP"),
        [event("trial_started", 5), event("demo_requested", 5)],
        NOW,
    )
    assert [r.rule for r in score.reasons] == [
        "VP",
        "Demo",
        "Trial",
        "intent cap",
        "No activity for 1 days",
    ]


def test_mql_when_the_total_reaches_the_threshold_like_the_guide_example():
    rules = [
        {"name": "C-suite", "field": "job_title", "matches": "CEO", "points": 25},
        {"name": "Size", "field": "size", "at_least": 1000, "points": 15},
        {"name": "Case study", "event": "case_study_downloaded", "points": 20},
    ]
    scoring = scorer(*rules, threshold=60)
    guide = scoring.score(
        lead(job_title="CEO", size="1,000+"), [event("case_study_downloaded")], NOW
    )
    assert (guide.points, guide.mql) == (60, True)
    assert not scoring.score(lead(job_title="CEO", size="1,000+"), [], NOW).mql


def test_rules_version_is_stable_and_changes_with_any_rule():
    first = {"name": "VP", "field": "job_title", "matches": "VP", "points": 20}
    assert scorer(first).version == scorer(dict(first)).version
    assert scorer(first).version != scorer({**first, "points": 21}).version
    assert scorer(first).version != scorer(first, threshold=50).version
    assert scorer(first).score(lead(), [], NOW).rules_version == scorer(first).version


def test_remembered_answers_are_forgotten_past_the_bound_without_changing_scores(monkeypatch):
    monkeypatch.setattr(compiled, "REMEMBERED_ANSWERS", 3)
    scoring = scorer({"name": "VP", "field": "job_title", "matches": "VP", "points": 20})
    titles = [f"VP {n}" if n % 2 else f"Engineer {n}" for n in range(10)]
    first = [scoring.score(lead(job_title=t), [], NOW).points for t in titles]
    again = [scoring.score(lead(job_title=t), [], NOW).points for t in titles]
    assert first == again == [20 if n % 2 else 0 for n in range(10)]
    assert all(len(field.outcomes) <= 3 for field in scoring._fields)


def test_naive_now_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        scorer(rule({"present": True})).score(lead(), [], datetime(2026, 6, 1))


@pytest.mark.parametrize(
    ("raw", "rounded"), [(7.5, 8), (-7.5, -8), (2.5, 3), (0.49, 0), (-0.5, -1)]
)
def test_points_round_half_away_from_zero(raw, rounded):
    assert round_points(raw) == rounded


# -- the seed guide's personas, with the default rule set -------------------------------------

DEFAULTS = Scorer(ScoringSettings())


@pytest.mark.parametrize(
    "demo",
    [
        {"answers": {"interest": "Book a demo"}, "events": []},
        {"answers": {}, "events": [event("demo_requested")]},
    ],
    ids=["demo-on-form", "demo-event"],
)
def test_vp_at_a_1000_person_company_requesting_a_demo_is_an_mql(demo):
    vp = lead(
        job_title="VP of Sales", company_size="1,000+", email="vera@globex.com", **demo["answers"]
    )
    score = DEFAULTS.score(vp, demo["events"], NOW)
    assert score.mql, score.reasons_text
    assert "VP title +20" in score.reasons_text and "1,000+ employees +5" in score.reasons_text


def test_student_with_free_email_who_only_opened_an_email_is_not_an_mql():
    student = lead(job_title="Student", email="sam@gmail.com")
    score = DEFAULTS.score(student, [event("email_opened")], NOW)
    assert not score.mql
    assert score.reasons_text == "Student -20; Free email address -10; Email opened +2"


def test_an_mql_who_unsubscribes_falls_back_below_the_threshold():
    vp = lead(job_title="VP of Sales", company_size="1000", interest="Request a demo")
    assert DEFAULTS.score(vp, [], NOW).mql
    after = DEFAULTS.score(vp, [event("unsubscribed")], NOW)
    assert not after.mql and "Unsubscribed -50" in after.reasons_text


def test_an_mql_on_engagement_falls_back_to_nurture_as_the_engagement_fades():
    vp = lead(NOW - timedelta(days=5), job_title="VP Marketing", company_size="1,000+")
    assert DEFAULTS.score(vp, [event("demo_requested", 1)], NOW).mql
    assert not DEFAULTS.score(vp, [event("demo_requested", 1)], NOW + timedelta(days=45)).mql
