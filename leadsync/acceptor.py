"""The HTTP process of `leadsync run`: answers webhooks, and hands everything else to its worker.

A webhook's 200 needs a signature check, a parse and a durable commit, and
nothing else may compete with that for the interpreter or the write lock. So
this process does only that, group-committing notifications to its inbox: on
SQLite a journal file of its own beside the store (`ingest/journal.py`), on
PostgreSQL the store's notifications table (no file lock to share there). It
starts and supervises the worker (`leadsync/worker.py`, `supervisor.py`),
which fetches, scores, delivers and polls, wakes it through a pipe after each
commit, and passes the other routes to it over Unix sockets
(`server/proxy.py`). `/healthz` is answered here from both halves: the
inbox, whether the worker runs (and how often it was restarted), and the
worker's own verdict. SIGTERM refuses new webhooks (503), stops the worker
within the grace period and exits; SIGHUP re-reads the config here and in the
worker. Users still run one command in one container.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import structlog
from aiohttp import web

from leadsync import logs
from leadsync.config import Settings, load_config, secret_values
from leadsync.constants import SHUTDOWN_GRACE_SECONDS
from leadsync.errors import ConfigError
from leadsync.health import HealthReport
from leadsync.ingest.group_commit import GroupCommitter
from leadsync.ingest.journal import IngestJournal
from leadsync.metrics import FrontMetrics
from leadsync.server import admin, webhook_route
from leadsync.server.app import (
    ADMIN_SOCKET,
    PUBLIC_SOCKET,
    SECURITY_HEADERS,
    Servers,
    listen,
    warn_if_open,
)
from leadsync.server.context import CONTEXT, ServerContext
from leadsync.server.front import Front
from leadsync.server.limits import HttpLimits
from leadsync.server.proxy import WorkerLink, WorkerUnavailable, forwarding
from leadsync.socket_folder import make_socket_folder
from leadsync.store import SQLITE_PREFIX, sqlite_path
from leadsync.store.waiting import PendingStore, open_and_write
from leadsync.supervisor import WorkerSupervisor

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# A commit shared by this many webhooks or more: they arrive faster than one commit takes
# (~0.5 ms), thousands a second, and the worker makes way for them. Meta's usual few a
# second commit one by one.
QUEUED_WEBHOOKS = 4


def open_inbox(url: str):  # noqa: ANN201 - an IngestJournal or a Store: both take notifications
    """Where webhooks are committed: the journal beside a SQLite store, else the store itself."""
    if url.startswith(SQLITE_PREFIX):
        journal = IngestJournal(sqlite_path(url))
        try:
            journal.ping()  # a read-only folder fails here, not on the first webhook
        except BaseException:
            journal.close()
            raise
        return journal
    return open_and_write(url)


class Acceptor:
    """The process `leadsync run` starts: listeners, inbox, and the worker it supervises."""

    def __init__(
        self,
        settings: Settings,
        config_path: Path,
        *,
        http_limits: HttpLimits | None = None,
        worker_args: Sequence[str] = (),
    ):
        self.settings = settings
        self.config_path = config_path
        self.inbox = PendingStore(settings.store.url, opener=open_inbox)
        self.sockets = make_socket_folder()  # only we can enter it (0700)
        self.supervisor = WorkerSupervisor(config_path, self.sockets, list(worker_args))
        self.metrics = FrontMetrics(lambda: self.supervisor.state)
        self.committer = GroupCommitter(
            self.inbox,
            on_committed=lambda _n: self.supervisor.wake(flooded=self._flooded()),
            inline=settings.store.url.startswith(SQLITE_PREFIX),  # the journal: a local file
        )
        self.context = ServerContext(
            settings=settings,
            store=self.inbox,  # type: ignore[arg-type] - the routes here only commit webhooks
            committer=self.committer,
            metrics=self.metrics,  # type: ignore[arg-type] - the webhook counters, and render
            health=self._own_health,
            events_stored=lambda _ids: None,  # /events is the worker's
        )
        self.http_limits = http_limits or HttpLimits()
        self._links = [WorkerLink(str(self.sockets / PUBLIC_SOCKET))]
        self._servers: Servers | None = None
        self._opening: asyncio.Task[bool] | None = None
        self._stopping = asyncio.Event()
        self.port: int | None = None

    async def start(self) -> None:
        """Listens, starts the worker, then opens the inbox (waiting while it cannot be)."""
        self._servers = await self._listen()
        self.port = self._servers.public.port
        await self.supervisor.start()
        if not await self.inbox.try_open():
            self._opening = asyncio.create_task(self.inbox.open_when_reachable(self._stopping))
        log.info("http.started", port=self.port, worker_pid=self.supervisor.state.pid)

    async def stop(self) -> None:
        """Refuses webhooks (503), stops the worker within the grace period, closes the rest."""
        self.context.accepting = False
        self._stopping.set()
        await self.supervisor.stop(SHUTDOWN_GRACE_SECONDS - 1)
        if self._opening is not None:
            await asyncio.wait({self._opening}, timeout=1)
        if self._servers is not None:
            await self._servers.close()
        for link in self._links:
            await link.close()
        self.inbox.close()
        shutil.rmtree(self.sockets, ignore_errors=True)
        log.info("http.stopped")

    async def run_until_signalled(self) -> None:
        """`leadsync run`: serve until SIGTERM or SIGINT; SIGHUP reloads here and in the worker."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        reloads: set[asyncio.Task[None]] = set()  # held: a task nobody holds may be collected

        def reload() -> None:
            task = asyncio.create_task(self.reload())
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, reload)
        try:
            await self.start()
            await stop.wait()
            log.info("daemon.stopping", grace_s=SHUTDOWN_GRACE_SECONDS)
        finally:
            await asyncio.wait_for(self.stop(), timeout=SHUTDOWN_GRACE_SECONDS)

    async def reload(self) -> None:
        """SIGHUP: the worker re-reads the config; here, the keys the webhook route reads."""
        self.supervisor.reload()
        with contextlib.suppress(ConfigError):  # the worker logs the problems and keeps its own
            fresh = await asyncio.to_thread(load_config, self.config_path)
            self.settings = self.context.settings = fresh  # app secret, verify token, pages
            logs.REDACTOR.add_secrets(secret_values(fresh))
            logs.set_level(fresh.logging.level)

    # -- HTTP ----------------------------------------------------------------------------
    async def _listen(self) -> Servers:
        warn_if_open(self.context)
        split = self.settings.server.admin_port is not None
        public = self._front(self._links[0], webhook=True, admin_pages=not split)
        admin_front = None
        if split:
            self._links.append(WorkerLink(str(self.sockets / ADMIN_SOCKET)))
            admin_front = self._front(self._links[-1], webhook=False, admin_pages=True)
        return await listen(self.settings.server, self.http_limits, public, admin_front)

    def _front(self, link: WorkerLink, *, webhook: bool, admin_pages: bool) -> Front:
        front = Front({CONTEXT: self.context}, SECURITY_HEADERS, fallback=forwarding(link))
        front.add("GET", "/healthz", self._healthz(link))
        if webhook:
            front.add("GET", "/webhook", webhook_route.handshake)
            front.add("POST", "/webhook", webhook_route.receive)
        if admin_pages:
            front.add("GET", "/metrics", admin.admin_only(self._metrics(link)))
        return front

    def _flooded(self) -> bool:
        """Webhooks queue for their commits: the worker should make way for them."""
        return self.committer.last_group >= QUEUED_WEBHOOKS

    def _own_health(self) -> HealthReport:
        """This process's half of the verdict: the inbox takes writes, the worker runs."""
        reasons = []
        if not self.inbox.opened:
            reasons.append(f"store_unavailable: {self.inbox.problem}")
        else:
            try:
                self.inbox.ping()
            except Exception as exc:  # noqa: BLE001 - any failure to write: unhealthy, with why
                reasons.append(f"store_not_writable: {exc}")  # the journal is the store's too
        state = self.supervisor.state
        if not state.alive:
            reasons.append(
                f"worker_down: exited with {state.last_exit}, restarted {state.restarts} times"
            )
        return HealthReport(not reasons, reasons)

    def _healthz(self, link: WorkerLink) -> Handler:
        async def healthz(request: web.Request) -> web.Response:
            # Both halves at once: each may wait its pool's timeout for a dead database.
            own, theirs = await asyncio.gather(
                asyncio.to_thread(self._own_health), self._worker_reasons(link, request)
            )
            reasons = own.reasons + theirs
            if not admin.is_admin(request):  # codes only, as the worker's own /healthz
                reasons = [reason.partition(":")[0] for reason in reasons]
            state = self.supervisor.state
            body = {
                "status": "unhealthy" if reasons else "ok",
                "reasons": reasons,
                "worker": {"alive": state.alive, "restarts": state.restarts},
            }
            return web.json_response(body, status=503 if reasons else 200)

        return healthz

    async def _worker_reasons(self, link: WorkerLink, request: web.Request) -> list[str]:
        """The worker's reasons, from its own /healthz; one reason when it cannot say."""
        if not self.supervisor.state.alive:
            return []  # `worker_down` is ours to say
        try:
            _status, _, body = await link.send("GET", "/healthz", _auth(request), b"")
            return list(json.loads(body)["reasons"])
        except WorkerUnavailable:
            return ["worker_starting: it does not answer yet"]
        except (ValueError, KeyError, TypeError):
            return ["worker_unhealthy: its /healthz answer could not be read"]

    def _metrics(self, link: WorkerLink) -> Handler:
        async def metrics(request: web.Request) -> web.Response:
            body = self.metrics.render()
            with contextlib.suppress(WorkerUnavailable):  # while it restarts: ours alone
                status, _, text = await link.send("GET", "/metrics", _auth(request), b"")
                if status == 200:
                    body += text
            return web.Response(body=body, content_type="text/plain", charset="utf-8")

        return metrics


def _auth(request: web.Request) -> dict[str, str]:
    """The headers that prove an admin, passed on so the worker shows what it would show."""
    return {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "cookie")}
