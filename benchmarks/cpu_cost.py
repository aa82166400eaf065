"""CPU seconds per 1,000 notifications, for each role of leadsync's process trees.

The HTTP process answers webhooks while the load runs; the worker (issue 16,
`python -m leadsync worker`) fetches and scores what they stored and may still
be at it when the load stops. So a `CpuMeter` reads utime + stime of every
process of the trees before the measured load, again right after it (the
HTTP figure), and once more after `wait_fetched` has seen every stored
notification become a lead (the worker's and the whole tree's figures), so the
worker's figure covers its whole share of the work. With one process (before
issue 16) that process is the HTTP role and fetches as well; the tree's
figure is the one to compare across both layouts. A process that exits
between two readings takes its CPU seconds with it: `vanished` says so.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from benchmarks.processes import HTTP, WORKER, read_tree
from leadsync.ingest.journal import waiting_notifications
from leadsync.store import postgres_target

FETCH_TIMEOUT = 180.0  # seconds for the worker to fetch a measured round's backlog
POLL_SECONDS = 0.1

# pid -> (the tree's root, the process's role, its CPU seconds)
Snapshot = dict[int, tuple[int, str, float]]


def store_counts(url: str) -> tuple[int, int]:
    """(notifications, leads) in the store, read behind the daemons' backs; on SQLite the
    notifications still in the HTTP process's journal count too."""
    query = "SELECT (SELECT count(*) FROM notifications), (SELECT count(*) FROM leads)"
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            notifications, leads = conn.execute(query).fetchone()
        return notifications + len(journal_ids(Path(path))), leads
    conninfo, schema = postgres_target(url)
    with psycopg.connect(conninfo) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        row = conn.execute(query).fetchone()
        assert row is not None
        return row[0], row[1]


def journal_ids(db: Path) -> list[str]:
    """The lead ids in the journal beside a SQLite store that the store has not copied yet."""
    return [note.lead_id for note in waiting_notifications(db)]


def wait_fetched(url: str, timeout: float = FETCH_TIMEOUT) -> bool:
    """Waits until every stored (that is, acknowledged) notification is a stored lead;
    False when `timeout` passed first."""
    deadline = time.monotonic() + timeout
    while True:
        notifications, leads = store_counts(url)
        if leads >= notifications:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_SECONDS)  # the worker reports nothing we could wait on


def snapshot(roots: Sequence[int]) -> Snapshot:
    return {r.pid: (root, r.role, r.cpu_seconds) for root in roots for r in read_tree(root)}


@dataclass
class CpuMeter:
    """CPU seconds spent by each role of the trees at `roots` between the readings."""

    roots: Sequence[int]
    readings: dict[str, Snapshot] = field(default_factory=dict)

    def read(self, moment: str) -> None:
        """Reads every process now: `start`, `load_done`, then `fetched`."""
        self.readings[moment] = snapshot(self.roots)

    def spent(self, until: str, role: str | None = None, root: int | None = None) -> float | None:
        """CPU seconds of `role` (None: all) in the tree at `root` (None: all) from `start` to
        `until`; None when no such process ran."""
        before, after = self.readings["start"], self.readings[until]
        chosen = [
            (pid, cpu)
            for pid, (tree, kind, cpu) in after.items()
            if (role is None or kind == role) and (root is None or tree == root)
        ]
        if not chosen:
            return None
        return sum(cpu - before.get(pid, (0, "", 0.0))[2] for pid, cpu in chosen)

    def vanished(self) -> int:
        """Processes read at the start that were gone at the end (their CPU is not counted)."""
        return len(set(self.readings["start"]) - set(self.readings["fetched"]))

    def per_thousand(self, notifications: int, root: int | None = None) -> dict[str, float | None]:
        """CPU seconds per 1,000 `notifications`: the HTTP process during the load, the worker
        and the whole tree until everything was fetched."""
        spans = {HTTP: ("load_done", HTTP), WORKER: ("fetched", WORKER), "all": ("fetched", None)}
        figures: dict[str, float | None] = {}
        for name, (until, role) in spans.items():
            seconds = self.spent(until, role, root)
            figures[name] = None if seconds is None else 1000 * seconds / max(notifications, 1)
        return figures
