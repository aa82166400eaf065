"""`GET|POST /webhook`: Meta's subscription handshake and signed leadgen notifications.

The order of checks is the point: size (413), signature over the raw body
(401 when missing, 403 when wrong), shape (400), and only then the durable
commit. Notifications of pages (or forms) that are not configured are
acknowledged with 200, logged by id and dropped: Meta must not retry them.
A 200 goes back only after the notifications are on disk; while the daemon
shuts down, or when the store cannot write, the answer is 503 so Meta
retries later. Nothing is stored for any rejected request.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from leadsync.constants import WEBHOOK_MAX_BODY_BYTES
from leadsync.facebook.webhook import (
    MalformedWebhook,
    handshake_reply,
    parse_notifications,
    signature_is_valid,
)
from leadsync.models import Notification
from leadsync.server.context import CONTEXT, ServerContext
from leadsync.server.limits import BodyTooSlow, read_body, too_slow

log = structlog.get_logger(__name__)


async def handshake(request: web.Request) -> web.Response:
    ctx: ServerContext = request.app[CONTEXT]
    verify_token = ctx.settings.facebook.verify_token.get_secret_value()
    challenge = handshake_reply(dict(request.query), verify_token)
    if challenge is None:
        log.warning("webhook.handshake_refused", status=403)
        return web.Response(status=403, text="verify token does not match")
    return web.Response(text=challenge)


async def receive(request: web.Request) -> web.Response:
    ctx: ServerContext = request.app[CONTEXT]
    if not ctx.accepting:
        return _reject(ctx, 503, "shutting_down", "shutting down; retry later")
    if (request.content_length or 0) > WEBHOOK_MAX_BODY_BYTES:
        return _reject(ctx, 413, "too_large", "body too large")
    try:
        body = await read_body(request)  # bounded by client_max_size and the body deadline
    except web.HTTPRequestEntityTooLarge:
        return _reject(ctx, 413, "too_large", "body too large")
    except BodyTooSlow:
        _reject(ctx, 408, "too_slow", "")
        return too_slow()
    header = request.headers.get("X-Hub-Signature-256")
    if not header:
        return _reject(ctx, 401, "unsigned", "missing X-Hub-Signature-256")
    if not signature_is_valid(body, header, ctx.settings.facebook.app_secret.get_secret_value()):
        return _reject(ctx, 403, "bad_signature", "signature does not match")
    try:
        notes = parse_notifications(body)
    except MalformedWebhook as exc:
        return _reject(ctx, 400, "malformed", str(exc))
    notes = _ours(ctx, notes)
    if notes:
        try:
            await ctx.committer.commit(notes)
        except Exception:  # noqa: BLE001 - the store failed: Meta must retry, not lose the leads
            return _reject(ctx, 503, "store_failed", "could not store; retry later")
        ctx.metrics.notifications.inc(len(notes))
    return web.Response(text="EVENT_RECEIVED")


def _ours(ctx: ServerContext, notes: list[Notification]) -> list[Notification]:
    """The notifications of configured pages (and forms); the others are acknowledged and
    dropped, so Meta does not retry them: one app often serves several clients' pages."""
    scope = ctx.scope
    ours = []
    for note in notes:
        if scope.takes(note.page_id, note.form_id):
            ours.append(note)
            continue
        log.info(
            "webhook.ignored", lead_id=note.lead_id, page_id=note.page_id, form_id=note.form_id
        )
        ctx.metrics.notifications_ignored.inc()
    return ours


def _reject(ctx: ServerContext, status: int, reason: str, text: str) -> web.Response:
    # One line per refused request, no traceback and nothing of the body: Meta retries a
    # refusal, so a flood of them is worth seeing without drowning the log.
    log.warning("webhook.rejected", status=status, reason=reason)
    ctx.metrics.webhooks_rejected.labels(reason).inc()
    return web.Response(status=status, text=text)
