"""`POST /events`: engagement events (webinar attended, email opened, unsubscribed).

The caller proves itself with `Authorization: Bearer <[server] events_token>`.
The body is one event or a list of `{"id", "lead_id" or "email", "type",
"at"}`; the whole body is validated before anything is stored (400 names each
bad item in our words: its index, field and what to write instead), storing is
idempotent by event id, and every lead whose events changed is re-scored, so
its existing row flips to MQL when it crosses the threshold. An event dated in
the future (beyond a few minutes of clock skew) or before its lead was created
is refused: it would score a lead for something it cannot have done.

Outcome types (`contacted`, `sql`, `won`, `lost`, with an optional deal
`value`) are what sales recorded: kept as events like any other, and each
also records the lead's stage (once per lead and stage, the first time).
An outcome sent by email goes to the newest lead of that email that existed
by then: one deal, one lead, so a report does not count it for each.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import structlog
from aiohttp import web
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from leadsync.constants import CLOCK_SKEW
from leadsync.models import OUTCOMES, Event, Lead, LeadStage, is_graph_id, utcnow
from leadsync.server.auth import bearer_token, same_secret
from leadsync.server.context import CONTEXT, ServerContext
from leadsync.server.limits import BodyTooSlow, read_body, too_slow

log = structlog.get_logger(__name__)

_TIME_EXAMPLE = "write it like 2026-11-20T10:00:00Z"
_VALUE_EXAMPLE = "a deal value is a number of 0 or more, like 1200.50"


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"needs a timezone; {_TIME_EXAMPLE}")
    if value > utcnow() + CLOCK_SKEW:
        raise ValueError("is in the future; send the time the event happened")
    return value


def _text(what: str):  # noqa: ANN202 - a validator factory
    def check(value: str) -> str:
        if not value.strip():
            raise ValueError(f"{what} is empty")
        return value.strip()

    return AfterValidator(check)


def _lead_id(value: str) -> str:
    if value and not is_graph_id(value):
        raise ValueError("is not a lead id (the digits of a Facebook lead id)")
    return value


class EventIn(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    id: Annotated[str, Field(max_length=200), _text("id")]
    type: Annotated[str, Field(max_length=100), _text("type")]
    at: Annotated[datetime, AfterValidator(_aware)]
    lead_id: Annotated[str, Field(max_length=64), AfterValidator(_lead_id)] = ""
    email: Annotated[str, Field(max_length=320)] = ""
    # A deal's value (outcomes): bounded so every backend stores it exactly.
    value: Annotated[Decimal, Field(ge=0, max_digits=21, decimal_places=6)] | None = None


# Our words for pydantic's error types; anything else is "is not valid".
_MESSAGES = {
    "missing": "is missing",
    "string_type": "must be a string",
    "string_too_long": "is too long",
    "datetime_type": f"is not a time; {_TIME_EXAMPLE}",
    "datetime_parsing": f"is not a time; {_TIME_EXAMPLE}",
    "datetime_from_date_parsing": f"is not a time; {_TIME_EXAMPLE}",
    "model_type": "must be an object with id, type, at and lead_id or email",
    "decimal_parsing": f"is not a number; {_VALUE_EXAMPLE}",
    "decimal_type": f"is not a number; {_VALUE_EXAMPLE}",
    "finite_number": f"is not a number; {_VALUE_EXAMPLE}",
    "greater_than_equal": f"is negative; {_VALUE_EXAMPLE}",
    "decimal_max_digits": "has too many digits",
    "decimal_max_places": "has more than 6 decimal places",
    "decimal_whole_digits": "has too many digits",
}


@dataclass
class Batch:
    """The events of one request, or the problems that refuse it."""

    events: list[EventIn] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def parse_events(body: bytes) -> Batch:
    """The body's events, each checked; `problems` says in our words what is wrong."""
    try:
        payload = json.loads(body)
    except RecursionError:
        return Batch(problems=["body is nested too deeply"])
    except ValueError:
        return Batch(problems=["body is not JSON"])
    items = payload if isinstance(payload, list) else [payload]
    single = not isinstance(payload, list)
    batch = Batch()
    for index, item in enumerate(items):
        where = "" if single else f"[{index}]"
        try:
            event = EventIn.model_validate(item)
        except ValidationError as exc:
            batch.problems.extend(_problem(where, error) for error in exc.errors())
            continue
        if not (event.lead_id or event.email):
            batch.problems.append(f"{where or 'event'}: give lead_id or email")
        batch.events.append(event)
    return batch


