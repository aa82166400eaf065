"""`leadsync run`'s two processes die one at a time, and no acknowledged lead is lost or doubled.

`leadsync run` is an HTTP process that acknowledges webhooks into its inbox and a
worker it supervises (fetch, score, deliver). Here each is SIGKILLed alone in the
middle of a webhook burst:

- the worker: the HTTP process keeps answering 200 (the inbox takes the webhooks),
  `/healthz` says `worker_down` or `worker_starting` until the restarted worker
  answers, `/metrics` counts one restart, and every acknowledged lead reaches the
  store and the sheet once;
- the HTTP process: the orphaned worker sees its stdin close and stops by itself
  (`worker.parent_gone`), nothing is left running, and `leadsync run` started
  again on the same store delivers every acknowledged lead once.

And SIGTERM to the HTTP process stops both within the grace period, exit code 0; a
SIGKILL of both leaves the worker's socket folder, which the next start removes.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from leadsync.constants import SHUTDOWN_GRACE_SECONDS
from leadsync.emulators.graph import GraphEmulator
from leadsync.models import utcnow
from leadsync.store import open_store
from tests.daemon_harness import sheet_rows, wait_until
from tests.e2e.process import (
    LeadsyncProcess,
    free_port,
    group_alive,
    sheets_destination_toml,
    write_config,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

PAGE = "111"
LEADS = 600
SENDERS = 8  # concurrent webhook POSTs, as Meta's delivery fleet would have
KILL_AFTER_ACKS = 200  # a third of the burst: the rest arrives while the process is gone
WORKER_REASONS = ("worker_down", "worker_starting")


@dataclass
class Reply:
    lead_id: str
    status: int | str  # the HTTP status, or the error's name when the POST got no answer
    sent: float  # time.monotonic() before the POST
    answered: float  # and after it


@dataclass
class Burst:
    """Posts one signed webhook per lead from several threads; `on_ack` sees the count."""

    graph: GraphEmulator
    url: str
    on_ack: Callable[[int], None] | None = None  # given the number of 200s so far, in order
    replies: list[Reply] = field(default_factory=list)
    _acks: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, lead_ids: list[str]) -> None:
        with ThreadPoolExecutor(SENDERS) as pool:
            list(pool.map(self._send, lead_ids))

    def _send(self, lead_id: str) -> None:
        body, signature = self.graph.webhook_body([lead_id])
        headers = {"X-Hub-Signature-256": signature, "Content-Type": "application/json"}
        sent = time.monotonic()
        try:
            reply = requests.post(f"{self.url}/webhook", data=body, headers=headers, timeout=10)
            status: int | str = reply.status_code
        except requests.ConnectionError as exc:
            status = type(exc).__name__
        with self._lock:
            self.replies.append(Reply(lead_id, status, sent, time.monotonic()))
            if status == 200:
                self._acks += 1
                if self.on_ack is not None:
                    self.on_ack(self._acks)

    @property
    def acked(self) -> list[str]:
        return [r.lead_id for r in self.replies if r.status == 200]


class HealthWatch:
    """Reads `/healthz` every few milliseconds in a thread: (time, reason codes, restarts)."""

    def __init__(self, url: str):
        self.url = url
        self.seen: list[tuple[float, list[str], int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> HealthWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            try:
                body = requests.get(f"{self.url}/healthz", timeout=5).json()
            except requests.RequestException:
                continue
            codes = [reason.partition(":")[0] for reason in body["reasons"]]
            self.seen.append((time.monotonic(), codes, body["worker"]["restarts"]))

    def worker_back_at(self, after: float) -> float | None:
        """When `/healthz`, having named a worker reason after `after`, first named none again."""
        down = [t for t, codes, _ in self.seen if t > after and set(codes) & set(WORKER_REASONS)]
        if not down:
            return None
        back = [
            t for t, codes, _ in self.seen if t > down[0] and not set(codes) & set(WORKER_REASONS)
        ]
        return back[0] if back else None


@pytest.fixture
def daemon(tmp_path, graph, sheets, store_url) -> Iterator[LeadsyncProcess]:
    """`leadsync run` (not started) on a fresh store of each backend, delivering to a sheet."""
    port = free_port()
    dest = sheets_destination_toml(sheets, tmp_path)
    config = write_config(tmp_path / "leadsync.toml", graph, store_url, port, [PAGE], dest)
    proc = LeadsyncProcess(config, port, tmp_path / "leadsync.log")
    try:
        yield proc
    finally:
        proc.ensure_stopped()


def make_leads(graph: GraphEmulator, count: int = LEADS) -> list[str]:
    """Leads only their webhooks bring in: a lost acknowledged webhook is a lost lead here.

    They were created two days ago, before the first poll's look-back, so the poller (which
    runs at each start) does not find them and cannot rescue what the inbox dropped.
    """
    form_id = graph.add_form(PAGE, "Restart", ["full_name", "email"])
    created = utcnow() - timedelta(days=2)
    return [
        graph.create_lead(form_id, {"email": f"p{n}@example.com"}, created_time=created)
        for n in range(count)
    ]


def test_sigkill_of_the_worker_mid_burst_keeps_webhooks_answered(daemon, graph, sheets, store_url):
    """Every webhook gets 200 while the worker is down; each lead lands once after its restart."""
    lead_ids = make_leads(graph)
    daemon.start()
    killed: list[float] = []

    def kill_worker_at(acks: int) -> None:
        if acks == KILL_AFTER_ACKS:  # other POSTs are being committed right now
            daemon.kill_worker()
            killed.append(time.monotonic())

    with HealthWatch(daemon.url) as health:
        burst = Burst(graph, daemon.url, kill_worker_at)
        burst.run(lead_ids)
        # /healthz says worker_down (or worker_starting), then recovers: that is when it did.
        back = wait_until(lambda: health.worker_back_at(killed[0]), 60, "the worker back")
    statuses = Counter(reply.status for reply in burst.replies)
    assert statuses == {200: LEADS}, statuses  # the HTTP process never stopped answering
    while_down = [r for r in burst.replies if killed[0] < r.sent and r.answered < back]
    assert while_down, "no webhook was answered while the worker was down"
    assert health.seen[-1][2] == 1  # /healthz's worker.restarts

    metrics = requests.get(f"{daemon.url}/metrics", timeout=10).text.splitlines()
    assert "leadsync_worker_restarts_total 1.0" in metrics
    assert "leadsync_worker_up 1.0" in metrics
    assert_each_lead_once(store_url, sheets, lead_ids)
    assert daemon.terminate() == 0, daemon.output()[-3000:]
    print(f"\n{len(while_down)} webhooks acknowledged while the worker was down")


def test_sigkill_of_the_http_process_stops_its_worker_and_a_restart_delivers(
    daemon, graph, sheets, store_url
):
    """The orphaned worker stops by itself; `leadsync run` again delivers each acknowledged lead."""
    lead_ids = make_leads(graph)
    daemon.start()
    group = daemon.proc.pid  # the session leader's pid is its group's id
    sockets = socket_folder(daemon)
    assert sockets.is_dir()
    stopped_in: list[float] = []

    def kill_http_at(acks: int) -> None:
        if acks == KILL_AFTER_ACKS:
            began = time.monotonic()
            daemon.kill_http()  # returns once no process of the group is left
            stopped_in.append(time.monotonic() - began)

    burst = Burst(graph, daemon.url, kill_http_at)
    burst.run(lead_ids)
    assert stopped_in and stopped_in[0] < SHUTDOWN_GRACE_SECONDS, stopped_in
    assert not group_alive(group)
    assert '"worker.parent_gone"' in daemon.output()
    assert not sockets.exists()  # the orphan removed the folder its dead parent left

    daemon.start()  # same store, same port
    assert_each_lead_once(store_url, sheets, burst.acked)
    assert daemon.terminate() == 0, daemon.output()[-3000:]
    print(f"\norphaned worker stopped {stopped_in[0]:.1f}s after the HTTP process died")


def test_sigkill_of_both_leaves_a_socket_folder_the_next_start_removes(daemon):
    """No process is left to remove the worker's socket folder when both die at once;
    `leadsync run` removes it when it starts again, and names its own after itself."""
    daemon.start()
    sockets = socket_folder(daemon)
    daemon.kill()
    assert [p.name for p in sockets.iterdir()] == ["public.sock"]  # no admin port here
    daemon.start()
    assert not sockets.exists()
    assert socket_folder(daemon).name.startswith(f"leadsync-{daemon.proc.pid}-")
    assert daemon.terminate() == 0, daemon.output()[-3000:]
    assert '"http.orphaned_sockets_removed"' in daemon.output()


def test_sigterm_to_the_http_process_stops_both_cleanly(daemon, graph, sheets, store_url):
    """SIGTERM: both processes stop within the grace period, exit code 0, no worker death."""
    lead_ids = make_leads(graph, 20)
    daemon.start()
    group = daemon.proc.pid
    Burst(graph, daemon.url).run(lead_ids)
    assert_each_lead_once(store_url, sheets, lead_ids)
    began = time.monotonic()
    assert daemon.terminate(timeout=SHUTDOWN_GRACE_SECONDS) == 0, daemon.output()[-3000:]
    assert time.monotonic() - began < SHUTDOWN_GRACE_SECONDS
    wait_until(lambda: not group_alive(group), 5, "the worker to be gone")
    output = daemon.output()
    assert '"worker.died"' not in output
    assert '"worker.stopped"' in output and '"http.stopped"' in output


def socket_folder(daemon: LeadsyncProcess) -> Path:
    """The folder of the worker's sockets, read from the worker's command line."""
    command = Path(f"/proc/{daemon.worker_pid}/cmdline").read_bytes().split(b"\0")
    return Path(command[command.index(b"--sockets") + 1].decode())


def assert_each_lead_once(store_url: str, sheets, lead_ids: list[str]) -> None:
    """Waits for every lead of `lead_ids` in the store and the sheet; no row is there twice."""
    wanted = set(lead_ids)

    def stored() -> bool:
        store = open_store(store_url)
        try:
            return len(store.get_leads(lead_ids)) == len(wanted)
        finally:
            store.close()

    wait_until(stored, 60, "every acknowledged lead stored")
    wait_until(lambda: wanted <= {r["lead_id"] for r in sheet_rows(sheets)}, 60, "every row")
    rows = Counter(r["lead_id"] for r in sheet_rows(sheets))
    assert [lead for lead, n in rows.items() if n > 1] == [], "duplicated rows"
