"""Three `leadsync run` replicas on one PostgreSQL database: every lead in the sheet exactly once.

Three processes share a fresh schema with the same config but their port.
1,800 leads arrive by signed webhook, spread round-robin over the three ports
as a load balancer would; a POST that fails (the replica is dead) is retried
on the next port, as Meta retries what got no 200. 200 more leads exist only
on Graph and reach the store by polling. Mid-burst the replica that holds the
sheet's delivery lease is SIGKILLed and restarted. Then every lead must be in
the emulated sheet once, with the score the store holds; the page must have
been polled by one replica at a time (read from each replica's JSON log); and
the dead replica's delivery lease must have passed to a live one.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from leadsync.constants import OUTBOX_CLAIM_LEASE
from leadsync.emulators.graph import GraphEmulator
from leadsync.store import open_store
from tests.daemon_harness import sheet_rows, wait_until
from tests.e2e.process import LeadsyncProcess, free_port, sheets_destination_toml, write_config
from tests.store_fixtures import run_sql

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

PAGE = "111"
QUESTIONS = ["full_name", "email", "job_title", "company_size"]
REPLICAS = 3
WEBHOOK_LEADS = 1_800
POLL_ONLY_LEADS = 200
SENDERS = 16  # concurrent webhook POSTs, as Meta's delivery fleet would have
KILL_AFTER_ACKS = 600  # a third of the burst: ingest, fetch and delivery are all in flight
DELIVERY_LEASE = "deliver:sheet"


class Spreader:
    """Posts signed webhook bodies round-robin over the replicas; a failed POST moves on."""

    def __init__(self, graph: GraphEmulator, ports: list[int]):
        self._graph = graph
        self._ports = ports
        self._turn = itertools.count()
        self._local = threading.local()
        self._lock = threading.Lock()
        self.acked: list[str] = []
        self.failovers = 0

    def send(self, lead_id: str) -> None:
        body, signature = self._graph.webhook_body([lead_id])
        headers = {"X-Hub-Signature-256": signature, "Content-Type": "application/json"}
        for _ in range(10 * len(self._ports)):
            port = self._ports[next(self._turn) % len(self._ports)]
            try:
                reply = self._session().post(
                    f"http://127.0.0.1:{port}/webhook", data=body, headers=headers, timeout=10
                )
            except requests.RequestException:
                reply = None  # refused or reset: that replica is dead, try the next one
            if reply is not None and reply.status_code == 200:
                with self._lock:
                    self.acked.append(lead_id)
                return
            with self._lock:
                self.failovers += 1
        raise AssertionError(f"no replica acknowledged the webhook for lead {lead_id}")

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session


def new_lead(graph: GraphEmulator, form_id: str, n: int) -> str:
    answers = {
        "full_name": f"Person {n}",
        "email": f"p{n}@acme.example",
        "job_title": "VP Sales" if n % 3 == 0 else "Analyst",
        "company_size": "1,000+" if n % 2 == 0 else "11-50",
    }
    return graph.create_lead(form_id, answers)


def start_replicas(tmp_path: Path, graph, sheets, store_url: str) -> list[LeadsyncProcess]:
    """Three replicas with one config but the port, started together (migrations race)."""
    destination = sheets_destination_toml(sheets, tmp_path, name="sheet")
    replicas = []
    for number in range(REPLICAS):
        port = free_port()
        config = write_config(
            tmp_path / f"replica-{number}.toml", graph, store_url, port, [PAGE], destination
        )
        replicas.append(LeadsyncProcess(config, port, tmp_path / f"replica-{number}.log"))
    with ThreadPoolExecutor(REPLICAS) as pool:
        list(pool.map(LeadsyncProcess.start, replicas))
    return replicas


def lease_owner(store_url: str, name: str) -> str:
    rows = run_sql(store_url, "SELECT owner FROM leases WHERE name = ?", (name,))
    return rows[0][0] if rows else ""


def delivering(store_url: str) -> str:
    """The delivery lease's owner while it holds claimed outbox items ("" otherwise)."""
    rows = run_sql(
        store_url,
        "SELECT owner FROM leases WHERE name = ? AND EXISTS (SELECT 1 FROM outbox"
        " WHERE state = 'pending' AND claimed_by = leases.owner)",
        (DELIVERY_LEASE,),
    )
    return rows[0][0] if rows else ""


def claimed_by(store_url: str, owner: str) -> int:
    rows = run_sql(
        store_url,
        "SELECT COUNT(*) FROM outbox WHERE state = 'pending' AND claimed_by = ?",
        (owner,),
    )
    return rows[0][0]


def replica_of(owner: str, replicas: list[LeadsyncProcess]) -> LeadsyncProcess:
    """The replica whose process is the lease owner `host:pid:instance`."""
    pid = int(owner.split(":")[1])
    return next(r for r in replicas if r.proc is not None and pid in r.pids)


def poll_rounds(replica: LeadsyncProcess) -> list[tuple[datetime, datetime]]:
    """(start, end) of each finished poll of the page, from the replica's JSON log."""
    rounds = []
    for line in replica.output().splitlines():
        if '"page.polled"' not in line:
            continue
        event = json.loads(line)
        end = datetime.fromisoformat(event["timestamp"])
        rounds.append((end - timedelta(seconds=event["seconds"]), end))
    return rounds


def overlapping(rounds: list[tuple[int, datetime, datetime]]) -> list[tuple]:
    """Pairs of poll rounds of different replicas whose times overlap."""
    return [
        (one, other)
        for one, other in itertools.combinations(rounds, 2)
        if one[0] != other[0] and one[1] < other[2] and other[1] < one[2]
    ]


