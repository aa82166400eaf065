"""`SQLStore`: the one implementation of `leadsync.abc.Store`, by role, over a dialect.

Each role has a module named after it: `ingest` (notifications, leads, forms,
checkpoints), `scoring` (scores, events), `routing` (contacts, owners),
`delivery` (outbox, dead letter), `coordination` (leases, owners, health),
`outcomes` (lead stages), `reporting` (the closed-loop report's read) and `sla`
(speed-to-lead alerts). This class joins them over a backend's connections and
dialect, and migrates: in one write transaction under the dialect's lock it refuses a
database newer than this code knows (an old replica must not write to a schema it
does not understand) and applies the missing migrations in order, recording each in
`schema_version`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import structlog

from leadsync.abc import Store
from leadsync.errors import ConfigError, Problem
from leadsync.models import utcnow
from leadsync.store.coordination import Coordination
from leadsync.store.delivery import Delivery
from leadsync.store.ingest import Ingest
from leadsync.store.outcomes import Outcomes
from leadsync.store.reporting import Reporting
from leadsync.store.routing import Routing
from leadsync.store.scoring import Scoring
from leadsync.store.sla import Sla
from leadsync.store.sql import Connections, Dialect

log = structlog.get_logger(__name__)

FILE_NAME = re.compile(r"(?P<version>\d{4})_(?P<name>\w+)\.sql")


@dataclass(frozen=True, slots=True, order=True)
class Migration:
    """One schema change: its version, a short name and the SQL that makes it."""

    version: int
    name: str
    sql: str


def migrations(dialect: Dialect) -> list[Migration]:
    """Every migration of the dialect's backend, in version order.

    `migrations/NNNN_name.sql` is written once for both backends, with the
    dialect's `words` (types) filled in; a file of the same number in
    `migrations/<backend>/` replaces it where the SQL truly differs.
    """
    root = resources.files("leadsync.store").joinpath("migrations")
    found: dict[int, Migration] = {}
    for folder in (root, root.joinpath(dialect.name)):
        for entry in folder.iterdir():
            if match := FILE_NAME.fullmatch(entry.name):
                sql = entry.read_text(encoding="utf-8")
                sql = sql.format_map(dialect.words) if folder is root else sql
                version = int(match["version"])
                if folder is root and version in found:  # two branches took one number
                    raise RuntimeError(f"two migrations are numbered {version}: renumber one")
                found[version] = Migration(version, match["name"], sql)
    if sorted(found) != list(range(1, len(found) + 1)):
        # A packaging mistake, not something an operator can fix.
        raise RuntimeError(f"{dialect.name} migrations are not numbered 1..n: {sorted(found)}")
    return [found[version] for version in sorted(found)]


def to_apply(current: int, known: list[Migration]) -> list[Migration]:
    """The migrations a database at version `current` still needs; ConfigError if it is newer."""
    newest = known[-1].version if known else 0
    if current > newest:
        message = (
            f"the database schema is at version {current}, newer than this leadsync knows"
            f" (version {newest}); it was upgraded by a newer leadsync"
        )
        fix = "run the newer leadsync here too, or point store.url at another database"
        raise ConfigError([Problem("store.url", message, fix)])
    return [m for m in known if m.version > current]


class SQLStore(Ingest, Scoring, Routing, Delivery, Coordination, Outcomes, Reporting, Sla, Store):
    """`Store` on a SQL database: the backend's connections spoken through its dialect."""

    def __init__(self, db: Connections, dialect: Dialect):
        self._db, self._dialect, self._rows = db, dialect, dialect.rows

    def migrate(self) -> None:
        dialect = self._dialect
        with self._write() as tx:
            dialect.lock_migrations(tx)
            tx.run(
                "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY,"
                f" name text NOT NULL, applied_at {dialect.words['time']} NOT NULL)"
            )
            [row] = tx.rows("SELECT COALESCE(MAX(version), 0) AS version FROM schema_version")
            for migration in to_apply(row["version"], migrations(dialect)):
                dialect.run_script(tx, migration.sql)
                tx.run(
                    "INSERT INTO schema_version (version, name, applied_at)"
                    " VALUES (:version, :name, :at)",
                    {"version": migration.version, "name": migration.name, "at": utcnow()},
                )
                log.info("store.migrated", backend=dialect.name, version=migration.version)

    def close(self) -> None:
        self._db.close()
