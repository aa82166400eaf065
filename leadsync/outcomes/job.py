"""Runs the outcome readers: one scheduled job per source, one replica reading each.

Every destination that records outcomes (a google_sheets one with an
`outcome_column`, a hubspot one unless its `lifecycle_stages` is empty and it
has no `lost_property`) gets a reader and a scheduler job
`outcomes:<destination>`, run at least as often as `facebook.poll_interval`
(and every minute when that is longer: a deal closed is news). A round runs in
a worker thread under the lease `outcomes:<destination>`, so with several
replicas one reads a source at a time and its in-memory view of the sheet
stays whole. A failed round is logged and recorded as the service status
`outcomes:<destination>`; the next round tries again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import structlog

from leadsync.abc import OutcomeReader, Store
from leadsync.errors import LeadsyncError
from leadsync.jobs import ScheduledRuns
from leadsync.leases import LeaseKeeper
from leadsync.models import ServiceStatus, utcnow
from leadsync.outbox.stages import StageRecorder

log = structlog.get_logger(__name__)

# Outcomes are read at least this often, and more often when facebook.poll_interval is shorter.
MAX_INTERVAL = timedelta(minutes=1)
JOB_PREFIX = "outcomes:"


def interval_for(poll_interval: timedelta) -> timedelta:
    return min(poll_interval, MAX_INTERVAL)


def build_readers(
    destinations: Sequence[Any],
    store: Store,
    connector_of: Callable[[str], object | None],
    recorder: StageRecorder | None = None,
) -> list[OutcomeReader]:
    """A reader for each destination that records outcomes (`connector_of`: its connector;
    `recorder`: what records the stages, the store itself by default)."""
    readers: list[OutcomeReader] = []
    for dest in destinations:
        if dest.type == "google_sheets" and dest.settings.outcome_column:
            from leadsync.outcomes.sheets import SheetsOutcomes  # gspread only when used

            budget = getattr(connector_of(dest.name), "read_budget", None)
            readers.append(
                SheetsOutcomes(dest.name, dest.settings, store, budget=budget, recorder=recorder)
            )
        elif dest.type == "hubspot" and dest.settings.reads_outcomes:
            from connectors.hubspot import HubSpotConnector
            from leadsync.outcomes.hubspot import HubSpotOutcomes

            # The connector's session and HubSpot's rate-limit window are shared with delivery.
            connector = connector_of(dest.name)
            shared = connector if isinstance(connector, HubSpotConnector) else None
            readers.append(
                HubSpotOutcomes(
                    dest.name, dest.settings, store, connector=shared, recorder=recorder
                )
            )
    return readers


class OutcomeJobs:
    """The outcome readers of one daemon and their scheduler jobs."""

    def __init__(self, store: Store, leases: LeaseKeeper, runs: ScheduledRuns):
        self._store = store
        self._leases = leases
        self._runs = runs
        self.readers: list[OutcomeReader] = []
        self._interval = MAX_INTERVAL
        self._failing: dict[str, str] = {}

    def schedule(self, scheduler: Any, readers: list[OutcomeReader], poll: timedelta) -> None:
        """Replaces the readers and their jobs; each new job reads once at once."""
        for job in scheduler.get_jobs():
            if job.id.startswith(JOB_PREFIX):
                job.remove()
        self.close()
        self.readers, self._interval = readers, interval_for(poll)
        for reader in readers:
            scheduler.add_job(
                self._run, "interval", seconds=self._interval.total_seconds(), args=[reader],
                id=JOB_PREFIX + reader.name, next_run_time=utcnow(), max_instances=1,
                coalesce=True,
            )  # fmt: skip

    def close(self) -> None:
        for reader in self.readers:
            try:
                reader.close()
            except Exception:  # noqa: BLE001 - one reader's bug must not stop a shutdown
                log.exception("outcomes.close_failed", destination=reader.name)
        self.readers = []

    async def _run(self, reader: OutcomeReader) -> None:
        with self._runs.run(JOB_PREFIX + reader.name):
            await asyncio.to_thread(self.read_if_ours, reader)

    def read_if_ours(self, reader: OutcomeReader) -> int | None:
        """One round when this replica holds the source's lease; new stages (None: not ours)."""
        with self._leases.hold(JOB_PREFIX + reader.name, self._interval * 2) as ours:
            if not ours:
                return None
            try:
                stages = reader.read()
            except LeadsyncError as exc:
                self._status(reader.name, str(exc))
                return 0
        self._status(reader.name, "")
        if stages:
            log.info(
                "outcomes.recorded", destination=reader.name, stages=len(stages),
                lead_ids=sorted({s.lead_id for s in stages}),
            )  # fmt: skip
        return len(stages)

    def _status(self, name: str, error: str) -> None:
        """Logs and records a change of a source's health (not every round's)."""
        if self._failing.get(name, "") == error:
            return
        self._failing[name] = error
        (log.warning if error else log.info)("outcomes.status", destination=name, error=error)
        self._store.set_status(ServiceStatus(JOB_PREFIX + name, not error, error, utcnow()))
