"""The outbox half of the SQLite store: claims, settling, dead letter, queue figures.

Rules shared with the PostgreSQL store (see `leadsync.abc.Store` for the
contract): a claim takes only the newest revision of a lead for a destination
(an older one is settled when the newer is delivered, so a connector never
writes a stale score over a fresh one), and never an item whose lead already
has another item claimed at that destination. Burying an item buries the older
pending revisions it stands for; delivering one settles every older revision,
dead ones included, because the destination now shows the newest score.
Claims run in one `BEGIN IMMEDIATE` transaction, so two claimers, in threads
or processes, never get the same item.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from leadsync.abc import LeadOverview
from leadsync.models import DeadLetter, DeliveryResult, DestinationStats, OutboxItem, utcnow
from leadsync.store.sqlite_file import ROWS, SQLiteFile, encode_time, id_list

CLAIM = """
UPDATE outbox SET claimed_by = :owner, claimed_until = :until
WHERE id IN (
    SELECT id FROM outbox AS o
    WHERE o.destination = :destination AND o.state = 'pending' AND o.next_attempt_at <= :now
      AND (o.claimed_until IS NULL OR o.claimed_until <= :now)
      AND NOT EXISTS (
          SELECT 1 FROM outbox AS n
          WHERE n.lead_id = o.lead_id AND n.destination = o.destination AND n.id <> o.id
            AND (n.revision > o.revision OR (n.state = 'pending' AND n.claimed_until > :now)))
    ORDER BY o.id LIMIT :limit)
RETURNING *
"""

BURY = """
UPDATE outbox SET state = 'dead', dead_at = :now, last_error = :error,
    claimed_by = NULL, claimed_until = NULL
WHERE state = 'pending' AND (
    id IN (SELECT value FROM json_each(:ids))
    OR EXISTS (
        SELECT 1 FROM outbox AS d
        WHERE d.id IN (SELECT value FROM json_each(:ids)) AND d.lead_id = outbox.lead_id
          AND d.destination = outbox.destination AND d.revision > outbox.revision))
"""

STATS = """
SELECT destination,
    SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END) AS pending,
    MIN(CASE WHEN state = 'pending' THEN created_at END) AS oldest_pending,
    SUM(CASE WHEN state = 'dead' THEN 1 ELSE 0 END) AS dead,
    SUM(CASE WHEN state = 'delivered' THEN 1 ELSE 0 END) AS delivered
FROM outbox GROUP BY destination ORDER BY destination
"""


class SQLiteOutbox:
    """Outbox methods of `SQLiteStore`, on its `SQLiteFile`."""

    _db: SQLiteFile

    def claim(self, destination: str, limit: int, owner: str, lease: timedelta) -> list[OutboxItem]:
        now = utcnow()
        params = {
            "destination": destination,
            "limit": limit,
            "owner": owner,
            "now": encode_time(now),
            "until": encode_time(now + lease),
        }
        with self._db.write() as conn:
            rows = conn.execute(CLAIM, params).fetchall()
        return sorted((ROWS.outbox_item(row) for row in rows), key=lambda item: item.id)

    def complete(self, items: Sequence[OutboxItem], results: Sequence[DeliveryResult] = ()) -> None:
        params = ROWS.completion_params(items, results, utcnow())
        with self._db.write() as conn:
            conn.executemany(
                "UPDATE outbox SET state = 'delivered', delivered_at = :now,"
                " claimed_by = NULL, claimed_until = NULL,"
                " external_id = CASE WHEN :external_id = '' THEN external_id ELSE :external_id END"
                " WHERE id = :id",
                params,
            )
            conn.executemany(
                "UPDATE outbox SET state = 'delivered', delivered_at = :now,"
                " claimed_by = NULL, claimed_until = NULL"
                " WHERE lead_id = :lead_id AND destination = :destination"
                " AND revision < :revision AND state <> 'delivered'",
                params,
            )

    def retry(self, item_ids: Sequence[int], error: str, retry_at: datetime) -> None:
        with self._db.write() as conn:
            conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?,"
                " claimed_by = NULL, claimed_until = NULL"
                " WHERE state = 'pending' AND id IN (SELECT value FROM json_each(?))",
                (error, encode_time(retry_at), id_list(item_ids)),
            )

    def release(self, item_ids: Sequence[int]) -> None:
        with self._db.write() as conn:
            conn.execute(
                "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL"
                " WHERE id IN (SELECT value FROM json_each(?))",
                (id_list(item_ids),),
            )

    def bury(self, item_ids: Sequence[int], error: str) -> None:
        with self._db.write() as conn:
            params = {"now": encode_time(utcnow()), "error": error, "ids": id_list(item_ids)}
            conn.execute(BURY, params)

    def dead_letters(self, destination: str = "", lead_id: str = "") -> list[DeadLetter]:
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT * FROM outbox WHERE state = 'dead' AND (:destination = ''"
                " OR destination = :destination) AND (:lead_id = '' OR lead_id = :lead_id)"
                " ORDER BY dead_at, id",
                {"destination": destination, "lead_id": lead_id},
            ).fetchall()
        return [ROWS.dead_letter(row) for row in rows]

    def replay(self, destination: str = "", lead_id: str = "") -> int:
        with self._db.write() as conn:
            cursor = conn.execute(
                "UPDATE outbox SET state = 'pending', attempts = 0, created_at = :now,"
                " next_attempt_at = :now, claimed_by = NULL, claimed_until = NULL, dead_at = NULL"
                " WHERE state = 'dead' AND (:destination = '' OR destination = :destination)"
                " AND (:lead_id = '' OR lead_id = :lead_id)",
                {"now": encode_time(utcnow()), "destination": destination, "lead_id": lead_id},
            )
            return cursor.rowcount

    def destination_stats(self) -> list[DestinationStats]:
        with self._db.read() as conn:
            rows = conn.execute(STATS).fetchall()
        return [ROWS.destination_stats(row) for row in rows]

    def recent_leads(self, limit: int = 50) -> list[LeadOverview]:
        with self._db.read() as conn:
            leads = conn.execute(
                "SELECT l.id, l.created_time, l.form_id, s.points, s.mql FROM leads AS l"
                " LEFT JOIN scores AS s ON s.lead_id = l.id ORDER BY l.seq DESC LIMIT ?",
                (limit,),
            ).fetchall()
            items = conn.execute(
                "SELECT lead_id, destination, revision, state FROM outbox"
                " WHERE lead_id IN (SELECT value FROM json_each(?))",
                (id_list([row["id"] for row in leads]),),
            ).fetchall()
        return ROWS.overviews(leads, items)
