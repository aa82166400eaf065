"""Prometheus metrics of one daemon, on registries of its own.

A registry per daemon (not the global default) lets tests run several
daemons in one process and read each one's figures. Queue depth, dead
letters and the notifications waiting to be fetched are read from the store
at scrape time, so they are never stale. Under `leadsync run` the webhook
counters and the worker's state are the HTTP process's (`FrontMetrics`); the
worker renders the rest, and the HTTP process's `/metrics` is both, one after
the other (no name in common).
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from leadsync.models import DestinationStats, NotificationBacklog, utcnow
from leadsync.supervisor import WorkerState

# Lead created_time to delivered: speed to lead is minutes, so buckets span 0.5 s to 1 h.
LATENCY_BUCKETS = (0.5, 1, 2, 3, 5, 10, 30, 60, 300, 900, 3600)


class WebhookMetrics:
    """What the webhook route counts, on a registry of their own."""

    def __init__(self) -> None:
        self.webhook_registry = r = CollectorRegistry()
        self.notifications = Counter(
            "leadsync_webhook_notifications", "Webhook notifications committed", registry=r
        )
        self.notifications_ignored = Counter(
            "leadsync_webhook_notifications_ignored",
            "Webhook notifications of pages or forms not in [[facebook.pages]], acknowledged",
            registry=r,
        )
        self.webhooks_rejected = Counter(
            "leadsync_webhooks_rejected",
            "Webhook requests rejected, by reason",
            ["reason"],
            registry=r,
        )


class Metrics(WebhookMetrics):
    """Counters and histograms the daemon updates as it works.

    A worker (`webhook=False`) leaves the webhook counters out of `render`: the HTTP
    process counts webhooks and shows them.
    """

    def __init__(
        self,
        stats: Callable[[], list[DestinationStats]] | None = None,
        backlog: Callable[[], NotificationBacklog | None] | None = None,
        *,
        webhook: bool = True,
    ):
        super().__init__()
        self._webhook = webhook
        self.registry = CollectorRegistry()
        r = self.registry
        self.leads_ingested = Counter(
            "leadsync_leads_ingested", "Leads stored, by source", ["source"], registry=r
        )
        self.delivered = Counter(
            "leadsync_leads_delivered",
            "Leads delivered, by destination",
            ["destination"],
            registry=r,
        )
        self.delivery_failures = Counter(
            "leadsync_delivery_failures",
            "Failed delivery attempts",
            ["destination", "kind"],
            registry=r,
        )
        self.latency = Histogram(
            "leadsync_lead_latency_seconds",
            "From the lead's created_time to its delivery",
            ["destination"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.api_calls = Counter(
            "leadsync_api_calls", "Calls to outside APIs", ["service"], registry=r
        )
        self.throttles = Counter(
            "leadsync_api_throttles",
            "Rate-limit answers from outside APIs",
            ["service"],
            registry=r,
        )
        self.up = Gauge("leadsync_up", "1 while the daemon runs", registry=r)
        if stats:
            r.register(_QueueCollector(stats))
        if backlog:
            r.register(_BacklogCollector(backlog))

    def render(self) -> bytes:
        webhook = generate_latest(self.webhook_registry) if self._webhook else b""
        return webhook + generate_latest(self.registry)


class FrontMetrics(WebhookMetrics):
    """The HTTP process's own figures: webhooks, and whether its worker is up."""

    def __init__(self, worker: Callable[[], WorkerState]):
        super().__init__()
        self.webhook_registry.register(_WorkerCollector(worker))

    def render(self) -> bytes:
        return generate_latest(self.webhook_registry)


class _WorkerCollector:
    """The worker's state as the supervisor sees it, at scrape time."""

    def __init__(self, worker: Callable[[], WorkerState]):
        self._worker = worker

    def collect(self):  # noqa: ANN201 - prometheus-client's collector protocol
        state = self._worker()
        yield GaugeMetricFamily("leadsync_worker_up", "1 while the worker runs", state.alive)
        yield CounterMetricFamily(
            "leadsync_worker_restarts", "Times the worker process was restarted", state.restarts
        )


class _QueueCollector:
    """Queue depth and dead letters per destination, read from the store at scrape time."""

    def __init__(self, stats: Callable[[], list[DestinationStats]]):
        self._stats = stats

    def collect(self):  # noqa: ANN201 - prometheus-client's collector protocol
        depth = GaugeMetricFamily(
            "leadsync_queue_depth", "Pending outbox items", labels=["destination"]
        )
        dead = GaugeMetricFamily(
            "leadsync_dead_letters", "Dead-lettered items", labels=["destination"]
        )
        for s in self._stats():
            depth.add_metric([s.destination], s.pending)
            dead.add_metric([s.destination], s.dead)
        yield depth
        yield dead


class _BacklogCollector:
    """Notifications waiting to be fetched and the oldest one's age, read at scrape time.

    The age grows while Facebook is down or the token is refused (notifications are deferred,
    never dropped): it is the figure to alert on. No sample while the store has not opened
    (`backlog` gives None): a zero would claim that nothing waits.
    """

    def __init__(self, backlog: Callable[[], NotificationBacklog | None]):
        self._backlog = backlog

    def collect(self):  # noqa: ANN201 - prometheus-client's collector protocol
        waiting = GaugeMetricFamily(
            "leadsync_notifications_backlog", "Notifications not yet fetched from Graph"
        )
        age = GaugeMetricFamily(
            "leadsync_notifications_backlog_age_seconds",
            "Seconds since the oldest notification not yet fetched arrived (0: none waits)",
        )
        if (backlog := self._backlog()) is not None:
            oldest = backlog.oldest_received_at
            waiting.add_metric([], backlog.waiting)
            age.add_metric([], max(0.0, (utcnow() - oldest).total_seconds()) if oldest else 0.0)
        yield waiting
        yield age
