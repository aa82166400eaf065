"""How long and how many: the limits that keep the HTTP port usable under slow clients.

aiohttp reads headers and bodies with no deadline of its own and keeps an idle
connection for an hour: 30 slowloris connections stayed open for minutes. The
limits here bound every phase of a connection. The keep-alive timeout (aiohttp 3.14.5+
arms it at connect, and re-arms it after each response) closes a connection that
has not sent complete request headers in time, idle or trickling; routes read a
body through `read_body`, which gives up after the body deadline; a body we
answered without reading is drained only briefly (aiohttp lingers 10 s); and the
listener refuses connections beyond a cap (see `server/listener.py`). Tests
inject short limits; the daemon uses the constants.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web

from leadsync.constants import (
    HTTP_BODY_TIMEOUT,
    HTTP_HEADER_TIMEOUT,
    HTTP_LINGER,
    HTTP_MAX_CONNECTIONS,
)


@dataclass(frozen=True)
class HttpLimits:
    """Seconds a client has for its headers (and may idle between requests), seconds for
    its body, seconds a body we did not read is drained after our answer, and how many
    connections may be open at once."""

    header_timeout: float = HTTP_HEADER_TIMEOUT.total_seconds()
    body_timeout: float = HTTP_BODY_TIMEOUT.total_seconds()
    linger: float = HTTP_LINGER.total_seconds()
    max_connections: int = HTTP_MAX_CONNECTIONS


LIMITS: web.AppKey[HttpLimits] = web.AppKey("http_limits", HttpLimits)


class BodyTooSlow(Exception):
    """The client did not send its whole body within the body deadline (answered 408)."""


async def read_body(request: web.Request) -> bytes:
    """The request body, bounded by the app's client_max_size and by the body deadline."""
    if request.content.is_eof():  # all of it came with the headers: nothing to wait for
        return await request.read()
    limits = request.app.get(LIMITS) or HttpLimits()
    try:
        async with asyncio.timeout(limits.body_timeout):
            return await request.read()
    except TimeoutError:
        raise BodyTooSlow from None


def too_slow() -> web.Response:
    """408, and the connection closed: a client this slow gets no second request on it."""
    response = web.Response(status=408, text="request body too slow")
    response.force_close()
    return response
