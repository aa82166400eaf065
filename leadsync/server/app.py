"""The one HTTP server: webhook, events, health, metrics and the status page.

Every response carries security headers: a Content-Security-Policy that allows the
status page's own stylesheet and nothing else (no script, no frames, forms only to
us), `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`, no Referer, and a
`Server` header without versions. The status page and /metrics are for the holder of
`[server] admin_token` when one is set (see `server/admin.py`).
"""

from __future__ import annotations

import asyncio

import structlog
from aiohttp import web

from leadsync.constants import WEBHOOK_MAX_BODY_BYTES
from leadsync.server import admin, events_route, status_page, webhook_route
from leadsync.server.context import CONTEXT, ServerContext

log = structlog.get_logger(__name__)

LOOPBACK = ("127.0.0.1", "::1", "localhost")

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'none'; style-src '{status_page.STYLE_HASH}'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # aiohttp would say "Python/3.x aiohttp/3.x": versions help only an attacker.
    "Server": "leadsync",
}


async def healthz(request: web.Request) -> web.Response:
    report = await asyncio.to_thread(request.app[CONTEXT].health)
    body = report.as_json()
    if not admin.is_admin(request):  # open to all: codes only, not what failed where
        body["reasons"] = [str(reason).partition(":")[0] for reason in report.reasons]
    return web.json_response(body, status=200 if report.ok else 503)


async def metrics(request: web.Request) -> web.Response:
    body = await asyncio.to_thread(request.app[CONTEXT].metrics.render)
    return web.Response(body=body, content_type="text/plain", charset="utf-8")


async def _secure(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)


def build_app(ctx: ServerContext) -> web.Application:
    server = ctx.settings.server
    if not server.admin_token.get_secret_value() and server.host not in LOOPBACK:
        # Not an error (a private network, a proxy that does not route them), but worth a line.
        log.warning("server.admin_open", host=server.host, fix="set [server] admin_token")
    app = web.Application(client_max_size=WEBHOOK_MAX_BODY_BYTES)
    app[CONTEXT] = ctx
    app.on_response_prepare.append(_secure)
    app.router.add_get("/webhook", webhook_route.handshake)
    app.router.add_post("/webhook", webhook_route.receive)
    app.router.add_post("/events", events_route.receive)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", admin.admin_only(metrics))
    app.router.add_get("/", admin.admin_only(status_page.page))
    app.router.add_post("/login", admin.login)
    return app
