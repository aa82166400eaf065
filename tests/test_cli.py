"""The command line against the emulators: check, backfill, forms, status, replay (cli.py).

Commands run in-process through typer's runner, with a real config file, the real
SDKs over HTTP to the Graph and Sheets emulators, and a real SQLite store.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from leadsync.cli import app
from leadsync.emulators.graph import GraphEmulator
from leadsync.models import Lead, Score, utcnow
from leadsync.store import open_store
from tests.cli_config import write_cli_config

runner = CliRunner()


@pytest.fixture
def graph():
    with GraphEmulator() as emu:
        emu.add_page("111", "Acme")
        emu.subscribe_app("111")
        yield emu


def write_config(tmp_path, graph, sheets=None, *, share: bool = True) -> str:
    destination = ""
    if sheets is not None:
        key = sheets.service_account()
        (tmp_path / "key.json").write_text(json.dumps(key))
        sheets.create_spreadsheet(
            "book", "Sales", ["Leads"], shared_with=[key["client_email"]] if share else []
        )
        destination = f"""
[[destinations]]
name = "sheet"
type = "google_sheets"
spreadsheet = "book"
credentials = "{tmp_path / "key.json"}"
api_url = "{sheets.url}"
"""
    return write_cli_config(tmp_path, graph, extra=destination)


def test_check_passes_on_a_working_setup(graph, sheets, tmp_path):
    graph.add_form("111", "Demo", ["email"])
    result = runner.invoke(app, ["check", "-c", write_config(tmp_path, graph, sheets)])
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output
    assert "page 111: reachable (Acme)" in result.output
    assert "destination sheet: ready" in result.output


def test_check_names_each_problem_with_its_fix(graph, sheets, tmp_path):
    graph.unsubscribe_app("111")
    config = write_config(tmp_path, graph, sheets, share=False)
    result = runner.invoke(app, ["check", "-c", config])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.startswith("FAIL")]
    assert any(
        "not subscribed to leadgen" in line and "leadsync subscribe 111" in line for line in lines
    )
    assert any("no active lead forms" in line for line in lines)
    assert any("destination sheet" in line and "leadsync@" in line for line in lines)


def test_check_reports_an_expired_token(graph, tmp_path):
    graph.expire_token()
    result = runner.invoke(app, ["check", "-c", write_config(tmp_path, graph)])
    assert result.exit_code == 1
    assert "FAIL facebook token" in result.output
    assert graph.access_token not in result.output


def test_bad_config_lists_every_problem_with_key_path(tmp_path):
    path = tmp_path / "leadsync.toml"
    path.write_text('[facebook]\napp_secret = ""\npoll_interval = "often"\n')
    result = runner.invoke(app, ["status", "-c", str(path)])
    assert result.exit_code == 2
    assert "facebook.verify_token: Field required" in result.output
    assert "facebook.poll_interval: 'often' is not a duration" in result.output


def test_backfill_then_forms_show_what_was_read(graph, tmp_path):
    form_id = graph.add_form("111", "Demo", ["email"])
    old = utcnow() - timedelta(days=10)
    for n in range(30):
        graph.create_lead(
            form_id, {"email": f"x{n}@acme.com"}, created_time=old + timedelta(hours=n)
        )
    config = write_config(tmp_path, graph)
    result = runner.invoke(app, ["backfill", "--since", "30d", "-c", config])
    assert result.exit_code == 0, result.output
    assert "30 leads read, 30 new" in result.output
    again = runner.invoke(app, ["backfill", "--since", "30d", "-c", config])
    assert "0 leads read, 0 new" in again.output  # history already read: only topped up
    forms = runner.invoke(app, ["forms", "-c", config])
    assert form_id in forms.output and "Demo" in forms.output


def test_status_shows_dead_letters_and_replay_requeues_them(graph, tmp_path):
    config = write_config(tmp_path, graph)
    store = open_store(f"sqlite:///{tmp_path / 'l.db'}")
    store.migrate()
    from leadsync.abc import ScoreUpdate

    store.save_leads([Lead("77", utcnow(), "111", "5")])
    store.save_scores([ScoreUpdate("77", Score(10, False), ("sheet",))])
    items = store.claim("sheet", 10, "test", timedelta(minutes=1))
    store.bury([i.id for i in items], "PermanentError: header has no lead_id column")
    store.close()
    status = runner.invoke(app, ["status", "-c", config])
    assert status.exit_code == 0, status.output
    assert "Dead letter" in status.output and "77" in status.output
    assert "header has no lead_id column" in status.output
    replay = runner.invoke(app, ["replay", "--destination", "sheet", "-c", config])
    assert "1 dead-lettered deliveries queued again" in replay.output
    after = runner.invoke(app, ["status", "-c", config])
    assert "Dead letter" not in after.output


def test_status_counts_stages_expired_for_a_destination(graph, tmp_path):
    config = write_config(tmp_path, graph)
    store = open_store(f"sqlite:///{tmp_path / 'l.db'}")
    store.migrate()
    from leadsync.abc import ScoreUpdate
    from leadsync.models import DeliveryResult

    store.save_leads([Lead("78", utcnow(), "111", "5")])
    store.save_scores([ScoreUpdate("78", Score(10, False), ("meta",))])
    items = store.claim("meta", 10, "test", timedelta(minutes=1))
    store.complete(items, [DeliveryResult("78", None, "lead,sql!expired")])
    store.close()
    status = runner.invoke(app, ["status", "-c", config])
    assert status.exit_code == 0, status.output
    assert "1 lead stages expired (not sent)" in status.output
    assert "Expired stages" in status.output and "sql" in status.output


def test_status_counts_notifications_waiting_in_the_store_and_the_journal(graph, tmp_path):
    from leadsync.ingest.journal import IngestJournal
    from leadsync.models import Notification

    config = write_config(tmp_path, graph)
    store = open_store(f"sqlite:///{tmp_path / 'l.db'}")
    store.migrate()
    store.add_notifications([Notification("81", "111", "5")])
    journal = IngestJournal(tmp_path / "l.db")  # as the HTTP process commits webhooks
    journal.add_notifications([Notification("82", "111", "5"), Notification("83", "111", "5")])
    journal.close()
    store.close()
    status = runner.invoke(app, ["status", "-c", config])
    assert status.exit_code == 0, status.output
    assert "3 notifications waiting to be fetched (oldest 20" in status.output
