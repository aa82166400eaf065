"""`leadsync check` and `leadsync run` as subprocesses: every credentials form, and no key shown.

The service-account key comes from `credentials = "${GSA}"`, as a deployment
passes it: a path, the key JSON (quoted or not) or its base64 all pass `check`
against the Sheets emulator; a key in none of those forms is refused by both
commands with the key path and the forms expected, and nothing they print holds
any part of the value or of the private key. An uncaught exception in a command
prints a traceback without local variables, which would hold such values.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest

from tests.e2e.process import write_config

pytestmark = pytest.mark.e2e

BOOK = "sales"


def secret_parts(value: str) -> list[str]:
    """Pieces of a credential value, 16 characters each: none may appear in the output."""
    return [value[i : i + 16] for i in range(0, len(value) - 15, 8)]


def leaked(text: str, *values: str) -> list[str]:
    return [part for value in values for part in secret_parts(value) if part in text]


def leadsync(config, *args: str, env: dict[str, str] | None = None) -> str:
    """`leadsync ARGS -c CONFIG` to completion; its exit code, stdout and stderr as one text."""
    environ = {**os.environ, "COLUMNS": "250", **(env or {})}
    cmd = [sys.executable, "-m", "leadsync", *args, "-c", str(config)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=environ, timeout=60)
    return f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"


@pytest.fixture
def setup(graph, sheets, tmp_path):
    """A config whose only destination reads its key from $GSA; the key it should hold."""
    key = sheets.service_account()
    sheets.create_spreadsheet(BOOK, "Sales", ["Leads"], shared_with=[key["client_email"]])
    destination = f"""
[[destinations]]
name = "sheet"
type = "google_sheets"
spreadsheet = "{BOOK}"
credentials = "${{GSA}}"
api_url = "{sheets.url}"
"""
    config = write_config(
        tmp_path / "leadsync.toml", graph, f"sqlite:///{tmp_path / 'l.db'}", 0, [], destination
    )
    return config, key


def test_each_credentials_form_passes_check(setup, tmp_path):
    config, key = setup
    (tmp_path / "key.json").write_text(json.dumps(key))
    text = json.dumps(key)
    forms = {
        "path": str(tmp_path / "key.json"),
        "quoted json": f"'{text}'",
        "base64": base64.b64encode(text.encode()).decode(),
    }
    for form, value in forms.items():
        output = leadsync(config, "check", env={"GSA": value})
        assert output.startswith("exit 0"), (form, output[-1500:])
        assert "destination sheet: ready" in output, form


@pytest.mark.parametrize("command", ["check", "run"])
def test_a_key_in_no_accepted_form_is_never_printed(setup, command):
    config, key = setup
    text = json.dumps(key)
    bad = {
        "truncated json": f'"{text[:-30]}"',
        "base64 of truncated json": base64.b64encode(text[:-30].encode()).decode(),
        "base64 cut short": base64.b64encode(text.encode()).decode()[:-7],
    }
    for form, value in bad.items():
        output = leadsync(config, command, env={"GSA": value})
        assert output.startswith("exit 2"), (form, output[-1500:])
        assert "destinations[0].credentials: " in output, form
        assert "base64" in output and "Traceback" not in output, form
        assert not leaked(output, value, key["private_key"]), (form, output[-1500:])


def test_an_uncaught_exception_prints_no_local_values(tmp_path):
    """Typer's rich traceback shows no locals: a secret held in a frame stays there."""
    script = (
        "from leadsync.cli import app\n"
        "@app.command()\n"
        "def explode() -> None:\n"
        "    access_token = 'EAAB' + 'tokenvalue' * 3\n"
        "    raise RuntimeError('the command failed')\n"
        "app(['explode'])\n"
    )
    environ = {k: v for k, v in os.environ.items() if k != "_TYPER_STANDARD_TRACEBACK"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**environ, "COLUMNS": "250"},
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1
    assert "RuntimeError: the command failed" in output  # the traceback is there, ...
    assert "tokenvaluetokenvalue" not in output  # ... without the value
