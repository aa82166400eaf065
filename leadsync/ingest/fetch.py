"""Resolves stored notifications into full leads with Graph batch requests.

A webhook only tells us that lead 123 exists; its answers, ad and campaign
come from Graph. This step claims pending notifications in the store (so
replicas sharing a database each fetch different ones), fetches them in
batch calls of up to 50, names their forms, and stores the leads (the store
deduplicates by lead id, whatever path a lead came by). A lead is filed
under its form's page as Graph gives it, and a lead of a page or form that is
not configured is dropped, never stored (see `ingest/scope.py`). A failure of
Facebook defers the notifications; it never drops them. Only a lead Graph
says does not exist, or one that is not ours, is dropped, with the reason kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import timedelta

import structlog

from leadsync.abc import Store
from leadsync.constants import NOTIFICATION_CLAIM_LEASE
from leadsync.errors import AuthError, BadLead, LeadsyncError, PermanentError, RateLimited
from leadsync.facebook.graph import GraphClient
from leadsync.ingest.scope import PageScope
from leadsync.models import Form, Lead, Notification, utcnow

log = structlog.get_logger(__name__)

# How many notifications one fetch round takes: four full Graph batch calls.
FETCH_ROUND = 200
# A transient Graph failure is retried after this long; throttling says its own wait.
FETCH_RETRY = timedelta(seconds=15)
# A token problem is retried this often, so leads flow again soon after the token is replaced.
AUTH_RETRY = timedelta(seconds=10)


class FormNames:
    """Forms by id (name and page), from the store, asking Graph once for a form we do not know.

    A form learnt from Graph is saved only when it is in scope: forms of other clients'
    pages do not belong on our status page.
    """

    def __init__(self, store: Store, graph: GraphClient, scope: PageScope):
        self._store = store
        self._graph = graph
        self.scope = scope
        self._forms: dict[str, Form] = {}
        self.unreadable: dict[str, str] = {}  # form id -> why Graph will never tell its page

    def forms_of(self, form_ids: Iterable[str]) -> dict[str, Form]:
        """The forms among `form_ids` whose page is known; the others could not be read now."""
        wanted = {form_id for form_id in form_ids if form_id}
        if wanted - self._forms.keys():
            self._forms.update({f.id: f for f in self._store.forms() if f.page_id})
        for form_id in wanted - self._forms.keys():
            self._learn(form_id)
        return {form_id: self._forms[form_id] for form_id in wanted if form_id in self._forms}

    def _learn(self, form_id: str) -> None:
        try:
            form = self._graph.get_form(form_id)
        except (BadLead, PermanentError) as exc:
            # Not visible to our token, or gone: whose page it is cannot ever be known.
            log.warning("form.unreadable", form_id=form_id, error=str(exc))
            self.unreadable[form_id] = str(exc)
            return
        except LeadsyncError as exc:
            # Its leads wait: whose page they are on is what decides whether they are ours.
            log.warning("form.unknown", form_id=form_id, error=str(exc))
            return
        if not form.page_id:
            log.warning("form.page_unknown", form_id=form_id)
            return
        if self.scope.takes(form.page_id, form.id):
            self._store.save_forms([form])
        self._forms[form_id] = form


class LeadFetcher:
    """One fetch round at a time: pending notifications in, stored leads out.

    `owner` names this process in the store's claims (`leadsync.leases.new_owner`).
    """

    def __init__(self, store: Store, graph: GraphClient, scope: PageScope, *, owner: str):
        self._store = store
        self._owner = owner
        self._graph = graph
        self._forms = FormNames(store, graph, scope)  # holds the scope for both

    def set_scope(self, scope: PageScope) -> None:
        """Takes the pages and forms of a reloaded config from the next round on."""
        self._forms.scope = scope

    def run_once(self, limit: int = FETCH_ROUND) -> list[str]:
        """Fetches up to `limit` pending notifications; returns the ids of newly stored leads.

        Each notification claimed is stored, dropped or deferred before the round ends,
        which ends its claim. Raises AuthError after deferring the round, so the caller
        can report it.
        """
        notes = self._store.claim_notifications(self._owner, limit, NOTIFICATION_CLAIM_LEASE)
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
        stored = self._store.save_leads(self._ours(outcome.leads))
        if stored:  # one event per round: per-lead events cost more than the work
            log.info("leads.stored", lead_ids=stored, source="webhook")
        auth = [exc for exc in outcome.failed.values() if isinstance(exc, AuthError)]
        if auth and not stored:
            raise auth[0]  # a batch whose every item was refused for the token: report it
        return stored

    def _ours(self, leads: list[Lead]) -> list[Lead]:
        """The leads of configured pages and forms, filed under the page Graph gives their form.

        The webhook's page id is a claim; the lead's form (from Graph) and that form's page
        are the facts. Leads of other pages or excluded forms are dropped with the reason;
        leads whose form cannot be read now wait for the next round.
        """
        forms = self._forms.forms_of(lead.form_id for lead in leads)
        scope = self._forms.scope
        ours: list[Lead] = []
        unknown: list[str] = []
        for lead in leads:
            form = forms.get(lead.form_id)
            if not lead.form_id:
                log.warning("lead.dropped", lead_id=lead.id, error="Graph gave no form_id")
                self._store.drop_notification(lead.id, "Graph gave no form_id for the lead")
            elif lead.form_id in self._forms.unreadable:
                error = f"whose lead it is cannot be told: {self._forms.unreadable[lead.form_id]}"
                log.warning("lead.dropped", lead_id=lead.id, error=error)
                self._store.drop_notification(lead.id, error)
            elif form is None:
                unknown.append(lead.id)
            elif scope.takes(form.page_id, form.id):
                ours.append(replace(lead, page_id=form.page_id, form_name=form.name))
            else:
                reason = scope.why_not(form.page_id, form.id)
                log.info("lead.ignored", lead_id=lead.id, page_id=form.page_id, form_id=form.id)
                self._store.drop_notification(lead.id, f"not ours: {reason}")
        if unknown:
            error = "the lead's form could not be read from Graph; will retry"
            self._store.defer_notifications(unknown, error, utcnow() + FETCH_RETRY)
        return ours

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
