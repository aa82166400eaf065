"""The [scoring] keys (scoring/settings.py): every mistake fails at start-up with its key path and
a message that says how to fix it; the default rule set is valid config and applies when no rules
are written."""

from __future__ import annotations

import tomllib
from importlib.resources import files

import pytest
from pydantic import ValidationError

from leadsync.config import parse_config
from leadsync.errors import ConfigError
from leadsync.scoring.settings import RuleSettings, ScoringSettings

GOOD = {"name": "ok", "field": "job_title", "present": True, "points": 5}


def problem(rules: list[dict] | None = None, **scoring: object) -> tuple[tuple, str]:
    """The single validation problem of a [scoring] table: (location, message)."""
    data = {"rules": rules, **scoring} if rules is not None else scoring
    with pytest.raises(ValidationError) as caught:
        ScoringSettings.model_validate(data)
    (error,) = caught.value.errors()
    return error["loc"], error["msg"]


def numbered(bad: dict) -> list[dict]:
    """Three good rules, then `bad` at index 3."""
    return [{**GOOD, "name": f"ok{n}"} for n in range(3)] + [{"name": "bad", **bad}]


def test_unbalanced_parenthesis_is_reported_at_its_key_path():
    loc, message = problem(numbered({"field": "job_title", "matches": "(", "points": 5}))
    assert loc == ("rules", 3, "matches")
    assert "unbalanced parenthesis" in message and "escape" in message


def test_config_loader_names_the_full_key_path():
    raw = {
        "facebook": {"app_secret": "s", "verify_token": "v", "access_token": "t"},
        "scoring": {"rules": numbered({"field": "job_title", "matches": "(vp", "points": 5})},
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, {})
    assert any(
        str(p).startswith("scoring.rules[3].matches: unbalanced parenthesis")
        for p in caught.value.problems
    ), caught.value.problems


@pytest.mark.parametrize(
    ("bad", "where", "says"),
    [
        (
            {"field": "a", "matches": "[a-", "points": 1},
            ("rules", 3, "matches"),
            "regular expression",
        ),
        ({"field": "a", "matches": "\\\x08", "points": 1}, ("rules", 3, "matches"), "backspace"),
        ({"field": "a", "event": "b", "present": True, "points": 1}, ("rules", 3), "exactly one"),
        ({"present": True, "points": 1}, ("rules", 3), "exactly one"),
        ({"event": "webinar", "matches": "x", "points": 1}, ("rules", 3), "field condition"),
        ({"field": "a", "points": 1}, ("rules", 3), "no condition"),
        ({"field": "a", "at_least": 500, "at_most": 100, "points": 1}, ("rules", 3), "swap"),
        ({"field": "a", "any_of": [], "points": 1}, ("rules", 3, "any_of"), "is empty"),
        (
            {"field": "a", "present": False, "equals": "x", "points": 1},
            ("rules", 3),
            "empty answer",
        ),
        (
            {"field": "a", "present": True, "count": "each", "points": 1},
            ("rules", 3),
            "event rules",
        ),
        ({"field": "a", "present": True, "points": 0.2}, ("rules", 3, "points"), "rounds to 0"),
        ({"field": "a", "present": True, "points": float("nan")}, ("rules", 3, "points"), "finite"),
        (
            {"field": "a", "present": True, "points": 1, "matchs": "x"},
            ("rules", 3, "matchs"),
            "Extra",
        ),
    ],
)
def test_bad_rules_fail_with_location_and_fix(bad, where, says):
    loc, message = problem(numbered(bad))
    assert loc == where
    assert says in message


def test_duplicate_rule_names_are_refused_naming_both():
    loc, message = problem([GOOD, {**GOOD, "field": "other"}])
    assert loc == ("rules",)
    assert "rules[1].name 'ok' is also the name of rules[0]" in message


@pytest.mark.parametrize(
    ("scoring", "where"),
    [
        ({"rules": [GOOD], "groups": {"passive": {"cap": -1}}}, ("groups", "passive", "cap")),
        (
            {"rules": [GOOD], "groups": {"passive": {"part": "other"}}},
            ("groups", "passive", "part"),
        ),
        ({"rules": [GOOD], "half_life_days": -1}, ("half_life_days",)),
        ({"rules": [GOOD], "inactivity": {"days": 90, "points": 5}}, ("inactivity", "points")),
        ({"rules": [GOOD], "treshold": 50}, ("treshold",)),
    ],
)
def test_bad_groups_and_top_level_keys_fail_at_their_path(scoring, where):
    loc, _ = problem(**scoring)
    assert loc == where


def test_event_rules_decay_by_default_and_field_rules_do_not():
    assert RuleSettings(name="w", event="webinar_attended", points=5).decays is True
    assert RuleSettings(name="t", field="job_title", present=True, points=5).decays is False
    assert RuleSettings(name="u", event="unsubscribed", points=-5, decays=False).decays is False


def test_no_rules_means_the_default_rule_set_with_config_keys_on_top():
    settings = ScoringSettings.model_validate({"threshold": 70})
    assert settings.threshold == 70
    assert settings.rules == ScoringSettings().rules and len(settings.rules) >= 20
    assert settings.groups["passive"].cap == 10 and settings.inactivity is not None


def test_own_rules_replace_the_whole_default_rule_set():
    settings = ScoringSettings.model_validate({"rules": [GOOD]})
    assert [r.name for r in settings.rules] == ["ok"]
    assert settings.groups == {} and settings.inactivity is None


def test_defaults_file_is_a_scoring_table_in_config_syntax_that_follows_the_guide():
    text = files("leadsync.scoring").joinpath("defaults.toml").read_text(encoding="utf-8")
    table = tomllib.loads(text)
    assert set(table) == {"scoring"}
    settings = ScoringSettings.model_validate(table["scoring"])
    assert (settings.threshold, settings.half_life_days) == (60, 30)
    by_group: dict[str, list[float]] = {}
    for rule in settings.rules:
        by_group.setdefault(rule.group, []).append(rule.points)
    assert all(10 <= p <= 25 for p in by_group["demographic"])
    assert all(5 <= p <= 20 for p in by_group["firmographic"])
    assert all(30 <= p <= 40 for p in by_group["intent"])
    assert all(15 <= p <= 20 for p in by_group["engagement"])
    assert all(1 <= p <= 5 for p in by_group["passive"]) and settings.groups["passive"].cap
    assert all(p < 0 for p in by_group["negative"])


def test_default_rules_use_facebook_standard_names_and_mark_custom_questions():
    text = files("leadsync.scoring").joinpath("defaults.toml").read_text(encoding="utf-8")
    fields = {rule.field for rule in ScoringSettings().rules if rule.field}
    standard = {"job_title", "email", "work_email", "full_name", "phone_number", "company_name"}
    custom = fields - standard
    assert fields & standard
    assert custom == {"company_size", "annual_revenue", "industry", "interest"}
    for name in custom:
        assert any(f'"{name}"' in line and "CUSTOM" in line for line in text.splitlines()), name
