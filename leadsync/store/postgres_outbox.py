"""The outbox half of the PostgreSQL store: claims, settling, dead letter, queue figures.

The rules are the SQLite store's (see `leadsync.store.sqlite_outbox`): a claim
takes only the newest revision of a lead for a destination and never one whose
lead has another item claimed there; burying buries the older pending
revisions; delivering settles every older revision. Here claims are made by
`SELECT ... FOR UPDATE SKIP LOCKED`, so replicas claiming at the same moment
pass over each other's rows instead of waiting or taking them twice; a claim
expires at `claimed_until`, after which a live replica takes a dead one's items.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from leadsync.abc import LeadOverview
from leadsync.models import DeadLetter, DeliveryResult, DestinationStats, OutboxItem, utcnow
from leadsync.store.postgres_pool import ROWS, PostgresPool

CLAIM = """
WITH due AS (
    SELECT o.id FROM outbox AS o
    WHERE o.destination = %(destination)s AND o.state = 'pending'
      AND o.next_attempt_at <= %(now)s
      AND (o.claimed_until IS NULL OR o.claimed_until <= %(now)s)
      AND NOT EXISTS (
          SELECT 1 FROM outbox AS n
          WHERE n.lead_id = o.lead_id AND n.destination = o.destination AND n.id <> o.id
            AND (n.revision > o.revision OR (n.state = 'pending' AND n.claimed_until > %(now)s)))
    ORDER BY o.id LIMIT %(limit)s
    FOR UPDATE OF o SKIP LOCKED)
UPDATE outbox SET claimed_by = %(owner)s, claimed_until = %(until)s
FROM due WHERE outbox.id = due.id
RETURNING outbox.*
"""

BURY = """
UPDATE outbox AS o SET state = 'dead', dead_at = %(now)s, last_error = %(error)s,
    claimed_by = NULL, claimed_until = NULL
WHERE o.state = 'pending' AND (
    o.id = ANY(%(ids)s)
    OR EXISTS (
        SELECT 1 FROM outbox AS d
        WHERE d.id = ANY(%(ids)s) AND d.lead_id = o.lead_id
          AND d.destination = o.destination AND d.revision > o.revision))
"""

STATS = """
SELECT destination,
    COUNT(*) FILTER (WHERE state = 'pending') AS pending,
    MIN(created_at) FILTER (WHERE state = 'pending') AS oldest_pending,
    COUNT(*) FILTER (WHERE state = 'dead') AS dead,
    COUNT(*) FILTER (WHERE state = 'delivered') AS delivered
FROM outbox GROUP BY destination ORDER BY destination
"""


class PostgresOutbox:
    """Outbox methods of `PostgresStore`, on its `PostgresPool`."""

    _db: PostgresPool

    def claim(self, destination: str, limit: int, owner: str, lease: timedelta) -> list[OutboxItem]:
        now = utcnow()
        params = {
            "destination": destination,
            "limit": limit,
            "owner": owner,
            "now": now,
            "until": now + lease,
        }
        with self._db.transaction() as conn:
            rows = conn.execute(CLAIM, params).fetchall()
        return sorted((ROWS.outbox_item(row) for row in rows), key=lambda item: item.id)

    def complete(self, items: Sequence[OutboxItem], results: Sequence[DeliveryResult] = ()) -> None:
        if not items:
            return
        params = ROWS.completion_params(items, results, utcnow())
        with self._db.transaction() as conn, conn.cursor() as cursor:
            cursor.executemany(
                "UPDATE outbox SET state = 'delivered', delivered_at = %(now)s,"
                " claimed_by = NULL, claimed_until = NULL,"
                " external_id = COALESCE(NULLIF(%(external_id)s, ''), external_id)"
                " WHERE id = %(id)s",
                params,
            )
            cursor.executemany(
                "UPDATE outbox SET state = 'delivered', delivered_at = %(now)s,"
                " claimed_by = NULL, claimed_until = NULL"
                " WHERE lead_id = %(lead_id)s AND destination = %(destination)s"
                " AND revision < %(revision)s AND state <> 'delivered'",
                params,
            )

    def retry(self, item_ids: Sequence[int], error: str, retry_at: datetime) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = %s,"
                " next_attempt_at = %s, claimed_by = NULL, claimed_until = NULL"
                " WHERE state = 'pending' AND id = ANY(%s)",
                (error, retry_at, list(item_ids)),
            )

    def release(self, item_ids: Sequence[int]) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE id = ANY(%s)",
                (list(item_ids),),
            )

    def bury(self, item_ids: Sequence[int], error: str) -> None:
        with self._db.transaction() as conn:
            conn.execute(BURY, {"now": utcnow(), "error": error, "ids": list(item_ids)})

    def dead_letters(self, destination: str = "", lead_id: str = "") -> list[DeadLetter]:
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT * FROM outbox WHERE state = 'dead' AND (%(destination)s = ''"
                " OR destination = %(destination)s) AND (%(lead_id)s = '' OR lead_id = %(lead_id)s)"
                " ORDER BY dead_at, id",
                {"destination": destination, "lead_id": lead_id},
            ).fetchall()
        return [ROWS.dead_letter(row) for row in rows]

    def replay(self, destination: str = "", lead_id: str = "") -> int:
        with self._db.transaction() as conn:
            cursor = conn.execute(
                "UPDATE outbox SET state = 'pending', attempts = 0, created_at = %(now)s,"
                " next_attempt_at = %(now)s, claimed_by = NULL, claimed_until = NULL,"
                " dead_at = NULL WHERE state = 'dead'"
                " AND (%(destination)s = '' OR destination = %(destination)s)"
                " AND (%(lead_id)s = '' OR lead_id = %(lead_id)s)",
                {"now": utcnow(), "destination": destination, "lead_id": lead_id},
            )
            return cursor.rowcount

    def destination_stats(self) -> list[DestinationStats]:
        with self._db.transaction() as conn:
            rows = conn.execute(STATS).fetchall()
        return [ROWS.destination_stats(row) for row in rows]

    def recent_leads(self, limit: int = 50) -> list[LeadOverview]:
        with self._db.transaction() as conn:
            leads = conn.execute(
                "SELECT l.id, l.created_time, l.form_id, s.points, s.mql FROM leads AS l"
                " LEFT JOIN scores AS s ON s.lead_id = l.id ORDER BY l.seq DESC LIMIT %s",
                (limit,),
            ).fetchall()
            items = conn.execute(
                "SELECT lead_id, destination, revision, state FROM outbox WHERE lead_id = ANY(%s)",
                ([row["id"] for row in leads],),
            ).fetchall()
        return ROWS.overviews(leads, items)
