"""The PostgreSQL store: several leadsync replicas share one database.

Every method is one transaction on a pooled connection (see `PostgresPool`).
Where replicas could race, the database decides: notifications, leads and
events are inserted with `ON CONFLICT DO NOTHING`, leases with one upsert that
only takes over an expired or own lease, outbox claims lock their rows with
`FOR UPDATE SKIP LOCKED`, and score revisions are made under per-lead
advisory locks taken in a fixed order (no deadlocks). Migrations run under a
transaction-level advisory lock, so replicas that start together apply each
one exactly once. Times are timestamptz and come from the caller's clock (run
NTP on replicas).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from psycopg import sql

from leadsync.store.core import SQLStore
from leadsync.store.postgres_pool import ROWS, Connection, PostgresPool
from leadsync.store.rows import Row
from leadsync.store.sql import Dialect, Params, Tx

PARAMETER = re.compile(r"(?<![:\w]):(\w+)")

# Lock keys are (namespace, hash); the namespace keeps ours apart from other applications'.
MIGRATION_LOCK = "SELECT pg_advisory_xact_lock(hashtext('leadsync.migrate'), hashtext(%s))"
SCORE_LOCKS = """
SELECT pg_advisory_xact_lock(hashtext('leadsync.score'), key)
FROM (SELECT DISTINCT hashtext(current_schema() || '/' || id) AS key
      FROM unnest(%s::text[]) AS id ORDER BY key) AS keys
"""


class PostgresDialect(Dialect):
    """PostgreSQL's spelling (psycopg's `%(name)s`), row locks and advisory locks."""

    name = "postgres"
    rows = ROWS
    skip_locked = " FOR UPDATE OF o SKIP LOCKED"

    def __init__(self, schema: str):
        super().__init__()
        self.schema = schema

    def translate(self, text: str) -> str:
        return PARAMETER.sub(r"%(\1)s", text)

    def bind(self, value: Any) -> Any:
        return list(value) if isinstance(value, tuple) else value

    def executemany(self, conn: Connection, text: str, params: list[Params]) -> int:
        with conn.cursor() as cursor:
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
