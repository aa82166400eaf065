"""The PostgreSQL store: several leadsync replicas share one database.

Every method is one transaction on a pooled connection (see `PostgresPool`).
Where replicas could race, the database decides: notifications, leads and
events are inserted with `ON CONFLICT DO NOTHING`, leases with one upsert that
only takes over an expired or own lease, outbox claims with
`FOR UPDATE SKIP LOCKED`, and score revisions under per-lead advisory locks
taken in a fixed order (no deadlocks). Migrations run under a transaction-level
advisory lock, so replicas that start together apply each one exactly once.
Times are timestamptz and come from the caller's clock (run NTP on replicas).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import structlog

from leadsync.abc import SavedScores, ScoreUpdate, Store
from leadsync.models import (
    Checkpoint,
    Event,
    Form,
    Lead,
    Notification,
    Score,
    ServiceStatus,
    utcnow,
)
from leadsync.store import schema
from leadsync.store.postgres_outbox import PostgresOutbox
from leadsync.store.postgres_pool import ROWS, Connection, PostgresPool, column
from leadsync.store.rows import first_of_each, score_changes

log = structlog.get_logger(__name__)

# Lock keys are (namespace, hash); the namespace keeps ours apart from other applications'.
MIGRATION_LOCK = "SELECT pg_advisory_xact_lock(hashtext('leadsync.migrate'), hashtext(%s))"
SCORE_LOCKS = """
SELECT pg_advisory_xact_lock(hashtext('leadsync.score'), key)
FROM (SELECT DISTINCT hashtext(current_schema() || '/' || id) AS key
      FROM unnest(%s::text[]) AS id ORDER BY key) AS keys
