"""The ingest journal: a SQLite file of its own where the HTTP process commits webhooks.

With a SQLite store, `leadsync run`'s HTTP process does not write to the store:
the pipeline's transactions (saving leads, scores, outbox claims) hold the
store file's one write lock, and a webhook's 200 must not wait behind them.
It group-commits notifications to this journal instead, a second SQLite file
beside the store (`<store>-inbox`, WAL, `synchronous=FULL`, 0600), whose only
writer it is. Each group commit is one row of `batches`, its notifications one
JSON array: one insert and one fsync per group (with a row per notification the
HTTP process acknowledged 6-12% fewer webhooks a second). The worker moves them
into the store (`drain_into`): it copies whole batches with `add_notifications`,
which drops lead ids the store already has, and records how far it got in the
same store transaction, so a crash copies again from there and loses nothing;
the HTTP process deletes what the store says was copied, a few batches per
commit, so the worker never takes the journal's write lock. The worker also
copies the journal's WAL into its file (a checkpoint, which takes no lock a
writer needs), so the checkpoints SQLite runs in the HTTP process's commits
have little left to copy. A batch keeps when it was received, so the
backlog's age counts from the webhook, not from the copy.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

from leadsync.abc import Store
from leadsync.models import Notification, utcnow
from leadsync.store.sqlite import SQLiteFile, decode_time, encode_time

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS batches (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, even once the table is empty
        received_at TEXT NOT NULL,
        size INTEGER NOT NULL,  -- how many notifications: the backlog without parsing
        notes TEXT NOT NULL  -- JSON: [[lead_id, page_id, form_id, ad_id, created_time, source]]
    )""",
    # One row: this journal's identity. The store keeps how far it copied under it, so a
    # journal made anew (its seq counting from 1 again) is read from its start.
    "CREATE TABLE IF NOT EXISTS journal (id TEXT NOT NULL)",
    "INSERT INTO journal (id) SELECT ? WHERE NOT EXISTS (SELECT 1 FROM journal)",
)

INSERT = "INSERT INTO batches (received_at, size, notes) VALUES (?, ?, ?)"
# The oldest copied batches, at most `?` of them (seq is the rowid: a range walk, no sort).
PRUNE = (
    "DELETE FROM batches WHERE seq IN (SELECT seq FROM batches WHERE seq <= ? ORDER BY seq LIMIT ?)"
)
# What waits past the store's mark (the `?`): how many notifications, and the oldest batch's time.
BACKLOG = "SELECT COALESCE(SUM(size), 0), MIN(received_at) FROM batches WHERE seq > ?"

# A drain round copies whole batches until it has at least this many: one store transaction
# of a size the pipeline's other writers wait behind for milliseconds, not seconds.
DRAIN_BATCH = 5_000
# How often the HTTP process reads how far the store copied, to forget that much.
PRUNE_EVERY_SECONDS = 5.0
# It forgets at most this many copied batches per commit of its own: deleting five seconds of a
# flood at once (over a thousand batches) held the event loop for 8-32 ms, and every webhook
# in flight waited that long.
PRUNE_PER_COMMIT = 64


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
            for statement in SCHEMA[:2]:
                conn.execute(statement)
            conn.execute(SCHEMA[2], (uuid.uuid4().hex,))
            _move_rows_of_one_per_notification(conn)
            (self.id,) = conn.execute("SELECT id FROM journal").fetchone()
        self.mark = _mark(self.id)  # the store's meta key for how far it copied
        self._marked_at = float("-inf")
        self._to_forget = 0  # the store's mark while batches up to it may be left here

    # -- the HTTP process ---------------------------------------------------------------
    def add_notifications(self, notes: Sequence[Notification]) -> int:
        """Commits `notes` as one batch (fsynced before it returns), forgetting a few batches
        the store has copied; the store deduplicates them later."""
        if not notes:
            return 0
        batch = (encode_time(utcnow()), len(notes), _encode(notes))
        self._read_mark_if_due()
        with self._file.write() as conn:
            if self._to_forget:
                forgotten = conn.execute(PRUNE, (self._to_forget, PRUNE_PER_COMMIT)).rowcount
                if forgotten < PRUNE_PER_COMMIT:
                    self._to_forget = 0  # caught up: the next read of the mark says more
            conn.execute(INSERT, batch)
        return len(notes)

    def _read_mark_if_due(self) -> None:
        """Reads the store's mark every PRUNE_EVERY_SECONDS (it has none at first)."""
        if time.monotonic() - self._marked_at < self._prune_every:
            return
        self._marked_at = time.monotonic()
        self._to_forget = copied_mark(self._store_path, self.mark)

    def ping(self) -> None:
        """A write, as the store's `ping`: a read-only file fails here, not on a webhook."""
        with self._file.write() as conn:
            conn.execute("DELETE FROM batches WHERE seq < 0")

    # -- the worker ------------------------------------------------------------------
    def drain_into(self, store: Store, limit: int = DRAIN_BATCH) -> int:
        """Copies the next whole batches, about `limit` notifications, into `store` with the
        mark; how many notifications."""
        copied = self._copied(store)
        notes: list[Notification] = []
        with self._file.read() as conn:
            query = "SELECT seq, received_at, notes FROM batches WHERE seq > ? ORDER BY seq"
            for seq, received_at, encoded in conn.execute(query, (copied,)):
                notes += _decode(encoded, decode_time(received_at))
                copied = seq
                if len(notes) >= limit:
                    break
        if notes:
            store.add_notifications(notes, progress=(self.mark, str(copied)))
            # Copying the WAL into the file here leaves SQLite's own checkpoint in the HTTP
            # process's commits (every 1,000 pages) only the pages written since: one that
            # copied them all held its event loop for 4-14 ms. Only the writer's checkpoint
            # can finish while no commit is under way, and a finished one lets the next
            # commit write the WAL from its start again, over blocks the file has: an fsync
            # that does not grow the file costs half (0.18 against 0.35 ms here).
            self._file.checkpoint_wal()
        return len(notes)

    def backlog(self, store: Store) -> tuple[int, datetime | None]:
        """How many notifications wait here, not yet copied, and when the oldest arrived."""
        with self._file.read() as conn:
            return _backlog(conn, self._copied(store))

    def _copied(self, store: Store) -> int:
        return int(store.get_meta(self.mark) or 0)

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


