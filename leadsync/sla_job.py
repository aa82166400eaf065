"""The speed-to-lead job: every 30 s, one replica sends the reminders and escalations due.

A round runs under the lease `sla`, so one replica sends at a time. It reads the
MQLs no one has contacted yet (`Store.waiting_mqls`, the last LOOKBACK of them),
finds each one's rule (the routing rule that assigned its owner; for a repeat,
the first rule with the owner and a `speed_to_lead`), computes the due times in
the owner's working time (`leadsync/sla.py`), claims what is due and sends it
(`leadsync/sla_send.py`). A claim is committed before the send and the alert
marked sent after it, so a restart or another replica never sends it again; a
failed send is retried next round, one that cannot succeed (no address) is given
up and logged. The time comes from `clock`, so tests drive it without sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from leadsync.abc import Store
from leadsync.errors import LeadsyncError, PermanentError
from leadsync.jobs import ScheduledRuns
from leadsync.leases import LeaseKeeper
from leadsync.models import utcnow
from leadsync.sla import SlaAlert, WaitingMql, deadlines, due
from leadsync.sla_send import SlaSender

if TYPE_CHECKING:
    from leadsync.config import Settings
    from leadsync.routing import RoutingRuleSettings

log = structlog.get_logger(__name__)

JOB_ID = "sla"
INTERVAL = timedelta(seconds=30)
# MQLs older than this are no one's reminder any more (the status page still lists them).
LOOKBACK = timedelta(days=7)
# An alert due longer ago than this (the daemon was down, or the SLA is new) is not sent.
STALE_AFTER = timedelta(days=1)
CLAIM_LEASE = timedelta(minutes=2)


class SlaJob:
    """Sends the SLA alerts due; `schedule` (re)installs the job when a rule has an SLA."""

    def __init__(
        self,
        store: Store,
        leases: LeaseKeeper,
        runs: ScheduledRuns,
        settings: Settings,
        clock: Callable[[], datetime] = utcnow,
    ):
        self._store, self._leases, self._runs, self._clock = store, leases, runs, clock
        self.configure(settings)

    def configure(self, settings: Settings) -> None:
        self._rules = list(enumerate(settings.routing.rules))
        self._sender = SlaSender(settings)

    @property
    def enabled(self) -> bool:
        return any(rule.speed_to_lead for _, rule in self._rules)

    def schedule(self, scheduler: Any) -> None:
        if scheduler.get_job(JOB_ID):
            scheduler.remove_job(JOB_ID)
        if self.enabled:
            scheduler.add_job(
                self._run, "interval", seconds=INTERVAL.total_seconds(), id=JOB_ID,
                next_run_time=utcnow(), max_instances=1, coalesce=True,
            )  # fmt: skip

    async def _run(self) -> None:
        with self._runs.run(JOB_ID):
            await asyncio.to_thread(self.run_once)

    def run_once(self) -> int | None:
        """One round when this replica holds the lease: alerts sent (None: not ours)."""
        with self._leases.hold(JOB_ID, INTERVAL * 2) as ours:
            if not ours:
                return None
            now = self._clock()
            waiting = self._store.waiting_mqls(now - LOOKBACK, limit=5000)
            todo = [pair for mql in waiting for pair in self._due(mql, now)]
            mine = self._store.claim_sla_alerts(
                [a for a, _ in todo], self._leases.owner, CLAIM_LEASE
            )
            by_key = {(a.lead_id, a.kind): m for a, m in todo}
            return self._send(mine, by_key, now)

    def _due(self, mql: WaitingMql, now: datetime) -> list[tuple[SlaAlert, WaitingMql]]:
        rule = self._rule_of(mql)
        if rule is None or rule.speed_to_lead is None or mql.owner is None:
            return []
        times = deadlines(mql.mql_at, rule.speed_to_lead, mql.owner.hours)
        kinds = [
            k for k in due(times, None, now, mql.alerted) if k == "reminder" or rule.escalate_to
        ]
        return [
            (SlaAlert(mql.lead_id, k, times.of(k), self._sender.target(k, mql, rule)), mql)
            for k in kinds
        ]

    def _rule_of(self, mql: WaitingMql) -> RoutingRuleSettings | None:
        for index, rule in self._rules:
            if mql.rule == (rule.name or f"rules[{index}]"):
                return rule
        owner = mql.owner.name if mql.owner else ""
        return next((r for _, r in self._rules if r.speed_to_lead and owner in r.owners), None)

    def _send(self, alerts: list[SlaAlert], mqls: dict[Any, WaitingMql], now: datetime) -> int:
        leads = self._store.get_leads(sorted({a.lead_id for a in alerts})) if alerts else {}
        sent = 0
        for alert in alerts:
            try:
                if now - alert.due_at > STALE_AFTER:
                    raise PermanentError(f"due {alert.due_at:%Y-%m-%d %H:%M} UTC, too long ago")
                self._sender.send(
                    alert, mqls[(alert.lead_id, alert.kind)], leads.get(alert.lead_id), now
                )
            except LeadsyncError as exc:
                final = isinstance(exc, PermanentError)
                (log.warning if final else log.info)(
                    "sla.alert_failed", lead_id=alert.lead_id, kind=alert.kind,
                    error=str(exc), given_up=final,
                )  # fmt: skip
                self._store.settle_sla_alerts([], [alert], str(exc), give_up=final)
                continue
            self._store.settle_sla_alerts([alert])
            sent += 1
        return sent
