"""The one HTTP server: webhook, events, health, metrics, the status page and the report.

Every response carries security headers: a Content-Security-Policy that allows the
status page's and the report's own stylesheets and nothing else (no script, no frames,
forms only to us), `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`, no
Referer, and a `Server` header without versions. The status page, /report and /metrics
are for the holder of `[server] admin_token` when one is set (see `server/admin.py`),
and with `[server] admin_port` they move to a listener of their own (loopback by default).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import structlog
from aiohttp import web

from leadsync.config import ServerSettings
from leadsync.constants import WEBHOOK_MAX_BODY_BYTES
from leadsync.report import render as report_render
from leadsync.server import admin, events_route, report_route, status_page, webhook_route
from leadsync.server.context import CONTEXT, ServerContext
from leadsync.server.limits import HttpLimits
from leadsync.server.listener import Listener, Served
from leadsync.server.store_errors import store_unavailable_is_503

log = structlog.get_logger(__name__)

LOOPBACK = ("127.0.0.1", "::1", "localhost")
# The worker's sockets, in the private folder the HTTP process made for them.
PUBLIC_SOCKET, ADMIN_SOCKET = "public.sock", "admin.sock"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'none'; style-src '{status_page.STYLE_HASH}' '{report_render.STYLE_HASH}'; "
        "form-action 'self'; "
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


async def secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)


def build_app(
    ctx: ServerContext, *, public: bool = True, admin_pages: bool = True, webhook: bool = True
) -> web.Application:
    """The routes Meta and callers use (`public`), the status page and metrics (`admin_pages`),
    or both; /healthz is on every app. A worker's app has no `webhook`: the HTTP process
    answers it."""
    app = web.Application(client_max_size=WEBHOOK_MAX_BODY_BYTES)
    app[CONTEXT] = ctx
    app.on_response_prepare.append(secure_headers)
    app.middlewares.append(store_unavailable_is_503)  # while the store opens, or is down
    app.router.add_get("/healthz", healthz)
    if public and webhook:
        app.router.add_get("/webhook", webhook_route.handshake)
        app.router.add_post("/webhook", webhook_route.receive)
    if public:
        app.router.add_post("/events", events_route.receive)
    if admin_pages:
        app.router.add_get("/metrics", admin.admin_only(metrics))
        app.router.add_get("/", admin.admin_only(status_page.page))
        app.router.add_get("/report", admin.admin_only(report_route.page))
        app.router.add_post("/login", admin.login)
    return app


@dataclass
class Servers:
    """The listening server: one port, or a public one and a separate admin one."""

    public: Listener
    admin: Listener | None = None

    async def close(self) -> None:
        for listener in (self.public, self.admin):
            if listener is not None:
                await listener.close()


def warn_if_open(ctx: ServerContext) -> None:
    """One line at start for what works but is likely a mistake."""
    server = ctx.settings.server
    admin_host = server.admin_host if server.admin_port is not None else server.host
    if not server.admin_token.get_secret_value() and admin_host not in LOOPBACK:
        # Not an error (a private network, a proxy that does not route them), but worth a line.
        log.warning("server.admin_open", host=admin_host, fix="set [server] admin_token")
    if not ctx.settings.facebook.pages:
        # Every webhook would be acknowledged and dropped: say so once, at start.
        log.warning("facebook.no_pages", fix="list your pages as [[facebook.pages]]")


async def serve(ctx: ServerContext, limits: HttpLimits, sockets: Path | None = None) -> Servers:
    """Binds `[server] host/port`, and `admin_host/admin_port` when set: then the status page
    and /metrics are served there only (loopback by default), not on the public port.

    A worker (`sockets` set) serves the same apps, less the webhook, on the Unix sockets
    `public.sock` and `admin.sock` in that folder, for the HTTP process to pass requests on.
    """
    split = ctx.settings.server.admin_port is not None
    if sockets is None:
        warn_if_open(ctx)
    public = build_app(ctx, admin_pages=not split, webhook=sockets is None)
    admin_app = build_app(ctx, public=False) if split else None
    return await listen(ctx.settings.server, limits, public, admin_app, sockets)


async def listen(
    server: ServerSettings,
    limits: HttpLimits,
    public: Served,
    admin_app: Served | None,
    sockets: Path | None = None,
) -> Servers:
    """Serves `public` on `[server] host/port` and `admin_app` (if any) on `admin_host/
    admin_port`, or both on Unix sockets in `sockets`; nothing stays bound if one fails."""

    async def bind(app: Served, host: str, port: int, socket: str) -> Listener:
        if sockets is not None:
            return await Listener.start_unix(app, sockets / socket, limits)
        return await Listener.start(app, host, port, limits)

    servers = Servers(await bind(public, server.host, server.port, PUBLIC_SOCKET))
    if admin_app is not None:
        assert server.admin_port is not None
        try:
            servers.admin = await bind(
                admin_app, server.admin_host, server.admin_port, ADMIN_SOCKET
            )
        except OSError:
            await servers.close()
            raise
    return servers
