"""Config loading: ${ENV} interpolation, durations, and problems named by key path (config.py)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

import connectors
from leadsync.config import load_config, parse_config, parse_duration, secret_values
from leadsync.emulators.google_oauth import TokenAuthority
from leadsync.errors import ConfigError
from leadsync.logs import Redactor

ROOT = Path(__file__).resolve().parents[1]

MINIMAL = {
    "facebook": {
        "app_secret": "${FB_APP_SECRET}",
        "verify_token": "vt",
        "access_token": "tok",
        "pages": [{"id": 1234}],
    }
}


def problems_of(raw: dict, environ: dict | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, environ or {})
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("5m", 300),
        ("2h", 7200),
        ("30d", 2592000),
        ("1w", 604800),
        (15, 15),
        ("250ms", 0.25),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["5 minutes", "m5", "", "-3s", "1y"])
def test_bad_durations_say_how_to_write_one(text):
    with pytest.raises(ValueError, match="90s, 5m, 2h or 30d"):
        parse_duration(text)


def test_environment_variables_are_interpolated_and_ids_become_strings():
    settings = parse_config(MINIMAL, {"FB_APP_SECRET": "s3cret"})
    assert settings.facebook.app_secret.get_secret_value() == "s3cret"
    assert settings.facebook.pages[0].id == "1234"
    assert settings.facebook.poll_interval == timedelta(minutes=5)
    assert "s3cret" not in repr(settings)


def test_missing_environment_variable_names_key_and_variable():
    (problem,) = problems_of(MINIMAL, {})
    assert problem.startswith("facebook.app_secret: environment variable FB_APP_SECRET is not set")
    assert "export FB_APP_SECRET" in problem


def test_every_problem_is_reported_at_once_with_its_key_path():
    raw = {
        "facebook": {
            "app_secret": "x",
            "verify_token": "v",
            "poll_interval": "soon",
            "pages": [{"id": "1", "colour": "red"}],
        },
        "server": {"port": 99999},
        "timezone": "Mars/Olympus",
        "destinations": [
            {"name": "a", "type": "carrier_pigeon"},
            {"name": "bad name!", "type": "google_sheets"},
        ],
    }
    found = "\n".join(problems_of(raw))
    assert "facebook.access_token: Field required (add this key)" in found
    assert "facebook.poll_interval: 'soon' is not a duration" in found
    assert "facebook.pages[0].colour: Extra inputs are not permitted" in found
    assert "server.port:" in found
    assert "destinations[0].type: unknown destination type 'carrier_pigeon'" in found
    assert "destinations[1].name:" in found


def test_unknown_timezone_is_named():
    found = problems_of({**MINIMAL, "timezone": "Mars/Olympus"}, {"FB_APP_SECRET": "x"})
    assert found == [
        "timezone: unknown timezone 'Mars/Olympus' (use an IANA name such as Europe/Paris)"
    ]


def test_missing_file_says_how_to_start(tmp_path):
    with pytest.raises(ConfigError, match="copy config.example.toml"):
        load_config(tmp_path / "nope.toml")


def test_broken_toml_is_reported(tmp_path):
    path = tmp_path / "leadsync.toml"
    path.write_text("[facebook\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_config_example_is_valid(monkeypatch, tmp_path):
    """config.example.toml loads once its environment variables and key file exist."""
    for name in ("FB_APP_ID", "FB_APP_SECRET", "FB_VERIFY_TOKEN", "FB_ACCESS_TOKEN",
                 "LEADSYNC_EVENTS_TOKEN", "LEADSYNC_ADMIN_TOKEN", "HUBSPOT_TOKEN",
                 "SMTP_USER", "SMTP_PASSWORD"):  # fmt: skip
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("LEADSYNC_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T/B/X")
    key = TokenAuthority().new_key("https://oauth2.googleapis.com/token")
    (tmp_path / "service-account.json").write_text(json.dumps(key))
    monkeypatch.chdir(tmp_path)
    settings = load_config(ROOT / "config.example.toml")
    assert settings.destinations, "the example shows at least one destination"
    assert settings.scoring.rules, "the example carries the default rule set"
    assert {d.type for d in settings.destinations} == set(connectors.BUILTIN)


@pytest.mark.parametrize(
    ("routing", "path", "words"),
    [
        ({"contacts": {"default_region": "XX"}}, "contacts.default_region", "two letters"),
        ({"routing": {"owners": [{"name": "A", "slack_id": "@ana"}]}}, "slack_id", "member id"),
        ({"routing": {"owners": [{"name": "A", "hours": "9-5"}]}}, "hours", "mon-fri 09:00"),
        ({"routing": {"owners": [{"name": "A"}], "rules": [{"owners": ["B"]}]}}, "routing", "'B'"),
        ({"routing": {"owners": [{"name": "A"}, {"name": "A"}]}}, "routing", "twice"),
    ],
)
def test_routing_mistakes_name_the_key_and_the_fix(routing, path, words):
    [problem] = problems_of(MINIMAL | routing, {"FB_APP_SECRET": "s"})
    assert problem.startswith(path) or f".{path}" in problem.split(":")[0]
    assert words in problem


def test_every_secret_of_every_destination_reaches_the_log_redactor(monkeypatch, tmp_path):
    """The SMTP password, CRM tokens, webhook secret and Slack URL of config.example.toml
    (and the store URL's password) are masked in logs, not only Facebook's tokens."""
    secrets = {
        "FB_APP_SECRET": "fb-app-secret-9f2c", "FB_VERIFY_TOKEN": "fb-verify-token-41d",
        "FB_ACCESS_TOKEN": "fb-access-token-7ab", "LEADSYNC_EVENTS_TOKEN": "events-token-c3e",
        "LEADSYNC_ADMIN_TOKEN": "admin-token-d5f", "HUBSPOT_TOKEN": "pat-na1-hubspot-e6a",
        "SMTP_PASSWORD": "smtp-password-b8c",
        "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T1/B2/slack-secret-path",
        "LEADSYNC_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    }  # fmt: skip
    for name, value in {**secrets, "FB_APP_ID": "1", "SMTP_USER": "leads"}.items():
        monkeypatch.setenv(name, value)
    key = TokenAuthority().new_key("https://oauth2.googleapis.com/token")
    (tmp_path / "service-account.json").write_text(json.dumps(key))
    monkeypatch.chdir(tmp_path)
    settings = load_config(ROOT / "config.example.toml")
    store_url = "postgresql://leadsync:pg-password-0e1@db/leadsync"
    settings = settings.model_copy(
        update={"store": settings.store.model_copy(update={"url": store_url})}
    )

    redactor = Redactor(secret_values(settings))
    line = " ".join([*secrets.values(), "pg-password-0e1"])
    cleaned = str(redactor(None, "info", {"event": "x", "detail": line})["detail"])

    for value in [*secrets.values(), "pg-password-0e1"]:
        assert value not in cleaned
