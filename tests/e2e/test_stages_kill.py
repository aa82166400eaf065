"""`leadsync run` SIGKILLed while it sends lead stages to Meta, then restarted.

The Conversions API request carrying the "won" stages is held by the Graph
emulator (a slow answer) and the daemon is killed while it waits: Meta has the
events, leadsync never heard so. After the restart the daemon sends them again
with the same event ids; Meta (the emulator) drops the resend, so every stage is
accepted exactly once and none is missing.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from leadsync.emulators.graph import GraphEmulator
from leadsync.models import utcnow
from tests.daemon_harness import wait_until
from tests.e2e.process import LeadsyncProcess, free_port, write_config

pytestmark = pytest.mark.e2e

DATASET = "880000000000002"
EVENTS_PATH = f"/{DATASET}/events"


def meta_toml(graph) -> str:
    return f"""
[[destinations]]
name = "meta"
type = "meta_conversions"
dataset_id = "{DATASET}"
access_token = "{graph.access_token}"
graph_url = "{graph.url}"
"""


def names_by_lead(graph) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for event in graph.conversion_events(DATASET):
        found.setdefault(event["user_data"]["lead_id"], []).append(event["event_name"])
    return found


def test_sigkill_while_sending_stages_sends_each_once_after_restart(tmp_path):
    with GraphEmulator() as graph:
        graph.add_dataset(DATASET)
        form_id = graph.add_form("111", "Demo", ["email"])
        day_ago = utcnow() - timedelta(days=1)
        ids = [
            graph.create_lead(form_id, {"email": f"p{n}@acme.com"}, created_time=day_ago)
            for n in range(5)
        ]
        port = free_port()
        store_url = f"sqlite:///{tmp_path / 'leadsync.db'}"
        config = write_config(
            tmp_path / "leadsync.toml", graph, store_url, port, ["111"], meta_toml(graph)
        )
        proc = LeadsyncProcess(config, port, tmp_path / "leadsync.log").start()
        try:
            graph.set_webhook_target(f"{proc.url}/webhook")
            graph.send_webhook(ids).result(timeout=30)
            wait_until(lambda: set(names_by_lead(graph)) == set(ids), 30, "each lead at Meta")
            graph.inject_fault("slow", path=EVENTS_PATH, seconds=3)
            before = graph.call_count(EVENTS_PATH)
            at = (utcnow() - timedelta(hours=1)).isoformat()
            events = [
                {"id": f"w{n}", "lead_id": i, "type": "won", "at": at} for n, i in enumerate(ids)
            ]
            reply = requests.post(
                f"{proc.url}/events",
                json=events,
                headers={"Authorization": "Bearer events-secret"},
                timeout=10,
            )
            assert reply.json()["stages"] == len(ids)
            wait_until(lambda: graph.call_count(EVENTS_PATH) > before, 30, "the won stages sent")
            proc.kill()  # Meta is still answering: it keeps the events, leadsync never hears
            wait_until(lambda: all("Converted" in v for v in names_by_lead(graph).values()), 30)
            proc.start()
            wait_until(lambda: graph.conversion_counts(DATASET)["duplicates"] > 0, 30, "a resend")
            assert proc.terminate() == 0, proc.output()[-3000:]
        finally:
            proc.ensure_stopped()
        assert names_by_lead(graph) == {i: ["Lead", "Converted"] for i in ids}
        ids_seen = [e["event_id"] for e in graph.conversion_events(DATASET)]
        assert len(ids_seen) == len(set(ids_seen)) == 2 * len(ids)  # each accepted once
