"""Scoring in the store: scores with their revisions, and engagement events.

`save_scores` turns scores into deliveries in one transaction: an update
computed from another revision than the stored one is stale and skipped; a
lead whose outcome changed gets the next revision and one outbox item per
destination. The dialect serialises revisions of a lead across writers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from leadsync.abc import SavedScores, ScoreUpdate, ScoringStore
from leadsync.models import Event, Score, utcnow
from leadsync.store.rows import event_params, first_of_each, score_params
from leadsync.store.sql import SQLRole, Tx

SAVE_SCORE = """
INSERT INTO scores (lead_id, points, mql, fit, engagement, reasons, rules_version, revision,
    scored_at)
VALUES (:lead_id, :points, :mql, :fit, :engagement, :reasons, :rules_version, :revision,
    :scored_at)
ON CONFLICT (lead_id) DO UPDATE SET points = excluded.points, mql = excluded.mql,
    fit = excluded.fit, engagement = excluded.engagement, reasons = excluded.reasons,
    rules_version = excluded.rules_version, revision = excluded.revision,
    scored_at = excluded.scored_at
"""

ENQUEUE = """
INSERT INTO outbox (lead_id, destination, revision, created_at, next_attempt_at)
VALUES (:lead_id, :destination, :revision, :created_at, :next_attempt_at)
ON CONFLICT (lead_id, destination, revision) DO NOTHING
"""

ADD_EVENT = """
INSERT INTO events (id, lead_id, email, type, at, received_at)
VALUES (:id, :lead_id, :email, :type, :at, :received_at)
ON CONFLICT (id) DO NOTHING RETURNING id
"""


class Scoring(SQLRole, ScoringStore):
    """Scores, revisions and events of `leadsync.abc.Store`."""

    def save_scores(self, updates: Sequence[ScoreUpdate]) -> SavedScores:
        if not updates:
            return SavedScores()
        now = utcnow()
        with self._write() as tx:
            lead_ids = [update.lead_id for update in updates]
            self._dialect.lock_leads(tx, lead_ids)  # held until commit
            changes, stale = score_changes(updates, self._scores(tx, lead_ids))
            tx.many(SAVE_SCORE, [score_params(u.lead_id, u.score, r, now) for u, r in changes])
            outbox = [
                {"lead_id": u.lead_id, "destination": destination, "revision": revision}
                | {"created_at": now, "next_attempt_at": now}
                for u, revision in changes
                for destination in u.destinations
            ]
            tx.many(ENQUEUE, outbox)
            if first := [u.lead_id for u, revision in changes if revision == 1]:
                tx.run("UPDATE leads SET scored = true WHERE id = ANY(:ids)", {"ids": first})
        return SavedScores({u.lead_id: revision for u, revision in changes}, stale)

    def current_scores(self, lead_ids: Sequence[str]) -> dict[str, tuple[Score, int]]:
        with self._read() as tx:
            return self._scores(tx, lead_ids)

    def _scores(self, tx: Tx, lead_ids: Sequence[str]) -> dict[str, tuple[Score, int]]:
        rows = tx.rows("SELECT * FROM scores WHERE lead_id = ANY(:ids)", {"ids": list(lead_ids)})
        return {row["lead_id"]: self._rows.score(row) for row in rows}

    def routed_destinations(self, lead_ids: Sequence[str]) -> dict[str, set[str]]:
        query = "SELECT DISTINCT lead_id, destination FROM outbox WHERE lead_id = ANY(:ids)"
        routed: dict[str, set[str]] = {}
        for row in self._fetch(query, {"ids": list(lead_ids)}):
            routed.setdefault(row["lead_id"], set()).add(row["destination"])
        return routed

    def external_ids(self, destination: str, lead_ids: Sequence[str]) -> dict[str, str]:
        rows = self._fetch(
            "SELECT lead_id, external_id FROM outbox WHERE destination = :destination"
            " AND external_id <> '' AND lead_id = ANY(:ids) ORDER BY revision",
            {"destination": destination, "ids": list(lead_ids)},
        )
        return {row["lead_id"]: row["external_id"] for row in rows}  # the newest revision wins

    def add_events(self, events: Sequence[Event]) -> list[Event]:
        if not events:
            return []
        events, now = first_of_each(events, lambda event: event.id), utcnow()
        params = [event_params(event, now) for event in events]
        with self._write() as tx:
            new = {row["id"] for row in tx.inserted(ADD_EVENT, params)}
        return [event for event in events if event.id in new]

    def events_for(self, lead_ids: Sequence[str]) -> dict[str, list[Event]]:
        query = "SELECT * FROM events WHERE lead_id = ANY(:ids) ORDER BY lead_id, at, id"
        events: dict[str, list[Event]] = {}
        for row in self._fetch(query, {"ids": list(lead_ids)}):
            events.setdefault(row["lead_id"], []).append(self._rows.model(Event, row))
        return events


def score_changes(
    updates: Sequence[ScoreUpdate], current: Mapping[str, tuple[Score, int]]
) -> tuple[list[tuple[ScoreUpdate, int]], set[str]]:
    """The updates that change what a destination shows, each with its new revision,
    and the leads whose updates are stale.

    An update computed from another revision than the stored one is stale (it
    is checked against the revision stored before this save). An update whose
    score has the same outcome as the lead's current one changes nothing.
    Updates of one lead are taken in order, each against the one before.
    """
    known = dict(current)
    changes: list[tuple[ScoreUpdate, int]] = []
    stale: set[str] = set()
    for update in updates:
        if update.read_revision not in (None, current.get(update.lead_id, (None, 0))[1]):
            stale.add(update.lead_id)
            continue
        score, revision = known.get(update.lead_id, (None, 0))
        if update.score.same_outcome(score):
            continue
        known[update.lead_id] = (update.score, revision + 1)
        changes.append((update, revision + 1))
    return changes, stale