def lease_takeovers(replica: LeadsyncProcess, name: str) -> list[datetime]:
    """When the replica took the named lease from nobody or from another replica."""
    return [
        datetime.fromisoformat(event["timestamp"])
        for event in map(json.loads, replica.output().splitlines())
        if event.get("event") == "lease.taken" and event.get("lease") == name
    ]


def all_delivered(sheets, store_url: str, lead_ids: set[str]) -> bool:
    """Every lead in the sheet with a score, and nothing left in the outbox."""
    if run_sql(store_url, "SELECT COUNT(*) FROM outbox WHERE state = 'pending'")[0][0]:
        return False
    rows = sheet_rows(sheets)
    return {row["lead_id"] for row in rows} >= lead_ids and all(row["score"] for row in rows)


@dataclass
class Kill:
    """The replica SIGKILLed mid-batch, and what it held then."""

    owner: str
    claimed_items: int
    at: float
    wall: datetime
    rows_before: int


def burst_with_a_kill(graph, sheets, store_url, form_id, replicas) -> tuple[Spreader, Kill, set]:
    """Sends the webhook burst; a third of the way, kills the delivering replica and restarts it.

    The poll-only leads appear on Graph while that replica is down. Returns every lead id.
    """
    webhook_ids = [new_lead(graph, form_id, n) for n in range(WEBHOOK_LEADS)]
    spreader = Spreader(graph, [replica.port for replica in replicas])
    with ThreadPoolExecutor(SENDERS) as pool:
        sending = [pool.submit(spreader.send, lead_id) for lead_id in webhook_ids]
        owner = wait_until(
            lambda: len(spreader.acked) >= KILL_AFTER_ACKS and delivering(store_url),
            90,
            "a third of the burst acknowledged and a delivery batch in hand",
        )
        victim = replica_of(owner, replicas)
        victim.kill()
        kill = Kill(
            owner,
            claimed_by(store_url, owner),
            time.monotonic(),
            datetime.now(UTC),
            len(sheet_rows(sheets)),
        )
        total = WEBHOOK_LEADS + POLL_ONLY_LEADS
        poll_ids = [new_lead(graph, form_id, n) for n in range(WEBHOOK_LEADS, total)]
        victim.start()  # a supervisor restarts it: same config, a new owner id
        for future in sending:
            future.result()
    return spreader, kill, set(webhook_ids) | set(poll_ids)


def assert_each_lead_once_with_its_score(sheets, store_url: str, everyone: set[str]) -> Counter:
    rows = sheet_rows(sheets)
    counts = Counter(row["lead_id"] for row in rows)
    assert counts == Counter(everyone), "each lead exactly once, none missing, none extra"
    store = open_store(store_url)
    try:
        scores = store.current_scores(sorted(everyone))
        assert store.count_leads() == len(everyone)
        stats = {s.destination: s for s in store.destination_stats()}
    finally:
        store.close()
    assert all(row["score"] == str(scores[row["lead_id"]][0].points) for row in rows)
    assert (stats["sheet"].pending, stats["sheet"].dead) == (0, 0)
    return counts


def assert_delivery_taken_over(sheets, store_url: str, replicas, kill: Kill) -> timedelta:
    """A live replica took the dead one's delivery lease once it ran out, and went on."""
    assert lease_owner(store_url, DELIVERY_LEASE) not in ("", kill.owner)
    takeovers = [t for r in replicas for t in lease_takeovers(r, DELIVERY_LEASE)]
    taken_after = min(t for t in takeovers if t > kill.wall) - kill.wall
    assert taken_after < OUTBOX_CLAIM_LEASE * 2, "taken over once the dead one's lease ran out"
    assert len(sheet_rows(sheets)) > kill.rows_before
    return taken_after


@pytest.mark.timeout(300)
def test_three_replicas_deliver_every_lead_once_through_a_sigkill(
    graph, sheets, store_url_factory, tmp_path
):
    began = time.monotonic()
    store_url = store_url_factory("postgres")
    form_id = graph.add_form(PAGE, "Demo", QUESTIONS)
    replicas = start_replicas(tmp_path, graph, sheets, store_url)
    try:
        spreader, kill, everyone = burst_with_a_kill(graph, sheets, store_url, form_id, replicas)
        wait_until(
            lambda: all_delivered(sheets, store_url, everyone), 180, "all 2,000 leads delivered"
        )
        finished = time.monotonic()
        counts = assert_each_lead_once_with_its_score(sheets, store_url, everyone)
        taken_after = assert_delivery_taken_over(sheets, store_url, replicas, kill)

        # Delivery may finish before the page was polled often: give the pollers a few rounds.
        def rounds_so_far() -> list[tuple]:
            return [
                (n, *span) for n, replica in enumerate(replicas) for span in poll_rounds(replica)
            ]

        wait_until(lambda: len(rounds_so_far()) >= 3, 30, "three polls of the page")
        rounds = rounds_so_far()
        assert overlapping(rounds) == [], "two replicas polled the page at once"
        print(
            f"\nreplicas: {REPLICAS}, leads: {len(everyone)} ({WEBHOOK_LEADS} by webhook, "
            f"{POLL_ONLY_LEADS} by polling only), kills: 1 (holding {kill.claimed_items} claimed "
            f"items), failovers: {spreader.failovers}, duplicates: "
            f"{sum(c - 1 for c in counts.values())}, lost: {len(everyone - set(counts))}, "
            f"poll rounds: {len(rounds)} by replicas {sorted({n for n, _, _ in rounds})}, "
            f"delivery lease taken over after {taken_after.total_seconds():.1f}s, "
            f"kill to all delivered: {finished - kill.at:.1f}s, total: {finished - began:.1f}s"
        )
        for replica in replicas:
            assert replica.terminate() == 0, replica.output()[-3000:]
    finally:
        for replica in replicas:
            replica.ensure_stopped()
