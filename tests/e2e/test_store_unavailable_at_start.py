"""`leadsync run` started before its store is reachable waits for it, then starts normally.

PostgreSQL not up yet (a TCP proxy that refuses until released, the real server
behind it) and a SQLite file that cannot be written (read-only until fixed):
meanwhile the HTTP server is up, `/healthz` answers 503 `store_unavailable`,
webhooks get 503 (Meta retries), the log has one line per change of failure
(no traceback, no password), and once the store is reachable the daemon
stores webhooks without a restart.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from leadsync.emulators.graph import GraphEmulator
from leadsync.store import open_store
from tests.daemon_harness import wait_until
from tests.e2e.process import LeadsyncProcess, free_port, write_config
from tests.e2e.test_clean_stop import error_lines
from tests.e2e.test_store_outage import CuttableProxy, health, post_lead
from tests.store_fixtures import run_sql

pytestmark = pytest.mark.e2e

PASSWORD = "pw-never-logged-7731"


class ReadOnly:
    """Makes a file unwritable, even for root (whose writes ignore permission bits)."""

    def __init__(self, path: Path):
        self.path = path

    def set(self) -> None:
        if os.geteuid() != 0:
            self.path.chmod(0o444)
        elif subprocess.run(["chattr", "+i", str(self.path)], capture_output=True).returncode:
            pytest.skip("running as root and chattr +i is not allowed here")

    def clear(self) -> None:
        if os.geteuid() != 0:
            self.path.chmod(0o644)
        else:
            subprocess.run(["chattr", "-i", str(self.path)], check=True)


def store_unavailable_lines(output: str) -> list[dict]:
    events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [event for event in events if event["event"] == "store.unavailable"]


def unexpected_errors(output: str) -> list[str]:
    """Error lines besides the store's one line and each refused webhook's (Meta retries it)."""
    expected = ('"store.unavailable"', '"notifications.commit_failed"')
    return [line for line in error_lines(output) if not any(e in line for e in expected)]


def unavailable_reason(url: str) -> str:
    status, reasons = health(url)
    return reasons[0] if status == 503 and reasons[0].startswith("store_unavailable: ") else ""


def daemon_before_its_store(
    graph: GraphEmulator, store_url: str, tmp_path: Path
) -> LeadsyncProcess:
    """`leadsync run` on page 111 (webhooks of other pages are dropped unstored), started
    without waiting for its store: the test watches it wait."""
    graph.add_page("111", "Acme")
    port = free_port()
    config = write_config(tmp_path / "leadsync.toml", graph, store_url, port, ["111"])
    daemon = LeadsyncProcess(config, port, tmp_path / "leadsync.log")
    daemon.start(wait_for_store=False)
    return daemon


@pytest.fixture
def read_only_db(tmp_path) -> Iterator[tuple[Path, ReadOnly]]:
    """A migrated SQLite store file, read-only until the test clears the lock."""
    db = tmp_path / "leadsync.db"
    store = open_store(f"sqlite:///{db}")
    store.migrate()
    store.close()
    lock = ReadOnly(db)
    lock.set()
    try:
        yield db, lock
    finally:
        lock.clear()


def test_a_read_only_sqlite_store_is_waited_for_then_used(read_only_db, tmp_path):
    db, lock = read_only_db
    with GraphEmulator() as graph:
        daemon = daemon_before_its_store(graph, f"sqlite:///{db}", tmp_path)
        try:
            readonly = lambda: "readonly database" in unavailable_reason(daemon.url)  # noqa: E731
            wait_until(readonly, 30, "503 store_unavailable: ...readonly database")
            # The HTTP process commits webhooks to its own journal beside the store, which is
            # writable: the lead is acknowledged and waits there for the store.
            assert post_lead(graph, daemon.url, "2001") == 200
            assert requests.get(f"{daemon.url}/metrics", timeout=10).status_code == 200
            assert requests.get(f"{daemon.url}/", timeout=10).status_code == 503
            event = {"id": "e1", "lead_id": "2001", "type": "webinar", "at": "2026-01-01T00:00:00Z"}
            bearer = {"Authorization": "Bearer events-secret"}
            reply = requests.post(f"{daemon.url}/events", json=event, headers=bearer, timeout=10)
            assert reply.status_code == 503 and reply.headers["Retry-After"]
            lock.clear()
            wait_until(lambda: health(daemon.url)[0] == 200, 60, "healthy once writable")
            assert post_lead(graph, daemon.url, "2001") == 200  # again: stored once
            notified = lambda: run_sql(f"sqlite:///{db}", "SELECT 1 FROM notifications")  # noqa: E731
            wait_until(notified, 30, "the journal's notification in the store")
            assert daemon.terminate() == 0, daemon.output()[-3000:]
        finally:
            daemon.ensure_stopped()
    output = daemon.output()
    assert len(store_unavailable_lines(output)) == 1, output[-3000:]
    assert unexpected_errors(output) == []
    assert "Traceback" not in output
    assert '"store.opened"' in output
    stored = run_sql(f"sqlite:///{db}", "SELECT lead_id FROM notifications")
    assert stored == [("2001",)]


@pytest.mark.postgres
def test_postgres_down_at_start_is_waited_for_and_the_password_never_logged(
    store_url_factory, tmp_path
):
    store_url = store_url_factory("postgres")
    proxy_port = free_port()
    proxied = store_url.replace(
        "postgres@127.0.0.1:5432/", f"postgres:{PASSWORD}@127.0.0.1:{proxy_port}/"
    )
    assert PASSWORD in proxied
    with GraphEmulator() as graph, CuttableProxy(proxy_port) as proxy:
        proxy.cut()  # nothing listens: connections are refused, as while PostgreSQL boots
        daemon = daemon_before_its_store(graph, proxied, tmp_path)
        try:
            wait_until(lambda: unavailable_reason(daemon.url), 30, "503 store_unavailable")
            assert post_lead(graph, daemon.url, "3001") == 503
            wait_until(lambda: store_unavailable_lines(daemon.output()), 30, "the log line")
            proxy.restore()
            wait_until(lambda: health(daemon.url)[0] == 200, 90, "healthy once reachable")
            assert post_lead(graph, daemon.url, "3001") == 200
            assert daemon.terminate() == 0, daemon.output()[-3000:]
        finally:
            daemon.ensure_stopped()
    output = daemon.output()
    assert PASSWORD not in output
    (line,) = store_unavailable_lines(output)
    assert line["store"] == proxied.replace(PASSWORD, "***")
    assert "Connection refused" in line["problem"]  # the reason, not a pool's timeout
    assert unexpected_errors(output) == []
    assert "Traceback" not in output
    assert run_sql(store_url, "SELECT lead_id FROM notifications") == [("3001",)]


def test_sigterm_while_waiting_for_the_store_exits_0(read_only_db, tmp_path):
    db, _ = read_only_db
    with GraphEmulator() as graph:
        daemon = daemon_before_its_store(graph, f"sqlite:///{db}", tmp_path)
        try:
            wait_until(lambda: unavailable_reason(daemon.url), 30, "503 store_unavailable")
            assert daemon.terminate() == 0, daemon.output()[-3000:]
        finally:
            daemon.ensure_stopped()
    assert unexpected_errors(daemon.output()) == []
    assert "Traceback" not in daemon.output()
