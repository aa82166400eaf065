"""Ingest in the store: notifications, leads, forms and poll checkpoints.

A notification is a lead id we know exists, kept until its answers are
fetched; `save_leads` stores leads and settles their notifications in one
transaction. A fetch round claims the notifications it takes, as delivery
claims outbox items (SQLite under the file's write lock, PostgreSQL with the
dialect's `FOR UPDATE SKIP LOCKED`), so replicas never fetch the same lead;
storing, dropping or deferring a notification ends its claim. Leads are
deduplicated by id however they came: an insert that meets a stored id does
nothing, and only rows really inserted count as new, so replicas racing on
one lead agree. Checkpoints only ever move forward.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from leadsync.abc import IngestStore
from leadsync.models import Checkpoint, Form, Lead, Notification, NotificationBacklog, utcnow
from leadsync.store.rows import first_of_each, form_params, lead_params, params
from leadsync.store.sql import SQLRole

ADD_NOTIFICATION = """
INSERT INTO notifications (lead_id, page_id, form_id, ad_id, created_time, source, received_at)
SELECT :lead_id, :page_id, :form_id, :ad_id, :created_time, :source, :received_at
WHERE NOT EXISTS (SELECT 1 FROM leads WHERE id = :lead_id)
ON CONFLICT (lead_id) DO NOTHING
"""

# `o` is the alias the dialect's row lock names (PostgreSQL: FOR UPDATE OF o SKIP LOCKED).
CLAIM = """
WITH due AS (
    SELECT o.seq FROM notifications AS o
    WHERE o.state = 'pending' AND (o.retry_at IS NULL OR o.retry_at <= :now)
      AND (o.claimed_until IS NULL OR o.claimed_until <= :now)
    ORDER BY o.seq LIMIT :limit{lock})
UPDATE notifications SET claimed_by = :owner, claimed_until = :until
FROM due WHERE notifications.seq = due.seq
RETURNING notifications.seq, lead_id, page_id, form_id, ad_id, created_time, source, received_at
"""

# Every pending notification, deferred and claimed ones too: all of them wait for a fetch.
BACKLOG = """
SELECT COUNT(*) AS waiting, MIN(received_at) AS oldest_received_at
FROM notifications WHERE state = 'pending'
"""

# A notification's claim ends with its round: stored, dropped or deferred.
UNCLAIMED = "claimed_by = NULL, claimed_until = NULL"

SET_META = """
INSERT INTO meta (key, value) VALUES (:key, :value)
ON CONFLICT (key) DO UPDATE SET value = excluded.value
"""

ADD_LEAD = """
INSERT INTO leads (id, page_id, form_id, created_time, email, payload, stored_at)
VALUES (:id, :page_id, :form_id, :created_time, :email, :payload, :stored_at)
ON CONFLICT (id) DO NOTHING RETURNING id
"""

SAVE_FORM = """
INSERT INTO forms (id, page_id, name, status, questions, updated_at)
VALUES (:id, :page_id, :name, :status, :questions, :updated_at)
ON CONFLICT (id) DO UPDATE SET page_id = excluded.page_id, name = excluded.name,
    status = excluded.status, questions = excluded.questions, updated_at = excluded.updated_at
"""

ADVANCE_CHECKPOINT = """
INSERT INTO checkpoints (form_id, last_created_time) VALUES (:form_id, :time)
ON CONFLICT (form_id) DO UPDATE SET last_created_time = excluded.last_created_time
WHERE checkpoints.last_created_time IS NULL
    OR checkpoints.last_created_time < excluded.last_created_time
