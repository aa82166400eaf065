"""Stage routing: a newly recorded stage queues a delivery to destinations that take stages.

Outcome readers (Sheets, HubSpot) and `POST /events` record stages through a
`StageRouter` rather than the store directly. It asks the store to record them
together with a new revision and outbox items for the destinations whose
connector says `takes_stages` (Meta's Conversions API), in one transaction, and
then wakes those destinations' delivery jobs, so "won" reaches Meta within a
delivery round instead of with the lead's next score change. The store never
imports connectors: the router hands it their names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from leadsync.abc import OutcomeStore
from leadsync.models import LeadStage


class StageRecorder(Protocol):
    """What readers and the events route call to record stages (a store or a router)."""

    def record_stages(self, stages: Sequence[LeadStage]) -> list[LeadStage]: ...


class StageRouter:
    """Records stages and queues them for the destinations that take stages."""

    def __init__(
        self,
        store: OutcomeStore,
        destinations: Callable[[], Sequence[str]],
        queued: Callable[[Sequence[str]], None] = lambda _names: None,
    ):
        self._store = store
        self._destinations = destinations  # read per call: a reload may change them
        self._queued = queued

    def record_stages(self, stages: Sequence[LeadStage]) -> list[LeadStage]:
        names = list(self._destinations())
        new = self._store.record_stages(stages, destinations=names)
        if new and names:
            self._queued(names)
        return new
