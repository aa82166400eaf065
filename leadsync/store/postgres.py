"""The PostgreSQL store: several leadsync replicas share one database.

Each method borrows one connection of a `psycopg_pool.ConnectionPool` for one
transaction; connections run in UTC with a `search_path` of the URL's
`?schema=` only, so several instances (or parallel tests) share a database
unseen. Failures that may pass (connection, pool timeout, deadlock) become
`TransientError`. Where replicas race, the database decides: inserts meet
`ON CONFLICT`, claims lock rows with `FOR UPDATE SKIP LOCKED`, score
revisions take per-lead advisory locks in a fixed order (no deadlocks), and
migrations run under an advisory lock, each applied once. Times are
timestamptz from the caller's clock (run NTP on replicas).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from leadsync.errors import TransientError
from leadsync.store.core import SQLStore
from leadsync.store.rows import Row, Rows
from leadsync.store.sql import Dialect, Params, Tx

# Connections kept by one process: a fetch worker, one per destination, status readers.
POOL_SIZE = 8

# How long a method waits for a free connection (or for the server) before TransientError.
POOL_TIMEOUT = timedelta(seconds=10)


def decode_time(value: datetime) -> datetime:
    return value.astimezone(UTC)


Connection = psycopg.Connection[DictRow]


class PostgresPool:
    """A pool of configured connections to one database (and schema)."""

    def __init__(self, conninfo: str, schema: str = ""):
        self.schema = schema
        self._pool: ConnectionPool[Connection] = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=POOL_SIZE,
            kwargs={"autocommit": True, "row_factory": dict_row},
            configure=self._configure,
            # A connection the server dropped (a restart, an outage) is found and replaced when
            # taken, for one round trip, instead of failing the next write with it.
            check=ConnectionPool.check_connection,
            timeout=POOL_TIMEOUT.total_seconds(),
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


PARAMETER = re.compile(r"(?<![:\w]):(\w+)")

# Lock keys are (namespace, hash); the namespace keeps ours apart from other applications'.
ROUTING_LOCK = "SELECT pg_advisory_xact_lock(hashtext('leadsync.route'), hashtext(%s))"
MIGRATION_LOCK = "SELECT pg_advisory_xact_lock(hashtext('leadsync.migrate'), hashtext(%s))"
SCORE_LOCKS = """
SELECT pg_advisory_xact_lock(hashtext('leadsync.score'), key)
FROM (SELECT DISTINCT hashtext(current_schema() || '/' || id) AS key
      FROM unnest(%s::text[]) AS id ORDER BY key) AS keys
"""


class PostgresDialect(Dialect):
    """PostgreSQL's spelling (psycopg's `%(name)s`), row locks and advisory locks."""

    name = "postgres"
    rows = Rows(decode_time)
    skip_locked = " FOR UPDATE OF o SKIP LOCKED"
    words = {
        "serial": "bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "key": 'text COLLATE "C"',
        "time": "timestamptz",
        "bool": "boolean",
        "decimal": "numeric",
    }

    def __init__(self, schema: str):
        super().__init__()
        self.schema = schema

    def translate(self, text: str) -> str:
        return PARAMETER.sub(r"%(\1)s", text)

    def executemany(self, conn: Connection, text: str, params: list[Params]) -> int:
        with conn.cursor() as cursor:  # a psycopg connection has no executemany of its own
            cursor.executemany(text, params)
            return cursor.rowcount

    def inserted(self, conn: Connection, text: str, params: list[Params]) -> list[Row]:
        found: list[Row] = []
        with conn.cursor() as cursor:
            cursor.executemany(text, params, returning=True)
            while True:
                found.extend(cursor.fetchall())
                if not cursor.nextset():
                    return found

    def lock_leads(self, tx: Tx, lead_ids: Sequence[str]) -> None:
        tx.conn.execute(SCORE_LOCKS, (list(lead_ids),))

    def lock_routing(self, tx: Tx) -> None:
        tx.conn.execute(ROUTING_LOCK, (self.schema,))

    def lock_migrations(self, tx: Tx) -> None:
        tx.conn.execute(MIGRATION_LOCK, (self.schema,))
        if self.schema:  # the store's own schema, created when the URL names a missing one
            tx.conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            )

    def run_script(self, tx: Tx, script: str) -> None:
        tx.conn.execute(script.encode())  # several statements, no parameters


class PostgresStore(SQLStore):
    """`Store` on PostgreSQL (psycopg 3 and a connection pool); safe for several replicas."""

    def __init__(self, conninfo: str, *, schema: str = ""):
        self.schema = schema
        super().__init__(PostgresPool(conninfo, schema), PostgresDialect(schema))
