"""The SQLite store: the default backend, one file beside the daemon.

Every method is one transaction on the file shared as `SQLiteFile` describes
(one locked writer, pooled readers, WAL, `synchronous=FULL`). Writes that
depend on what is already stored (dedup, revisions, claims) read and write in
the same `BEGIN IMMEDIATE` transaction, which holds the file's write lock, so
neither another thread nor another process can interleave: claims and score
revisions need no locks of their own. The dialect binds a list of ids as one
JSON array read with `json_each` (no query hits SQLite's limit on bound
parameters) and a time as fixed-width ISO-8601 text in UTC, which compares
correctly as text.
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from leadsync.store.core import SQLStore
from leadsync.store.rows import Row
from leadsync.store.sql import Dialect, Params, Tx
from leadsync.store.sqlite_file import BUSY_TIMEOUT, ROWS, SQLiteFile, encode_time

ANY = re.compile(r"= ANY\(:(\w+)\)")


class SQLiteDialect(Dialect):
    """SQLite's spelling: `:name` parameters as they are, lists through `json_each`."""

    name = "sqlite"
    rows = ROWS
    false = "0"  # the partial index says `scored = 0`, and SQLite must see the same words
    time_type = "TEXT"

    def translate(self, text: str) -> str:
        return ANY.sub(r"IN (SELECT value FROM json_each(:\1))", text)

    def bind(self, value: Any) -> Any:
        if isinstance(value, datetime):
            return encode_time(value)
        return json.dumps(list(value)) if isinstance(value, list | tuple) else value

    def executemany(self, conn: sqlite3.Connection, text: str, params: list[Params]) -> int:
        return conn.executemany(text, params).rowcount

    def inserted(self, conn: sqlite3.Connection, text: str, params: list[Params]) -> list[Row]:
        # sqlite3's executemany drops what RETURNING returns; one execute per row keeps it.
        return [row for one in params for row in conn.execute(text, one).fetchall()]

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
