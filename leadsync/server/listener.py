"""Binds the HTTP server to an address with the limits of `server/limits.py` applied.

One `Listener` per address (the public port, the admin one, a worker's Unix socket), serving
an app or the HTTP process's `Front` (`server/front.py`). Beyond
`max_connections` open connections a new one gets `503` with `Retry-After` and is
closed at once, before any parsing: the cap keeps file descriptors for the store and
the destinations, and Meta retries a 503. The cap is set well above what slow
clients can hold between two deadlines, so real webhooks keep flowing.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from leadsync.constants import HTTP_SHUTDOWN_TIMEOUT
from leadsync.server.front import Front
from leadsync.server.limits import LIMITS, HttpLimits

log = structlog.get_logger(__name__)

_FULL = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\n"
    b"Content-Length: 0\r\n\r\n"
)


class _ProtocolLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's server log, with malformed HTTP as one line and no traceback.

    aiohttp logs a request it cannot parse (a bad header line, a bare CR) as an error with
    a traceback; on a public port that is a client's garbage, not our bug, and a flood of
    it would bury real errors. Real exceptions keep their traceback.
    """

    def exception(self, msg: object, *args: Any, exc_info: Any = True, **kwargs: Any) -> None:
        if isinstance(exc_info, HttpProcessingError):
            # The category only: the rest echoes the client's bytes, maybe someone's secret.
            reason = (exc_info.message or "").strip().splitlines()[:1]
            log.warning("http.malformed", status=exc_info.code, reason=reason[0] if reason else "")
            return
        super().exception(msg, *args, exc_info=exc_info, **kwargs)


class _Refused(asyncio.Protocol):
    """A connection past the cap: one 503, then closed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(_FULL)
        transport.close()


class _Capped:
    """aiohttp's protocol factory, handing out at most `cap` live connections."""

    def __init__(self, server: web.Server, cap: int):
        self._server = server
        self._cap = cap
        self.refused = 0

    def __call__(self) -> asyncio.BaseProtocol:
        if len(self._server.connections) >= self._cap:
            self.refused += 1
            if self.refused % 100 == 1:  # one line per hundred, not a flood during an attack
                log.warning("http.connections_full", cap=self._cap, refused=self.refused)
            return _Refused()
        return self._server()


Served = web.Application | Front


class Listener:
    """An app served on one address; `port` is the bound port (useful with port 0)."""

    def __init__(self, runner: web.BaseRunner, server: asyncio.Server):
        self._runner = runner
        self._server = server
        address = server.sockets[0].getsockname()
        self.port: int = address[1] if isinstance(address, tuple) else 0  # 0: a Unix socket

    @classmethod
    async def start(cls, app: Served, host: str, port: int, limits: HttpLimits) -> Listener:
        """Serves `app` on a TCP address."""
        runner, factory = await cls._prepare(app, limits)
        server = await asyncio.get_running_loop().create_server(factory, host, port)
        return cls(runner, server)

    @classmethod
    async def start_unix(cls, app: Served, path: Path, limits: HttpLimits) -> Listener:
        """Serves `app` on a Unix socket (the worker's, for the HTTP process of `leadsync run`)."""
        runner, factory = await cls._prepare(app, limits)
        path.unlink(missing_ok=True)  # left by a worker that was killed
        server = await asyncio.get_running_loop().create_unix_server(factory, str(path))
        return cls(runner, server)

    @staticmethod
    async def _prepare(app: Served, limits: HttpLimits) -> tuple[web.BaseRunner, _Capped]:
        protocol = {
            "access_log": None,
            "keepalive_timeout": limits.header_timeout,
            "lingering_time": limits.linger,
            "logger": _ProtocolLog(logging.getLogger("aiohttp.server"), {}),
        }
        shutdown_timeout = HTTP_SHUTDOWN_TIMEOUT.total_seconds()
        runner: web.BaseRunner
        if isinstance(app, web.Application):
            app[LIMITS] = limits
            runner = web.AppRunner(app, shutdown_timeout=shutdown_timeout, **protocol)
        else:
            app.app[LIMITS] = limits
            server = web.Server(app.handle, request_factory=app.request, **protocol)
            runner = web.ServerRunner(server, shutdown_timeout=shutdown_timeout)
        await runner.setup()
        assert runner.server is not None
        return runner, _Capped(runner.server, limits.max_connections)

    async def close(self) -> None:
        """Stops listening, lets requests in hand finish, closes the connections."""
        self._server.close()
        await self._runner.cleanup()
