"""The ingest journal (`leadsync/ingest/journal.py`): a drain forgets only what it copied.

Two workers may drain one journal for a moment: a worker whose HTTP process was
SIGKILLed finishes the round in hand while `leadsync run`, started again, drains
too. A drain deletes the notifications it read once the store has them; one
committed after that read, with the journal emptied by the other worker meanwhile,
must stay until a drain copies it.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
from contextlib import closing

from leadsync.ingest.journal import IngestJournal, journal_path
from leadsync.models import Notification
from leadsync.store.sqlite import SQLiteStore
from tests.daemon_harness import wait_until


def test_a_drain_keeps_a_notification_committed_after_it_read_the_journal(tmp_path):
    path = journal_path(tmp_path / "leadsync.db")
    http, orphan, fresh = IngestJournal(path), IngestJournal(path), IngestJournal(path)
    orphans_store, fresh_store = SQLiteStore(tmp_path / "a.db"), SQLiteStore(tmp_path / "b.db")
    for store in (orphans_store, fresh_store):
        store.migrate()
    http.add_notifications([Notification("1", "p1"), Notification("2", "p1")])
    with closing(sqlite3.connect(tmp_path / "a.db", isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # the orphan's copy waits for its store's write lock
        drain = threading.Thread(target=orphan.drain_into, args=(orphans_store,))
        drain.start()
        wait_until(lambda: copying(drain), 10, "the orphan to read the journal and copy")
        assert fresh.drain_into(fresh_store) == 2  # the journal is empty now
        http.add_notifications([Notification("3", "p1")])  # committed after the orphan's read
        other.execute("COMMIT")
        drain.join(timeout=30)
    assert http.backlog()[0] == 1  # "3" waits for the next drain
    assert fresh.drain_into(fresh_store) == 1
    assert [n.lead_id for n in fresh_store.pending_notifications(10)] == ["1", "2", "3"]
    for handle in (http, orphan, fresh, orphans_store, fresh_store):
        handle.close()


def copying(thread: threading.Thread) -> bool:
    """True while `thread` is inside a store's `add_notifications` (it has read the journal)."""
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code.co_name == "add_notifications":
            return True
        frame = frame.f_back
    return False
