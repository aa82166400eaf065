"""Outcomes in the store: a lead's stages through the funnel, once per lead and stage.

A stage is inserted only when the lead has not reached it yet (the primary key
is lead and stage, and an insert that meets one does nothing), so replicas
reading the same sheet, or a status typed twice, agree on one row: the first
time it was seen. A later reading may bring the deal value a stage was stored
without; that fills it in and changes nothing else. Stages of leads we never
stored are ignored, like a sheet row someone added by hand.

A new stage is news for the destinations that take stages (Meta's Conversions
API): `record_stages(..., destinations=...)` gives each lead with a new stage
the next score revision (the score unchanged) and an outbox item for each of
those destinations the lead was routed to, in the same transaction, so the
stage goes out at once and not with the lead's next score change. Other
destinations get no item: settling is per destination, so a revision they
never got changes nothing for them. A stage a destination gave up as too old
to send is in that destination's receipt ("sql!expired", `expired_stages`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal

from leadsync.abc import ExpiredStage, OutcomeStore
from leadsync.models import EXPIRED_MARK, LeadStage, utcnow
from leadsync.store.rows import Row, params
from leadsync.store.sql import SQLRole, Tx

RECORD = """
INSERT INTO lead_stages (lead_id, stage, reached_at, value, source, recorded_at)
SELECT :lead_id, :stage, :reached_at, :value, :source, :recorded_at
WHERE EXISTS (SELECT 1 FROM leads WHERE id = :lead_id)
ON CONFLICT (lead_id, stage) DO NOTHING RETURNING lead_id, stage
"""

FILL_VALUE = """
UPDATE lead_stages SET value = :value
WHERE lead_id = :lead_id AND stage = :stage AND value IS NULL
"""

BY_EXTERNAL_ID = """
SELECT DISTINCT o.external_id, o.lead_id, l.created_time FROM outbox AS o
JOIN leads AS l ON l.id = o.lead_id
WHERE o.destination = :destination AND o.external_id <> '' AND o.external_id = ANY(:ids)
"""

# The routed destinations, among those that take stages, of leads with a new stage.
ROUTED = """
SELECT DISTINCT o.lead_id, o.destination FROM outbox AS o
WHERE o.lead_id = ANY(:ids) AND o.destination = ANY(:destinations)
"""

# A new revision with the same score: what destinations that take stages deliver next.
BUMP = "UPDATE scores SET revision = revision + 1 WHERE lead_id = :lead_id RETURNING revision"

ENQUEUE = """
INSERT INTO outbox (lead_id, destination, revision, created_at, next_attempt_at)
VALUES (:lead_id, :destination, :revision, :now, :now)
ON CONFLICT (lead_id, destination, revision) DO NOTHING
"""

# Each destination's newest receipt that gave a stage up (the connector's "stage!expired").
EXPIRED = """
SELECT o.lead_id, o.destination, o.external_id FROM outbox AS o
WHERE o.state = 'delivered' AND o.external_id LIKE :marked AND NOT EXISTS (
    SELECT 1 FROM outbox AS n WHERE n.lead_id = o.lead_id AND n.destination = o.destination
      AND n.state = 'delivered' AND n.revision > o.revision)
