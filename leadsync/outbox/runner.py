"""Drains the outbox of one destination: batching, retries, backoff, dead letter.

One `DeliveryWorker` per destination claims due items in a batch, hands the
newest revision of each lead to the connector once, and settles every item
by what happened: delivered; retried later (backoff from tenacity's
exponential-with-jitter strategy, or the wait a rate limit asked for); or
moved to the dead letter when it is permanent or has kept failing past the
maximum age. A broken destination only delays its own queue, and only while
it is broken: the waits are capped at a minute, and the first batch it takes
again sends at once every item still waiting out a wait from its outage.
Connectors keep no retry logic of their own; they upsert by lead id, so
redelivering after a crash never makes a second row.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import structlog
from tenacity import RetryCallState, wait_random_exponential

from leadsync.abc import Connector, Store
from leadsync.constants import OUTBOX_CLAIM_LEASE
from leadsync.errors import AuthError, LeadsyncError, PermanentError, RateLimited
from leadsync.models import DeliveryResult, OutboxItem, ScoredLead, ServiceStatus, utcnow

log = structlog.get_logger(__name__)

# Full-jitter exponential backoff: a random wait up to 2 s, 4 s, 8 s ... capped at one minute,
# so many failed items do not retry in step, and the rows of a long outage land within a minute
# of its end (speed to lead), for the price of one retried batch a minute while it lasts.
BACKOFF = wait_random_exponential(multiplier=2, max=60)
# Longest wait for a connector's pace before claiming (a shutdown waits for it too).
MAX_PACE_WAIT = 3.0
# A revoked credential is retried this often, so delivery resumes soon after it is replaced.
AUTH_RETRY = timedelta(seconds=30)


def backoff_after(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed attempt."""
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = max(1, attempts)
    return timedelta(seconds=BACKOFF(state))


