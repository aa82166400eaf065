"""How the PostgreSQL store talks to the server: a connection pool and transactions.

A `psycopg_pool.ConnectionPool` serves the daemon's threads; each store method
borrows one connection for one transaction. Every pooled connection is set up
the same way when it is opened: time zone UTC (timestamptz values come back in
UTC) and, when the store URL names a `?schema=`, a `search_path` of that schema
only, so several leadsync instances (or parallel tests) can share a database
without seeing each other's tables. Connection failures, pool timeouts,
deadlocks and serialization failures may pass, so they become `TransientError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from leadsync.errors import TransientError
from leadsync.store.rows import Rows

# Connections kept by one process: a fetch worker, one per destination, status readers.
POOL_SIZE = 8

# How long a method waits for a free connection (or for the server) before TransientError.
POOL_TIMEOUT = timedelta(seconds=10)


def decode_time(value: datetime) -> datetime:
    return value.astimezone(UTC)


ROWS = Rows(decode_time)

Connection = psycopg.Connection[DictRow]


class PostgresPool:
    """A pool of configured connections to one database (and schema)."""

    def __init__(
        self,
        conninfo: str,
        schema: str = "",
        *,
        size: int = POOL_SIZE,
        timeout: timedelta = POOL_TIMEOUT,
    ):
        self.schema = schema
        self._pool: ConnectionPool[Connection] = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=size,
            kwargs={"autocommit": True, "row_factory": dict_row},
            configure=self._configure,
            timeout=timeout.total_seconds(),
            name="leadsync-store",
            open=True,
        )

    def _configure(self, conn: Connection) -> None:
        conn.execute("SET TIME ZONE 'UTC'")
        if self.schema:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One transaction on a pooled connection, committed when the block ends."""
        try:
            with self._pool.connection() as conn, conn.transaction():
                yield conn
        except psycopg.OperationalError as exc:  # includes PoolTimeout, deadlocks
            raise TransientError(f"PostgreSQL store: {type(exc).__name__}: {exc}") from exc

    read = write  # PostgreSQL's MVCC: a reader takes a pooled connection like a writer

    def close(self) -> None:
        self._pool.close()