ORDER BY o.lead_id, o.destination
"""

# The mql stage of leads whose score became an MQL (save_scores, same transaction).
RECORD_MQL = """
INSERT INTO lead_stages (lead_id, stage, reached_at, source, recorded_at)
VALUES (:lead_id, 'mql', :now, 'scoring', :now)
ON CONFLICT (lead_id, stage) DO NOTHING
"""


class Outcomes(SQLRole, OutcomeStore):
    """The lead stages of `leadsync.abc.Store`."""

    def record_stages(
        self, stages: Sequence[LeadStage], destinations: Sequence[str] = ()
    ) -> list[LeadStage]:
        if not stages:
            return []
        stages, now = merged(stages), utcnow()
        with self._write() as tx:
            if destinations:  # before the inserts, in save_scores' order: no lock cycle
                self._dialect.lock_leads(tx, sorted({s.lead_id for s in stages}))
            new = {
                (row["lead_id"], row["stage"])
                for row in tx.inserted(RECORD, [params(s, recorded_at=now) for s in stages])
            }
            valued = [s for s in stages if s.value is not None and (s.lead_id, s.stage) not in new]
            tx.many(FILL_VALUE, [params(s) for s in valued])
            if destinations and new:
                redeliver(tx, sorted({lead_id for lead_id, _ in new}), destinations, now)
        return [s for s in stages if (s.lead_id, s.stage) in new]

    def expired_stages(self) -> list[ExpiredStage]:
        rows = self._fetch(EXPIRED, {"marked": f"%{EXPIRED_MARK}%"})
        return [
            ExpiredStage(row["lead_id"], row["destination"], part.removesuffix(EXPIRED_MARK))
            for row in rows
            for part in row["external_id"].split(",")
            if part.endswith(EXPIRED_MARK)
        ]

    def stages_for(self, lead_ids: Sequence[str]) -> dict[str, list[LeadStage]]:
        query = "SELECT * FROM lead_stages WHERE lead_id = ANY(:ids)"
        found: dict[str, list[LeadStage]] = {}
        stages = self._stages(self._fetch(query, {"ids": list(lead_ids)}))
        for stage in sorted(stages, key=lambda s: (s.lead_id, s.order)):
            found.setdefault(stage.lead_id, []).append(stage)
        return found

    def leads_by_external_id(self, destination: str, external_ids: Sequence[str]) -> dict[str, str]:
        rows = self._fetch(BY_EXTERNAL_ID, {"destination": destination, "ids": list(external_ids)})
        newest: dict[str, str] = {}
        for row in sorted(rows, key=lambda r: (r["created_time"], r["lead_id"])):
            newest[row["external_id"]] = row["lead_id"]  # the newest lead comes last
        return newest

    def stages_since(self, since: datetime, limit: int = 10_000) -> list[LeadStage]:
        query = (
            "SELECT * FROM lead_stages WHERE reached_at >= :since"
            " ORDER BY reached_at, lead_id LIMIT :limit"
        )
        rows = self._fetch(query, {"since": since, "limit": limit})
        return sorted(self._stages(rows), key=lambda s: (s.reached_at, s.lead_id, s.order))

    def _stages(self, rows: Iterable[Row]) -> list[LeadStage]:
        return [self._rows.model(LeadStage, row, value=decimal(row["value"])) for row in rows]


def redeliver(tx: Tx, lead_ids: list[str], destinations: Sequence[str], now: datetime) -> None:
    """The next revision of each lead, queued for the given destinations it was routed to.

    A lead not scored (or not routed) yet gets nothing: its first delivery reads its stages.
    """
    routed: dict[str, list[str]] = {}
    query = {"ids": lead_ids, "destinations": list(destinations)}
    for row in tx.rows(ROUTED, query):
        routed.setdefault(row["lead_id"], []).append(row["destination"])
    items = []
    for lead_id in sorted(routed):
        for row in tx.rows(BUMP, {"lead_id": lead_id}):
            items += [
                {"lead_id": lead_id, "destination": name, "revision": row["revision"], "now": now}
                for name in sorted(routed[lead_id])
            ]
    tx.many(ENQUEUE, items)


def record_mql(tx: Tx, lead_ids: Sequence[str], now: datetime) -> None:
    """Records the `mql` stage of leads just scored as MQLs (kept when they reached it before)."""
    tx.many(RECORD_MQL, [{"lead_id": lead_id, "now": now} for lead_id in lead_ids])


def merged(stages: Iterable[LeadStage]) -> list[LeadStage]:
    """One stage per lead and stage: the earliest reading, with the first value any brought."""
    found: dict[tuple[str, str], LeadStage] = {}
    for stage in sorted(stages, key=lambda s: s.reached_at):
        key = (stage.lead_id, stage.stage)
        first = found.setdefault(key, stage)
        if first.value is None and stage.value is not None:
            found[key] = LeadStage(**(params(first) | {"value": stage.value}))
    return list(found.values())


def decimal(value: object) -> Decimal | None:
    """A stored deal value (numeric on PostgreSQL, text on SQLite) as a Decimal."""
    return None if value is None else Decimal(str(value))
