"""Coordination in the store: leases, owners of claims, service health and meta values.

A lease is one row with an owner and an expiry: one upsert takes it when it
is free, expired or already ours, so among replicas exactly one holds it.
`owners` and `release_owner` let a restarted daemon see and take back what a
dead process held (its leases, and its claims on outbox items and on
notifications). Service statuses and meta values are small named records,
replaced whole.
"""

from __future__ import annotations

from datetime import timedelta

from leadsync.abc import CoordinationStore
from leadsync.models import ServiceStatus, utcnow
from leadsync.store import rows
from leadsync.store.ingest import SET_META
from leadsync.store.sql import SQLRole

ACQUIRE = """
INSERT INTO leases (name, owner, expires_at) VALUES (:name, :owner, :until)
ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
WHERE leases.owner = excluded.owner OR leases.expires_at <= :now
"""

OWNERS = """
SELECT owner FROM leases WHERE expires_at > :now
UNION SELECT claimed_by FROM outbox
WHERE state = 'pending' AND claimed_by IS NOT NULL AND claimed_until > :now
UNION SELECT claimed_by FROM notifications
WHERE state = 'pending' AND claimed_by IS NOT NULL AND claimed_until > :now
"""

SET_STATUS = """
INSERT INTO service_status (service, ok, message, at) VALUES (:service, :ok, :message, :at)
ON CONFLICT (service) DO UPDATE SET ok = excluded.ok, message = excluded.message, at = excluded.at
"""


class Coordination(SQLRole, CoordinationStore):
    """Leases, owners, statuses and meta values of `leadsync.abc.Store`."""

    def acquire_lease(self, name: str, owner: str, ttl: timedelta) -> bool:
        now = utcnow()
        return (
            self._exec(ACQUIRE, {"name": name, "owner": owner, "until": now + ttl, "now": now}) == 1
        )

    def release_lease(self, name: str, owner: str) -> None:
        query = "DELETE FROM leases WHERE name = :name AND owner = :owner"
        self._exec(query, {"name": name, "owner": owner})

    def owners(self) -> set[str]:
        return set(self._column(OWNERS, {"now": utcnow()}))

    def release_owner(self, owner: str) -> None:
        with self._write() as tx:
            tx.run("DELETE FROM leases WHERE owner = :owner", {"owner": owner})
            for table in ("outbox", "notifications"):
                tx.run(
                    f"UPDATE {table} SET claimed_by = NULL, claimed_until = NULL"
                    " WHERE state = 'pending' AND claimed_by = :owner",
                    {"owner": owner},
                )

    def set_status(self, status: ServiceStatus) -> None:
        self._exec(SET_STATUS, rows.params(status, at=status.at or utcnow()))

    def statuses(self) -> list[ServiceStatus]:
        rows = self._fetch("SELECT * FROM service_status ORDER BY service")
        return [self._rows.model(ServiceStatus, row, ok=bool(row["ok"])) for row in rows]

    def get_meta(self, key: str) -> str | None:
        values = self._column("SELECT value FROM meta WHERE key = :key", {"key": key})
        return values[0] if values else None

    def set_meta(self, key: str, value: str) -> None:
        self._exec(SET_META, {"key": key, "value": value})

    def ping(self) -> None:
        self.set_meta("heartbeat", utcnow().isoformat(timespec="microseconds"))
