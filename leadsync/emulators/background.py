"""Runs an emulator's aiohttp app on a free local port in a background thread.

Tests, benchmarks and `leadsync demo` talk to emulators over real HTTP with
synchronous clients (requests, gspread), so each emulator owns an event loop
in a daemon thread: `with SomeEmulator() as emu: emu.url`. The server also
carries the fault injection every emulator shares: a queue of canned failures
(status, headers, body, or a delay longer than the client's timeout) served
instead of the real answer to the next matching requests.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# How long start() and stop() wait for the server thread before giving up.
THREAD_WAIT_SECONDS = 10
# How long stopping waits for requests in flight.
SHUTDOWN_SECONDS = 0.5


@dataclass
class Fault:
    """A canned failure served instead of the real answer, `times` times."""

    status: int = 500
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    delay: float = 0.0  # seconds to stall first; longer than the client's timeout means a timeout
    path: str = ""  # only requests whose path starts with this
    times: int = 1
    skip: int = 0  # let this many matching requests through first

    def matches(self, request: web.Request) -> bool:
        return request.path.startswith(self.path)


class BackgroundServer:
    """An aiohttp app served from a daemon thread; a context manager."""

    def __init__(self) -> None:
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    # -- to be provided by each emulator ---------------------------------------
    def routes(self, app: web.Application) -> None:
        """Adds the emulator's routes to `app`."""
        raise NotImplementedError

    # -- fault injection ------------------------------------------------------
    def inject(self, fault: Fault) -> None:
        """Serves `fault` to the next `fault.times` requests matching its path."""
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, request: web.Request) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(request) and fault.skip > 0:
                    fault.skip -= 1
                    return None
                if fault.matches(request):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    @web.middleware
    async def _faults_middleware(self, request: web.Request, handler: Handler) -> Any:
        fault = self._take_fault(request)
        if fault is None:
            return await handler(request)
        if fault.delay:
            await asyncio.sleep(fault.delay)
        return web.Response(
            status=fault.status,
            text=fault.body,
            headers=fault.headers,
            content_type=fault.content_type,
        )

    def middlewares(self) -> list[Any]:
        """Middlewares around every route; emulators may add theirs after the fault one."""
        return [self._faults_middleware]

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> Self:
        ready = threading.Event()
        errors: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._serve, args=(ready, errors), name=type(self).__name__, daemon=True
        )
        self._thread.start()
        if not ready.wait(THREAD_WAIT_SECONDS):
            raise RuntimeError(f"{type(self).__name__} did not start")
        if errors:
            raise errors[0]
        return self

    def _serve(self, ready: threading.Event, errors: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._open())
        except Exception as exc:  # noqa: BLE001 - handed to start(), which raises it
            errors.append(exc)
            loop.run_until_complete(self._close())
            loop.close()
            ready.set()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._close())
            loop.close()

    async def _open(self) -> None:
        app = web.Application(middlewares=self.middlewares(), client_max_size=16 * 1024 * 1024)
        self.routes(app)
        # Stalled requests (timeout faults) must not hold up stopping the server.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_SECONDS)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))  # a free port, so parallel tests never collide
        site = web.SockSite(self._runner, sock)
        await site.start()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"

    async def _close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(THREAD_WAIT_SECONDS)
        self._loop = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
