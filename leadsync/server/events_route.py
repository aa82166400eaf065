"""`POST /events`: engagement events (webinar attended, email opened, unsubscribed).

The caller proves itself with `Authorization: Bearer <[server] events_token>`.
The body is one event or a list of `{"id", "lead_id" or "email", "type",
"at"}`; the whole body is validated before anything is stored (400 names the
bad item), storing is idempotent by event id, and every lead whose events
changed is re-scored, so its existing row flips to MQL when it crosses the
threshold.
"""

from __future__ import annotations

import asyncio
import hmac
from datetime import datetime
from typing import Annotated

from aiohttp import web
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from leadsync.models import Event
from leadsync.server.context import CONTEXT, ServerContext


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("needs a timezone, e.g. 2026-11-20T10:00:00Z")
    return value


class EventIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: Annotated[str, AfterValidator(lambda v: v.strip() or _fail("id is empty"))]
    type: Annotated[str, AfterValidator(lambda v: v.strip() or _fail("type is empty"))]
    at: Annotated[datetime, AfterValidator(_aware)]
    lead_id: str = ""
    email: str = ""

    @model_validator(mode="after")
    def _names_a_lead(self) -> EventIn:
        if not (self.lead_id or self.email):
            raise ValueError("give lead_id or email")
        return self


def _fail(message: str) -> str:
    raise ValueError(message)


_EVENTS = TypeAdapter(EventIn | list[EventIn])


async def receive(request: web.Request) -> web.Response:
    ctx: ServerContext = request.app[CONTEXT]
    expected = ctx.settings.server.events_token.get_secret_value()
    if not expected:
        return web.json_response(
            {"error": "set [server] events_token to accept events"}, status=503
        )
    offered = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(offered.encode(), expected.encode()):
        return web.json_response({"error": "bad or missing bearer token"}, status=401)
    try:
        parsed = _EVENTS.validate_json(await request.read())
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        return web.json_response({"error": "invalid events", "problems": problems}, status=400)
    events = parsed if isinstance(parsed, list) else [parsed]
    result = await asyncio.to_thread(_store_events, ctx, events)
    return web.json_response(result)


def _store_events(ctx: ServerContext, events: list[EventIn]) -> dict[str, object]:
    resolved: list[Event] = []
    unknown: list[str] = []
    for item in events:
        lead_ids = [item.lead_id] if item.lead_id else ctx.store.lead_ids_by_email(item.email)
        if item.lead_id and not ctx.store.get_leads([item.lead_id]):
            lead_ids = []
        if not lead_ids:
            unknown.append(item.id)
        for lead_id in lead_ids:
            # One event for an email shared by several leads counts for each of them.
            event_id = item.id if len(lead_ids) == 1 else f"{item.id}:{lead_id}"
            resolved.append(Event(event_id, item.type, item.at, lead_id=lead_id, email=item.email))
    new = ctx.store.add_events(resolved)
    changed = sorted({event.lead_id for event in new})
    if changed:
        ctx.events_stored(changed)
    return {"stored": len(new), "duplicates": len(resolved) - len(new), "unknown_lead": unknown}


__all__ = ["receive"]
