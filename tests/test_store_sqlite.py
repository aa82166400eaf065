"""What only the SQLite store promises: durable acks, WAL sharing, file settings.

"A 200 means on disk": a child process acknowledges each batch only after
`add_notifications` returned, is killed with SIGKILL mid-flight, and every
acknowledged id must be in the reopened, intact database. Another process may
open the file while the daemon holds it; a busy file is a TransientError.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest

from leadsync.errors import ConfigError, TransientError
from leadsync.models import Notification
from leadsync.store import open_store, sqlite_path
from leadsync.store.sqlite import SQLiteStore

CHILD = Path(__file__).with_name("store_child.py")


def child(*args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(CHILD), *args], text=True, **popen)


def acknowledged(lines: list[str]) -> set[str]:
    """Lead ids of the whole "acked ..." lines the child printed (a cut last line is not one)."""
    whole = [line for line in lines if line.startswith("acked ") and line.endswith("\n")]
    return {lead_id for line in whole for lead_id in line.split()[1:]}


def test_every_acknowledged_notification_survives_sigkill(tmp_path):
    url = f"sqlite:///{tmp_path / 'leads.db'}"
    writer = child("write", url, "20000", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines: list[str] = []
    try:
        for line in writer.stdout:
            lines.append(line)
            if len(acknowledged(lines)) == 40 * 32:
                writer.send_signal(signal.SIGKILL)  # it is busy writing the next batches
                break
        # Read the rest through the same buffered file (communicate() would skip its buffer).
        lines += writer.stdout.readlines()
        errors = writer.stderr.read()
        writer.wait(timeout=30)
    finally:
        writer.kill()
        writer.stdout.close()
        writer.stderr.close()
    assert writer.returncode == -signal.SIGKILL, errors
    acked_ids = acknowledged(lines)
    assert len(acked_ids) >= 40 * 32
    store = open_store(url)
    stored = {note.lead_id for note in store.pending_notifications(10**6)}
    store.close()
    assert acked_ids <= stored
    with closing(sqlite3.connect(tmp_path / "leads.db")) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_connections_use_wal_full_sync_and_foreign_keys(tmp_path):
    store = SQLiteStore(tmp_path / "leads.db")
    store.migrate()
    with store._db.write() as writer, store._db.read() as reader:
        for conn in (writer, reader):
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
            assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert reader.execute("PRAGMA query_only").fetchone()[0] == 1
    store.close()


def test_another_process_reads_while_the_daemon_is_mid_write(tmp_path):
    url = f"sqlite:///{tmp_path / 'leads.db'}"
    store = open_store(url)
    store.migrate()
    store.add_notifications([Notification("1", "p1"), Notification("2", "p1")])
    with store._db.write() as conn:  # the daemon holds the write lock, uncommitted
        conn.execute(
            "INSERT INTO notifications (lead_id, page_id, source, received_at)"
            " VALUES ('3', 'p1', 'webhook', '2026-01-01T00:00:00.000000+00:00')"
        )
        reader = child("read", url, stdout=subprocess.PIPE)
        seen, _ = reader.communicate(timeout=30)
    assert json.loads(seen) == {"leads": 0, "pending": ["1", "2"]}
    adder = child("add", url, "4", stdout=subprocess.PIPE)
    assert adder.communicate(timeout=30)[0].strip() == "1"
    assert [n.lead_id for n in store.pending_notifications(10)] == ["1", "2", "3", "4"]
    store.close()


def test_a_file_locked_by_another_process_for_too_long_is_a_transient_error(tmp_path):
    store = SQLiteStore(tmp_path / "leads.db", busy_timeout=timedelta(milliseconds=50))
    store.migrate()
    with closing(sqlite3.connect(tmp_path / "leads.db", isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(TransientError, match="locked"):
            store.add_notifications([Notification("1", "p1")])
        other.execute("ROLLBACK")
    assert store.add_notifications([Notification("1", "p1")]) == 1
    store.close()


def test_many_threads_write_and_read_at_once(tmp_path):
    """Ingest, fetch and status threads share one store without errors or lost writes."""
    store = open_store(f"sqlite:///{tmp_path / 'leads.db'}")
    store.migrate()
    errors: list[BaseException] = []

    def work(number: int) -> None:
        try:
            for batch in range(10):
                ids = [f"{number}-{batch}-{i}" for i in range(8)]
                store.add_notifications([Notification(i, "p1") for i in ids])
                store.pending_notifications(5)
                store.count_leads()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.pending_notifications(10_000)) == 8 * 10 * 8
    store.close()


def test_sqlite_urls_name_relative_and_absolute_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    assert sqlite_path("sqlite:///data/leads.db") == Path("data/leads.db")
    assert sqlite_path(f"sqlite:///{tmp_path}/leads.db") == tmp_path / "leads.db"
    store = open_store("sqlite:///data/leads.db")
    store.migrate()
    store.close()
    assert (tmp_path / "data" / "leads.db").is_file()


def test_a_file_that_is_not_a_database_is_a_config_error(tmp_path):
    (tmp_path / "leads.db").write_bytes(b"these are not the leads you are looking for" * 100)
    with pytest.raises(ConfigError, match="cannot open SQLite database"):
        open_store(f"sqlite:///{tmp_path / 'leads.db'}")


@pytest.mark.parametrize("url", ["sqlite:///missing/leads.db", "sqlite:///:memory:"])
def test_unusable_sqlite_url_is_a_config_error(url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as raised:
        open_store(url)
    assert raised.value.problems[0].path == "store.url"


@pytest.fixture
def umask_022():
    """The common default umask, under which files are created readable by everyone."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def file_modes(path: Path) -> dict[str, int]:
    names = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
    return {name.name: stat.S_IMODE(name.stat().st_mode) for name in names}


def test_the_database_and_its_wal_and_shm_are_private_to_the_owner(tmp_path, umask_022):
    path = tmp_path / "leads.db"
    store = SQLiteStore(path)
    store.migrate()
    store.add_notifications([Notification("1", "p1", "f1", "", None, "webhook")])
    with store._db.read() as reader:  # a reader keeps the -wal and -shm files in place
        assert reader.execute("SELECT COUNT(*) FROM notifications").fetchone()[0] == 1
        modes = file_modes(path)
    store.close()
    assert modes == {"leads.db": 0o600, "leads.db-wal": 0o600, "leads.db-shm": 0o600}


def test_an_existing_world_readable_database_is_made_private_when_opened(tmp_path, umask_022):
    path = tmp_path / "leads.db"
    with closing(sqlite3.connect(path)) as conn:  # as an older leadsync left it: 0644
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (x)")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    store = SQLiteStore(path)
    store.migrate()
    with store._db.read() as reader:
        reader.execute("SELECT COUNT(*) FROM leads").fetchone()
        modes = file_modes(path)
    store.close()
    assert set(modes.values()) == {0o600}
