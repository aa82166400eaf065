"""The ingest journal: what the HTTP process commits reaches the store once, and is forgotten.

On real SQLite files: the journal beside a real store, as `leadsync run` lays them out.
"""

from __future__ import annotations

import sqlite3
import stat
from datetime import timedelta

import pytest

from leadsync.ingest.journal import (
    PRUNE_PER_COMMIT,
    IngestJournal,
    journal_path,
    waiting_backlog,
    waiting_notifications,
)
from leadsync.models import Notification, utcnow
from leadsync.store.sqlite import SQLiteStore, decode_time, encode_time


@pytest.fixture
def store(tmp_path):
    store = SQLiteStore(tmp_path / "leadsync.db")
    store.migrate()
    yield store
    store.close()


def notes(*lead_ids: str) -> list[Notification]:
    return [Notification(lead_id, "111", "900") for lead_id in lead_ids]


def journal_rows(path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT COUNT(*) FROM batches").fetchone()[0]


def test_committed_notifications_are_copied_into_the_store_once(store):
    journal = IngestJournal(store.path)
    assert journal.add_notifications(notes("1", "2", "1")) == 3  # the store deduplicates
    assert journal.drain_into(store) == 3
    assert journal.drain_into(store) == 0  # the store's mark says they were copied
    pending = store.pending_notifications(10)
    assert [n.lead_id for n in pending] == ["1", "2"]
    # The backlog's age counts from the webhook, not from the copy.
    assert all(utcnow() - n.received_at < timedelta(minutes=1) for n in pending)
    journal.close()


def test_a_copy_repeated_after_a_lost_mark_stores_nothing_twice(store):
    journal = IngestJournal(store.path)
    journal.add_notifications(notes("1", "2"))
    journal.drain_into(store)
    store.set_meta(journal.mark, "0")  # as if the copy's transaction had not been seen
    assert journal.drain_into(store) == 2
    assert [n.lead_id for n in store.pending_notifications(10)] == ["1", "2"]
    journal.close()


def test_the_http_process_forgets_what_the_store_copied_and_only_that(store):
    journal = IngestJournal(store.path, prune_every=0)
    journal.add_notifications(notes("1", "2"))
    journal.drain_into(store)
    journal.add_notifications(notes("3"))  # prunes the batch of 1 and 2 in the same commit
    assert journal_rows(journal.path) == 1
    assert journal.backlog(store)[0] == 1
    journal.drain_into(store)
    assert journal.backlog(store) == (0, None)
    assert [n.lead_id for n in store.pending_notifications(10)] == ["1", "2", "3"]
    journal.close()


def test_a_commit_forgets_at_most_a_few_copied_batches(store):
    """Forgetting a flood's worth of batches at once held the HTTP process's event loop."""
    journal = IngestJournal(store.path, prune_every=0)
    for number in range(PRUNE_PER_COMMIT + 10):
        journal.add_notifications(notes(str(number)))
    journal.drain_into(store, limit=1_000)
    journal.add_notifications(notes("a"))
    assert journal_rows(journal.path) == 10 + 1  # the oldest PRUNE_PER_COMMIT went
    journal.add_notifications(notes("b"))
    assert journal_rows(journal.path) == 2  # then the rest, and never "a", not yet copied
    assert journal.backlog(store)[0] == 2
    journal.close()


def test_the_worker_copies_the_wal_into_the_journal_file(store):
    """A checkpoint that copied a thousand pages held the HTTP process's event loop; the
    worker's leaves it little to copy, and lets it write the WAL from its start again, where
    an fsync costs less than one that grows the file."""
    http, worker = IngestJournal(store.path), IngestJournal(store.path)  # two processes' views
    wal = http.path.with_name(http.path.name + "-wal")
    for batch in range(10):  # a few hundred WAL pages, below SQLite's own checkpoint
        http.add_notifications(notes(*(f"{batch}-{n}" for n in range(3_000))))
    assert http.path.stat().st_size < 100 * 4_096  # none of it in the file yet
    assert worker.drain_into(store, limit=100_000) == 30_000
    assert http.path.stat().st_size > 300 * 4_096
    written = wal.stat().st_size
    for batch in range(3):
        http.add_notifications(notes(f"after-{batch}"))
    assert wal.stat().st_size == written  # written over its start, not past its end
    http.close()
    worker.close()


def test_a_journal_made_anew_is_read_from_its_start(store):
    journal = IngestJournal(store.path)
    journal.add_notifications(notes("1", "2", "3"))
    journal.drain_into(store)
    journal.close()
    for suffix in ("", "-wal", "-shm"):
        journal_path(store.path).with_name(journal_path(store.path).name + suffix).unlink(
            missing_ok=True
        )
    fresh = IngestJournal(store.path)  # its seq starts at 1 again, under a new id
    fresh.add_notifications(notes("4"))
    assert fresh.drain_into(store) == 1
    assert "4" in {n.lead_id for n in store.pending_notifications(10)}
    fresh.close()


def test_the_journal_holds_personal_data_for_its_owner_only(store):
    journal = IngestJournal(store.path)
    journal.add_notifications(notes("1"))
    assert stat.S_IMODE(journal.path.stat().st_mode) == 0o600
    journal.close()


def test_the_worker_never_writes_the_journal(store):
    """The HTTP process is its only writer: the worker's copy takes no lock there."""
    journal = IngestJournal(store.path)
    journal.add_notifications(notes("1"))
    holder = sqlite3.connect(journal.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the HTTP process mid-commit holds the write lock
    try:
        assert journal.drain_into(store) == 1  # reads and copies without waiting for it
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    journal.close()


def test_a_drain_copies_whole_batches_until_it_has_its_limit(store):
    journal = IngestJournal(store.path)
    for batch in (("1", "2"), ("3", "4"), ("5",)):  # three group commits
        journal.add_notifications(notes(*batch))
    assert journal.backlog(store)[0] == 5
    assert journal.drain_into(store, limit=3) == 4  # a batch is never split
    assert journal.backlog(store)[0] == 1
    assert journal.drain_into(store, limit=3) == 1
    assert [n.lead_id for n in store.pending_notifications(10)] == ["1", "2", "3", "4", "5"]
    journal.close()


def test_a_notification_comes_out_of_the_journal_as_it_went_in(store, tmp_path):
    created = utcnow().replace(microsecond=123456) - timedelta(minutes=3)
    sent = Notification("77", "111", "900", "555", created, "webhook")
    journal = IngestJournal(store.path)
    journal.add_notifications([sent])
    [waiting] = waiting_notifications(store.path)  # as tools read it, from outside
    assert (waiting.lead_id, waiting.page_id, waiting.form_id, waiting.ad_id) == (
        "77", "111", "900", "555",
    )  # fmt: skip
    assert waiting.created_time == created and waiting.source == "webhook"
    assert utcnow() - waiting.received_at < timedelta(minutes=1)
    assert waiting_backlog(store.path) == (1, waiting.received_at) == journal.backlog(store)
    journal.drain_into(store)
    assert waiting_notifications(store.path) == []
    assert waiting_backlog(store.path) == (0, None)
    [stored] = store.pending_notifications(10)
    assert stored.created_time == created and stored.received_at == waiting.received_at
    assert waiting_notifications(tmp_path / "no-store-here.db") == []
    assert waiting_backlog(tmp_path / "no-store-here.db") == (0, None)
    journal.close()


def test_a_journal_of_one_row_per_notification_is_read_in_full(store):
    """A journal left by the first two-process build (an `inbox` row per notification)
    still reaches the store: its rows become batches, read from the start."""
    path = journal_path(store.path)
    received = utcnow() - timedelta(minutes=5)
    created, first, second = (
        encode_time(t)
        for t in (received - timedelta(minutes=1), received, received + timedelta(seconds=1))
    )
    old = sqlite3.connect(path)
    old.executescript(
        """CREATE TABLE inbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, lead_id TEXT NOT NULL,
             page_id TEXT NOT NULL, form_id TEXT NOT NULL, ad_id TEXT NOT NULL,
             created_time TEXT, source TEXT NOT NULL, received_at TEXT NOT NULL);
           CREATE TABLE journal (id TEXT NOT NULL);
           INSERT INTO journal VALUES ('old');"""
    )
    old.executemany(
        "INSERT INTO inbox VALUES (?, ?, '111', '900', '', ?, 'webhook', ?)",
        [(1, "1", None, first), (2, "2", created, second)],
    )
    old.commit()
    old.close()
    store.set_meta("journal:old", "1")  # the old build had copied lead 1
    journal = IngestJournal(store.path)
    assert journal.id != "old"
    assert journal.backlog(store) == (2, decode_time(first))
    assert journal.drain_into(store) == 2
    pending = store.pending_notifications(10)
    assert [n.lead_id for n in pending] == ["1", "2"]
    assert [n.created_time for n in pending] == [None, decode_time(created)]
    with sqlite3.connect(path) as conn:
        assert not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'inbox'").fetchone()
    journal.close()


def test_tools_see_no_waiting_notifications_in_a_journal_not_yet_converted(store):
    """`leadsync status` run before the daemon's first start after an upgrade."""
    with sqlite3.connect(journal_path(store.path)) as old:
        old.execute("CREATE TABLE inbox (seq INTEGER PRIMARY KEY, lead_id TEXT)")
        old.execute("INSERT INTO inbox VALUES (1, '1')")
    assert waiting_notifications(store.path) == []
    assert waiting_backlog(store.path) == (0, None)
