"""The HTTP process's few routes, served by aiohttp's low-level server instead of an Application.

`leadsync run`'s HTTP process answers `/webhook`, `/healthz` and its half of
`/metrics`, and passes every other request to its worker. That needs no router:
`Front` looks a request up by method and path in a dict, and anything else goes
to the fallback (the worker's proxy). aiohttp's `web.Server` runs it without an
Application's routing, match info, signals and middleware chain, which a
webhook's 200 pays for on every request (measured: 118-160 against 156-162 CPU
µs per request for the same bare handler on a slow machine; see
`benchmarks/README.md`). The routes are the ones the apps use: they read
`request.app[CONTEXT]` and `request.app.get(LIMITS)`, so a `FrontRequest`'s
`app` is a mapping of those same keys. Every answer gets the security headers as
it is prepared, aiohttp's own answers to malformed HTTP included (an app's
`on_response_prepare` misses those, and their `Server` header named versions).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from leadsync.constants import WEBHOOK_MAX_BODY_BYTES

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


class FrontRequest(web.BaseRequest):
    """A request of the low-level server; `app` holds what routes read from an app."""

    ATTRS = web.BaseRequest.ATTRS | frozenset(["app", "secure_headers"])
    app: Mapping[web.AppKey[Any], Any]
    secure_headers: Mapping[str, str]

    async def _prepare_hook(self, response: web.StreamResponse) -> None:
        # aiohttp calls this as every answer is prepared, its own 400s for malformed HTTP
        # included (web.Request sends an app's on_response_prepare from here).
        response.headers.update(self.secure_headers)


class Front:
    """Routes by (method, path); a GET route answers HEAD too, as an app's `add_get` does."""

    def __init__(
        self, app: Mapping[web.AppKey[Any], Any], headers: Mapping[str, str], fallback: Handler
    ):
        self.app = dict(app)
        self._headers = headers
        self._fallback = fallback
        self._routes: dict[tuple[str, str], Handler] = {}

    def add(self, method: str, path: str, handler: Handler) -> None:
        self._routes[method, path] = handler
        if method == "GET":
            self._routes["HEAD", path] = handler

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        handler = self._routes.get((request.method, request.path), self._fallback)
        return await handler(request)

    def request(
        self,
        message: RawRequestMessage,
        payload: StreamReader,
        protocol: RequestHandler,
        writer: AbstractStreamWriter,
        task: asyncio.Task[None],
    ) -> FrontRequest:
        """aiohttp's request factory: a `FrontRequest` bounded as the apps bound theirs."""
        request = FrontRequest(
            message, payload, protocol, writer, task, asyncio.get_running_loop(),
            client_max_size=WEBHOOK_MAX_BODY_BYTES,
        )  # fmt: skip
        request.app = self.app
        request.secure_headers = self._headers
        return request
