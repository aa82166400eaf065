"""Delivery in the store: the outbox, its claims and settling, and the dead letter.

A claim takes only the newest revision of a lead for a destination, and never
an item whose lead has another item claimed there, so a connector never
writes a stale score over a fresh one. Delivering an item settles every older
revision (dead ones included: the destination shows the newest score);
burying one buries the older pending revisions it stands for. Two claimers
never get the same item: SQLite claims under the file's write lock,
PostgreSQL locks the rows with the dialect's `FOR UPDATE SKIP LOCKED`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from leadsync.abc import DeliveryStore, LeadOverview
from leadsync.models import (
    DeadLetter,
    DeliveryResult,
    DestinationStats,
    OutboxItem,
    OutboxState,
    utcnow,
)
from leadsync.store.rows import completion_params
from leadsync.store.sql import SQLRole

CLAIM = """
WITH due AS (
    SELECT o.id FROM outbox AS o
    WHERE o.destination = :destination AND o.state = 'pending' AND o.next_attempt_at <= :now
      AND (o.claimed_until IS NULL OR o.claimed_until <= :now)
      AND NOT EXISTS (
          SELECT 1 FROM outbox AS n
          WHERE n.lead_id = o.lead_id AND n.destination = o.destination AND n.id <> o.id
            AND (n.revision > o.revision OR (n.state = 'pending' AND n.claimed_until > :now)))
    ORDER BY o.id LIMIT :limit{lock})
UPDATE outbox SET claimed_by = :owner, claimed_until = :until
FROM due WHERE outbox.id = due.id
RETURNING *
"""

# Delivered: the item, keeping what the destination called the lead...
SETTLE = """
UPDATE outbox SET state = 'delivered', delivered_at = :now, claimed_by = NULL,
    claimed_until = NULL, external_id = COALESCE(NULLIF(:external_id, ''), external_id)
WHERE id = :id
"""

# ...and every older revision with it (two statements: each is one index lookup).
SETTLE_OLDER = """
UPDATE outbox SET state = 'delivered', delivered_at = :now, claimed_by = NULL,
    claimed_until = NULL
WHERE lead_id = :lead_id AND destination = :destination AND revision < :revision
    AND state <> 'delivered'
"""

BURY = """
UPDATE outbox SET state = 'dead', dead_at = :now, last_error = :error,
    claimed_by = NULL, claimed_until = NULL
WHERE state = 'pending' AND (
    id = ANY(:ids)
    OR EXISTS (
        SELECT 1 FROM outbox AS d
        WHERE d.id = ANY(:ids) AND d.lead_id = outbox.lead_id
          AND d.destination = outbox.destination AND d.revision > outbox.revision))
"""

# Filters of the dead-letter commands: "" matches every destination or lead.
DEAD = (
    "state = 'dead' AND (:destination = '' OR destination = :destination)"
    " AND (:lead_id = '' OR lead_id = :lead_id)"
)

REPLAY = f"""
UPDATE outbox SET state = 'pending', attempts = 0, created_at = :now, next_attempt_at = :now,
    claimed_by = NULL, claimed_until = NULL, dead_at = NULL
WHERE {DEAD}
"""

STATS = """
SELECT destination,
    SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END) AS pending,
    MIN(CASE WHEN state = 'pending' THEN created_at END) AS oldest_pending,
    SUM(CASE WHEN state = 'dead' THEN 1 ELSE 0 END) AS dead,
    SUM(CASE WHEN state = 'delivered' THEN 1 ELSE 0 END) AS delivered
FROM outbox GROUP BY destination ORDER BY destination
"""


# The status page: the newest leads with their score, and the state of each one's newest
# revision per destination.
RECENT_LEADS = """
SELECT l.id AS lead_id, l.created_time, l.form_id, s.points, s.mql
FROM leads AS l LEFT JOIN scores AS s ON s.lead_id = l.id ORDER BY l.seq DESC LIMIT :limit
"""
NEWEST_STATES = """
SELECT lead_id, destination, state FROM outbox AS o
WHERE lead_id = ANY(:ids) AND NOT EXISTS (
    SELECT 1 FROM outbox AS n
    WHERE n.lead_id = o.lead_id AND n.destination = o.destination AND n.revision > o.revision)
"""


class Delivery(SQLRole, DeliveryStore):
    """The outbox and dead letter of `leadsync.abc.Store`."""

    def claim(self, destination: str, limit: int, owner: str, lease: timedelta) -> list[OutboxItem]:
        now = utcnow()
        params = {"destination": destination, "limit": limit, "owner": owner, "now": now}
        with self._write() as tx:
            query = CLAIM.format(lock=self._dialect.skip_locked)
            rows = tx.rows(query, params | {"until": now + lease})
        return sorted((self._rows.model(OutboxItem, row) for row in rows), key=lambda item: item.id)

    def complete(self, items: Sequence[OutboxItem], results: Sequence[DeliveryResult] = ()) -> None:
        if items:
            with self._write() as tx:
                params = completion_params(items, results, utcnow())
                tx.many(SETTLE, params)
                tx.many(SETTLE_OLDER, params)

    def retry(self, item_ids: Sequence[int], error: str, retry_at: datetime) -> None:
        self._exec(
            "UPDATE outbox SET attempts = attempts + 1, last_error = :error,"
            " next_attempt_at = :retry_at, claimed_by = NULL, claimed_until = NULL"
            " WHERE state = 'pending' AND id = ANY(:ids)",
            {"error": error, "retry_at": retry_at, "ids": list(item_ids)},
        )

    def release(self, item_ids: Sequence[int]) -> None:
        query = "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE id = ANY(:ids)"
        self._exec(query, {"ids": list(item_ids)})

    def bury(self, item_ids: Sequence[int], error: str) -> None:
        self._exec(BURY, {"now": utcnow(), "error": error, "ids": list(item_ids)})

    def dead_letters(self, destination: str = "", lead_id: str = "") -> list[DeadLetter]:
        query = f"SELECT * FROM outbox WHERE {DEAD} ORDER BY dead_at, id"
        rows = self._fetch(query, {"destination": destination, "lead_id": lead_id})
        return [self._rows.dead_letter(row) for row in rows]

    def replay(self, destination: str = "", lead_id: str = "") -> int:
        return self._exec(REPLAY, {"now": utcnow(), "destination": destination, "lead_id": lead_id})

    def destination_stats(self) -> list[DestinationStats]:
        return [self._rows.destination_stats(row) for row in self._fetch(STATS)]

    def recent_leads(self, limit: int = 50) -> list[LeadOverview]:
        with self._read() as tx:
            leads = tx.rows(RECENT_LEADS, {"limit": limit})
            items = tx.rows(NEWEST_STATES, {"ids": [row["lead_id"] for row in leads]})
        states: dict[str, dict[str, OutboxState]] = {}
        for item in items:
            states.setdefault(item["lead_id"], {})[item["destination"]] = item["state"]
        return [
            self._rows.model(
                LeadOverview,
                row,
                mql=None if row["mql"] is None else bool(row["mql"]),
                destinations=states.get(row["lead_id"], {}),
            )
            for row in leads
        ]
