"""Closing the loop in a running daemon: a person types outcomes into the sheet it fills.

A real daemon (tests/daemon_harness.py) delivers leads from the Graph emulator
to the Sheets emulator; a person adds a Status and a Deal value column and
types into them, sorts the sheet, types a status again; the daemon's outcome
job reads the sheet every round (poll_interval is 1 s here) and keeps each
stage once. The same job reads a HubSpot destination's lifecycle stages.
"""

from __future__ import annotations

from decimal import Decimal

from leadsync.config import load_config
from leadsync.emulators.hubspot import HubSpotEmulator
from tests.daemon_harness import (
    DaemonThread,
    daemon_settings,
    sheet_rows,
    sheets_destination,
    wait_until,
)
from tests.e2e.process import free_port, sheets_destination_toml
from tests.test_reload import write


def type_into(sheets, lead_id: str, column: str, text: str) -> None:
    header = sheets.values("sales", "Leads")[0]
    row = 2 + [r["lead_id"] for r in sheet_rows(sheets)].index(lead_id)
    sheets.set_cell("sales", "Leads", f"{chr(ord('A') + header.index(column))}{row}", text)


def stages(store, lead_ids) -> dict[str, list[tuple]]:
    found = store.stages_for(lead_ids)
    return {i: [(s.stage, s.value) for s in v if s.stage != "mql"] for i, v in found.items()}


def rounds(sheets) -> int:
    return len(sheets.requests(op="values.batchGet"))


def test_a_person_s_outcomes_become_stages_once(graph, sheets, tmp_path):
    form_id = graph.add_form("111", "Demo", ["email", "job_title"])
    ids = [graph.create_lead(form_id, {"email": f"p{n}@acme.com"}) for n in range(4)]
    dest = sheets_destination(sheets, tmp_path, outcome_column="Status", value_column="Deal value")
    settings = daemon_settings(
        graph,
        f"sqlite:///{tmp_path / 'l.db'}",
        pages=["111"],
        destinations=[dest],
        facebook={"poll_interval": "1s"},
    )
    with DaemonThread(settings) as running:
        graph.set_webhook_target(f"{running.url}/webhook")
        graph.send_webhook(ids).result(timeout=30)
        wait_until(lambda: len(sheet_rows(sheets)) == 4, 30, "4 rows")
        sheets.add_column("sales", "Leads", "Status")
        sheets.add_column("sales", "Leads", "Deal value")
        sheets.sort_rows("sales", "Leads", "lead_id", descending=True)
        for lead_id, status in zip(ids, ["Contacted", "Qualified", "Won", "Lost"], strict=True):
            type_into(sheets, lead_id, "Status", status)
        type_into(sheets, ids[2], "Deal value", "$1,200.50")
        expected = {
            ids[0]: [("contacted", None)],
            ids[1]: [("sql", None)],
            ids[2]: [("won", Decimal("1200.50"))],
            ids[3]: [("lost", None)],
        }
        wait_until(lambda: stages(running.store, ids) == expected, 30, "four stages")
        type_into(sheets, ids[2], "Status", "Won")  # typed again
        type_into(sheets, ids[0], "Status", "Qualified")  # moved on
        wait_until(lambda: len(stages(running.store, ids)[ids[0]]) == 2, 30, "contacted -> sql")
        after = rounds(sheets)
        wait_until(lambda: rounds(sheets) >= after + 2, 30, "two more rounds")
        assert stages(running.store, ids) == expected | {
            ids[0]: [("contacted", None), ("sql", None)]
        }
        [won] = running.store.stages_for([ids[2]])[ids[2]][-1:]
        assert won.source == "google_sheets:sheet"


def test_a_salesperson_s_hubspot_stage_reaches_the_store_of_a_running_daemon(graph, tmp_path):
    form_id = graph.add_form("111", "Demo", ["email"])
    lead_id = graph.create_lead(form_id, {"email": "dana@umbrella.com"})
    with HubSpotEmulator() as hubspot:
        dest = {"name": "crm", "type": "hubspot", "token": hubspot.token, "api_url": hubspot.url}
        settings = daemon_settings(
            graph,
            f"sqlite:///{tmp_path / 'l.db'}",
            pages=["111"],
            destinations=[dest],
            facebook={"poll_interval": "1s"},
        )
        with DaemonThread(settings) as running:
            graph.set_webhook_target(f"{running.url}/webhook")
            graph.send_webhook([lead_id]).result(timeout=30)
            [contact] = wait_until(lambda: hubspot.contacts_with("email", "dana@umbrella.com"))
            hubspot.set_property(contact["id"], "lifecyclestage", "customer")
            wait_until(lambda: stages(running.store, [lead_id]) == {lead_id: [("won", None)]}, 30)
            statuses = running.store.statuses()
            assert all(s.ok for s in statuses if s.service.startswith("outcomes:"))  # no failure


def test_sighup_that_names_a_status_column_starts_reading_it(graph, sheets, tmp_path):
    form_id = graph.add_form("111", "Demo", ["email"])
    lead_id = graph.create_lead(form_id, {"email": "p1@acme.com"})
    config = tmp_path / "leadsync.toml"
    plain = sheets_destination_toml(sheets, tmp_path, spreadsheet="sales", name="sheet")
    write(config, graph, port=free_port(), pages=["111"], dests=plain, poll="1s")

    def outcome_jobs(running) -> list[str]:
        jobs = running.daemon.scheduler.get_jobs()
        return sorted(j.id for j in jobs if j.id.startswith("outcomes:"))

    with DaemonThread(load_config(config), config_path=config) as running:
        graph.set_webhook_target(f"{running.url}/webhook")
        graph.send_webhook([lead_id]).result(timeout=30)
        wait_until(lambda: len(sheet_rows(sheets)) == 1, 30, "the row")
        assert outcome_jobs(running) == []
        sheets.add_column("sales", "Leads", "Status")
        type_into(sheets, lead_id, "Status", "Qualified")
        with_status = plain + 'outcome_column = "Status"\n'
        write(config, graph, port=free_port(), pages=["111"], dests=with_status, poll="1s")
        running.run(running.daemon.reload_config())
        assert outcome_jobs(running) == ["outcomes:sheet"]
        wait_until(lambda: stages(running.store, [lead_id]) == {lead_id: [("sql", None)]}, 30)
