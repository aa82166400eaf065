"""What a database row means, decided once for both stores.

Each backend writes its own SQL; this module turns models into named query
parameters and result rows back into models, so the two stores cannot drift
apart on a column. It also holds the few decisions that need no SQL: which
score updates change anything, and which outbox state a lead shows per
destination. A lead is kept whole as `Lead.to_json()` text beside the columns
we search by; a score's reasons as a JSON list of `[rule, points, group]`.
Times go through the backend's codec: SQLite keeps ISO-8601 text, PostgreSQL
keeps timestamptz.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from leadsync.abc import LeadOverview, ScoreUpdate
from leadsync.models import (
    Checkpoint,
    DeadLetter,
    DeliveryResult,
    DestinationStats,
    Event,
    Form,
    Lead,
    Notification,
    OutboxItem,
    Reason,
    Score,
    ServiceStatus,
)

Row = Mapping[str, Any]
Params = dict[str, Any]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Rows:
    """Model <-> row conversion for one backend, given how it stores a time."""

    encode_time: Callable[[datetime], Any]
    decode_time: Callable[[Any], datetime]

    def time(self, value: datetime | None) -> Any:
        return None if value is None else self.encode_time(value)

    def read_time(self, value: Any) -> datetime | None:
        return None if value is None else self.decode_time(value)

    # -- ingest ----------------------------------------------------------------
    def notification_params(self, note: Notification, now: datetime) -> Params:
        return {
            "lead_id": note.lead_id,
            "page_id": note.page_id,
            "form_id": note.form_id,
            "ad_id": note.ad_id,
            "created_time": self.time(note.created_time),
            "source": note.source,
            "received_at": self.time(now),
        }

    def notification(self, row: Row) -> Notification:
        return Notification(
            lead_id=row["lead_id"],
            page_id=row["page_id"],
            form_id=row["form_id"],
            ad_id=row["ad_id"],
            created_time=self.read_time(row["created_time"]),
            source=row["source"],
        )

    def lead_params(self, lead: Lead, now: datetime) -> Params:
        return {
            "id": lead.id,
            "page_id": lead.page_id,
            "form_id": lead.form_id,
            "created_time": self.time(lead.created_time),
            "email": lead.email,
            "payload": lead.to_json(),
            "stored_at": self.time(now),
        }

    @staticmethod
    def lead(row: Row) -> Lead:
        return Lead.from_json(row["payload"])

    # -- forms and checkpoints ---------------------------------------------------
    def form_params(self, form: Form, now: datetime) -> Params:
        return {
            "id": form.id,
            "page_id": form.page_id,
            "name": form.name,
            "status": form.status,
            "questions": json.dumps(list(form.questions), ensure_ascii=False),
            "updated_at": self.time(now),
        }

    @staticmethod
    def form(row: Row) -> Form:
        questions = tuple(json.loads(row["questions"]))
        return Form(row["id"], row["page_id"], row["name"], row["status"], questions)

    def checkpoint(self, row: Row) -> Checkpoint:
        return Checkpoint(
            form_id=row["form_id"],
            last_created_time=self.read_time(row["last_created_time"]),
            polled_at=self.read_time(row["polled_at"]),
            last_error=row["last_error"] or "",
        )

    # -- scores and events ---------------------------------------------------------
    def score_params(self, lead_id: str, score: Score, revision: int, now: datetime) -> Params:
        return {
            "lead_id": lead_id,
            "points": score.points,
            "mql": score.mql,
            "fit": score.fit,
            "engagement": score.engagement,
            "reasons": json.dumps(
                [[r.rule, r.points, r.group] for r in score.reasons], ensure_ascii=False
            ),
            "rules_version": score.rules_version,
            "revision": revision,
            "scored_at": self.time(now),
        }

    @staticmethod
    def score(row: Row) -> tuple[Score, int]:
        reasons = tuple(
            Reason(rule, float(points), group) for rule, points, group in json.loads(row["reasons"])
        )
        score = Score(
            points=row["points"],
            mql=bool(row["mql"]),
            reasons=reasons,
            fit=row["fit"],
            engagement=row["engagement"],
            rules_version=row["rules_version"],
        )
        return score, row["revision"]

    def outbox_params(self, lead_id: str, destination: str, revision: int, now: datetime) -> Params:
        now_value = self.time(now)
        return {
            "lead_id": lead_id,
            "destination": destination,
            "revision": revision,
            "created_at": now_value,
            "next_attempt_at": now_value,
        }

    def event_params(self, event: Event, now: datetime) -> Params:
        if not event.lead_id:
            raise ValueError(f"event {event.id} has no lead_id; resolve its email before storing")
        return {
            "id": event.id,
            "lead_id": event.lead_id,
            "email": event.email,
            "type": event.type,
            "at": self.time(event.at),
            "received_at": self.time(now),
        }

    def event(self, row: Row) -> Event:
        at = self.read_time(row["at"])
        assert at is not None  # the column is NOT NULL
        return Event(row["id"], row["type"], at, row["lead_id"], row["email"])

    # -- outbox ----------------------------------------------------------------------
    def outbox_item(self, row: Row) -> OutboxItem:
        return OutboxItem(
            id=row["id"],
            lead_id=row["lead_id"],
            destination=row["destination"],
            revision=row["revision"],
            attempts=row["attempts"],
            created_at=self.read_time(row["created_at"]),
            last_error=row["last_error"],
            state=row["state"],
        )

    def dead_letter(self, row: Row) -> DeadLetter:
        dead_at = self.read_time(row["dead_at"])
        assert dead_at is not None  # set whenever an item is buried
        return DeadLetter(self.outbox_item(row), dead_at, row["last_error"])

    def completion_params(
        self, items: Sequence[OutboxItem], results: Sequence[DeliveryResult], now: datetime
    ) -> list[Params]:
        """One parameter set per delivered item, with what the destination called it."""
        external = {r.lead_id: r.external_id for r in results if r.ok and r.external_id}
        return [
            {
                "id": item.id,
                "lead_id": item.lead_id,
                "destination": item.destination,
                "revision": item.revision,
                "external_id": external.get(item.lead_id, ""),
                "now": self.time(now),
            }
            for item in items
        ]

    def destination_stats(self, row: Row) -> DestinationStats:
        return DestinationStats(
            destination=row["destination"],
            pending=int(row["pending"]),
            oldest_pending=self.read_time(row["oldest_pending"]),
            dead=int(row["dead"]),
            delivered=int(row["delivered"]),
        )

    def overviews(self, lead_rows: Iterable[Row], item_rows: Iterable[Row]) -> list[LeadOverview]:
        """Status-page lines: each lead with the state of its newest revision per destination."""
        newest: dict[str, dict[str, tuple[int, Any]]] = {}
        for row in item_rows:
            per_lead = newest.setdefault(row["lead_id"], {})
            known = per_lead.get(row["destination"])
            if known is None or row["revision"] > known[0]:
                per_lead[row["destination"]] = (row["revision"], row["state"])
        return [
            LeadOverview(
                lead_id=row["id"],
                created_time=self.decode_time(row["created_time"]),
                form_id=row["form_id"],
                points=row["points"],
                mql=None if row["mql"] is None else bool(row["mql"]),
                destinations={d: s for d, (_, s) in newest.get(row["id"], {}).items()},
            )
            for row in lead_rows
        ]

    # -- health ----------------------------------------------------------------------
    def status_params(self, status: ServiceStatus, now: datetime) -> Params:
        return {
            "service": status.service,
            "ok": status.ok,
            "message": status.message,
            "at": self.time(status.at or now),
        }

    def status(self, row: Row) -> ServiceStatus:
        return ServiceStatus(
            row["service"], bool(row["ok"]), row["message"], self.read_time(row["at"])
        )


def first_of_each(items: Iterable[T], key: Callable[[T], Hashable]) -> list[T]:
    """The items in order, keeping only the first of each key (a batch may repeat a lead)."""
    seen: dict[Hashable, T] = {}
    for item in items:
        seen.setdefault(key(item), item)
    return list(seen.values())


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
        stored = current.get(update.lead_id, (None, 0))[1]
        if update.read_revision is not None and update.read_revision != stored:
            stale.add(update.lead_id)
            continue
        score, revision = known.get(update.lead_id, (None, 0))
        if update.score.same_outcome(score):
            continue
        known[update.lead_id] = (update.score, revision + 1)
        changes.append((update, revision + 1))
    return changes, stale
