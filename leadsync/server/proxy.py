"""Passes the HTTP process's other routes to the worker, over a Unix socket.

`leadsync run`'s HTTP process answers `/webhook` itself; everything else
(`/events`, `/healthz`'s pipeline half, the status page, `/report`, `/metrics`'
pipeline half, `/login`) is the worker's, which serves the same apps as a
single-process daemon on Unix sockets in a private folder (0700). A request is
passed on whole (its body already bounded by our limits and deadlines) and the
answer passed back; headers that belong to one hop (Connection, lengths) are
left to each side. While the worker is down or starting, the answer is 503
with `Retry-After`, which callers of `/events` and Meta already retry.
"""

from __future__ import annotations

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from leadsync.server.limits import BodyTooSlow, read_body, too_slow

# Hop-by-hop headers (RFC 9110 7.6.1) and the ones aiohttp recomputes for the body it sends.
HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
     "proxy-authorization", "proxy-authenticate", "content-length", "content-encoding", "host"}
)  # fmt: skip
# The worker answers in milliseconds; a report over a year of leads may take seconds.
WORKER_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=2)
RETRY_AFTER_SECONDS = "5"


class WorkerUnavailable(Exception):
    """The worker did not answer: it is down, starting, or restarting."""


class WorkerLink:
    """An HTTP client of one of the worker's Unix sockets."""

    def __init__(self, socket_path: str):
        self.socket_path = socket_path
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:  # made on the loop that uses it
            connector = aiohttp.UnixConnector(path=self.socket_path)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=WORKER_TIMEOUT, auto_decompress=False
            )
        return self._session

    async def send(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """The worker's status, headers and body; raises WorkerUnavailable when it cannot answer."""
        try:
            async with self._client().request(
                method, f"http://worker{path}", headers=headers, data=body or None,
                allow_redirects=False,
            ) as reply:  # fmt: skip
                return reply.status, list(reply.headers.items()), await reply.read()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise WorkerUnavailable(str(exc) or type(exc).__name__) from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def forwarding(link: WorkerLink):  # noqa: ANN201 - an aiohttp handler
    """A handler passing any request on to the worker behind `link`."""

    async def forward(request: web.Request) -> web.StreamResponse:
        try:
            body = await read_body(request)
        except web.HTTPRequestEntityTooLarge:
            return web.Response(status=413, text="body too large")
        except BodyTooSlow:
            return too_slow()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        try:
            status, reply_headers, reply_body = await link.send(
                request.method, request.path_qs, headers, body
            )
        except WorkerUnavailable:
            return unavailable()
        kept = CIMultiDict((k, v) for k, v in reply_headers if k.lower() not in HOP_HEADERS)
        return web.Response(status=status, body=reply_body, headers=kept)

    return forward


def unavailable() -> web.Response:
    return web.Response(
        status=503, text="the worker is restarting; retry shortly",
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )  # fmt: skip