def waiting_notifications(store_path: Path) -> list[Notification]:
    """What the journal beside `store_path` holds that the store has not copied, read
    without taking a lock (for tools that look from outside the daemon)."""
    with _looked_at(store_path) as (conn, copied):
        if conn is None:
            return []
        batches = conn.execute(
            "SELECT received_at, notes FROM batches WHERE seq > ? ORDER BY seq", (copied,)
        ).fetchall()
    return [note for at, encoded in batches for note in _decode(encoded, decode_time(at))]


def waiting_backlog(store_path: Path) -> tuple[int, datetime | None]:
    """`IngestJournal.backlog`, read from outside the daemon without taking a lock."""
    with _looked_at(store_path) as (conn, copied):
        return (0, None) if conn is None else _backlog(conn, copied)


@contextlib.contextmanager
def _looked_at(store_path: Path) -> Iterator[tuple[sqlite3.Connection | None, int]]:
    """The journal beside `store_path`, read-only, and the store's mark for it; no
    connection when there is no journal, or one of an earlier build (the daemon converts
    it when it starts)."""
    path = journal_path(store_path)
    if not path.exists():
        yield None, 0
        return
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'batches'").fetchone():
            yield None, 0
            return
        (journal_id,) = conn.execute("SELECT id FROM journal").fetchone()
        yield conn, copied_mark(store_path, _mark(journal_id))


def _mark(journal_id: str) -> str:
    return f"journal:{journal_id}"


def _backlog(conn: sqlite3.Connection, copied: int) -> tuple[int, datetime | None]:
    count, oldest = conn.execute(BACKLOG, (copied,)).fetchone()
    return count, decode_time(oldest) if oldest else None


def _encode(notes: Sequence[Notification]) -> str:
    return json.dumps(
        [
            [n.lead_id, n.page_id, n.form_id, n.ad_id,
             n.created_time.isoformat() if n.created_time else None, n.source]
            for n in notes
        ],
        separators=(",", ":"),
    )  # fmt: skip


def _decode(encoded: str, received_at: datetime) -> list[Notification]:
    return [
        Notification(
            lead_id,
            page_id,
            form_id,
            ad_id,
            decode_time(created) if created else None,
            source,
            received_at,
        )
        for lead_id, page_id, form_id, ad_id, created, source in json.loads(encoded)
    ]


def _move_rows_of_one_per_notification(conn: sqlite3.Connection) -> None:
    """A journal written before batches (one `inbox` row per notification): its rows become
    batches under a new journal id, so the worker reads them from the start (the store
    drops the ones it already has), and the old table goes."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'inbox'").fetchone():
        return
    old = conn.execute(
        "SELECT lead_id, page_id, form_id, ad_id, created_time, source, received_at"
        " FROM inbox ORDER BY seq"
    ).fetchall()
    for *fields, received_at in old:
        created = fields[4]
        fields[4] = decode_time(created) if created else None
        conn.execute(INSERT, (received_at, 1, _encode([Notification(*fields)])))
    conn.execute("DROP TABLE inbox")
    conn.execute("UPDATE journal SET id = ?", (uuid.uuid4().hex,))