"""

RECORD_POLL = """
INSERT INTO checkpoints (form_id, polled_at, last_error) VALUES (:form_id, :now, :error)
ON CONFLICT (form_id) DO UPDATE SET polled_at = excluded.polled_at, last_error = excluded.last_error
"""

# Forms never polled have a checkpoint too: an empty one.
CHECKPOINTS = """
SELECT form_id, last_created_time, polled_at, last_error FROM checkpoints
UNION ALL SELECT id, NULL, NULL, '' FROM forms WHERE id NOT IN (SELECT form_id FROM checkpoints)
ORDER BY form_id
"""


class Ingest(SQLRole, IngestStore):
    """Notifications, leads, forms and checkpoints of `leadsync.abc.Store`."""

    def add_notifications(
        self, notes: Sequence[Notification], progress: tuple[str, str] | None = None
    ) -> int:
        if not notes:
            return 0  # no transaction, so no wait for the write lock, for nothing
        now = utcnow()
        with self._write() as tx:
            rows = [params(note, received_at=note.received_at or now) for note in notes]
            added = tx.many(ADD_NOTIFICATION, rows)
            if progress is not None:
                tx.run(SET_META, {"key": progress[0], "value": progress[1]})
            return added

    def pending_notifications(self, limit: int) -> list[Notification]:
        rows = self._fetch(
            "SELECT * FROM notifications WHERE state = 'pending'"
            " AND (retry_at IS NULL OR retry_at <= :now) ORDER BY seq LIMIT :limit",
            {"now": utcnow(), "limit": limit},
        )
        return [self._rows.model(Notification, row) for row in rows]

    def claim_notifications(self, owner: str, limit: int, lease: timedelta) -> list[Notification]:
        now = utcnow()
        values = {"owner": owner, "limit": limit, "now": now, "until": now + lease}
        with self._write() as tx:
            rows = tx.rows(CLAIM.format(lock=self._dialect.skip_locked), values)
        rows.sort(key=lambda row: row["seq"])  # RETURNING keeps no order
        return [self._rows.model(Notification, row) for row in rows]

    def notification_backlog(self) -> NotificationBacklog:
        [row] = self._fetch(BACKLOG)
        oldest = row["oldest_received_at"]
        return NotificationBacklog(
            int(row["waiting"]), self._rows.decode_time(oldest) if oldest is not None else None
        )

    def defer_notifications(self, lead_ids: Sequence[str], error: str, retry_at: datetime) -> None:
        self._exec(
            f"UPDATE notifications SET attempts = attempts + 1, last_error = :error,"
            f" retry_at = :retry_at, {UNCLAIMED} WHERE state = 'pending' AND lead_id = ANY(:ids)",
            {"error": error, "retry_at": retry_at, "ids": list(lead_ids)},
        )

    def drop_notification(self, lead_id: str, error: str) -> None:
        self._exec(
            f"UPDATE notifications SET state = 'dropped', last_error = :error, {UNCLAIMED}"
            " WHERE lead_id = :lead_id AND state = 'pending'",
            {"error": error, "lead_id": lead_id},
        )

    def save_leads(self, leads: Sequence[Lead]) -> list[str]:
        if not leads:
            return []
        leads, now = first_of_each(leads, lambda lead: lead.id), utcnow()
        with self._write() as tx:
            new = tx.inserted(ADD_LEAD, [lead_params(lead, now) for lead in leads])
            tx.run(
                f"UPDATE notifications SET state = 'stored', {UNCLAIMED}"
                " WHERE state <> 'stored' AND lead_id = ANY(:ids)",
                {"ids": [lead.id for lead in leads]},
            )
        return [row["id"] for row in new]

    def get_leads(self, lead_ids: Sequence[str]) -> dict[str, Lead]:
        rows = self._fetch(
            "SELECT payload FROM leads WHERE id = ANY(:ids)", {"ids": list(lead_ids)}
        )
        leads = [Lead.from_json(row["payload"]) for row in rows]
        return {lead.id: lead for lead in leads}

    def lead_ids_by_email(self, email: str) -> list[str]:
        query = "SELECT id FROM leads WHERE email = :email ORDER BY seq"
        return self._column(query, {"email": email.strip().lower()})

    def lead_ids(self, after: str = "", limit: int = 1000) -> list[str]:
        query = "SELECT id FROM leads WHERE id > :after ORDER BY id LIMIT :limit"
        return self._column(query, {"after": after, "limit": limit})

    def unscored_lead_ids(self, limit: int) -> list[str]:
        query = f"SELECT id FROM leads WHERE scored = {self._dialect.false} ORDER BY seq LIMIT :n"
        return self._column(query, {"n": limit})

    def count_leads(self) -> int:
        return self._column("SELECT COUNT(*) FROM leads")[0]

    def save_forms(self, forms: Sequence[Form]) -> None:
        now = utcnow()
        with self._write() as tx:
            tx.many(SAVE_FORM, [form_params(form, now) for form in forms])

    def forms(self, page_id: str = "") -> list[Form]:
        query = "SELECT * FROM forms WHERE :page = '' OR page_id = :page ORDER BY page_id, id"
        return [self._rows.form(row) for row in self._fetch(query, {"page": page_id})]

    def checkpoint(self, form_id: str) -> Checkpoint:
        rows = self._fetch("SELECT * FROM checkpoints WHERE form_id = :id", {"id": form_id})
        return self._rows.model(Checkpoint, rows[0]) if rows else Checkpoint(form_id)

    def checkpoints(self) -> list[Checkpoint]:
        return [self._rows.model(Checkpoint, row) for row in self._fetch(CHECKPOINTS)]

    def advance_checkpoint(self, form_id: str, last_created_time: datetime) -> None:
        self._exec(ADVANCE_CHECKPOINT, {"form_id": form_id, "time": last_created_time})

    def record_poll(self, form_id: str, error: str = "") -> None:
        self._exec(RECORD_POLL, {"form_id": form_id, "now": utcnow(), "error": error})
