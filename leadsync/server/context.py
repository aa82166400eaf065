"""What the HTTP routes need from the running daemon, as one plain object."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aiohttp import web

from leadsync.abc import Store
from leadsync.config import Settings
from leadsync.health import HealthReport
from leadsync.ingest.group_commit import GroupCommitter
from leadsync.ingest.scope import PageScope
from leadsync.metrics import Metrics
from leadsync.outbox.stages import StageRecorder
from leadsync.status import PipelineProcess


@dataclass
class ServerContext:
    settings: Settings
    store: Store
    committer: GroupCommitter
    metrics: Metrics
    health: Callable[[], HealthReport]
    events_stored: Callable[[Sequence[str]], None]  # lead ids whose events changed
    accepting: bool = True
    stages: StageRecorder | None = None  # records outcome stages (the store when None)
    pipeline: Callable[[], PipelineProcess] | None = None  # shown on the status page
    _scope: tuple[Settings, PageScope] | None = field(default=None, repr=False)

    @property
    def scope(self) -> PageScope:
        """The configured pages and forms, built once per settings (a reload replaces them)
        rather than on every webhook."""
        if self._scope is None or self._scope[0] is not self.settings:
            self._scope = (self.settings, PageScope.of(self.settings.facebook.pages))
        return self._scope[1]


CONTEXT: web.AppKey[ServerContext] = web.AppKey("leadsync", ServerContext)
