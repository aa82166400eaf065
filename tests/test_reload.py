"""SIGHUP applies every config change it safely can and names what needs a restart (reload.py).

A real daemon runs in a thread on the Graph and Sheets emulators with a config
file; the test rewrites the file and runs the reload the SIGHUP handler runs.
"""

from __future__ import annotations

import logging
from pathlib import Path

from structlog.testing import capture_logs

from leadsync.config import load_config
from leadsync.reload import plan
from tests.daemon_harness import DaemonThread, sheet_rows, wait_until
from tests.e2e.process import free_port, sheets_destination_toml

QUESTIONS = ["full_name", "email", "job_title"]


def write(path: Path, graph, *, port: int, pages: list[str], dests: str, **scoring) -> Path:
    """The daemon's config file: one "Senior title" rule worth `points`, and `dests`."""
    page_tables = "".join(f'[[facebook.pages]]\nid = "{page}"\n' for page in pages)
    path.write_text(
        f"""
[facebook]
app_id = "{graph.app_id}"
app_secret = "{graph.app_secret}"
verify_token = "verify-me"
access_token = "{graph.access_token}"
graph_url = "{graph.url}"
poll_interval = "{scoring.get("poll", "1h")}"
{page_tables}
[server]
host = "127.0.0.1"
port = {port}

[store]
url = "sqlite:///{path.parent / "leadsync.db"}"

[logging]
level = "{scoring.get("level", "info")}"

[scoring]
threshold = {scoring.get("threshold", 60)}
[[scoring.rules]]
name = "Senior title"
field = "job_title"
matches = "(?i)\\\\bvp\\\\b"
points = {scoring.get("points", 20)}
{dests}"""
    )
    return path


def rows(sheets, spreadsheet: str) -> dict[str, dict[str, str]]:
    return {row["lead_id"]: row for row in sheet_rows(sheets, spreadsheet)}


def test_sighup_applies_destinations_rules_pages_and_log_level(graph, sheets, tmp_path):
    def dest(name: str) -> str:
        return sheets_destination_toml(sheets, tmp_path, spreadsheet=name, name=name)

    first_form = graph.add_form("111", "First", QUESTIONS)
    second_form = graph.add_form("222", "Second", QUESTIONS)
    config, port = tmp_path / "leadsync.toml", free_port()
    write(config, graph, port=port, pages=["111"], dests=dest("keep") + dest("drop"))
    root_level = logging.getLogger().level
    with DaemonThread(load_config(config), config_path=config) as running:
        graph.set_webhook_target(f"{running.url}/webhook")
        old_lead = graph.create_lead(first_form, {"full_name": "A", "job_title": "VP Sales"})
        graph.send_webhook([old_lead]).result(timeout=30)
        wait_until(lambda: old_lead in rows(sheets, "drop"), 30, "the lead in both sheets")
        wait_until(lambda: old_lead in rows(sheets, "keep"), 30, "the lead in both sheets")
        assert rows(sheets, "keep")[old_lead]["mql"] == "FALSE"  # 20 points
        unpolled = graph.create_lead(second_form, {"full_name": "B", "job_title": "Intern"})

        write(
            config, graph, port=free_port(), pages=["111", "222"], dests=dest("keep") + dest("new"),
            points=70, level="warning", poll="30m",
        )  # fmt: skip
        try:
            with capture_logs() as logged:
                change = running.run(running.daemon.reload_config())
            assert logging.getLogger().level == logging.WARNING
        finally:
            logging.getLogger().setLevel(root_level)

        assert change is not None and change.restart_needed == ["server.port"]
        (warning,) = [e for e in logged if e["event"] == "config.restart_needed"]
        assert warning["keys"] == ["server.port"]
        assert running.daemon.port == port  # still listening where it was
        # The rule change re-scored the lead: its row is updated in place, now an MQL.
        wait_until(lambda: rows(sheets, "keep")[old_lead]["mql"] == "TRUE", 30, "re-scored row")
        assert rows(sheets, "keep")[old_lead]["score"] == "70"
        # The added page is polled at once.
        wait_until(lambda: unpolled in rows(sheets, "keep"), 30, "the new page's lead")
        new_lead = graph.create_lead(first_form, {"full_name": "C", "job_title": "VP"})
        graph.send_webhook([new_lead]).result(timeout=30)
        wait_until(lambda: new_lead in rows(sheets, "new"), 30, "the lead in the added sheet")
        wait_until(lambda: new_lead in rows(sheets, "keep"), 30, "the lead in the kept sheet")
        assert new_lead not in rows(sheets, "drop")
        assert set(rows(sheets, "drop")) == {old_lead}
        # The webhook route takes the added page's leads too (its next poll is 30 min away).
        pushed = graph.create_lead(second_form, {"full_name": "D", "job_title": "VP"})
        graph.send_webhook([pushed]).result(timeout=30)
        wait_until(lambda: pushed in rows(sheets, "new"), 30, "the added page's webhook lead")


def test_a_plan_keeps_what_needs_a_restart_and_names_it(graph, sheets, tmp_path):
    dests = sheets_destination_toml(sheets, tmp_path, spreadsheet="s", name="s")
    current = load_config(write(tmp_path / "a.toml", graph, port=8080, pages=["1"], dests=dests))
    fresh_text = (tmp_path / "a.toml").read_text().replace('host = "127.0.0.1"', 'host = "::"')
    (tmp_path / "b.toml").write_text(
        fresh_text.replace("port = 8080", "port = 9090").replace("leadsync.db", "other.db")
    )
    change = plan(current, load_config(tmp_path / "b.toml"))
    assert change.restart_needed == ["server.host", "server.port", "store.url"]
    assert change.settings.server.port == 8080 and change.settings.store.url.endswith("leadsync.db")
    assert change.applied == []


def test_pages_forms_filters_and_poll_interval_apply_without_a_restart(graph, sheets, tmp_path):
    dests = sheets_destination_toml(sheets, tmp_path, spreadsheet="s", name="s")
    current = load_config(
        write(tmp_path / "a.toml", graph, port=8080, pages=["1", "2"], dests=dests)
    )
    text = (tmp_path / "a.toml").read_text().replace('id = "2"\n', 'id = "3"\nforms = ["77"]\n')
    (tmp_path / "b.toml").write_text(text.replace('poll_interval = "1h"', 'poll_interval = "2m"'))
    change = plan(current, load_config(tmp_path / "b.toml"))
    assert change.polling_changed and change.restart_needed == []
    pages = change.settings.facebook.pages
    assert [(p.id, p.forms) for p in pages] == [("1", None), ("3", ["77"])]
    assert change.settings.facebook.poll_interval.total_seconds() == 120


def test_routing_owners_rules_and_region_apply_without_a_restart(graph, sheets, tmp_path):
    dests = sheets_destination_toml(sheets, tmp_path, spreadsheet="s", name="s")
    current = load_config(write(tmp_path / "a.toml", graph, port=8080, pages=["1"], dests=dests))
    routing = '\n[contacts]\ndefault_region = "GB"\n[[routing.owners]]\nname = "Ana"\n'
    (tmp_path / "b.toml").write_text(routing + (tmp_path / "a.toml").read_text())
    change = plan(current, load_config(tmp_path / "b.toml"))
    assert change.restart_needed == []
    assert [o.name for o in change.settings.routing.owners] == ["Ana"]
    assert change.settings.contacts.default_region == "GB"
