"""The ingest journal: a SQLite file of its own where the HTTP process commits webhooks.

With a SQLite store, `leadsync run`'s HTTP process does not write to the store:
the pipeline's transactions (saving leads, scores, outbox claims) hold the
store file's one write lock, and a webhook's 200 must not wait behind them.
It group-commits notifications to this journal instead, a second SQLite file
beside the store (`<store>-inbox`, WAL, `synchronous=FULL`, 0600), whose only
writer it is. The worker moves them into the store (`drain_into`): it copies
a batch with `add_notifications`, which drops lead ids the store already has,
and only then deletes the batch from the journal, so a crash between the two
copies again and loses nothing. A notification's `received_at` is kept, so
the backlog's age counts from the webhook, not from the copy. `seq` never
reuses a number (AUTOINCREMENT): a drain deletes up to the last `seq` it read,
and two drains may overlap for a moment (an orphaned worker finishing its round
while `leadsync run` restarts), so a notification committed after one emptied
the journal must not take a number the other is about to delete.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from leadsync.abc import IngestStore
from leadsync.models import Notification, utcnow
from leadsync.store.sqlite import SQLiteFile, decode_time, encode_time

SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    lead_id TEXT NOT NULL,
    page_id TEXT NOT NULL,
    form_id TEXT NOT NULL,
    ad_id TEXT NOT NULL,
    created_time TEXT,
    source TEXT NOT NULL,
    received_at TEXT NOT NULL
)
"""

INSERT = """
INSERT INTO inbox (lead_id, page_id, form_id, ad_id, created_time, source, received_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""

# A drain round copies at most this many: one store transaction of a size the pipeline's
# other writers wait behind for milliseconds, not seconds.
DRAIN_BATCH = 5_000


def journal_path(store_path: Path) -> Path:
    """The journal beside a SQLite store: `leadsync.db` -> `leadsync.db-inbox`."""
    return store_path.with_name(store_path.name + "-inbox")


class IngestJournal:
    """Notifications committed by the HTTP process, waiting to be copied into the store."""

    def __init__(self, path: Path):
        self.path = path
        self._file = SQLiteFile(path)
        with self._file.write() as conn:
            conn.execute(SCHEMA)

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
        with self._file.write() as conn:
            conn.executemany(INSERT, rows)
        return len(rows)

    def drain_into(self, store: IngestStore, limit: int = DRAIN_BATCH) -> int:
        """Copies the oldest `limit` notifications into `store`, then forgets them; how many."""
        with self._file.read() as conn:
            rows = conn.execute("SELECT * FROM inbox ORDER BY seq LIMIT ?", (limit,)).fetchall()
        if not rows:
            return 0
        store.add_notifications([_notification(row) for row in rows])
        with self._file.write() as conn:  # after the store committed: a crash copies again
            conn.execute("DELETE FROM inbox WHERE seq <= ?", (rows[-1]["seq"],))
        return len(rows)

    def backlog(self) -> tuple[int, datetime | None]:
        """How many notifications wait here, and when the oldest arrived."""
        with self._file.read() as conn:
            count, oldest = conn.execute("SELECT COUNT(*), MIN(received_at) FROM inbox").fetchone()
        return count, decode_time(oldest) if oldest else None

    def ping(self) -> None:
        """A write, as the store's `ping`: a read-only file fails here, not on a webhook."""
        with self._file.write() as conn:
            conn.execute("DELETE FROM inbox WHERE seq < 0")

    def close(self) -> None:
        self._file.close()


def _notification(row) -> Notification:  # noqa: ANN001 - a sqlite3.Row
    created = decode_time(row["created_time"]) if row["created_time"] else None
    return Notification(
        lead_id=row["lead_id"], page_id=row["page_id"], form_id=row["form_id"],
        ad_id=row["ad_id"], created_time=created, source=row["source"],
        received_at=decode_time(row["received_at"]),
    )  # fmt: skip
