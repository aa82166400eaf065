"""The safety net: reads every form's new leads from Graph, so a missed webhook loses nothing.

Per page it discovers forms (a form created while the daemon runs is picked
up on the next round; archived forms are skipped), then per form reads the
leads created after its checkpoint minus an overlap window, following
`paging.next` itself. Graph lists newest first, so a round that fails half
way has stored the newest leads but maybe not older ones: the checkpoint
therefore moves only after a form's whole read succeeded, and only to the
newest lead already committed. `leadsync backfill` uses the same read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import structlog

from leadsync.abc import Store
from leadsync.constants import GRAPH_USAGE_SLOWDOWN_PERCENT, POLL_OVERLAP
from leadsync.errors import AuthError, LeadsyncError, RateLimited
from leadsync.facebook.graph import GraphClient
from leadsync.models import Form, Lead, ServiceStatus, utcnow

log = structlog.get_logger(__name__)

# A form polled for the first time is read this far back; older history is `backfill`'s job.
FIRST_POLL_LOOKBACK = timedelta(days=1)


@dataclass
class PollReport:
    """What one round did, for logs, `backfill` and tests."""

    forms: int = 0
    leads_seen: int = 0
    leads_new: int = 0
    new_lead_ids: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    auth_failed: bool = False


Progress = Callable[[str, int], None]  # (form id, leads seen so far in this form)


class Poller:
    """Polls pages and forms; one instance per daemon (or per `backfill` run)."""

    def __init__(self, store: Store, graph: GraphClient):
        self._store = store
        self._graph = graph
        self.resume_at: datetime | None = None  # set while Graph asks us to wait

    def discover(self, page_id: str, only: list[str] | None = None) -> list[Form]:
        """The page's active forms (restricted to `only` when given), saved to the store."""
        forms = self._graph.list_forms(page_id)
        self._store.save_forms(forms)
        return [f for f in forms if f.status == "ACTIVE" and (only is None or f.id in only)]

    def poll_page(self, page_id: str, only: list[str] | None = None) -> PollReport:
        """One round over a page's forms, least recently polled first."""
        report = PollReport()
        if self.resume_at and utcnow() < self.resume_at:
            return report
        try:
            forms = self.discover(page_id, only)
        except LeadsyncError as exc:
            self._failed(f"page:{page_id}", exc, report)
            return report
        polled = {c.form_id: c.polled_at for c in self._store.checkpoints()}
        forms.sort(key=lambda f: polled.get(f.id) or datetime.min.replace(tzinfo=utcnow().tzinfo))
        for form in forms:
            if not self.poll_form(form, report=report):
                break
            # Near Graph's limit: one form per round (the least recently polled) until usage falls.
            if self._graph.usage_percent >= GRAPH_USAGE_SLOWDOWN_PERCENT:
                log.warning("poll.slowed_down", page_id=page_id, usage=self._graph.usage_percent)
                break
        self._store.set_status(ServiceStatus("poller", True, f"page {page_id} polled", utcnow()))
        return report

    def poll_form(
        self,
        form: Form,
        *,
        since: datetime | None = None,
        report: PollReport | None = None,
        progress: Progress | None = None,
    ) -> bool:
        """Reads the form's leads after `since` (default: checkpoint - overlap); False on error."""
        report = report if report is not None else PollReport()
        report.forms += 1
        since = since or self._default_since(form.id)
        newest: datetime | None = None
        seen = 0
        try:
            for page in self._graph.iter_form_leads(form.id, form.page_id, since):
                newest = self._store_page(form, page, newest, report)
                seen += len(page)
                if progress:
                    progress(form.id, seen)
        except LeadsyncError as exc:
            self._failed(form.id, exc, report)
            return False
        if newest is not None:
            self._store.advance_checkpoint(form.id, newest)
        self._store.record_poll(form.id)
        log.info("poll.finished", form_id=form.id, leads_seen=seen)
        return True

    def _store_page(
        self, form: Form, page: list[Lead], newest: datetime | None, report: PollReport
    ) -> datetime | None:
        leads = [replace(lead, form_name=lead.form_name or form.name) for lead in page]
        new_ids = self._store.save_leads(leads)
        report.leads_seen += len(leads)
        report.leads_new += len(new_ids)
        report.new_lead_ids.extend(new_ids)
        if new_ids:  # one event per page of leads: per-lead events cost more than the work
            log.info("leads.stored", lead_ids=new_ids, form_id=form.id, source="poll")
        times = [lead.created_time for lead in leads]
        return max([newest, *times] if newest else times, default=newest)

    def _default_since(self, form_id: str) -> datetime:
        checkpoint = self._store.checkpoint(form_id).last_created_time
        return checkpoint - POLL_OVERLAP if checkpoint else utcnow() - FIRST_POLL_LOOKBACK

    def _failed(self, where: str, exc: LeadsyncError, report: PollReport) -> None:
        report.errors[where] = str(exc)
        if isinstance(exc, RateLimited):
            self.resume_at = utcnow() + timedelta(seconds=exc.retry_after)
        if not where.startswith("page:"):
            self._store.record_poll(where, str(exc))
        if isinstance(exc, AuthError):
            report.auth_failed = True
            self._store.set_status(ServiceStatus("facebook", False, str(exc), utcnow()))
        log.warning("poll.failed", where=where, kind=type(exc).__name__, error=str(exc))
