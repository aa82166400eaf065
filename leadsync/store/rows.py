"""What a database row means, decided once for both backends.

A model's fields are named as its table's columns, so a model becomes query
parameters field by field (`params`) and a row becomes a model the same way
(`Rows.model`); only what is not stored as it is needs a word here. A lead is
kept whole as `Lead.to_json()` text beside the columns we search by; a form's
questions and a score's reasons (`[rule, points, group]`) as JSON lists; flags
as booleans (0/1 on SQLite). Times go in as datetimes (the dialect binds them)
and come back through the backend's decoder: SQLite keeps ISO-8601 text,
PostgreSQL timestamptz.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeVar

from leadsync.models import (
    DeadLetter,
    DeliveryResult,
    DestinationStats,
    Event,
    Form,
    Lead,
    OutboxItem,
    Reason,
    Score,
)

Row = Mapping[str, Any]
Params = dict[str, Any]
T = TypeVar("T")


def params(model: Any, **extra: Any) -> Params:
    """A model's fields as named query parameters, with `extra` columns added or replaced."""
    return {name: getattr(model, name) for name, _ in columns(type(model))} | extra


def lead_params(lead: Lead, now: datetime) -> Params:
    fields_ = {name: getattr(lead, name) for name in ("id", "page_id", "form_id", "created_time")}
    return fields_ | {"email": lead.email, "payload": lead.to_json(), "stored_at": now}


def form_params(form: Form, now: datetime) -> Params:
    questions = json.dumps(list(form.questions), ensure_ascii=False)
    return params(form, questions=questions, updated_at=now)


def score_params(lead_id: str, score: Score, revision: int, now: datetime) -> Params:
    reasons = json.dumps([[r.rule, r.points, r.group] for r in score.reasons], ensure_ascii=False)
    return params(score, reasons=reasons, lead_id=lead_id, revision=revision, scored_at=now)


def event_params(event: Event, now: datetime) -> Params:
    if not event.lead_id:
        raise ValueError(f"event {event.id} has no lead_id; resolve its email before storing")
    return params(event, received_at=now)


def completion_params(
    items: Sequence[OutboxItem], results: Sequence[DeliveryResult], now: datetime
) -> list[Params]:
    """One parameter set per delivered item, with what the destination called it."""
    external = {r.lead_id: r.external_id for r in results if r.ok and r.external_id}
    return [params(item, external_id=external.get(item.lead_id, ""), now=now) for item in items]


@functools.cache
def columns(cls: type) -> tuple[tuple[str, bool], ...]:
    """A model's field names, each with whether it is declared as a datetime (a time column)."""
    return tuple((f.name, "datetime" in str(f.type)) for f in fields(cls))


@dataclass(frozen=True, slots=True)
class Rows:
    """Row -> model conversion for one backend, given how it stores a time."""

    decode_time: Callable[[Any], datetime]

    def model(self, cls: type[T], row: Row, **given: Any) -> T:
        """A model from the row's columns named as its fields; `given` fields are not read."""
        values = {}
        for name, is_time in columns(cls):
            if name not in given:
                value = row[name]
                values[name] = self.decode_time(value) if is_time and value is not None else value
        return cls(**values, **given)

    def form(self, row: Row) -> Form:
        return self.model(Form, row, questions=tuple(json.loads(row["questions"])))

    def score(self, row: Row) -> tuple[Score, int]:
        reasons = tuple(Reason(r, float(p), g) for r, p, g in json.loads(row["reasons"]))
        return self.model(Score, row, mql=bool(row["mql"]), reasons=reasons), row["revision"]

    def dead_letter(self, row: Row) -> DeadLetter:
        return self.model(DeadLetter, row, item=self.model(OutboxItem, row))

    def destination_stats(self, row: Row) -> DestinationStats:
        counts = {name: int(row[name]) for name in ("pending", "dead", "delivered")}
        return self.model(DestinationStats, row, **counts)


def first_of_each(items: Iterable[T], key: Callable[[T], Hashable]) -> list[T]:
    """The items in order, keeping only the first of each key (a batch may repeat a lead)."""
    seen: dict[Hashable, T] = {}
    for item in items:
        seen.setdefault(key(item), item)
    return list(seen.values())
