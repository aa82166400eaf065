"""`leadsync run` killed with SIGKILL during a webhook burst keeps every acknowledged lead.

A 200 to a webhook means the notification is on disk: after a restart, every
lead whose webhook got a 200 ends up stored. SIGTERM then stops it cleanly.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from leadsync.emulators.graph import GraphEmulator
from leadsync.store import open_store
from tests.daemon_harness import wait_until
from tests.e2e.process import LeadsyncProcess, free_port, write_config

pytestmark = pytest.mark.e2e


def test_sigkill_mid_burst_loses_no_acknowledged_lead(tmp_path):
    with GraphEmulator() as graph:
        form_id = graph.add_form("111", "Burst", ["full_name", "email"])
        ids = [graph.create_lead(form_id, {"email": f"p{n}@example.com"}) for n in range(600)]
        store_url = f"sqlite:///{tmp_path / 'leadsync.db'}"
        port = free_port()
        config = write_config(tmp_path / "leadsync.toml", graph, store_url, port, ["111"])
        proc = LeadsyncProcess(config, port, tmp_path / "leadsync.log").start()
        acked: list[str] = []
        lock = threading.Lock()
        killed = threading.Event()

        def send(lead_id: str) -> None:
            if killed.is_set():
                return
            body, signature = graph.webhook_body([lead_id])
            headers = {"X-Hub-Signature-256": signature, "Content-Type": "application/json"}
            try:
                reply = requests.post(f"{proc.url}/webhook", data=body, headers=headers, timeout=5)
            except requests.ConnectionError:
                return
            if reply.status_code == 200:
                with lock:
                    acked.append(lead_id)
                    if len(acked) == 250:
                        proc.kill()  # mid-flight: other requests are being committed right now
                        killed.set()

        try:
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(send, ids))
            assert killed.is_set() and len(acked) >= 250
            proc.start()  # same store, same port
            wait_until(lambda: _stored(store_url, acked), 60, "every acknowledged lead stored")
            assert proc.terminate() == 0, proc.output()[-3000:]
        finally:
            proc.ensure_stopped()


def _stored(store_url: str, lead_ids: list[str]) -> bool:
    store = open_store(store_url)
    try:
        return len(store.get_leads(lead_ids)) == len(lead_ids)
    finally:
        store.close()
