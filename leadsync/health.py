"""Decides whether the daemon is healthy, and says why not.

`/healthz`, `leadsync status` and the status page all read this one verdict.
Each reason is a short stable code a person can look up in the README's
Operations section, followed by the detail (which token, which destination).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from leadsync.abc import Store
from leadsync.models import NotificationBacklog, utcnow

# Polling counts as stalled after this many missed intervals.
STALLED_AFTER_INTERVALS = 3
# A failing destination whose oldest waiting lead is this old needs a person: speed to lead is
# counted in minutes (contact within 5 minutes vs 30 makes the difference).
DELIVERY_STALLED_AFTER = timedelta(minutes=15)
# A notification is fetched within a second or two; one still waiting after this has outlived
# Graph hiccups (retried every 15 s) and short throttles (60 s), so Facebook is down, is
# throttling us for long, or cannot show the lead: a person should look, and speed to lead is
# slipping (contact within 5 minutes vs 30).
INGEST_BACKLOG_OLD_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class HealthReport:
    ok: bool
    reasons: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {"status": "ok" if self.ok else "unhealthy", "reasons": self.reasons}


def store_unavailable(problem: str) -> HealthReport:
    """The verdict while the daemon waits for its store to open (it serves nothing else yet)."""
    return HealthReport(False, [f"store_unavailable: {problem}"])


def assess(
    store: Store,
    *,
    jobs_alive: Mapping[str, bool],
    poll_interval: timedelta,
    started_at: datetime,
    polling: bool = True,
    backlog: Callable[[], NotificationBacklog] | None = None,
) -> HealthReport:
    """The daemon's health now: store writable, jobs alive, token valid, leads and queues moving.

    `backlog` counts the notifications not yet fetched (the store's, when not given).
    """
    reasons: list[str] = []
    try:
        store.ping()
    except Exception as exc:  # noqa: BLE001 - any failure to write means unhealthy, with why
        return HealthReport(False, [f"store_not_writable: {exc}"])
    reasons += [f"job_dead: {name}" for name, alive in jobs_alive.items() if not alive]
    now = utcnow()
    statuses = {s.service: s for s in store.statuses()}
    facebook = statuses.get("facebook")
    if facebook and not facebook.ok:
        reasons.append(f"facebook_token_invalid: {facebook.message}")
    else:
        # A refused token holds back every notification; its reason already says what to do,
        # and a second one would send the reader looking for a second fault. A backlog still
        # old once the token works is reported then.
        reasons += ingest_backlog((backlog or store.notification_backlog)(), now)
    queues = {s.destination: s for s in store.destination_stats()}
    for service, status in statuses.items():
        name = service.removeprefix("destination:")
        queue = queues.get(name)
        if not service.startswith("destination:") or status.ok or queue is None:
            continue
        if queue.dead:
            reasons.append(f"destination_dead_lettering: {name}: {status.message}")
        elif queue.oldest_pending and now - queue.oldest_pending > DELIVERY_STALLED_AFTER:
            since = queue.oldest_pending.isoformat(timespec="seconds")
            reasons.append(f"destination_stalled: {name}: waiting since {since}: {status.message}")
    poller = statuses.get("poller")
    last_poll = poller.at if poller and poller.at else started_at
    if polling and now - last_poll > poll_interval * STALLED_AFTER_INTERVALS:
        reasons.append(f"polling_stalled: last poll at {last_poll.isoformat()}")
    return HealthReport(not reasons, reasons)


def ingest_backlog(backlog: NotificationBacklog, now: datetime) -> list[str]:
    """The reason for notifications that have waited too long to be fetched, if any have."""
    oldest = backlog.oldest_received_at
    if oldest is None or now - oldest <= INGEST_BACKLOG_OLD_AFTER:
        return []
    count = f"{backlog.waiting} notification{'s' if backlog.waiting != 1 else ''}"
    return [f"ingest_backlog_old: {count} waiting since {oldest.isoformat(timespec='seconds')}"]