"""


class PostgresStore(PostgresOutbox, Store):
    """`Store` on PostgreSQL (psycopg 3 and a connection pool); safe for several replicas."""

    def __init__(self, conninfo: str, *, schema: str = ""):
        self.schema = schema
        self._db = PostgresPool(conninfo, schema)

    # -- lifecycle -------------------------------------------------------------
    def migrate(self) -> None:
        with self._db.transaction() as conn:
            conn.execute(MIGRATION_LOCK, (self.schema,))
            self._db.create_schema(conn)
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY,"
                " name text NOT NULL, applied_at timestamptz NOT NULL)"
            )
            current = column(conn, "SELECT COALESCE(MAX(version), 0) FROM schema_version")[0]
            for migration in schema.to_apply(current, schema.load("postgres")):
                conn.execute(migration.sql.encode())  # several statements, no parameters
                conn.execute(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, utcnow()),
                )
                log.info("store.migrated", backend="postgres", version=migration.version)

    def close(self) -> None:
        self._db.close()

    def ping(self) -> None:
        self.set_meta("heartbeat", utcnow().isoformat())

    # -- ingest ----------------------------------------------------------------
    def add_notifications(self, notes: Sequence[Notification]) -> int:
        if not notes:
            return 0
        now = utcnow()
        with self._db.transaction() as conn, conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO notifications"
                " (lead_id, page_id, form_id, ad_id, created_time, source, received_at)"
                " SELECT %(lead_id)s, %(page_id)s, %(form_id)s, %(ad_id)s, %(created_time)s,"
                " %(source)s, %(received_at)s"
                " WHERE NOT EXISTS (SELECT 1 FROM leads WHERE id = %(lead_id)s)"
                " ON CONFLICT (lead_id) DO NOTHING",
                [ROWS.notification_params(note, now) for note in notes],
            )
            return cursor.rowcount

    def pending_notifications(self, limit: int) -> list[Notification]:
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT * FROM notifications WHERE state = 'pending'"
                " AND (retry_at IS NULL OR retry_at <= %s) ORDER BY seq LIMIT %s",
                (utcnow(), limit),
            ).fetchall()
        return [ROWS.notification(row) for row in rows]

    def defer_notifications(self, lead_ids: Sequence[str], error: str, retry_at: datetime) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE notifications SET attempts = attempts + 1, last_error = %s, retry_at = %s"
                " WHERE state = 'pending' AND lead_id = ANY(%s)",
                (error, retry_at, list(lead_ids)),
            )

    def drop_notification(self, lead_id: str, error: str) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE notifications SET state = 'dropped', last_error = %s"
                " WHERE lead_id = %s AND state = 'pending'",
                (error, lead_id),
            )

    def save_leads(self, leads: Sequence[Lead]) -> list[str]:
        if not leads:
            return []
        leads = first_of_each(leads, lambda lead: lead.id)
        now = utcnow()
        new: list[str] = []
        with self._db.transaction() as conn, conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO leads (id, page_id, form_id, created_time, email, payload, stored_at)"
                " VALUES (%(id)s, %(page_id)s, %(form_id)s, %(created_time)s, %(email)s,"
                " %(payload)s, %(stored_at)s) ON CONFLICT (id) DO NOTHING RETURNING id",
                [ROWS.lead_params(lead, now) for lead in leads],
                returning=True,
            )
            while True:
                new.extend(row["id"] for row in cursor.fetchall())
                if not cursor.nextset():
                    break
            cursor.execute(
                "UPDATE notifications SET state = 'stored'"
                " WHERE state <> 'stored' AND lead_id = ANY(%s)",
                ([lead.id for lead in leads],),
            )
        return new

    def get_leads(self, lead_ids: Sequence[str]) -> dict[str, Lead]:
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT payload FROM leads WHERE id = ANY(%s)", (list(lead_ids),)
            ).fetchall()
        leads = [ROWS.lead(row) for row in rows]
        return {lead.id: lead for lead in leads}

    def lead_ids_by_email(self, email: str) -> list[str]:
        return self._column(
            "SELECT id FROM leads WHERE email = %s ORDER BY seq", (email.strip().lower(),)
        )

    def lead_ids(self, after: str = "", limit: int = 1000) -> list[str]:
        return self._column(
            "SELECT id FROM leads WHERE id > %s ORDER BY id LIMIT %s", (after, limit)
        )

    def unscored_lead_ids(self, limit: int) -> list[str]:
        return self._column(
            "SELECT id FROM leads WHERE NOT scored ORDER BY seq LIMIT %s",
            (limit,),
        )

    def count_leads(self) -> int:
        return self._column("SELECT COUNT(*) FROM leads")[0]

    def _column(self, query: str, params: tuple[object, ...] = ()) -> list:
        with self._db.transaction() as conn:
            return column(conn, query, params)

    # -- forms and checkpoints ---------------------------------------------------
    def save_forms(self, forms: Sequence[Form]) -> None:
        if not forms:
            return
        now = utcnow()
        with self._db.transaction() as conn, conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO forms (id, page_id, name, status, questions, updated_at)"
                " VALUES (%(id)s, %(page_id)s, %(name)s, %(status)s, %(questions)s,"
                " %(updated_at)s) ON CONFLICT (id) DO UPDATE SET page_id = excluded.page_id,"
                " name = excluded.name, status = excluded.status,"
                " questions = excluded.questions, updated_at = excluded.updated_at",
                [ROWS.form_params(form, now) for form in forms],
            )

    def forms(self, page_id: str = "") -> list[Form]:
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT * FROM forms WHERE %(page)s = '' OR page_id = %(page)s"
                " ORDER BY page_id, id",
                {"page": page_id},
            ).fetchall()
        return [ROWS.form(row) for row in rows]

    def checkpoint(self, form_id: str) -> Checkpoint:
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT * FROM checkpoints WHERE form_id = %s", (form_id,)
            ).fetchone()
        return ROWS.checkpoint(row) if row else Checkpoint(form_id)

    def checkpoints(self) -> list[Checkpoint]:
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT form_id, last_created_time, polled_at, last_error FROM checkpoints"
                " UNION ALL SELECT id, NULL, NULL, '' FROM forms"
                " WHERE id NOT IN (SELECT form_id FROM checkpoints) ORDER BY form_id"
            ).fetchall()
        return [ROWS.checkpoint(row) for row in rows]

    def advance_checkpoint(self, form_id: str, last_created_time: datetime) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO checkpoints (form_id, last_created_time) VALUES (%s, %s)"
                " ON CONFLICT (form_id) DO UPDATE"
                " SET last_created_time = excluded.last_created_time"
                " WHERE checkpoints.last_created_time IS NULL"
                " OR checkpoints.last_created_time < excluded.last_created_time",
                (form_id, last_created_time),
            )

    def record_poll(self, form_id: str, error: str = "") -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO checkpoints (form_id, polled_at, last_error) VALUES (%s, %s, %s)"
                " ON CONFLICT (form_id) DO UPDATE SET polled_at = excluded.polled_at,"
                " last_error = excluded.last_error",
                (form_id, utcnow(), error),
            )

    # -- scores and events -----------------------------------------------------------
    def save_scores(self, updates: Sequence[ScoreUpdate]) -> SavedScores:
        if not updates:
            return SavedScores()
        now = utcnow()
        with self._db.transaction() as conn, conn.cursor() as cursor:
            lead_ids = [update.lead_id for update in updates]
            cursor.execute(SCORE_LOCKS, (lead_ids,))  # held until commit
            changes, stale = score_changes(updates, self._scores(conn, lead_ids))
            cursor.executemany(
                "INSERT INTO scores (lead_id, points, mql, fit, engagement, reasons,"
                " rules_version, revision, scored_at) VALUES (%(lead_id)s, %(points)s, %(mql)s,"
                " %(fit)s, %(engagement)s, %(reasons)s, %(rules_version)s, %(revision)s,"
                " %(scored_at)s) ON CONFLICT (lead_id) DO UPDATE SET points = excluded.points,"
                " mql = excluded.mql, fit = excluded.fit, engagement = excluded.engagement,"
                " reasons = excluded.reasons, rules_version = excluded.rules_version,"
                " revision = excluded.revision, scored_at = excluded.scored_at",
                [ROWS.score_params(u.lead_id, u.score, rev, now) for u, rev in changes],
            )
            cursor.executemany(
                "INSERT INTO outbox (lead_id, destination, revision, created_at, next_attempt_at)"
                " VALUES (%(lead_id)s, %(destination)s, %(revision)s, %(created_at)s,"
                " %(next_attempt_at)s) ON CONFLICT (lead_id, destination, revision) DO NOTHING",
                [
                    ROWS.outbox_params(u.lead_id, destination, rev, now)
                    for u, rev in changes
                    for destination in u.destinations
                ],
            )
            first = [u.lead_id for u, rev in changes if rev == 1]
            if first:
                cursor.execute("UPDATE leads SET scored = true WHERE id = ANY(%s)", (first,))
        return SavedScores({update.lead_id: rev for update, rev in changes}, stale)

    def current_scores(self, lead_ids: Sequence[str]) -> dict[str, tuple[Score, int]]:
        with self._db.transaction() as conn:
            return self._scores(conn, lead_ids)

    @staticmethod
    def _scores(conn: Connection, lead_ids: Sequence[str]) -> dict[str, tuple[Score, int]]:
        rows = conn.execute("SELECT * FROM scores WHERE lead_id = ANY(%s)", (list(lead_ids),))
        return {row["lead_id"]: ROWS.score(row) for row in rows}

    def routed_destinations(self, lead_ids: Sequence[str]) -> dict[str, set[str]]:
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT DISTINCT lead_id, destination FROM outbox WHERE lead_id = ANY(%s)",
                (list(lead_ids),),
            ).fetchall()
        routed: dict[str, set[str]] = {}
        for row in rows:
            routed.setdefault(row["lead_id"], set()).add(row["destination"])
        return routed

    def external_ids(self, destination: str, lead_ids: Sequence[str]) -> dict[str, str]:
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT lead_id, external_id FROM outbox WHERE destination = %s"
                " AND external_id <> '' AND lead_id = ANY(%s) ORDER BY revision",
                (destination, list(lead_ids)),
            ).fetchall()
        return {row["lead_id"]: row["external_id"] for row in rows}  # the newest revision wins

    def add_events(self, events: Sequence[Event]) -> list[Event]:
        if not events:
            return []
        events = first_of_each(events, lambda event: event.id)
        now = utcnow()
        params = [ROWS.event_params(event, now) for event in events]
        new: set[str] = set()
        with self._db.transaction() as conn, conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO events (id, lead_id, email, type, at, received_at)"
                " VALUES (%(id)s, %(lead_id)s, %(email)s, %(type)s, %(at)s, %(received_at)s)"
                " ON CONFLICT (id) DO NOTHING RETURNING id",
                params,
                returning=True,
            )
            while True:
                new.update(row["id"] for row in cursor.fetchall())
                if not cursor.nextset():
                    break
        return [event for event in events if event.id in new]

    def events_for(self, lead_ids: Sequence[str]) -> dict[str, list[Event]]:
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT * FROM events WHERE lead_id = ANY(%s) ORDER BY lead_id, at, id",
                (list(lead_ids),),
            ).fetchall()
        events: dict[str, list[Event]] = {}
        for row in rows:
            events.setdefault(row["lead_id"], []).append(ROWS.event(row))
        return events

    # -- coordination and health -----------------------------------------------------
    def acquire_lease(self, name: str, owner: str, ttl: timedelta) -> bool:
        now = utcnow()
        with self._db.transaction() as conn:
            row = conn.execute(
                "INSERT INTO leases (name, owner, expires_at) VALUES (%s, %s, %s)"
                " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner,"
                " expires_at = excluded.expires_at"
                " WHERE leases.owner = excluded.owner OR leases.expires_at <= %s"
                " RETURNING owner",
                (name, owner, now + ttl, now),
            ).fetchone()
        return row is not None

    def release_lease(self, name: str, owner: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM leases WHERE name = %s AND owner = %s", (name, owner))

    def owners(self) -> set[str]:
        now = utcnow()
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT owner FROM leases WHERE expires_at > %s UNION SELECT claimed_by FROM outbox"
                " WHERE state = 'pending' AND claimed_by IS NOT NULL AND claimed_until > %s",
                (now, now),
            ).fetchall()
        return {row["owner"] for row in rows}

    def release_owner(self, owner: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM leases WHERE owner = %s", (owner,))
            conn.execute(
                "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL"
                " WHERE state = 'pending' AND claimed_by = %s",
                (owner,),
            )

    def set_status(self, status: ServiceStatus) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO service_status (service, ok, message, at)"
                " VALUES (%(service)s, %(ok)s, %(message)s, %(at)s)"
                " ON CONFLICT (service) DO UPDATE SET ok = excluded.ok,"
                " message = excluded.message, at = excluded.at",
                ROWS.status_params(status, utcnow()),
            )

    def statuses(self) -> list[ServiceStatus]:
        with self._db.transaction() as conn:
            rows = conn.execute("SELECT * FROM service_status ORDER BY service").fetchall()
        return [ROWS.status(row) for row in rows]

    def get_meta(self, key: str) -> str | None:
        values = self._column("SELECT value FROM meta WHERE key = %s", (key,))
        return values[0] if values else None

    def set_meta(self, key: str, value: str) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (%s, %s)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
