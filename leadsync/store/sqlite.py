"""The SQLite store: the default backend, one file beside the daemon.

Every method is one transaction on the file shared as `SQLiteFile` describes
(one locked writer, pooled readers, WAL, `synchronous=FULL`). Writes that
depend on what is already stored (dedup, revisions, claims) read and write in
the same `BEGIN IMMEDIATE` transaction, which holds the file's write lock, so
neither another thread nor another process can interleave. Times are stored
as fixed-width ISO-8601 text in UTC, which compares correctly as text; lists
of ids are passed as one JSON array (`json_each`), so no query hits SQLite's
limit on bound parameters.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

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
from leadsync.store.rows import first_of_each, score_changes
from leadsync.store.sqlite_file import BUSY_TIMEOUT, ROWS, SQLiteFile, encode_time, id_list
from leadsync.store.sqlite_outbox import SQLiteOutbox

log = structlog.get_logger(__name__)


class SQLiteStore(SQLiteOutbox, Store):
    """`Store` on one SQLite file; safe for many threads and several processes."""

    def __init__(self, path: str | Path, *, busy_timeout: timedelta = BUSY_TIMEOUT):
        self.path = Path(path)
        self._db = SQLiteFile(self.path, busy_timeout)

    # -- lifecycle -------------------------------------------------------------
    def migrate(self) -> None:
        with self._db.write() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
                " name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            for migration in schema.to_apply(current.fetchone()[0], schema.load("sqlite")):
                for statement in statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, encode_time(utcnow())),
                )
                log.info("store.migrated", backend="sqlite", version=migration.version)

    def close(self) -> None:
        self._db.close()

    def ping(self) -> None:
        self.set_meta("heartbeat", encode_time(utcnow()))

    # -- ingest ----------------------------------------------------------------
    def add_notifications(self, notes: Sequence[Notification]) -> int:
        if not notes:
            return 0
        now = utcnow()
        with self._db.write() as conn:
            cursor = conn.executemany(
                "INSERT INTO notifications"
                " (lead_id, page_id, form_id, ad_id, created_time, source, received_at)"
                " SELECT :lead_id, :page_id, :form_id, :ad_id, :created_time, :source, :received_at"
                " WHERE NOT EXISTS (SELECT 1 FROM leads WHERE id = :lead_id)"
                " ON CONFLICT (lead_id) DO NOTHING",
                [ROWS.notification_params(note, now) for note in notes],
            )
            return cursor.rowcount

    def pending_notifications(self, limit: int) -> list[Notification]:
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT * FROM notifications WHERE state = 'pending'"
                " AND (retry_at IS NULL OR retry_at <= ?) ORDER BY seq LIMIT ?",
                (encode_time(utcnow()), limit),
            ).fetchall()
        return [ROWS.notification(row) for row in rows]

    def defer_notifications(self, lead_ids: Sequence[str], error: str, retry_at: datetime) -> None:
        with self._db.write() as conn:
            conn.execute(
                "UPDATE notifications SET attempts = attempts + 1, last_error = ?, retry_at = ?"
                " WHERE state = 'pending' AND lead_id IN (SELECT value FROM json_each(?))",
                (error, encode_time(retry_at), id_list(lead_ids)),
            )

    def drop_notification(self, lead_id: str, error: str) -> None:
        with self._db.write() as conn:
            conn.execute(
                "UPDATE notifications SET state = 'dropped', last_error = ?"
                " WHERE lead_id = ? AND state = 'pending'",
                (error, lead_id),
            )

    def save_leads(self, leads: Sequence[Lead]) -> list[str]:
        if not leads:
            return []
        leads = first_of_each(leads, lambda lead: lead.id)
        now = utcnow()
        with self._db.write() as conn:
            ids = id_list([lead.id for lead in leads])
            stored = existing_ids(conn, "leads", ids)
            new = [lead for lead in leads if lead.id not in stored]
            conn.executemany(
                "INSERT INTO leads (id, page_id, form_id, created_time, email, payload, stored_at)"
                " VALUES (:id, :page_id, :form_id, :created_time, :email, :payload, :stored_at)",
                [ROWS.lead_params(lead, now) for lead in new],
            )
            conn.execute(
                "UPDATE notifications SET state = 'stored'"
                " WHERE state <> 'stored' AND lead_id IN (SELECT value FROM json_each(?))",
                (ids,),
            )
        return [lead.id for lead in new]

    def get_leads(self, lead_ids: Sequence[str]) -> dict[str, Lead]:
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT payload FROM leads WHERE id IN (SELECT value FROM json_each(?))",
                (id_list(lead_ids),),
            ).fetchall()
        leads = [ROWS.lead(row) for row in rows]
        return {lead.id: lead for lead in leads}

    def lead_ids_by_email(self, email: str) -> list[str]:
        return self._column(
            "SELECT id FROM leads WHERE email = ? ORDER BY seq", (email.strip().lower(),)
        )

    def lead_ids(self, after: str = "", limit: int = 1000) -> list[str]:
        return self._column("SELECT id FROM leads WHERE id > ? ORDER BY id LIMIT ?", (after, limit))

    def unscored_lead_ids(self, limit: int) -> list[str]:
        return self._column(
            "SELECT id FROM leads WHERE scored = 0 ORDER BY seq LIMIT ?",
            (limit,),
        )

    def count_leads(self) -> int:
        return self._column("SELECT COUNT(*) FROM leads", ())[0]

    def _column(self, sql: str, params: tuple[object, ...]) -> list:
        with self._db.read() as conn:
            return [row[0] for row in conn.execute(sql, params)]

    # -- forms and checkpoints ---------------------------------------------------
    def save_forms(self, forms: Sequence[Form]) -> None:
        now = utcnow()
        with self._db.write() as conn:
            conn.executemany(
                "INSERT INTO forms (id, page_id, name, status, questions, updated_at)"
                " VALUES (:id, :page_id, :name, :status, :questions, :updated_at)"
                " ON CONFLICT (id) DO UPDATE SET page_id = excluded.page_id,"
                " name = excluded.name, status = excluded.status,"
                " questions = excluded.questions, updated_at = excluded.updated_at",
                [ROWS.form_params(form, now) for form in forms],
            )

    def forms(self, page_id: str = "") -> list[Form]:
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT * FROM forms WHERE ? = '' OR page_id = ? ORDER BY page_id, id",
                (page_id, page_id),
            ).fetchall()
        return [ROWS.form(row) for row in rows]

    def checkpoint(self, form_id: str) -> Checkpoint:
        with self._db.read() as conn:
            row = conn.execute("SELECT * FROM checkpoints WHERE form_id = ?", (form_id,)).fetchone()
        return ROWS.checkpoint(row) if row else Checkpoint(form_id)

    def checkpoints(self) -> list[Checkpoint]:
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT form_id, last_created_time, polled_at, last_error FROM checkpoints"
                " UNION ALL SELECT id, NULL, NULL, '' FROM forms"
                " WHERE id NOT IN (SELECT form_id FROM checkpoints) ORDER BY form_id"
            ).fetchall()
        return [ROWS.checkpoint(row) for row in rows]

    def advance_checkpoint(self, form_id: str, last_created_time: datetime) -> None:
        with self._db.write() as conn:
            conn.execute(
                "INSERT INTO checkpoints (form_id, last_created_time) VALUES (?, ?)"
                " ON CONFLICT (form_id) DO UPDATE"
                " SET last_created_time = excluded.last_created_time"
                " WHERE checkpoints.last_created_time IS NULL"
                " OR checkpoints.last_created_time < excluded.last_created_time",
                (form_id, encode_time(last_created_time)),
            )

    def record_poll(self, form_id: str, error: str = "") -> None:
        with self._db.write() as conn:
            conn.execute(
                "INSERT INTO checkpoints (form_id, polled_at, last_error) VALUES (?, ?, ?)"
                " ON CONFLICT (form_id) DO UPDATE SET polled_at = excluded.polled_at,"
                " last_error = excluded.last_error",
                (form_id, encode_time(utcnow()), error),
            )

    # -- scores and events -----------------------------------------------------------
    def save_scores(self, updates: Sequence[ScoreUpdate]) -> SavedScores:
        if not updates:
            return SavedScores()
        now = utcnow()
        with self._db.write() as conn:
            current = self._scores(conn, [update.lead_id for update in updates])
            changes, stale = score_changes(updates, current)
            conn.executemany(
                "INSERT INTO scores (lead_id, points, mql, fit, engagement, reasons,"
                " rules_version, revision, scored_at) VALUES (:lead_id, :points, :mql, :fit,"
                " :engagement, :reasons, :rules_version, :revision, :scored_at)"
                " ON CONFLICT (lead_id) DO UPDATE SET points = excluded.points,"
                " mql = excluded.mql, fit = excluded.fit, engagement = excluded.engagement,"
                " reasons = excluded.reasons, rules_version = excluded.rules_version,"
                " revision = excluded.revision, scored_at = excluded.scored_at",
                [ROWS.score_params(u.lead_id, u.score, rev, now) for u, rev in changes],
            )
            conn.executemany(
                "INSERT INTO outbox (lead_id, destination, revision, created_at, next_attempt_at)"
                " VALUES (:lead_id, :destination, :revision, :created_at, :next_attempt_at)"
                " ON CONFLICT (lead_id, destination, revision) DO NOTHING",
                [
                    ROWS.outbox_params(u.lead_id, destination, rev, now)
                    for u, rev in changes
                    for destination in u.destinations
                ],
            )
            first = [(u.lead_id,) for u, rev in changes if rev == 1]
            conn.executemany("UPDATE leads SET scored = 1 WHERE id = ?", first)
        return SavedScores({update.lead_id: rev for update, rev in changes}, stale)

    def current_scores(self, lead_ids: Sequence[str]) -> dict[str, tuple[Score, int]]:
        with self._db.read() as conn:
            return self._scores(conn, lead_ids)

    @staticmethod
    def _scores(conn: sqlite3.Connection, lead_ids: Sequence[str]) -> dict[str, tuple[Score, int]]:
        rows = conn.execute(
            "SELECT * FROM scores WHERE lead_id IN (SELECT value FROM json_each(?))",
            (id_list(lead_ids),),
        )
        return {row["lead_id"]: ROWS.score(row) for row in rows}

    def routed_destinations(self, lead_ids: Sequence[str]) -> dict[str, set[str]]:
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT DISTINCT lead_id, destination FROM outbox"
                " WHERE lead_id IN (SELECT value FROM json_each(?))",
                (id_list(lead_ids),),
            ).fetchall()
        routed: dict[str, set[str]] = {}
        for row in rows:
            routed.setdefault(row["lead_id"], set()).add(row["destination"])
        return routed

    def external_ids(self, destination: str, lead_ids: Sequence[str]) -> dict[str, str]:
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT lead_id, external_id FROM outbox"
                " WHERE destination = ? AND external_id != ''"
                " AND lead_id IN (SELECT value FROM json_each(?)) ORDER BY revision",
                (destination, id_list(lead_ids)),
            ).fetchall()
        return {row["lead_id"]: row["external_id"] for row in rows}  # the newest revision wins

    def add_events(self, events: Sequence[Event]) -> list[Event]:
        if not events:
            return []
        events = first_of_each(events, lambda event: event.id)
        now = utcnow()
        params = [ROWS.event_params(event, now) for event in events]
        with self._db.write() as conn:
            known = existing_ids(conn, "events", id_list([event.id for event in events]))
            conn.executemany(
                "INSERT INTO events (id, lead_id, email, type, at, received_at)"
                " VALUES (:id, :lead_id, :email, :type, :at, :received_at)",
                [p for p in params if p["id"] not in known],
            )
        return [event for event in events if event.id not in known]

    def events_for(self, lead_ids: Sequence[str]) -> dict[str, list[Event]]:
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT * FROM events WHERE lead_id IN (SELECT value FROM json_each(?))"
                " ORDER BY lead_id, at, id",
                (id_list(lead_ids),),
            ).fetchall()
        events: dict[str, list[Event]] = {}
        for row in rows:
            events.setdefault(row["lead_id"], []).append(ROWS.event(row))
        return events

    # -- coordination and health -----------------------------------------------------
    def acquire_lease(self, name: str, owner: str, ttl: timedelta) -> bool:
        now = utcnow()
        with self._db.write() as conn:
            cursor = conn.execute(
                "INSERT INTO leases (name, owner, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner,"
                " expires_at = excluded.expires_at"
                " WHERE leases.owner = excluded.owner OR leases.expires_at <= ?",
                (name, owner, encode_time(now + ttl), encode_time(now)),
            )
            return cursor.rowcount == 1

    def release_lease(self, name: str, owner: str) -> None:
        with self._db.write() as conn:
            conn.execute("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner))

    def owners(self) -> set[str]:
        now = encode_time(utcnow())
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT owner FROM leases WHERE expires_at > ? UNION SELECT claimed_by FROM outbox"
                " WHERE state = 'pending' AND claimed_by IS NOT NULL AND claimed_until > ?",
                (now, now),
            ).fetchall()
        return {row[0] for row in rows}

    def release_owner(self, owner: str) -> None:
        with self._db.write() as conn:
            conn.execute("DELETE FROM leases WHERE owner = ?", (owner,))
            conn.execute(
                "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL"
                " WHERE state = 'pending' AND claimed_by = ?",
                (owner,),
            )

    def set_status(self, status: ServiceStatus) -> None:
        with self._db.write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO service_status (service, ok, message, at)"
                " VALUES (:service, :ok, :message, :at)",
                ROWS.status_params(status, utcnow()),
            )

    def statuses(self) -> list[ServiceStatus]:
        with self._db.read() as conn:
            rows = conn.execute("SELECT * FROM service_status ORDER BY service").fetchall()
        return [ROWS.status(row) for row in rows]

    def get_meta(self, key: str) -> str | None:
        values = self._column("SELECT value FROM meta WHERE key = ?", (key,))
        return values[0] if values else None

    def set_meta(self, key: str, value: str) -> None:
        with self._db.write() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


def existing_ids(conn: sqlite3.Connection, table: str, ids: str) -> set[str]:
    """Which of the ids (a JSON list) `table` already holds; read inside the write lock."""
    # `table` is one of our table names, never input.
    query = f"SELECT id FROM {table} WHERE id IN (SELECT value FROM json_each(?))"
    return {row[0] for row in conn.execute(query, (ids,))}


def statements(script: str) -> list[str]:
    """Splits a migration into statements, so they run inside our own transaction.

    (`executescript` would commit first, outside the write lock's transaction.)
    """
    found, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            found.append(pending.strip())
            pending = ""
    leftover = [line for line in pending.splitlines() if not line.strip().startswith("--")]
    if "".join(leftover).strip():
        found.append(pending.strip())  # incomplete: let SQLite say what is wrong with it
    return found