class DeliveryWorker:
    """Delivers one destination's outbox; `run_once` is called from a worker thread."""

    def __init__(
        self,
        store: Store,
        name: str,
        connector: Connector,
        *,
        owner: str,
        batch_size: int = 500,
        dead_letter_after: timedelta = timedelta(hours=24),
    ):
        self._store = store
        self.name = name
        self._connector = connector
        self._owner = owner
        # A batch is settled when `deliver` returns, so a crash sends it again whole: a
        # connector whose sends cannot be taken back asks for small ones (`max_batch`).
        self._batch_size = min(batch_size, getattr(connector, "max_batch", None) or batch_size)
        self._dead_letter_after = dead_letter_after
        self._ready = False
        self._waiting: set[int] = set()  # items put off because the whole destination failed
        self.paused_until: datetime | None = None
        self.delivered = 0
        self.on_delivered: Callable[[str, Sequence[ScoredLead]], None] | None = None
        self.on_failed: Callable[[str, Exception], None] | None = None

    def run_once(self) -> int:
        """Claims and delivers one batch; returns how many items were settled."""
        if self.paused_until and utcnow() < self.paused_until:
            return 0
        self._wait_for_pace()
        items = self._store.claim(self.name, self._batch_size, self._owner, OUTBOX_CLAIM_LEASE)
        if not items:
            return 0
        try:
            batch = self._load(items)
            if not self._ready:
                self._connector.ensure_ready()
                self._ready = True
            results = self._connector.deliver(batch)
        except LeadsyncError as exc:
            self._fail(items, exc, whole_batch=True)
            return len(items)
        except Exception as exc:  # noqa: BLE001 - an unknown bug must delay leads, never drop them
            log.exception("delivery.crashed", destination=self.name, items=len(items))
            self._fail(items, exc, whole_batch=True)
            return len(items)
        self._settle(items, results)
        self._send_waiting()
        self._report(ok=True, message=f"delivered {len(results)} leads")
        if self.on_delivered:
            ok = {r.lead_id for r in results if r.ok}
            self.on_delivered(self.name, [s for s in batch if s.lead.id in ok])
        return len(items)

    def _wait_for_pace(self) -> None:
        """Waits out the connector's own request budget *before* claiming.

        A connector that paces its requests (Sheets: about one write a second past a burst)
        would otherwise wait inside deliver() while new leads arrive and miss the batch in
        hand; waiting first lets the claim take everything that came meanwhile.
        """
        time.sleep(min(self._connector.ready_in(), MAX_PACE_WAIT))

    @property
    def connector(self) -> Connector:
        return self._connector

    def close(self) -> None:
        """Closes the connector (its sessions); a failure is logged, the shutdown goes on."""
        try:
            self._connector.close()
        except Exception:  # noqa: BLE001 - one connector's bug must not keep the store open
            log.exception("connector.close_failed", destination=self.name)

    def _load(self, items: Sequence[OutboxItem]) -> list[ScoredLead]:
        ids = list(dict.fromkeys(item.lead_id for item in items))
        leads = self._store.get_leads(ids)
        scores = self._store.current_scores(ids)
        receipts = self._store.external_ids(self.name, ids)
        stages = self._store.stages_for(ids)
        owners, contacts = self._store.assignments(ids), self._store.contacts(ids)
        return [
            ScoredLead(
                leads[i],
                *scores[i],
                external_id=receipts.get(i, ""),
                stages=tuple(stages.get(i, ())),
                owner=owners.get(i),
                contact=contacts.get(i),
            )
            for i in ids
            if i in leads and i in scores
        ]

    def _settle(self, items: Sequence[OutboxItem], results: Sequence[DeliveryResult]) -> None:
        by_lead = {result.lead_id: result for result in results}
        done = [item for item in items if item.lead_id in by_lead and by_lead[item.lead_id].ok]
        if done:
            self._store.complete(done, [r for r in results if r.ok])
            delivered = sorted({item.lead_id for item in done})
            self.delivered += len(delivered)
            log.info("leads.delivered", lead_ids=delivered, destination=self.name)
        for item in items:
            result = by_lead.get(item.lead_id)
            if result is None:
                self._fail(
                    [item], PermanentError(f"connector returned no result for {item.lead_id}")
                )
            elif result.error is not None:
                self._fail([item], result.error)

    def _send_waiting(self) -> None:
        """The destination took a batch again: what waits out its outage's backoff goes now."""
        if not self._waiting:
            return
        ids, self._waiting = sorted(self._waiting), set()
        # Items delivered meanwhile are not pending any more; the store leaves them alone.
        self._store.retry(ids, "sent again: the destination took a later batch", utcnow())
        log.info("delivery.resumed", destination=self.name, items=len(ids))

    def _fail(
        self, items: Sequence[OutboxItem], exc: Exception, *, whole_batch: bool = False
    ) -> None:
        if self.on_failed:
            self.on_failed(self.name, exc)
        error = f"{type(exc).__name__}: {exc}"
        now = utcnow()
        ids = [item.id for item in items]
        if isinstance(exc, PermanentError):
            self._bury(ids, error)
            self._report(ok=False, message=error)
            return
        expired = [
            i.id for i in items if i.created_at and now - i.created_at > self._dead_letter_after
        ]
        if expired:
            self._bury(expired, f"gave up after {self._dead_letter_after}: {error}")
        retry = [i for i in ids if i not in set(expired)]
        wait = self._wait_for(exc, max((item.attempts for item in items), default=0) + 1)
        if retry:
            self._store.retry(retry, error, now + wait)
        if whole_batch and not isinstance(exc, RateLimited):
            # The destination failed, not a lead; a rate limit's wait is the service's to set.
            self._waiting.update(retry)
        log.warning(
            "delivery.failed",
            destination=self.name,
            items=len(ids),
            retry_in_s=round(wait.total_seconds(), 1),
            error=error,
        )
        self._report(ok=False, message=error)

    def _wait_for(self, exc: Exception, attempts: int) -> timedelta:
        if isinstance(exc, RateLimited):
            wait = timedelta(seconds=exc.retry_after)
            self.paused_until = utcnow() + wait
            return wait
        if isinstance(exc, AuthError):
            self._ready = False
            self.paused_until = utcnow() + AUTH_RETRY
            return AUTH_RETRY
        return backoff_after(attempts)

    def _bury(self, ids: Sequence[int], error: str) -> None:
        self._store.bury(ids, error)
        log.error("delivery.dead_lettered", destination=self.name, items=len(ids), error=error)

    def _report(self, *, ok: bool, message: str) -> None:
        self._store.set_status(ServiceStatus(f"destination:{self.name}", ok, message, utcnow()))
