"""Wires the daemon together and runs it: the worker of `leadsync run`, `demo`, tests.

Data flows one way: webhook and poller -> store -> fetch -> score -> outbox ->
one delivery job per destination. Each stage is a `Job` woken by the stage
before it, so a lead goes from webhook to sheet in well under a second, and
each stage also runs on a timer, so work left by a crash is picked up. Under
`leadsync run` this is the worker process (`sockets` set): its routes are
served on Unix sockets for the HTTP process, which takes the webhooks
(`leadsync/acceptor.py`), and the fetch job first copies that process's
journal into the store. The poller and the daily decay run on APScheduler.
SIGTERM stops taking webhooks (503, Meta retries), lets the batches in hand
finish within the grace period and exits; SIGHUP re-reads the config and
applies what it safely can (`leadsync/reload.py`). The HTTP server starts
first: a store that cannot be opened yet is waited for
(`leadsync/store/waiting.py`) while `/healthz` says why.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

import connectors
from leadsync.abc import Store
from leadsync.config import Settings
from leadsync.constants import OUTBOX_CLAIM_LEASE, SHUTDOWN_GRACE_SECONDS
from leadsync.errors import AuthError, RateLimited
from leadsync.facebook.graph import GraphClient
from leadsync.health import HealthReport, assess, store_unavailable
from leadsync.ingest.fetch import LeadFetcher
from leadsync.ingest.group_commit import GroupCommitter
from leadsync.ingest.journal import IngestJournal
from leadsync.ingest.poller import Poller, PollReport
from leadsync.ingest.scope import PageScope
from leadsync.jobs import Job, ScheduledRuns
from leadsync.leases import LeaseKeeper, new_owner
from leadsync.metrics import Metrics
from leadsync.models import DestinationStats, NotificationBacklog, ScoredLead, ServiceStatus, utcnow
from leadsync.outbox.enqueue import Enqueuer
from leadsync.outbox.runner import DeliveryWorker
from leadsync.outbox.stages import StageRouter
from leadsync.outcomes.job import OutcomeJobs, build_readers
from leadsync.reload import Reloader, ReloadPlan
from leadsync.routing import Router
from leadsync.scoring.engine import Scorer
from leadsync.server.app import Servers, serve
from leadsync.server.context import ServerContext
from leadsync.server.limits import HttpLimits
from leadsync.sla_job import SlaJob
from leadsync.status import PipelineProcess
from leadsync.store import SQLITE_PREFIX, sqlite_path
from leadsync.store.waiting import PendingStore
from leadsync.supervisor import RESTARTS_ENV

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
        clock: Callable[[], datetime] = utcnow,
        sockets: Path | None = None,
    ):
        self.settings = settings
        self.config_path = config_path
        # A worker of `leadsync run` serves its routes on Unix sockets in this folder, for the
        # HTTP process, and takes the webhooks that process committed (its journal, on SQLite).
        self.sockets = sockets
        self.journal: IngestJournal | None = None
        self.owner = new_owner()
        # The HTTP server starts before the store opens: a database still booting is waited for.
        self.store: Store = store if store is not None else PendingStore(settings.store.url)
        if store is not None:
            store.migrate()
        self.leases = LeaseKeeper(self.store, self.owner)
        self.graph = graph_client(settings)
        self.metrics = Metrics(
            self._destination_stats, self._notification_backlog, webhook=sockets is None
        )
        self.enqueuer = Enqueuer(
            self.store,
            Scorer(settings.scoring),
            settings.destinations,
            Router(settings.routing),
            settings.contacts.default_region,
        )
        self.fetcher = LeadFetcher(
            self.store, self.graph, PageScope.of(settings.facebook.pages), owner=self.owner
        )
        self.poller = Poller(self.store, self.graph)
        self.committer = GroupCommitter(self.store, on_committed=lambda _n: self.fetch_job.wake())
        self.workers = [self._worker(dest) for dest in settings.destinations]
        self.fetch_job = Job("fetch", self._fetch_step, linger_seconds=JOB_LINGER_SECONDS)
        self.score_job = Job("score", self._score_step, linger_seconds=JOB_LINGER_SECONDS)
        self.delivery_jobs = [self._delivery_job(w) for w in self.workers]
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
        self.stages = StageRouter(self.store, self._stage_destinations, self._stages_queued)
        self.context.stages = self.stages
        self.context.pipeline = self._pipeline_process
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.scheduled = ScheduledRuns()
        self.outcomes = OutcomeJobs(self.store, self.leases, self.scheduled)
        # The SLA clock reads `clock` (tests move it; everything else runs on real time).
        self.sla = SlaJob(self.store, self.leases, self.scheduled, settings, clock)
        self.http_limits = http_limits or HttpLimits()
        self._servers: Servers | None = None
        self.port: int | None = None
        self.admin_port: int | None = None
        self._stopping = asyncio.Event()
        self.reloader = Reloader(self)
        self._waiting_for_store: asyncio.Task[None] | None = None
        self.started = False

    # -- lifecycle ---------------------------------------------------------------
    async def start(self) -> None:
        """Serves HTTP, then runs the pipeline once the store is open (at once when it can be)."""
        self._servers = await serve(self.context, self.http_limits, self.sockets)
        self.port = self._servers.public.port
        self.admin_port = self._servers.admin.port if self._servers.admin else None
        self.reloader.loop = asyncio.get_running_loop()
        self.metrics.up.set(1)
        pending = self._pending_store()
        if pending is None or await pending.try_open():
            await self._start_pipeline()
        else:
            self._waiting_for_store = asyncio.create_task(self._start_once_store_opens(pending))

    async def _start_once_store_opens(self, pending: PendingStore) -> None:
        opened = await pending.open_when_reachable(self._stopping)
        if opened and not self._stopping.is_set():  # it may open just as a stop begins
            await self._start_pipeline()

    async def _start_pipeline(self) -> None:
        # A restart after a crash need not wait for the leases of the process it replaces.
        await asyncio.to_thread(self.leases.release_dead_predecessors)
        if self.sockets is not None and self.settings.store.url.startswith(SQLITE_PREFIX):
            path = sqlite_path(self.settings.store.url)
            self.journal = await asyncio.to_thread(IngestJournal, path)
        for job in (self.fetch_job, self.score_job, *self.delivery_jobs):
            job.start()
        self._schedule()
        self.started = True
        log.info("daemon.started", port=self.port, destinations=[w.name for w in self.workers])

    def _pending_store(self) -> PendingStore | None:
        """The store placeholder while the store has not opened yet."""
        pending = self.store
        return pending if isinstance(pending, PendingStore) and not pending.opened else None

    async def stop(self) -> None:
        """Graceful stop: refuse webhooks, finish the batches in hand, close the store."""
        self.context.accepting = False
        self._stopping.set()
        if self._waiting_for_store is not None:  # an attempt in hand ends within its timeout
            await asyncio.wait({self._waiting_for_store}, timeout=SHUTDOWN_GRACE_SECONDS - 1)
            self._waiting_for_store.cancel()
        if self.scheduler.running:
            self.scheduler.pause()  # no new poll or re-score; the ones in hand finish below
        jobs = (self.fetch_job, self.score_job, *self.delivery_jobs)
        await asyncio.gather(
            *(job.stop(SHUTDOWN_GRACE_SECONDS - 1) for job in jobs),
            self.scheduled.finish(SHUTDOWN_GRACE_SECONDS - 1),
        )
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self._servers is not None:
            await self._servers.close()
        # Handing the destinations back lets another replica deliver at once. Poll leases just
        # expire: a poll still in hand after the grace period must stay the only one.
        for worker in self.workers:
            if self.started:
                self.leases.release(f"deliver:{worker.name}")
            worker.close()
        self.outcomes.close()
        if self.journal is not None:
            self.journal.close()
        self.store.close()
        self.metrics.up.set(0)
        log.info("daemon.stopped")

    async def run_until_signalled(self, stop: asyncio.Event | None = None) -> None:
        """Start, then serve until SIGTERM or SIGINT (or `stop` is set); SIGHUP reloads."""
        loop = asyncio.get_running_loop()
        stop = stop or asyncio.Event()
        # Before start: the server answers while the store opens, and a SIGTERM then is a stop.
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        self.reloader.loop = loop
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        await self.start()
        await stop.wait()
        log.info("daemon.stopping", grace_s=SHUTDOWN_GRACE_SECONDS)
        await asyncio.wait_for(self.stop(), timeout=SHUTDOWN_GRACE_SECONDS)

    # -- reload (SIGHUP) ------------------------------------------------------------------
    def reload(self) -> None:
        """Re-reads the config file soon and applies what it can; safe from any thread."""
        self.reloader.request()

    async def reload_config(self) -> ReloadPlan | None:
        """Re-reads the config now; what the signal handler's reload ends up running."""
        return await self.reloader.run()

    async def replace_destinations(self, gone: set[str], made: set[str]) -> None:
        """Stops the delivery of destinations `gone`, starts those `made` (by name)."""
        pairs = list(zip(self.workers, self.delivery_jobs, strict=True))
        stopping = [(w, j) for w, j in pairs if w.name in gone]
        await asyncio.gather(*(job.stop(SHUTDOWN_GRACE_SECONDS - 1) for _, job in stopping))
        for worker, _ in stopping:
            if self.started:  # another replica may take it at once, as after a stop
                await asyncio.to_thread(self.leases.release, f"deliver:{worker.name}")
            await asyncio.to_thread(worker.close)
        kept = [(w, j) for w, j in pairs if w.name not in gone]
        for dest in self.settings.destinations:
            if dest.name in made:
                worker = self._worker(dest)
                kept.append((worker, self._delivery_job(worker)))
                if self.started:
                    kept[-1][1].start()
        # New lists, not edits: the score step iterates them from its thread.
        self.workers = [w for w, _ in kept]
        self.delivery_jobs = [j for _, j in kept]
        if self.started:
            self.schedule_outcomes()

    def schedule_polls(self) -> None:
        """One poll job per page (replacing any), each polled once at once."""
        for job in self.scheduler.get_jobs():
            if job.id.startswith("poll:"):
                job.remove()
        interval = self.settings.facebook.poll_interval.total_seconds()
        for page in self.settings.facebook.pages:
            self.scheduler.add_job(
                self._poll_page, "interval", seconds=interval, args=[page.id, page.forms],
                id=f"poll:{page.id}", next_run_time=utcnow(), max_instances=1, coalesce=True,
            )  # fmt: skip
        self.schedule_outcomes()  # read at least as often as leads are polled

    def schedule_outcomes(self) -> None:
        """One outcome reader per source (replacing any), each read once at once."""
        connectors_by_name = {w.name: w.connector for w in self.workers}
        readers = build_readers(
            self.settings.destinations, self.store, connectors_by_name.get, self.stages
        )
        self.outcomes.schedule(self.scheduler, readers, self.settings.facebook.poll_interval)

    def _schedule(self) -> None:
        self.schedule_polls()
        # Also once at start: an event acknowledged just before a crash (its re-scoring was only
        # in memory) still changes the row, a daemon restarted more often than daily still
        # decays, and changed rules re-score at once. Unchanged scores make no new revision.
        self.scheduler.add_job(
            self._rescore_all, "interval", seconds=DECAY_INTERVAL.total_seconds(), id="decay",
            next_run_time=utcnow(), max_instances=1,
        )  # fmt: skip
        self.sla.schedule(self.scheduler)
        self.scheduler.start()

    # -- steps (run in worker threads) ------------------------------------------------
    def _fetch_step(self) -> int:
        # The webhooks the HTTP process committed to its journal come into the store first.
        moved = self.journal.drain_into(self.store) if self.journal is not None else 0
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
        return len(stored) + moved

    def _score_step(self) -> int:
        with self._rescore_lock:
            ids, self._rescore_ids = list(self._rescore_ids), set()
        changed = len(self.enqueuer.rescore(ids)) if ids else 0
        changed += self.enqueuer.score_new()
        if changed:
            for job in self.delivery_jobs:
                job.wake()
        return changed

    def _delivery_job(self, worker: DeliveryWorker) -> Job:
        step = self._delivery_step(worker)
        return Job(f"deliver:{worker.name}", step, linger_seconds=JOB_LINGER_SECONDS)

    def _delivery_step(self, worker: DeliveryWorker):  # noqa: ANN202 - a closure for Job
        def step() -> int:
            with self.leases.hold(f"deliver:{worker.name}", DESTINATION_LEASE) as ours:
                return worker.run_once() if ours else 0

        return step

    async def _poll_page(self, page_id: str, only: list[str] | None) -> None:
        with self.scheduled.run(f"poll:{page_id}"):
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
            if self._facebook_ok is False:  # a replaced token in the file is enough
                self.reloader.run_from_thread(timeout=SHUTDOWN_GRACE_SECONDS)
            began = time.monotonic()
            with self._graph_counted():
                report = self.poller.poll_page(page_id, only)
        log.info(
            "page.polled", page_id=page_id, seconds=round(time.monotonic() - began, 3),
            leads_new=report.leads_new, errors=len(report.errors),
        )  # fmt: skip
        return report

    async def _rescore_all(self) -> None:
        with self.scheduled.run("decay"):
            if await asyncio.to_thread(self.enqueuer.rescore_all):
                for job in self.delivery_jobs:
                    job.wake()

    # -- helpers -------------------------------------------------------------------------
    def _worker(self, dest) -> DeliveryWorker:  # noqa: ANN001
        worker = DeliveryWorker(
            self.store, dest.name, connectors.build(dest.type, dest.name, dest.settings),
            owner=self.owner,
            batch_size=self.settings.delivery.batch_size,
            dead_letter_after=self.settings.delivery.dead_letter_after,
        )  # fmt: skip
        worker.on_delivered = self._delivered
        worker.on_failed = self._delivery_failed
        return worker

    def _destination_stats(self) -> list[DestinationStats]:
        """Queue gauges for /metrics: none while the store has not opened (still a 200)."""
        return [] if self._pending_store() else self.store.destination_stats()

    def _pipeline_process(self) -> PipelineProcess:
        # The HTTP process tells its worker how often it restarted one before (0: the first).
        restarts = int(os.environ.get(RESTARTS_ENV, "0"))
        backlog = self._notification_backlog()
        worker = self.sockets is not None
        return PipelineProcess(os.getpid(), restarts, self.started_at, backlog, worker)

    def _notification_backlog(self) -> NotificationBacklog | None:
        """Notifications not yet fetched, the journal's too: none while the store has not opened."""
        if self._pending_store():
            return None
        stored = self.store.notification_backlog()
        if self.journal is None:
            return stored
        return stored.plus(*self.journal.backlog(self.store))

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

    def _stage_destinations(self) -> list[str]:
        return [w.name for w in self.workers if getattr(w.connector, "takes_stages", False)]

    def _stages_queued(self, destinations: Sequence[str]) -> None:
        for worker, job in zip(self.workers, self.delivery_jobs, strict=True):
            if worker.name in destinations:
                job.wake()

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
        if pending := self._pending_store():
            return store_unavailable(pending.problem)
        jobs = {j.name: j.alive for j in (self.fetch_job, self.score_job, *self.delivery_jobs)}
        return assess(
            self.store,
            jobs_alive=jobs,
            poll_interval=self.settings.facebook.poll_interval,
            started_at=self.started_at,
            polling=bool(self.settings.facebook.pages),
            backlog=self._notification_backlog,
        )
