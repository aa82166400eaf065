"""Answers 503 (retry later) when a route finds the store unavailable, not a 500 and a traceback.

While the daemon waits for its store at start, or the database is down for a
while, `/events` and the status page cannot read or write. The caller should
retry, as Meta does for webhooks (whose route answers 503 by itself); the
failure is already in `/healthz` and the store's own log line, so nothing more
is logged per request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from leadsync.errors import TransientError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# A store outage is seconds to minutes: tell clients to come back soon, not hammer it.
RETRY_AFTER_SECONDS = 30


@web.middleware
async def store_unavailable_is_503(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except TransientError:  # the routes behind it only call the store
        return web.json_response(
            {"error": "the store is unavailable; retry later"},
            status=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
