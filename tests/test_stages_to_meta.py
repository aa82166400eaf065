"""Issue 13 end to end: every lead stage reaches Meta's Conversions API once, in order, promptly.

A real daemon (tests/daemon_harness.py) on a SQLite file takes leads by webhook
from the Graph emulator and delivers them to a sheet, a HubSpot account and a
CRM dataset (`meta_conversions`). A person marks rows in the sheet, a salesperson
moves a HubSpot contact to customer, and outcome events arrive by `POST /events`.
No score changes after that, so each stage reaches Meta only because recording
it queued a delivery (`StageRouter`). Meta's dataset (the emulator) must hold
each lead's stages once each, in stage order, with the Conversion Leads fields;
a stage older than Meta's 7 days is not sent and shows as expired.
"""

from __future__ import annotations

from datetime import timedelta

import requests

from leadsync.emulators.hubspot import HubSpotEmulator
from leadsync.models import STAGES, utcnow
from tests.daemon_harness import (
    DaemonThread,
    daemon_settings,
    sheet_rows,
    sheets_destination,
    wait_until,
)
from tests.test_outcomes_daemon import type_into

DATASET = "880000000000001"
# Every stage mapped, so contacted and lost travel too (the default map leaves them out).
NAMES = {
    "lead": "Lead",
    "mql": "Marketing Qualified Lead",
    "contacted": "Contacted",
    "sql": "Sales Qualified Lead",
    "won": "Converted",
    "lost": "Lost",
}
AUTH = {"Authorization": "Bearer events-secret"}


def meta_destination(graph) -> dict:
    return {
        "name": "meta",
        "type": "meta_conversions",
        "dataset_id": DATASET,
        "access_token": graph.access_token,
        "graph_url": graph.url,
        "stages": NAMES,
    }


def accepted(graph, lead_id: str) -> list[dict]:
    return [e for e in graph.conversion_events(DATASET) if e["user_data"]["lead_id"] == lead_id]


def expected_events(store, lead) -> list[tuple[str, int, str]]:
    """(event_name, event_time, event_id) of each stage the store holds, lead first."""
    stages = [("lead", lead.created_time)] + [
        (s.stage, s.reached_at) for s in store.stages_for([lead.id]).get(lead.id, [])
    ]
    return [
        (NAMES[name], int(at.timestamp()), f"{lead.id}.{name}")
        for name, at in sorted(stages, key=lambda s: STAGES.index(s[0]))
    ]


def sent(graph, lead_id: str) -> list[tuple[str, int, str]]:
    return [(e["event_name"], e["event_time"], e["event_id"]) for e in accepted(graph, lead_id)]


def outcome_event(event_id: str, lead_id: str, stage: str, ago: timedelta, **more: str) -> dict:
    at = (utcnow() - ago).isoformat()
    return {"id": event_id, "lead_id": lead_id, "type": stage, "at": at, **more}


def post_events(running, events: list[dict]) -> None:
    reply = requests.post(f"{running.url}/events", json=events, headers=AUTH, timeout=10)
    assert reply.status_code == 200, reply.text


def test_each_stage_from_every_source_reaches_meta_once_in_order(graph, sheets, tmp_path):
    graph.add_dataset(DATASET)
    form_id = graph.add_form("111", "Demo", ["email", "job_title"])
    day_ago = utcnow() - timedelta(days=1)
    ids = [
        graph.create_lead(form_id, {"email": f"p{n}@acme.com"}, created_time=day_ago)
        for n in range(6)
    ]
    old = graph.create_lead(
        form_id, {"email": "old@acme.com"}, created_time=utcnow() - timedelta(days=10)
    )
    sheet = sheets_destination(sheets, tmp_path, outcome_column="Status", value_column="Deal value")
    with HubSpotEmulator() as hubspot:
        crm = {"name": "crm", "type": "hubspot", "token": hubspot.token, "api_url": hubspot.url}
        settings = daemon_settings(
            graph,
            f"sqlite:///{tmp_path / 'l.db'}",
            pages=["111"],
            destinations=[sheet, crm, meta_destination(graph)],
            facebook={"poll_interval": "1s"},
        )
        with DaemonThread(settings) as running:
            graph.set_webhook_target(f"{running.url}/webhook")
            graph.send_webhook([*ids, old]).result(timeout=30)
            wait_until(lambda: len(sheet_rows(sheets)) == 7, 30, "7 rows")
            wait_until(lambda: all(accepted(graph, i) for i in ids), 30, "each lead at Meta")
            sheets.add_column("sales", "Leads", "Status")
            sheets.add_column("sales", "Leads", "Deal value")
            for lead_id, status in zip(
                ids, ["Contacted", "Qualified", "Won", "Lost"], strict=False
            ):
                type_into(sheets, lead_id, "Status", status)
            type_into(sheets, ids[2], "Deal value", "$1,200.50")
            [contact] = wait_until(lambda: hubspot.contacts_with("email", "p4@acme.com"))
            hubspot.set_property(contact["id"], "lifecyclestage", "customer")
            post_events(
                running,
                [
                    outcome_event("o1", ids[5], "contacted", timedelta(hours=3)),
                    outcome_event("o2", ids[5], "won", timedelta(hours=1), value="90"),
                    outcome_event("o3", old, "won", timedelta(days=8)),
                ],
            )
            outcome = {0: "contacted", 1: "sql", 2: "won", 3: "lost", 4: "won", 5: "won"}
            store = running.store

            def reached() -> bool:
                found = store.stages_for(ids)
                return all(
                    outcome[n] in [s.stage for s in found.get(i, [])] for n, i in enumerate(ids)
                )

            wait_until(reached, 30, "every outcome stored")
            leads = store.get_leads(ids)
            for lead_id in ids:
                wait_until(
                    lambda i=lead_id: sent(graph, i) == expected_events(store, leads[i]),
                    30,
                    f"the stages of {lead_id} at Meta",
                )
            wait_until(lambda: store.expired_stages(), 30, "the old stage given up")
            status_page = requests.get(running.url, timeout=10).text
            stages = store.stages_for(ids)
            expired = {(e.lead_id, e.destination, e.stage) for e in store.expired_stages()}

        counts = graph.conversion_counts(DATASET)
        assert counts["duplicates"] == 0
        for lead_id in ids:
            names = [s.stage for s in stages[lead_id]]
            assert len(names) == len(set(names))  # each stage stored once
        [won] = [e for e in accepted(graph, ids[2]) if e["event_name"] == "Converted"]
        assert won["action_source"] == "system_generated"
        assert won["user_data"] == {"lead_id": ids[2]}
        custom = won["custom_data"]
        assert (custom["event_source"], custom["lead_event_source"]) == ("crm", "leadsync")
        assert (custom["value"], custom["currency"].upper()) == (1200.5, "USD")
        assert accepted(graph, old) == []  # 10 days old: Meta would refuse the whole request
        assert expired == {(old, "meta", "lead"), (old, "meta", "won")}
        table = status_page.split('id="expired"')[1].split("</table>")[0]
        assert old in table and "won" in table