def _problem(where: str, error: Any) -> str:
    name = ".".join(str(part) for part in error["loc"][:1])
    path = f"{where}.{name}" if where and name else where or name or "event"
    if error["type"] == "value_error":
        message = str(error["ctx"]["error"])
    else:
        message = _MESSAGES.get(error["type"], "is not valid")
    return f"{path}: {message}"


async def receive(request: web.Request) -> web.Response:
    ctx: ServerContext = request.app[CONTEXT]
    expected = ctx.settings.server.events_token.get_secret_value()
    if not expected:
        return _refuse(503, "not_configured", "set [server] events_token to accept events")
    if not same_secret(bearer_token(request), expected):
        return _refuse(401, "bad_token", "send Authorization: Bearer <[server] events_token>")
    try:
        batch = parse_events(await read_body(request))
    except BodyTooSlow:
        _refuse(408, "too_slow", "")
        return too_slow()
    if not batch.problems:
        batch.problems, result = await asyncio.to_thread(_store_events, ctx, batch.events)
    if batch.problems:
        return _refuse(400, "invalid", "invalid events", batch.problems)
    return web.json_response(result)


def _refuse(
    status: int, reason: str, error: str, problems: list[str] | None = None
) -> web.Response:
    # One line, no traceback, no body: the problems name fields, never values.
    log.warning("events.refused", status=status, reason=reason, problems=len(problems or []))
    body: dict[str, Any] = {"error": error}
    if problems is not None:
        body["problems"] = problems
    return web.json_response(body, status=status)


def _store_events(ctx: ServerContext, events: list[EventIn]) -> tuple[list[str], dict[str, object]]:
    """Stores the events unless one predates its lead; (problems, result)."""
    resolved: list[Event] = []
    unknown: list[str] = []
    problems: list[str] = []
    for index, item in enumerate(events):
        leads = _leads_of(ctx, item)
        existing = [lead for lead in leads if lead.created_time - CLOCK_SKEW <= item.at]
        if leads and not existing:
            where = "" if len(events) == 1 else f"[{index}]"
            problems.append(f"{where}.at".lstrip(".") + ": is before its lead was created")
        if not leads:
            unknown.append(item.id)
        for lead in existing:
            # One event for an email shared by several leads counts for each that existed.
            event_id = item.id if len(leads) == 1 else f"{item.id}:{lead.id}"
            resolved.append(Event(event_id, item.type, item.at, lead_id=lead.id, email=item.email))
    if problems:
        return problems, {}
    new = ctx.store.add_events(resolved)
    # Every time, not only for new events: a retry after a crash between the two writes
    # records what the first try could not, and a stage is stored once however often.
    stages = (ctx.stages or ctx.store).record_stages(outcome_stages(ctx, events))
    changed = sorted({event.lead_id for event in new})
    if changed:
        ctx.events_stored(changed)
    if stages:
        log.info("stages.recorded", source="events", lead_ids=sorted({s.lead_id for s in stages}))
    result = {"stored": len(new), "duplicates": len(resolved) - len(new), "unknown_lead": unknown}
    return [], result | {"stages": len(stages)}


def outcome_stages(ctx: ServerContext, events: list[EventIn]) -> list[LeadStage]:
    """The stage each outcome event says its lead reached (the newest lead by then, by email)."""
    stages = []
    for item in events:
        if item.type not in OUTCOMES:
            continue
        leads = [lead for lead in _leads_of(ctx, item) if lead.created_time - CLOCK_SKEW <= item.at]
        if leads:
            newest = max(leads, key=lambda lead: lead.created_time)
            stages.append(LeadStage(newest.id, item.type, item.at, item.value, "events"))  # type: ignore[arg-type]
    return stages


def _leads_of(ctx: ServerContext, item: EventIn) -> list[Lead]:
    ids = [item.lead_id] if item.lead_id else ctx.store.lead_ids_by_email(item.email)
    found = ctx.store.get_leads(ids) if ids else {}
    return [found[lead_id] for lead_id in ids if lead_id in found]


__all__ = ["parse_events", "receive"]
