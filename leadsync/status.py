"""One snapshot of the daemon's state, read from the store.

`leadsync status`, `GET /` and tests read the same snapshot: queues per
destination, dead letters, last poll and error per form, service health and
the newest leads with their score and per-destination state, the lead
stages a destination gave up as too old to send, and the MQLs waiting for
first contact (speed to lead). It holds ids,
scores and states only, never a lead's answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from leadsync.abc import ExpiredStage, LeadOverview, Store
from leadsync.models import (
    Checkpoint,
    DeadLetter,
    DestinationStats,
    Form,
    NotificationBacklog,
    ServiceStatus,
    utcnow,
)
from leadsync.sla import WaitingMql

# MQLs waiting for first contact shown on the page: the oldest of the last week (the SLA job's).
WAITING_SINCE = timedelta(days=7)
WAITING_SHOWN = 50


@dataclass(frozen=True)
class PipelineProcess:
    """The process that fetches, scores and delivers: under `leadsync run`, the worker."""

    pid: int
    restarts: int  # how often the HTTP process restarted its worker before this one
    started_at: datetime
    backlog: NotificationBacklog | None  # notifications not yet fetched, the journal's too
    worker: bool = True  # False: the whole daemon in one process (`leadsync demo`, tests)


@dataclass(frozen=True)
class StatusSnapshot:
    destinations: list[DestinationStats]
    dead_letters: list[DeadLetter]
    forms: list[Form]
    checkpoints: dict[str, Checkpoint]
    services: list[ServiceStatus]
    recent: list[LeadOverview]
    leads: int
    # Stages a destination would not send (older than Meta's 7 days, or before the lead).
    expired: list[ExpiredStage] = field(default_factory=list)
    waiting: list[WaitingMql] = field(default_factory=list)  # oldest first, WAITING_SHOWN + 1


def snapshot(store: Store, recent: int = 50) -> StatusSnapshot:
    return StatusSnapshot(
        destinations=store.destination_stats(),
        dead_letters=store.dead_letters(),
        forms=store.forms(),
        checkpoints={c.form_id: c for c in store.checkpoints()},
        services=store.statuses(),
        recent=store.recent_leads(recent),
        leads=store.count_leads(),
        expired=store.expired_stages(),
        waiting=store.waiting_mqls(utcnow() - WAITING_SINCE, WAITING_SHOWN + 1) if recent else [],
    )
