"""One lead routed to a sheet, HubSpot, a signed webhook and Slack through the real daemon.

It arrives once in each; a later MQL change updates the sheet row and the HubSpot contact
in place, sends one more webhook document with a new revision id, and the Slack alert
exactly once. Every destination runs against its emulator over real HTTP.
"""

from __future__ import annotations

from datetime import UTC, datetime

import requests

from leadsync.emulators.graph import GraphEmulator
from leadsync.emulators.hubspot import HubSpotEmulator
from leadsync.emulators.receivers import SlackReceiver, WebhookReceiver
from leadsync.emulators.sheets import SheetsEmulator
from tests.daemon_harness import (
    DaemonThread,
    daemon_settings,
    sheet_rows,
    sheets_destination,
    wait_until,
)


def test_one_lead_four_destinations_once_each_and_mql_change_in_place(tmp_path):
    with (
        GraphEmulator() as graph,
        SheetsEmulator() as sheets,
        HubSpotEmulator() as hubspot,
        WebhookReceiver() as receiver,
        SlackReceiver() as slack,
    ):
        destinations = [
            sheets_destination(sheets, tmp_path),
            {"name": "crm", "type": "hubspot", "token": hubspot.token, "api_url": hubspot.url},
            {
                "name": "hook",
                "type": "webhook",
                "url": f"{receiver.url}/in",
                "secret": receiver.secret,
            },
            {"name": "hot", "type": "slack", "webhook_url": slack.webhook_url, "only_mql": True},
        ]
        settings = daemon_settings(
            graph, f"sqlite:///{tmp_path / 'l.db'}", pages=["111"], destinations=destinations
        )
        form_id = graph.add_form("111", "Demo", ["full_name", "email", "job_title", "company_size"])
        answers = {
            "full_name": "Dana Diaz",
            "email": "dana@umbrella.com",
            "job_title": "Director",
            "company_size": "1,000+",
        }  # noqa: E501
        lead_id = graph.create_lead(form_id, answers)
        with DaemonThread(settings) as running:
            graph.set_webhook_target(f"{running.url}/webhook")
            graph.send_webhook([lead_id], copies=2).result(timeout=30)

            def first_delivery() -> bool:
                return (
                    len(sheet_rows(sheets)) == 1
                    and len(hubspot.contacts_with("email", "dana@umbrella.com")) == 1
                    and len(receiver.documents_for(lead_id)) == 1
                )

            wait_until(first_delivery, 30, "the lead in the sheet, HubSpot and the webhook")
            assert sheet_rows(sheets)[0]["mql"] == "FALSE"
            assert slack.alerts_for(lead_id) == []  # not an MQL: Slack hears nothing

            just_now = datetime.now(UTC).isoformat()  # decaying points: no fixed date
            events = [
                {
                    "id": "w1",
                    "email": "dana@umbrella.com",
                    "type": "webinar_attended",
                    "at": just_now,
                },  # noqa: E501
                {
                    "id": "c1",
                    "lead_id": lead_id,
                    "type": "case_study_downloaded",
                    "at": just_now,
                },  # noqa: E501
            ]
            headers = {"Authorization": "Bearer events-secret"}
            reply = requests.post(f"{running.url}/events", json=events, headers=headers, timeout=10)
            assert reply.json()["stored"] == 2

            def flipped() -> bool:
                (contact,) = hubspot.contacts_with("email", "dana@umbrella.com")
                return (
                    sheet_rows(sheets)[0]["mql"] == "TRUE"
                    and contact["properties"].get("leadsync_mql") == "true"
                    and len(slack.alerts_for(lead_id)) == 1
                    and len(receiver.documents_for(lead_id)) == 2
                )

            wait_until(flipped, 30, "the MQL change in every destination")
            # Replaying the same webhook later changes nothing anywhere.
            graph.send_webhook([lead_id]).result(timeout=30)
            reply = requests.post(f"{running.url}/events", json=events, headers=headers, timeout=10)
            assert reply.json() == {"stored": 0, "duplicates": 2, "unknown_lead": [], "stages": 0}
            wait_until(lambda: running.store.pending_notifications(10) == [], 10)
        assert len(sheet_rows(sheets)) == 1
        assert len(hubspot.contacts_with("email", "dana@umbrella.com")) == 1
        assert len(slack.alerts_for(lead_id)) == 1
        ids = [message_id for message_id, _ in receiver.documents_for(lead_id)]
        assert len(ids) == 2 and len(set(ids)) == 2  # one document per revision, distinct ids
