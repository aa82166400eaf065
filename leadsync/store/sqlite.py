"""The SQLite store: the default backend, one file beside the daemon.

SQLite writes with one connection at a time and, in WAL mode, reads beside
it; so `SQLiteFile` keeps ONE writer behind a `threading.Lock` (threads queue
in Python instead of spinning on SQLITE_BUSY) and a pool of readers that never
wait behind a writer's fsync. Each write opens with `BEGIN IMMEDIATE`, taking
the file's lock up front: two processes never deadlock upgrading a read, and
writes that depend on what is stored (dedup, revisions, claims) need no locks
of their own. `synchronous=FULL`: a commit has fsynced before it returns
("200 means on disk"). Errors that may pass become `TransientError`. The
dialect binds a list as one JSON array read with `json_each` (no limit on
bound parameters) and a time as fixed-width ISO-8601 UTC text, which sorts as
time does. The file holds personal data: it is made 0600, which SQLite gives
its `-wal` and `-shm` files too, and an older world-readable one is tightened.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from leadsync.errors import ConfigError, Problem, TransientError
from leadsync.store.core import SQLStore
from leadsync.store.rows import Rows
from leadsync.store.sql import Dialect, Tx

# How long a statement waits for another process's lock before giving up with SQLITE_BUSY.
BUSY_TIMEOUT = timedelta(seconds=10)

# Idle reader connections kept open; more are opened under load and closed when given back.
IDLE_READERS = 4

# The database and its -wal and -shm files: personal data, for the owner's eyes only.
PRIVATE_MODE = 0o600

# Result codes of errors that may pass by themselves; anything else is a bug or a broken file.
TRANSIENT_CODES = {"SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR", "SQLITE_FULL", "SQLITE_PROTOCOL"}


@functools.lru_cache(maxsize=1024)  # a batch's rows share times ("now"); a datetime is immutable
def encode_time(value: datetime) -> str:
    """Fixed-width UTC text ("2026-11-20T10:00:00.000000+00:00") that sorts by time."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def decode_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def make_private(path: Path) -> None:
    """Creates the database file 0600 when missing and tightens it and its -wal/-shm if open.

    SQLite creates `-wal` and `-shm` with the database file's permissions, so a
    private database file keeps them private too, whatever the umask.
    """
    with suppress(FileExistsError):  # an empty file is an empty database
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE))
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if not name.exists():
            continue
        info = name.stat()
        if info.st_uid == os.getuid() and info.st_mode & 0o777 != PRIVATE_MODE:
            os.chmod(name, PRIVATE_MODE)  # another user's file (read by `status`) is left alone


class SQLiteFile:
    """One database file: a locked writer connection and a pool of readers."""

    def __init__(self, path: Path, busy_timeout: timedelta = BUSY_TIMEOUT):
        self.path = path
        self._busy_timeout = busy_timeout
        self._write_lock = threading.Lock()
        self._readers_lock = threading.Lock()
        self._idle_readers: list[sqlite3.Connection] = []
        self._closed = False
        self._writer = self._open_file()

    def _open_file(self) -> sqlite3.Connection:
        """The writer connection, the file switched to WAL; ConfigError when that cannot be."""
        fix = "check the path in store.url, its permissions and its disk"
        try:
            make_private(self.path)
            with self.mapped_errors():
                conn = self._connect()
                try:
                    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                except BaseException:
                    conn.close()
                    raise
        except (OSError, sqlite3.DatabaseError) as exc:  # cannot open, read-only, not a database
            problem = Problem("store.url", f"cannot open SQLite database {self.path}: {exc}", fix)
            raise ConfigError([problem]) from exc
        if mode != "wal":
            conn.close()
            problem = Problem("store.url", f"SQLite cannot use WAL on {self.path} ({mode})", fix)
            raise ConfigError([problem])
        return conn

    def _connect(self, *, query_only: bool = False) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout.total_seconds(),
            isolation_level=None,  # we issue BEGIN/COMMIT ourselves
            check_same_thread=False,  # close() may run on another thread
        )
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout.total_seconds() * 1000)}")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        if query_only:  # a write slipped into a read() would bypass the writer lock
            conn.execute("PRAGMA query_only = ON")
        return conn

    def _raise_if_closed(self) -> None:
        if self._closed:
            raise RuntimeError(f"the SQLite store {self.path} is closed")

    @contextmanager
    def mapped_errors(self) -> Iterator[None]:
        """Re-raises SQLite errors that may pass as TransientError."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            code = "_".join((exc.sqlite_errorname or "").split("_")[:2])
            if code in TRANSIENT_CODES:
                raise TransientError(f"SQLite store {self.path}: {exc}") from exc
            raise

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed (and fsynced) when the block ends."""
        with self._write_lock, self.mapped_errors():
            self._raise_if_closed()
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")

    def checkpoint_wal(self) -> None:
        """Copies what the WAL holds into the database file, waiting for no reader and no
        writer (PASSIVE): it takes no lock a writer needs, so another process's commits go on."""
        with self._write_lock, self.mapped_errors():  # the writer connection is not shared
            self._raise_if_closed()
            self._writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: every query in the block sees the same snapshot."""
        with self.mapped_errors():
            conn = self._take_reader()
            try:
                conn.execute("BEGIN")
                yield conn
            finally:
                try:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")  # ends the snapshot; nothing was written
                finally:
                    self._give_back(conn)

    def _take_reader(self) -> sqlite3.Connection:
        with self._readers_lock:
            self._raise_if_closed()
            if self._idle_readers:
                return self._idle_readers.pop()
        return self._connect(query_only=True)

    def _give_back(self, conn: sqlite3.Connection) -> None:
        with self._readers_lock:
            if not self._closed and len(self._idle_readers) < IDLE_READERS:
                self._idle_readers.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Closes every connection; readers in use are closed when given back."""
        with self._write_lock, self._readers_lock:
            if self._closed:
                return
            self._closed = True
            idle, self._idle_readers = self._idle_readers, []
            self._writer.close()
        for conn in idle:
            conn.close()


ANY = re.compile(r"= ANY\(:(\w+)\)")


class SQLiteDialect(Dialect):
    """SQLite's spelling: `:name` parameters as they are, lists through `json_each`."""

    name = "sqlite"
    rows = Rows(decode_time)
    false = "0"  # the partial index says `scored = 0`, and SQLite must see the same words
    words = {
        "serial": "INTEGER PRIMARY KEY",
        "key": "TEXT",
        "time": "TEXT",
        "bool": "INTEGER",
        "decimal": "TEXT",
    }
    converters = {datetime: encode_time, list: json.dumps, Decimal: str}

    def translate(self, text: str) -> str:
        return ANY.sub(r"IN (SELECT value FROM json_each(:\1))", text)

    def run_script(self, tx: Tx, script: str) -> None:
        for statement in statements(script):
            tx.conn.execute(statement)


class SQLiteStore(SQLStore):
    """`Store` on one SQLite file; safe for many threads and several processes."""

    def __init__(self, path: str | Path, *, busy_timeout: timedelta = BUSY_TIMEOUT):
        self.path = Path(path)
        super().__init__(SQLiteFile(self.path, busy_timeout), SQLiteDialect())


def statements(script: str) -> list[str]:
    """Splits a migration into statements, so they run inside our own transaction.

    (`executescript` would commit first, outside the write lock's transaction.)
    """
    found, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            found.append(pending.strip())
            pending = ""
    leftover = [line for line in pending.splitlines() if not line.strip().startswith("--")]
    if "".join(leftover).strip():
        found.append(pending.strip())  # incomplete: let SQLite say what is wrong with it
    return found
