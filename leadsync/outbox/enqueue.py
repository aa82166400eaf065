"""Scores stored leads and puts what changed into the outbox.

This is where the pure scoring engine meets the store: it loads leads and
their events, asks the `Scorer`, routes each lead to its destinations and
saves scores and outbox items in one transaction. A lead's revision goes up
only when its score, MQL flag or reasons change, so re-scoring everything
(a rule change, the daily decay) updates only the rows that change.

Before a lead is first delivered it is given its contact and its owner: the
contact (normalised phone, person key, repeat of whom) is recorded before it
is scored, so a repeat's `repeat_submission` event counts in its first score;
the owner is assigned after, so an `only_mql` routing rule sees the score. A
lead is routed when it is first scored, and again only when a re-score makes it
an MQL (so turning routing on does not hand out every stored lead); once
assigned it keeps its owner.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime

import structlog

from leadsync.abc import SavedScores, ScoreUpdate, Store
from leadsync.config import DestinationSettings
from leadsync.contacts import contact_of
from leadsync.models import Contact, Lead, RouteRequest, Score, utcnow
from leadsync.routing import Router, RoutingSettings
from leadsync.scoring.engine import Scorer

log = structlog.get_logger(__name__)

RULES_VERSION_KEY = "rules_version"
RESCORE_PAGE = 1000

# How often a lead whose score went stale under us is scored again before giving up for now.
STALE_ROUNDS = 5


def destinations_for(
    lead: Lead, score: Score, already: set[str], destinations: Sequence[DestinationSettings]
) -> tuple[str, ...]:
    """The destinations that must hear about this score of this lead.

    A destination that already has the lead always hears of its changes (so
    an MQL that falls back is updated in place); otherwise it takes the lead
    when the lead's form is routed to it and, for `only_mql`, when it is an MQL.
    """
    chosen = []
    for dest in destinations:
        routed = dest.routes_form(lead.form_id) and (score.mql or not dest.only_mql)
        if dest.name in already or routed:
            chosen.append(dest.name)
    return tuple(chosen)


class Enqueuer:
    """Scores leads and enqueues their deliveries."""

    def __init__(
        self,
        store: Store,
        scorer: Scorer,
        destinations: Sequence[DestinationSettings],
        router: Router | None = None,
        default_region: str = "US",
    ):
        self._store = store
        self.scorer = scorer
        self._destinations = list(destinations)
        self.router = router or Router(RoutingSettings())
        self.default_region = default_region
        # One re-score at a time: each saves what it computed from its own read, so two at once
        # (an event's and the start-up or daily one) could save the older read last.
        self._one_at_a_time = threading.Lock()

    def reconfigure(
        self,
        scorer: Scorer,
        destinations: Sequence[DestinationSettings],
        router: Router | None = None,
        default_region: str | None = None,
    ) -> None:
        """New rules or routing (a reloaded config), from the next scoring round on."""
        with self._one_at_a_time:  # a round in hand finishes with the rules it began with
            self.scorer = scorer
            self._destinations = list(destinations)
            self.router = router or self.router
            self.default_region = default_region or self.default_region

    def score_new(self, limit: int = 500) -> int:
        """Scores leads that have no score yet; returns how many changed (were enqueued)."""
        ids = self._store.unscored_lead_ids(limit)
        return len(self.rescore(ids)) if ids else 0

    def rescore(self, lead_ids: Sequence[str], now: datetime | None = None) -> dict[str, int]:
        """Scores these leads now; returns the new revision of each lead whose score changed.

        A lead another replica re-scored between our read and our save comes
        back stale and is scored again from what is stored now.
        """
        changed: dict[str, int] = {}
        with self._one_at_a_time:
            for _ in range(STALE_ROUNDS):
                saved = self._score_once(lead_ids, now or utcnow())
                changed.update(saved)
                if not (lead_ids := sorted(saved.stale)):
                    break
            else:
                log.warning("leads.score_contended", lead_ids=lead_ids)
        if changed:
            log.info("leads.scored", revisions=changed)
        return changed

    def _score_once(self, lead_ids: Sequence[str], now: datetime) -> SavedScores:
        # The revision is read first: any score saved after this read makes ours stale.
        current = self._store.current_scores(lead_ids)
        revisions = {i: rev for i, (_, rev) in current.items()}
        leads = self._store.get_leads(lead_ids)
        contacts = self._record_contacts(leads)
        events = self._store.events_for(list(leads))  # after: a repeat's event counts now
        routed = self._store.routed_destinations(list(leads))
        updates, scores = [], {}
        for lead in leads.values():
            score = scores[lead.id] = self.scorer.score(lead, events.get(lead.id, []), now)
            chosen = destinations_for(lead, score, routed.get(lead.id, set()), self._destinations)
            updates.append(ScoreUpdate(lead.id, score, chosen, revisions.get(lead.id, 0)))
        # Before the first outbox item is saved; a lead scored before is routed only when it
        # becomes an MQL now (an only_mql rule), so turning routing on leaves history alone.
        due = {i: s for i, s in scores.items() if i not in current or s.mql > current[i][0].mql}
        self._assign_owners(leads, due, contacts)
        return self._store.save_scores(updates)

    def _record_contacts(self, leads: dict[str, Lead]) -> dict[str, Contact]:
        """Each lead's recorded contact; leads seen for the first time are recorded now."""
        known = self._store.contacts(list(leads))
        new = [lead for lead in leads.values() if lead.id not in known]
        if not new:
            return known
        new.sort(key=lambda lead: (lead.created_time, lead.id))  # the earlier lead is the first
        recorded = self._store.record_contacts([contact_of(n, self.default_region) for n in new])
        return known | recorded

    def _assign_owners(
        self, leads: dict[str, Lead], scores: dict[str, Score], contacts: dict[str, Contact]
    ) -> None:
        if not self.router.enabled:
            return
        if not scores:
            return
        assigned = self._store.assignments(list(scores))
        requests = []
        due = [leads[i] for i in scores if i not in assigned]
        for lead in sorted(due, key=lambda lead: (lead.created_time, lead.id)):
            key = contacts[lead.id].person_key if lead.id in contacts else ""
            pool = self.router.pool_for(lead, scores[lead.id])
            if pool is not None or key:
                requests.append(RouteRequest(lead.id, key, pool))
        if new := self._store.assign_owners(requests, self.router.owners):
            log.info("leads.assigned", owners={i: owner.name for i, owner in new.items()})

    def rescore_all(self, now: datetime | None = None) -> int:
        """Re-scores every stored lead (rule change, daily decay); returns how many changed."""
        changed, after = 0, ""
        while ids := self._store.lead_ids(after=after, limit=RESCORE_PAGE):
            changed += len(self.rescore(ids, now))
            after = ids[-1]
        self._store.set_meta(RULES_VERSION_KEY, self.scorer.version)
        log.info("leads.rescored", changed=changed, rules_version=self.scorer.version)
        return changed
