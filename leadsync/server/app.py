"""The one HTTP server: webhook, events, health, metrics and the status page."""

from __future__ import annotations

import asyncio

from aiohttp import web

from leadsync.constants import WEBHOOK_MAX_BODY_BYTES
from leadsync.server import events_route, status_page, webhook_route
from leadsync.server.context import CONTEXT, ServerContext


async def healthz(request: web.Request) -> web.Response:
    report = await asyncio.to_thread(request.app[CONTEXT].health)
    return web.json_response(report.as_json(), status=200 if report.ok else 503)


async def metrics(request: web.Request) -> web.Response:
    body = await asyncio.to_thread(request.app[CONTEXT].metrics.render)
    return web.Response(body=body, content_type="text/plain", charset="utf-8")


def build_app(ctx: ServerContext) -> web.Application:
    app = web.Application(client_max_size=WEBHOOK_MAX_BODY_BYTES)
    app[CONTEXT] = ctx
    app.router.add_get("/webhook", webhook_route.handshake)
    app.router.add_post("/webhook", webhook_route.receive)
    app.router.add_post("/events", events_route.receive)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/", status_page.page)
    return app
