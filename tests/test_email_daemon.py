"""Email destinations through the real daemon: Graph emulator -> store -> score -> outbox ->
SMTP (a real aiosmtpd server with STARTTLS and login). A new lead and its MQL flip make one
alert each, the lead one acknowledgement; redelivered webhooks, repeated events and a restart
make none; a refused alert goes to the dead letter and a replay sends it once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import requests

from leadsync.emulators.graph import GraphEmulator
from tests.daemon_harness import DaemonThread, daemon_settings, wait_until
from tests.smtp_server import SmtpServer

OWNER = "sales@example.com"
HOT = "hot@example.com"
ANSWERS = {
    "full_name": "Dana Diaz",
    "email": "dana@umbrella.com",
    "job_title": "Director",
    "company_size": "1,000+",
}
ACK = {"subject": "Thanks, {{ first_name }}", "body": "We got your {{ form_name }} request.\n"}


def destinations(smtp: SmtpServer) -> list[dict[str, Any]]:
    return [
        {"name": "owners", "type": "email", **smtp.settings(to=[OWNER], acknowledge=ACK)},
        {"name": "hot", "type": "email", "only_mql": True, **smtp.settings(to=[HOT])},
    ]


def subjects(smtp: SmtpServer, to: str) -> list[str]:
    return [m["Subject"].split(" - ")[0] for m in smtp.messages_to(to)]


def flip_to_mql(url: str, lead_id: str) -> dict[str, Any]:
    """Engagement that takes the lead past the threshold (webinar + case study)."""
    now = datetime.now(UTC).isoformat()
    events = [
        {"id": "w1", "lead_id": lead_id, "type": "webinar_attended", "at": now},
        {"id": "c1", "lead_id": lead_id, "type": "case_study_downloaded", "at": now},
    ]
    headers = {"Authorization": "Bearer events-secret"}
    return requests.post(f"{url}/events", json=events, headers=headers, timeout=10).json()


def drained(running: DaemonThread) -> bool:
    stats = running.store.destination_stats()
    return running.store.pending_notifications(10) == [] and all(s.pending == 0 for s in stats)


def test_a_new_lead_and_its_mql_flip_send_one_email_each_and_redelivery_none(tmp_path, smtp):
    with GraphEmulator() as graph:
        store_url = f"sqlite:///{tmp_path / 'l.db'}"
        settings = daemon_settings(graph, store_url, pages=["111"], destinations=destinations(smtp))
        form_id = graph.add_form("111", "Demo", list(ANSWERS))
        lead_id = graph.create_lead(form_id, ANSWERS)
        with DaemonThread(settings) as running:
            graph.set_webhook_target(f"{running.url}/webhook")
            graph.send_webhook([lead_id], copies=2).result(timeout=30)
            wait_until(lambda: smtp.messages_to("dana@umbrella.com"), 30, "the acknowledgement")
            assert subjects(smtp, OWNER) == ["New lead: Demo"]
            assert subjects(smtp, HOT) == []  # not an MQL: the only_mql destination waits

            assert flip_to_mql(running.url, lead_id)["stored"] == 2
            wait_until(lambda: subjects(smtp, HOT), 30, "the MQL alert")
            wait_until(lambda: len(subjects(smtp, OWNER)) == 2, 30, "the owner's MQL alert")

            graph.send_webhook([lead_id]).result(timeout=30)  # the same lead, again
            assert flip_to_mql(running.url, lead_id)["duplicates"] == 2
            wait_until(lambda: drained(running), 30, "an empty outbox")
        with DaemonThread(settings) as restarted:  # a restart re-scores; nothing is resent
            wait_until(lambda: drained(restarted), 30, "an empty outbox after the restart")

    assert subjects(smtp, OWNER) == ["New lead: Demo", "MQL: Demo"]
    assert subjects(smtp, HOT) == ["MQL: Demo"]
    assert len(smtp.messages_to("dana@umbrella.com")) == 1


def test_a_refused_alert_is_dead_lettered_and_a_replay_sends_it_once(tmp_path, smtp):
    with GraphEmulator() as graph:
        store_url = f"sqlite:///{tmp_path / 'l.db'}"
        only_owners = destinations(smtp)[:1]
        settings = daemon_settings(graph, store_url, pages=["111"], destinations=only_owners)
        form_id = graph.add_form("111", "Demo", list(ANSWERS))
        lead_id = graph.create_lead(form_id, ANSWERS)
        smtp.refuse("RCPT", "550 5.7.1 relaying denied", address=OWNER)
        with DaemonThread(settings) as running:
            graph.set_webhook_target(f"{running.url}/webhook")
            graph.send_webhook([lead_id]).result(timeout=30)
            (dead,) = wait_until(lambda: running.store.dead_letters("owners"), 30, "a dead letter")
            assert dead.item.lead_id == lead_id and "550 5.7.1" in dead.last_error
            assert "sales@example.com" not in dead.last_error
            page = requests.get(f"{running.url}/", timeout=10).text  # the status page
            assert lead_id in page and "550 5.7.1" in page and "sales@example.com" not in page

            assert running.store.replay("owners", lead_id) == 1
            wait_until(lambda: smtp.messages_to(OWNER), 30, "the replayed alert")
            wait_until(lambda: drained(running), 30, "an empty outbox")

    assert subjects(smtp, OWNER) == ["New lead: Demo"]
    assert len(smtp.messages_to("dana@umbrella.com")) == 1
