"""The ingest journal: what the HTTP process commits reaches the store once, and is forgotten.

On real SQLite files: the journal beside a real store, as `leadsync run` lays them out.
"""

from __future__ import annotations

import sqlite3
import stat
from datetime import timedelta

import pytest

from leadsync.ingest.journal import IngestJournal, journal_path
from leadsync.models import Notification, utcnow
from leadsync.store.sqlite import SQLiteStore


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
        return conn.execute("SELECT COUNT(*) FROM inbox").fetchone()[0]


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
    journal.add_notifications(notes("3"))  # prunes 1 and 2 in the same commit
    assert journal_rows(journal.path) == 1
    assert journal.backlog(store)[0] == 1
    journal.drain_into(store)
    assert journal.backlog(store) == (0, None)
    assert [n.lead_id for n in store.pending_notifications(10)] == ["1", "2", "3"]
    journal.close()


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
