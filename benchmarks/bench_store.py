"""Durable ingest throughput: notifications per second through `add_notifications`.

The webhook receiver groups concurrent requests into one store call (group
commit), so a commit, and its fsync, is paid once per group. This measures
that: batches of 32 notifications per `add_notifications` call, against the
naive baseline of one transaction per notification (what a handler that
commits each request on its own pays), on the same store in the same run.
Both write to a fresh database on the real disk (`synchronous=FULL` on SQLite,
the default `synchronous_commit` on PostgreSQL). PostgreSQL is measured when
the server at 127.0.0.1:5432 answers.

Run: `python benchmarks/bench_store.py` (or `--quick`).
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from leadsync.abc import Store
from leadsync.models import Notification, utcnow
from leadsync.store import open_store

BATCH = 32
# Group commit must buy at least this factor over one commit per notification. The factor
# grows with the cost of an fsync; on this project's VM disk an fsync is cheap (~0.2 ms), so
# the per-row insert cost (~10 us) caps it well below 32.
TARGET_RATIO = 5.0
POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432/test"


def notifications(prefix: str, count: int) -> list[Notification]:
    now = utcnow()
    return [Notification(f"{prefix}{i}", "page-1", "form-1", "ad-1", now) for i in range(count)]


def rate(store: Store, notes: list[Notification], batch: int) -> float:
    """Notifications per second stored in calls of `batch`, each call one transaction."""
    started = time.perf_counter()
    for start in range(0, len(notes), batch):
        store.add_notifications(notes[start : start + batch])
    elapsed = time.perf_counter() - started
    assert store.add_notifications(notes[-1:]) == 0  # every one was stored
    return len(notes) / elapsed


@contextmanager
def sqlite_url() -> Iterator[str]:
    # Beside this file, not in /tmp, which may be a RAM disk where fsync costs nothing.
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as folder:
        yield f"sqlite:///{Path(folder) / 'bench.db'}"


@contextmanager
def postgres_url() -> Iterator[str]:
    schema = f"bench_{uuid.uuid4().hex}"
    try:
        yield f"{POSTGRES_SERVER}?schema={schema}"
    finally:
        with psycopg.connect(POSTGRES_SERVER, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def postgres_reachable() -> bool:
    try:
        with psycopg.connect(POSTGRES_SERVER, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def measure(backend: str, place: Callable[[], AbstractContextManager[str]], quick: bool) -> dict:
    """Best rate of each way over a few alternating rounds, so disk noise hits both alike."""
    rounds, grouped_count, single_count = (2, 2_000, 200) if quick else (3, 10_000, 1_000)
    ours, naive = 0.0, 0.0
    with place() as url:
        store = open_store(url)
        try:
            store.migrate()
            for number in range(rounds):
                ours = max(ours, rate(store, notifications(f"g{number}-", grouped_count), BATCH))
                naive = max(naive, rate(store, notifications(f"s{number}-", single_count), 1))
        finally:
            store.close()
    return {
        "figure": f"durable notifications/s on {backend}, batches of {BATCH} vs one per commit",
        "leadsync": round(ours),
        "baseline": round(naive),
        "unit": "notifications/s",
        "target": f">= {TARGET_RATIO:.0f}x baseline",
    }


def run(quick: bool = False) -> list[dict]:
    """Measures group commit against one commit per notification, per reachable backend."""
    rows = [measure("SQLite", sqlite_url, quick)]
    if postgres_reachable():
        rows.append(measure("PostgreSQL", postgres_url, quick))
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(
            f"{row['figure']}: leadsync {row['leadsync']:,} {row['unit']}, "
            f"baseline {row['baseline']:,} {row['unit']} "
            f"({row['leadsync'] / row['baseline']:.1f}x), target {row['target']}"
        )
