"""Wires the daemon together and runs it: `leadsync run`, `demo` and process tests.

Data flows one way: webhook and poller -> store -> fetch -> score -> outbox ->
one delivery job per destination. Each stage is a `Job` woken by the stage
before it, so a lead goes from webhook to sheet in well under a second, and
each stage also runs on a timer, so work left by a crash is picked up. The
poller and the daily decay run on APScheduler. SIGTERM stops taking webhooks
(503, Meta retries), lets the batches in hand finish within the grace period
and exits; SIGHUP re-reads the config, for a rotated token.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

import connectors
from leadsync import logs
from leadsync.abc import Store
from leadsync.config import Settings, load_config
from leadsync.constants import OUTBOX_CLAIM_LEASE, SHUTDOWN_GRACE_SECONDS
from leadsync.errors import AuthError, ConfigError, RateLimited
from leadsync.facebook.graph import GraphClient
from leadsync.health import HealthReport, assess
from leadsync.ingest.fetch import LeadFetcher
from leadsync.ingest.group_commit import GroupCommitter
from leadsync.ingest.poller import Poller, PollReport
from leadsync.ingest.scope import PageScope
from leadsync.jobs import Job
from leadsync.leases import LeaseKeeper, new_owner
from leadsync.metrics import Metrics
from leadsync.models import ScoredLead, ServiceStatus, utcnow
from leadsync.outbox.enqueue import Enqueuer
from leadsync.outbox.runner import DeliveryWorker
from leadsync.scoring.engine import Scorer
from leadsync.server.app import Servers, serve
from leadsync.server.context import ServerContext
from leadsync.server.limits import HttpLimits
from leadsync.store import open_store

log = structlog.get_logger(__name__)

# A woken job waits this long for more work: under a webhook burst it turns many one-lead
# rounds (each a Graph call and a transaction) into few full ones, for 50 ms of latency.
JOB_LINGER_SECONDS = 0.05
# Engagement points decay continuously; re-scoring once a day keeps rows close enough.
DECAY_INTERVAL = timedelta(days=1)
# One replica at a time writes to a destination (one writer per sheet). The lease is renewed
# while a round runs, however long, so it can be short: a dead replica's destination passes to
# a live one this soon (its claimed items follow after OUTBOX_CLAIM_LEASE, the same time).
DESTINATION_LEASE = OUTBOX_CLAIM_LEASE


def graph_client(settings: Settings) -> GraphClient:
    fb = settings.facebook
    return GraphClient(
        app_id=fb.app_id,
        access_token=fb.access_token.get_secret_value(),
        app_secret=fb.app_secret.get_secret_value(),
        api_version=fb.api_version,
        graph_url=fb.graph_url,
    )


class Daemon:
    """One running leadsync: HTTP server, jobs and scheduler over one store."""

    def __init__(
        self,
        settings: Settings,
        *,
        config_path: Path | None = None,
        store: Store | None = None,
        http_limits: HttpLimits | None = None,
    ):
        self.settings = settings
        self.config_path = config_path
        self.owner = new_owner()
        self.store = store or open_store(settings.store.url)
        self.store.migrate()
        self.leases = LeaseKeeper(self.store, self.owner)
        self.graph = graph_client(settings)
        self.metrics = Metrics(self.store.destination_stats)
        self.enqueuer = Enqueuer(self.store, Scorer(settings.scoring), settings.destinations)
        self.fetcher = LeadFetcher(self.store, self.graph, PageScope.of(settings.facebook.pages))
        self.poller = Poller(self.store, self.graph)
        self.committer = GroupCommitter(self.store, on_committed=lambda _n: self.fetch_job.wake())
        self.workers = [self._worker(dest) for dest in settings.destinations]
        self.fetch_job = Job("fetch", self._fetch_step, linger_seconds=JOB_LINGER_SECONDS)
        self.score_job = Job("score", self._score_step, linger_seconds=JOB_LINGER_SECONDS)
        self.delivery_jobs = [
            Job(f"deliver:{w.name}", self._delivery_step(w), linger_seconds=JOB_LINGER_SECONDS)
            for w in self.workers
        ]
        self._rescore_ids: set[str] = set()
        self._rescore_lock = threading.Lock()
        self._facebook_ok: bool | None = None
        self.started_at = utcnow()
        self.context = ServerContext(
            settings=settings,
            store=self.store,
            committer=self.committer,
            metrics=self.metrics,
            health=self.health,
            events_stored=self._events_stored,
        )
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.http_limits = http_limits or HttpLimits()
        self._servers: Servers | None = None
        self.port: int | None = None
        self.admin_port: int | None = None

    # -- lifecycle ---------------------------------------------------------------
    async def start(self) -> None:
        self._servers = await serve(self.context, self.http_limits)
        self.port = self._servers.public.port
        self.admin_port = self._servers.admin.port if self._servers.admin else None
        # A restart after a crash need not wait for the leases of the process it replaces.
        await asyncio.to_thread(self.leases.release_dead_predecessors)
        for job in (self.fetch_job, self.score_job, *self.delivery_jobs):
            job.start()
        self._schedule()
        self.metrics.up.set(1)
        log.info("daemon.started", port=self.port, destinations=[w.name for w in self.workers])

    async def stop(self) -> None:
        """Graceful stop: refuse webhooks, finish the batches in hand, close the store."""
        self.context.accepting = False
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        jobs = (self.fetch_job, self.score_job, *self.delivery_jobs)
        await asyncio.gather(*(job.stop(SHUTDOWN_GRACE_SECONDS - 1) for job in jobs))
        if self._servers is not None:
            await self._servers.close()
        # Handing the destinations back lets another replica deliver at once. Poll leases just
        # expire: the scheduler does not wait for a poll in hand, which must stay the only one.
        for worker in self.workers:
            self.leases.release(f"deliver:{worker.name}")
        self.store.close()
        self.metrics.up.set(0)
        log.info("daemon.stopped")

    async def run_until_signalled(self) -> None:
        """`leadsync run`: start, then serve until SIGTERM or SIGINT; SIGHUP reloads."""
        loop = asyncio.get_running_loop()
        await self.start()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        await stop.wait()
        log.info("daemon.stopping", grace_s=SHUTDOWN_GRACE_SECONDS)
        await asyncio.wait_for(self.stop(), timeout=SHUTDOWN_GRACE_SECONDS)

    def reload(self) -> None:
        """Re-reads the config file and takes a rotated access token without a restart."""
        if self.config_path is None:
            return
        try:
            fresh = load_config(self.config_path)
        except ConfigError as exc:
            log.error("config.reload_failed", problems=[str(p) for p in exc.problems])
            return
        token = fresh.facebook.access_token.get_secret_value()
        if token != self.settings.facebook.access_token.get_secret_value():
            logs.REDACTOR.add_secrets([token])
            self.graph.set_access_token(token)
            self.settings = self.settings.model_copy(update={"facebook": fresh.facebook})
            log.info("token.replaced")
            self.fetch_job.wake()

    def _schedule(self) -> None:
        interval = self.settings.facebook.poll_interval.total_seconds()
        for page in self.settings.facebook.pages:
            self.scheduler.add_job(
                self._poll_page, "interval", seconds=interval, args=[page.id, page.forms],
                id=f"poll:{page.id}", next_run_time=utcnow(), max_instances=1, coalesce=True,
            )  # fmt: skip
        # Also once at start: an event acknowledged just before a crash (its re-scoring was only
        # in memory) still changes the row, a daemon restarted more often than daily still
        # decays, and changed rules re-score at once. Unchanged scores make no new revision.
        self.scheduler.add_job(
            self._rescore_all, "interval", seconds=DECAY_INTERVAL.total_seconds(), id="decay",
            next_run_time=utcnow(), max_instances=1,
        )  # fmt: skip
        self.scheduler.start()

    # -- steps (run in worker threads) ------------------------------------------------
    def _fetch_step(self) -> int:
        try:
            with self._graph_counted():
                stored = self.fetcher.run_once()
        except AuthError as exc:
            self._facebook_status(False, str(exc))
            return 0
        if stored:
            self._facebook_status(True, "token valid")
            self.metrics.leads_ingested.labels("webhook").inc(len(stored))
            self.score_job.wake()
        return len(stored)

    def _score_step(self) -> int:
        with self._rescore_lock:
            ids, self._rescore_ids = list(self._rescore_ids), set()
        changed = len(self.enqueuer.rescore(ids)) if ids else 0
        changed += self.enqueuer.score_new()
        if changed:
            for job in self.delivery_jobs:
                job.wake()
        return changed

    def _delivery_step(self, worker: DeliveryWorker):  # noqa: ANN202 - a closure for Job
        def step() -> int:
            with self.leases.hold(f"deliver:{worker.name}", DESTINATION_LEASE) as ours:
                return worker.run_once() if ours else 0

        return step

    async def _poll_page(self, page_id: str, only: list[str] | None) -> None:
        report = await asyncio.to_thread(self._poll_if_ours, page_id, only)
        if report is None:
            return
        if report.leads_new:
            self.metrics.leads_ingested.labels("poll").inc(report.leads_new)
            self.score_job.wake()
        if not report.errors:
            await asyncio.to_thread(self._facebook_status, True, "token valid")
        elif report.auth_failed:
            self._facebook_ok = False

    def _poll_if_ours(self, page_id: str, only: list[str] | None) -> PollReport | None:
        """Polls the page when this replica holds its lease (None otherwise); one poller a page."""
        lease = self.settings.facebook.poll_interval * 2  # kept between rounds by the holder
        with self.leases.hold(f"poll:{page_id}", lease) as ours:
            if not ours:
                return None
            if self._facebook_ok is False:
                self.reload()
            began = time.monotonic()
            with self._graph_counted():
                report = self.poller.poll_page(page_id, only)
        log.info(
            "page.polled", page_id=page_id, seconds=round(time.monotonic() - began, 3),
            leads_new=report.leads_new, errors=len(report.errors),
        )  # fmt: skip
        return report

    async def _rescore_all(self) -> None:
        changed = await asyncio.to_thread(self.enqueuer.rescore_all)
        if changed:
            for job in self.delivery_jobs:
                job.wake()

    # -- helpers -------------------------------------------------------------------------
    def _worker(self, dest) -> DeliveryWorker:  # noqa: ANN001
        module = connectors.load(dest.type)
        worker = DeliveryWorker(
            self.store, dest.name, module.build(dest.name, dest.settings), owner=self.owner,
            batch_size=self.settings.delivery.batch_size,
            dead_letter_after=self.settings.delivery.dead_letter_after,
        )  # fmt: skip
        worker.on_delivered = self._delivered
        worker.on_failed = self._delivery_failed
        return worker

    def _delivered(self, destination: str, batch: Sequence[ScoredLead]) -> None:
        now = utcnow()
        self.metrics.delivered.labels(destination).inc(len(batch))
        for scored in batch:
            age = (now - scored.lead.created_time).total_seconds()
            self.metrics.latency.labels(destination).observe(max(0.0, age))

    @contextmanager
    def _graph_counted(self) -> Iterator[None]:
        """Adds the Graph calls and throttles made inside the block to the metrics."""
        calls, throttles = self.graph.calls, self.graph.throttles
        try:
            yield
        finally:
            self.metrics.api_calls.labels("facebook").inc(self.graph.calls - calls)
            self.metrics.throttles.labels("facebook").inc(self.graph.throttles - throttles)

    def _delivery_failed(self, destination: str, exc: Exception) -> None:
        self.metrics.delivery_failures.labels(destination, type(exc).__name__).inc()
        if isinstance(exc, RateLimited):
            self.metrics.throttles.labels(destination).inc()

    def _events_stored(self, lead_ids: Sequence[str]) -> None:
        with self._rescore_lock:
            self._rescore_ids.update(lead_ids)
        self.score_job.wake()

    def _facebook_status(self, ok: bool, message: str) -> None:
        if self._facebook_ok != ok:
            self._facebook_ok = ok
            self.store.set_status(ServiceStatus("facebook", ok, message, utcnow()))
            (log.info if ok else log.error)("facebook.status", ok=ok, message=message)

    def health(self) -> HealthReport:
        jobs = {j.name: j.alive for j in (self.fetch_job, self.score_job, *self.delivery_jobs)}
        return assess(
            self.store,
            jobs_alive=jobs,
            poll_interval=self.settings.facebook.poll_interval,
            started_at=self.started_at,
            polling=bool(self.settings.facebook.pages),
        )
