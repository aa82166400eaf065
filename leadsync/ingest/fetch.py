"""Resolves stored notifications into full leads with Graph batch requests.

A webhook only tells us that lead 123 exists; its answers, ad and campaign
come from Graph. This step takes the pending notifications, fetches them in
batch calls of up to 50, names their forms, and stores the leads (the store
deduplicates by lead id, whatever path a lead came by). A failure of
Facebook defers the notifications; it never drops them. Only a lead Graph
says does not exist is dropped, with the reason kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import timedelta

import structlog

from leadsync.abc import Store
from leadsync.errors import AuthError, BadLead, LeadsyncError, RateLimited
from leadsync.facebook.graph import GraphClient
from leadsync.models import Lead, Notification, utcnow

log = structlog.get_logger(__name__)

# How many notifications one fetch round takes: four full Graph batch calls.
FETCH_ROUND = 200
# A transient Graph failure is retried after this long; throttling says its own wait.
FETCH_RETRY = timedelta(seconds=15)
# A token problem is retried this often, so leads flow again soon after the token is replaced.
AUTH_RETRY = timedelta(seconds=10)


class FormNames:
    """Form names by id, from the store, asking Graph once for a form we do not know."""

    def __init__(self, store: Store, graph: GraphClient):
        self._store = store
        self._graph = graph
        self._names: dict[str, str] = {}

    def name_leads(self, leads: Iterable[Lead]) -> list[Lead]:
        """The leads with their form_name filled in."""
        leads = list(leads)
        missing = {lead.form_id for lead in leads if lead.form_id not in self._names}
        if missing:
            self._names.update({f.id: f.name for f in self._store.forms()})
        for form_id in missing - self._names.keys():
            self._learn(form_id, page_id=next(x.page_id for x in leads if x.form_id == form_id))
        return [replace(lead, form_name=self._names.get(lead.form_id, "")) for lead in leads]

    def _learn(self, form_id: str, page_id: str) -> None:
        try:
            form = self._graph.get_form(form_id)
        except LeadsyncError as exc:
            # The row still lands; only its form_name stays empty until the poller names it.
            log.warning("form.name_unknown", form_id=form_id, error=str(exc))
            return
        self._store.save_forms([replace(form, page_id=form.page_id or page_id)])
        self._names[form_id] = form.name


class LeadFetcher:
    """One fetch round at a time: pending notifications in, stored leads out."""

    def __init__(self, store: Store, graph: GraphClient, forms: FormNames | None = None):
        self._store = store
        self._graph = graph
        self._forms = forms or FormNames(store, graph)

    def run_once(self, limit: int = FETCH_ROUND) -> list[str]:
        """Fetches up to `limit` pending notifications; returns the ids of newly stored leads.

        Raises AuthError after deferring the round, so the caller can report it.
        """
        notes = self._store.pending_notifications(limit)
        if not notes:
            return []
        ids = [note.lead_id for note in notes]
        try:
            outcome = self._graph.fetch_leads(notes)
        except AuthError as exc:
            self._store.defer_notifications(ids, str(exc), utcnow() + AUTH_RETRY)
            raise
        except RateLimited as exc:
            self._defer(notes, str(exc), timedelta(seconds=exc.retry_after))
            return []
        except LeadsyncError as exc:
            self._defer(notes, str(exc), FETCH_RETRY)
            return []
        self._settle_failures(outcome.failed)
        stored = self._store.save_leads(self._forms.name_leads(outcome.leads))
        if stored:  # one event per round: per-lead events cost more than the work
            log.info("leads.stored", lead_ids=stored, source="webhook")
        auth = [exc for exc in outcome.failed.values() if isinstance(exc, AuthError)]
        if auth and not stored:
            raise auth[0]  # a batch whose every item was refused for the token: report it
        return stored

    def _settle_failures(self, failed: dict[str, LeadsyncError]) -> None:
        retry = [lead_id for lead_id, exc in failed.items() if not isinstance(exc, BadLead)]
        auth = any(isinstance(exc, AuthError) for exc in failed.values())
        for lead_id, exc in failed.items():
            if isinstance(exc, BadLead):
                log.warning("lead.dropped", lead_id=lead_id, error=str(exc))
                self._store.drop_notification(lead_id, str(exc))
        if retry:
            wait = AUTH_RETRY if auth else FETCH_RETRY
            self._store.defer_notifications(retry, str(failed[retry[0]]), utcnow() + wait)

    def _defer(self, notes: list[Notification], error: str, wait: timedelta) -> None:
        log.warning(
            "leads.fetch_deferred", count=len(notes), retry_in_s=wait.total_seconds(), error=error
        )
        self._store.defer_notifications([n.lead_id for n in notes], error, utcnow() + wait)
