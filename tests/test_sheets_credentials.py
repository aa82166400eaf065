"""The service-account key in each form users give it (sheets_client.load_key).

A path, the key JSON inline (as `credentials = "${GSA}"` gives it, quotes and all)
or the key JSON in base64 all reach the Sheets emulator over real google-auth; a
key in none of these forms is refused with the form expected, never its value.
"""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import ValidationError

from connectors.google_sheets import Settings, build
from connectors.sheets_client import load_key
from leadsync.check import check_destination
from leadsync.config import DestinationSettings, parse_config
from leadsync.emulators.sheets import SheetsEmulator
from leadsync.errors import ConfigError
from tests.test_google_sheets import lead, rows, scored

BOOK = "sheet-123"
ACCOUNT = "leadsync@demo-project.iam.gserviceaccount.com"


@pytest.fixture
def emu():
    with SheetsEmulator() as emulator:
        emulator.create_spreadsheet(BOOK, worksheets=["Sheet1"], shared_with=[ACCOUNT])
        yield emulator


@pytest.fixture
def key(emu) -> dict:
    return emu.service_account(ACCOUNT)


def secret_parts(value: str) -> list[str]:
    """Pieces of a credential value (16 characters each): none may appear in any output."""
    return [value[i : i + 16] for i in range(0, len(value) - 15, 8)]


def leaked(text: str, *values: str) -> list[str]:
    return [part for value in values for part in secret_parts(value) if part in text]


def accepted_forms(key: dict, tmp_path) -> dict[str, str]:
    path = tmp_path / "key.json"
    path.write_text(json.dumps(key, indent=2))
    text = json.dumps(key)
    encoded = base64.b64encode(text.encode()).decode()
    (tmp_path / "key.b64").write_text(base64.b64encode(json.dumps(key).encode()).decode())
    return {
        "path": str(path),
        "path of a file holding the base64": str(tmp_path / "key.b64"),
        "json": text,
        "json in double quotes": f'"{text}"',
        "json in single quotes": f"'{text}'",
        "json with real newlines in the key": text.replace("\\n", "\n"),
        "base64": encoded,
        "base64 wrapped at 76 columns": "\n".join(
            encoded[i : i + 76] for i in range(0, len(encoded), 76)
        ),
        "base64 url-safe, unpadded": base64.urlsafe_b64encode(text.encode()).decode().rstrip("="),
        "base64 in quotes": f'"{encoded}"',
    }


def test_each_accepted_form_delivers_to_the_sheet(emu, key, tmp_path):
    for form, value in accepted_forms(key, tmp_path).items():
        assert load_key(value) == key, form
        connector = build("sales", Settings(spreadsheet=BOOK, credentials=value, api_url=emu.url))
        connector.deliver([scored(lead(1))])
        assert [r["lead_id"] for r in rows(emu)] == ["100001"], form


def bad_forms(key: dict) -> dict[str, str]:
    text = json.dumps(key)
    encoded = base64.b64encode(text.encode()).decode()
    return {
        "truncated json": text[:-40],
        "quoted truncated json": f"'{text[:-40]}'",
        "base64 of truncated json": base64.b64encode(text[:-40].encode()).decode(),
        "base64 with a character lost": encoded[:100] + encoded[101:],
        "base64 cut short": encoded[:-7],
        "json of another kind of key": json.dumps({**key, "type": "authorized_user"}),
        "empty": "''",
        "the private key alone": key["private_key"],
    }


@pytest.mark.parametrize(
    "form",
    [
        "truncated json",
        "quoted truncated json",
        "base64 of truncated json",
        "base64 with a character lost",
        "base64 cut short",
        "json of another kind of key",
        "empty",
        "the private key alone",
    ],
)
def test_a_key_in_no_accepted_form_is_refused_without_echoing_it(key, form):
    """The config error names the key path and the forms expected, and quotes no part of it."""
    value = bad_forms(key)[form]
    raw = {
        "facebook": {"app_secret": "s", "verify_token": "v", "access_token": "t"},
        "destinations": [
            {"name": "sheet", "type": "google_sheets", "spreadsheet": BOOK, "credentials": value}
        ],
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, environ={})
    text = str(caught.value) + "\n".join(str(p) for p in caught.value.problems)
    assert [p.path for p in caught.value.problems] == ["destinations[0].credentials"]
    assert not leaked(text, value, key["private_key"]), text[:500]
    assert "key JSON" in text, text


def test_unreadable_path_says_why_without_echoing_it(tmp_path):
    missing = tmp_path / "nowhere" / "key.json"
    with pytest.raises(ValueError) as caught:
        load_key(str(missing))
    message = str(caught.value)
    assert "No such file or directory" in message
    assert "nowhere" not in message
    assert "base64" in message  # the forms that would have been accepted


def test_validation_error_does_not_carry_the_value(key):
    """Even printed whole, pydantic's error shows no input (it would show the key)."""
    value = json.dumps(key)[:-40]
    with pytest.raises(ValidationError) as caught:
        Settings(spreadsheet=BOOK, credentials=value)
    assert not leaked(str(caught.value), value)


def test_a_key_file_gone_after_the_config_was_read_is_a_check_failure(emu, key, tmp_path):
    """`leadsync check` and the daemon build connectors after validation: no ValueError then."""
    path = tmp_path / "key.json"
    path.write_text(json.dumps(key))
    settings = Settings(spreadsheet=BOOK, credentials=str(path), api_url=emu.url)
    path.unlink()
    destination = DestinationSettings(name="sales", type="google_sheets", settings=settings)
    finding = check_destination(destination)
    assert not finding.ok
    assert "No such file or directory" in finding.message and str(tmp_path) not in finding.message
