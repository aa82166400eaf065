"""`SQLStore`: the one implementation of `leadsync.abc.Store`, by role, over a dialect.

Each role lives in a module named after it: `ingest` (notifications, leads,
forms, checkpoints), `scoring` (scores, events), `delivery` (outbox, dead
letter) and `coordination` (leases, owners, health). This class joins them
and adds the lifecycle: migrations run in one write transaction under the
dialect's migration lock; it reads the highest version recorded in
`schema_version` and applies the backend's missing files in order (see
`leadsync.store.schema`). A backend (`sqlite`, `postgres`) hands it its
connections and its dialect.
"""

from __future__ import annotations

import structlog

from leadsync.abc import Store
from leadsync.models import utcnow
from leadsync.store import schema
from leadsync.store.coordination import Coordination
from leadsync.store.delivery import Delivery
from leadsync.store.ingest import Ingest
from leadsync.store.scoring import Scoring
from leadsync.store.sql import Connections, Dialect

log = structlog.get_logger(__name__)


class SQLStore(Ingest, Scoring, Delivery, Coordination, Store):
    """`Store` on a SQL database: the backend's connections spoken through its dialect."""

    def __init__(self, db: Connections, dialect: Dialect):
        self._db = db
        self._dialect = dialect

    def migrate(self) -> None:
        dialect = self._dialect
        with self._write() as tx:
            dialect.lock_migrations(tx)
            tx.run(
                "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY,"
                f" name text NOT NULL, applied_at {dialect.time_type} NOT NULL)"
            )
            current = tx.column("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0]
            for migration in schema.to_apply(current, schema.load(dialect.name)):
                dialect.run_script(tx, migration.sql)
                tx.run(
                    "INSERT INTO schema_version (version, name, applied_at)"
                    " VALUES (:version, :name, :at)",
                    {"version": migration.version, "name": migration.name, "at": utcnow()},
                )
                log.info("store.migrated", backend=dialect.name, version=migration.version)

    def close(self) -> None:
        self._db.close()
