"""A third-party-style destination type, `memory`, written the way a plugin author would.

It keeps records in process (`DESTINATIONS`, by the `destination` key) behind a small
"service" that counts requests, holds sessions open until they are closed and answers
with a status code, which the connector maps to leadsync's errors once, at its edge.
Tests register the module through the `leadsync.connectors` entry point (`register`)
so the daemon builds it the real way, and run it through `leadsync.testing`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import structlog
from pydantic import BaseModel, ConfigDict, SecretStr

from leadsync.abc import ConnectorBase
from leadsync.errors import AuthError, PermanentError, RateLimited, TransientError
from leadsync.models import DeliveryResult, ScoredLead
from leadsync.testing import Harness, Held

log = structlog.get_logger(__name__)

BATCH_LIMIT = 100
RETRY_AFTER = 4.0
STALL_SECONDS = 2.0


@dataclass
class MemoryService:
    """The destination: records per lead id, a request count, open sessions, one-shot faults."""

    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: int = 0
    sessions_opened: int = 0
    sessions_closed: int = 0
    fault: str = ""

    def answer(self) -> tuple[int, float]:
        """The status of the next request and how long it took (seconds)."""
        fault, self.fault = self.fault, ""
        return {
            "auth": (401, 0.0),
            "rate_limit": (429, 0.0),
            "server_error": (503, 0.0),
            "rejected": (422, 0.0),
            "timeout": (200, STALL_SECONDS),
        }.get(fault, (200, 0.0))


DESTINATIONS: dict[str, MemoryService] = {}


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    destination: str = "default"
    token: SecretStr = SecretStr("mem-token-0f4e2a9c")
    timeout: float = 5.0


def build(name: str, settings: Settings) -> MemoryConnector:
    return MemoryConnector(name, settings)


class MemoryConnector(ConnectorBase):
    """Upserts leads into a MemoryService by lead id, 100 a request."""

    def __init__(self, name: str, settings: Settings):
        self.name = name
        self.settings = settings
        self.service = DESTINATIONS.setdefault(settings.destination, MemoryService())
        self.service.sessions_opened += 1
        self._open = True

    def ensure_ready(self) -> None:
        """Nothing to prepare."""

    def deliver(self, batch: Sequence[ScoredLead]) -> list[DeliveryResult]:
        results = []
        for start in range(0, len(batch), BATCH_LIMIT):
            results += self._send(batch[start : start + BATCH_LIMIT])
        return results

    def close(self) -> None:
        if self._open:
            self._open = False
            self.service.sessions_closed += 1

    def _send(self, part: Sequence[ScoredLead]) -> list[DeliveryResult]:
        status, took = self.service.answer()
        if took > self.settings.timeout:
            raise TransientError(f"{self.name}: no answer within {self.settings.timeout}s")
        if status == 401:
            raise AuthError(f"{self.name}: token refused; replace it", service="memory")
        if status == 429:
            raise RateLimited(f"{self.name}: slow down", retry_after=RETRY_AFTER)
        if status >= 500:
            raise TransientError(f"{self.name}: service answered {status}")
        if status != 200:
            error = PermanentError(f"{self.name}: record refused ({status})")
            return [DeliveryResult(s.lead.id, error) for s in part]
        self.service.requests += 1
        for scored in part:
            self.store(scored)
        log.info("memory.upserted", destination=self.name, lead_ids=[s.lead.id for s in part])
        return [DeliveryResult(s.lead.id, external_id=s.lead.id) for s in part]

    def store(self, scored: ScoredLead) -> None:
        record = {"score": scored.score.points, "mql": scored.score.mql}
        self.service.records[scored.lead.id] = [record]  # upsert: one record per lead


class MemoryHarness(Harness):
    """The memory destination for `leadsync.testing.ConnectorContract`."""

    id = "memory"
    expected_wait = RETRY_AFTER

    def start(self) -> None:
        self.key = f"contract-{id(self)}"

    def stop(self) -> None:
        DESTINATIONS.pop(self.key, None)

    def build(self, **overrides: Any) -> MemoryConnector:
        return build("memory", Settings(destination=self.key, **overrides))

    @property
    def service(self) -> MemoryService:
        return DESTINATIONS.setdefault(self.key, MemoryService())

    def held(self, lead_id: str) -> Held:
        records = self.service.records.get(lead_id, [])
        if not records:
            return Held(0)
        return Held(len(records), records[-1]["score"], records[-1]["mql"])

    def delivery_requests(self) -> int:
        return self.service.requests

    def expected_requests(self, leads: int) -> int:
        return math.ceil(leads / BATCH_LIMIT)

    def inject(self, fault: str) -> None:
        self.service.fault = fault

    def secrets(self) -> list[str]:
        return [Settings().token.get_secret_value()]


def register(directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Installs `memory` as an entry-point destination type, as `pip install` would."""
    dist = directory / "leadsync_memory-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: leadsync-memory\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[leadsync.connectors]\nmemory = {__name__}\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(directory))
