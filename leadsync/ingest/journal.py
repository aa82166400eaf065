"""The ingest journal: a SQLite file of its own where the HTTP process commits webhooks.

With a SQLite store, `leadsync run`'s HTTP process does not write to the store:
the pipeline's transactions (saving leads, scores, outbox claims) hold the
store file's one write lock, and a webhook's 200 must not wait behind them.
It group-commits notifications to this journal instead, a second SQLite file
beside the store (`<store>-inbox`, WAL, `synchronous=FULL`, 0600), whose only
writer it is. The worker moves them into the store (`drain_into`): it copies
a batch with `add_notifications`, which drops lead ids the store already has, and
records how far it got in the same store transaction, so a crash copies
again from there and loses nothing; the HTTP process deletes what the store
says was copied, so the worker never takes the journal's write lock. A
notification's `received_at` is kept, so the backlog's age counts from the
webhook, not from the copy.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from leadsync.abc import Store
from leadsync.models import Notification, utcnow
from leadsync.store.sqlite import SQLiteFile, decode_time, encode_time

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS inbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, even once the table is empty
        lead_id TEXT NOT NULL,
        page_id TEXT NOT NULL,
        form_id TEXT NOT NULL,
        ad_id TEXT NOT NULL,
        created_time TEXT,
        source TEXT NOT NULL,
        received_at TEXT NOT NULL
    )""",
    # One row: this journal's identity. The store keeps how far it copied under it, so a
    # journal made anew (its seq counting from 1 again) is read from its start.
    "CREATE TABLE IF NOT EXISTS journal (id TEXT NOT NULL)",
    "INSERT INTO journal (id) SELECT ? WHERE NOT EXISTS (SELECT 1 FROM journal)",
)

INSERT = """
INSERT INTO inbox (lead_id, page_id, form_id, ad_id, created_time, source, received_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""

# A drain round copies at most this many: one store transaction of a size the pipeline's
# other writers wait behind for milliseconds, not seconds.
DRAIN_BATCH = 5_000
# How often the HTTP process forgets what the store says it copied (in one of its own commits).
PRUNE_EVERY_SECONDS = 5.0


def journal_path(store_path: Path) -> Path:
    """The journal beside a SQLite store: `leadsync.db` -> `leadsync.db-inbox`."""
    return store_path.with_name(store_path.name + "-inbox")


class IngestJournal:
    """Notifications committed by the HTTP process, waiting to be copied into the store.

    Only the HTTP process writes it: its commits never wait for a lock. The worker reads
    it and records in the store, with the copied notifications, the last `seq` it copied
    (meta key `journal:<id>`); the HTTP process reads that mark from the store now and then
    and deletes what is below it, in the same transaction as its next notifications.
    """

    def __init__(self, store_path: Path, prune_every: float = PRUNE_EVERY_SECONDS):
        self.path = journal_path(store_path)
        self._prune_every = prune_every
        self._store_path = store_path
        self._file = SQLiteFile(self.path)
        with self._file.write() as conn:
            conn.execute(SCHEMA[0])
            conn.execute(SCHEMA[1])
            conn.execute(SCHEMA[2], (uuid.uuid4().hex,))
            (self.id,) = conn.execute("SELECT id FROM journal").fetchone()
        self.mark = f"journal:{self.id}"  # the store's meta key for how far it copied
        self._pruned_at = float("-inf")

    # -- the HTTP process ---------------------------------------------------------------
    def add_notifications(self, notes: Sequence[Notification]) -> int:
        """Commits `notes` (fsynced before it returns); the store deduplicates them later."""
        if not notes:
            return 0
        now = encode_time(utcnow())
        rows = [
            (n.lead_id, n.page_id, n.form_id, n.ad_id,
             encode_time(n.created_time) if n.created_time else None, n.source, now)
            for n in notes
        ]  # fmt: skip
        copied = self._copied_if_due()
        with self._file.write() as conn:
            if copied:
                conn.execute("DELETE FROM inbox WHERE seq <= ?", (copied,))
            conn.executemany(INSERT, rows)
        return len(rows)

    def _copied_if_due(self) -> int:
        """The store's mark, every PRUNE_EVERY_SECONDS (0 otherwise, or while it has none)."""
        if time.monotonic() - self._pruned_at < self._prune_every:
            return 0
        self._pruned_at = time.monotonic()
        return copied_mark(self._store_path, self.mark)

    def ping(self) -> None:
        """A write, as the store's `ping`: a read-only file fails here, not on a webhook."""
        with self._file.write() as conn:
            conn.execute("DELETE FROM inbox WHERE seq < 0")

    # -- the worker ------------------------------------------------------------------
    def drain_into(self, store: Store, limit: int = DRAIN_BATCH) -> int:
        """Copies the next `limit` notifications into `store`, with the mark; how many."""
        copied = int(store.get_meta(self.mark) or 0)
        with self._file.read() as conn:
            rows = conn.execute(
                "SELECT * FROM inbox WHERE seq > ? ORDER BY seq LIMIT ?", (copied, limit)
            ).fetchall()
        if rows:
            notes = [_notification(row) for row in rows]
            store.add_notifications(notes, progress=(self.mark, str(rows[-1]["seq"])))
        return len(rows)

    def backlog(self, store: Store) -> tuple[int, datetime | None]:
        """How many notifications wait here, not yet copied, and when the oldest arrived."""
        copied = int(store.get_meta(self.mark) or 0)
        with self._file.read() as conn:
            count, oldest = conn.execute(
                "SELECT COUNT(*), MIN(received_at) FROM inbox WHERE seq > ?", (copied,)
            ).fetchone()
        return count, decode_time(oldest) if oldest else None

    def close(self) -> None:
        self._file.close()


def copied_mark(store_path: Path, mark: str) -> int:
    """The last `seq` the store says it copied under `mark`, read without taking a lock;
    0 while the store is not made or migrated yet, or has copied nothing."""
    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{store_path}?mode=ro", uri=True, timeout=1)
        ) as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (mark,)).fetchone()
    except sqlite3.Error:
        return 0
    return int(row[0]) if row else 0


def _notification(row) -> Notification:  # noqa: ANN001 - a sqlite3.Row
    created = decode_time(row["created_time"]) if row["created_time"] else None
    return Notification(
        lead_id=row["lead_id"], page_id=row["page_id"], form_id=row["form_id"],
        ad_id=row["ad_id"], created_time=created, source=row["source"],
        received_at=decode_time(row["received_at"]),
    )  # fmt: skip
