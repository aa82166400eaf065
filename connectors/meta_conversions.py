"""Destination type `meta_conversions`: each lead's stages to Meta, for Conversion Leads.

Meta optimises lead ads for leads that go on to qualify and buy when a CRM
dataset tells it, through the Conversions API, how each lead moved: "Lead",
"Marketing Qualified Lead", "Sales Qualified Lead", "Converted". This
connector sends every stage of a lead once, in order: the lead itself (its
created time), the MQL stage when its score is an MQL and no mql stage is
recorded, and the stages on `ScoredLead.stages`. What was sent comes back from
the runner as `ScoredLead.external_id` ("lead,mql"), and the connector answers
the new set as `DeliveryResult.external_id`, so a later revision sends only the
new stages; a resend after a crash carries the same event ids, and Meta drops it.
A stage more than 7 days old (Meta refuses the whole request for one) or dated
before the lead is logged by lead id and recorded as e.g. "sql!expired", never
sent. `access_token` is required (a system-user token with access to the
dataset; `${VAR}` in the config reuses the one `facebook.access_token` reads).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from connectors.edge import deliver_in_parts, lead_ids_of, newest_revisions
from leadsync.abc import ConnectorBase
from leadsync.errors import BadLead
from leadsync.facebook.conversions import (
    DEFAULT_STAGE_NAMES,
    EVENTS_PER_REQUEST,
    ConversionsSender,
    stage_events,
    stage_rank,
)
from leadsync.models import EXPIRED_MARK, STAGES, DeliveryResult, LeadStage, ScoredLead

log = structlog.get_logger(__name__)
# The source of the stages the connector knows without the store: the lead, its MQL score.
OWN = "leadsync"

EXPIRED = EXPIRED_MARK
# Leads per request: each has at most one event per stage, so a request stays under 1,000.
LEADS_PER_REQUEST = EVENTS_PER_REQUEST // len(STAGES)
# Conversion Leads matches on the lead ad's id; anything else is refused by Meta.
FACEBOOK_LEAD_ID = re.compile(r"^\d{15,17}$")


class Settings(BaseModel):
    """The `[[destinations]]` keys of a `type = "meta_conversions"` destination."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    dataset_id: str
    access_token: SecretStr
    stages: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_STAGE_NAMES))
    graph_url: str = "https://graph.facebook.com"
    api_version: str = "v24.0"
    timeout: float = Field(30.0, gt=0)

    @field_validator("dataset_id")
    @classmethod
    def _digits(cls, value: str) -> str:
        if not value.isdigit():
            raise ValueError("must be the dataset id Events Manager shows (digits only)")
        return value

    @field_validator("access_token")
    @classmethod
    def _present(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("is empty; give a system-user token with access to the dataset")
        return value

    @field_validator("stages")
    @classmethod
    def _known_stages(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(STAGES))
        if unknown:
            raise ValueError(f"unknown stages {unknown}; use {', '.join(STAGES)}")
        return value


def build(name: str, settings: Settings) -> MetaConversionsConnector:
    return MetaConversionsConnector(name, settings)


def sent_stages(external_id: str) -> set[str]:
    """The stages an external id says were sent or given up as expired."""
    return {part.removesuffix(EXPIRED) for part in external_id.split(",") if part}


def record(previous: str, sent: Sequence[LeadStage], expired: Sequence[LeadStage]) -> str:
    """The new external id: what was recorded before, plus what was sent or expired now."""
    parts = {p.removesuffix(EXPIRED): p for p in previous.split(",") if p}
    parts |= {s.stage: s.stage for s in sent} | {s.stage: s.stage + EXPIRED for s in expired}
    return ",".join(parts[stage] for stage in sorted(parts, key=stage_rank))


def stages_of(scored: ScoredLead, now: datetime) -> list[LeadStage]:
    """The lead's stages: its own "lead", "mql" from the score, and the recorded ones."""
    recorded = list(scored.stages)
    lead = scored.lead
    own: list[LeadStage] = [LeadStage(lead.id, "lead", lead.created_time, source=OWN)]
    if scored.score.mql and not any(s.stage == "mql" for s in recorded):
        own.append(LeadStage(lead.id, "mql", max(now, lead.created_time), source=OWN))
    names = {s.stage for s in recorded}
    return [s for s in own if s.stage not in names] + recorded


class MetaConversionsConnector(ConnectorBase):
    """Sends lead stages to one CRM dataset; remembers them through the external id."""

    takes_stages = True

    def __init__(
        self,
        name: str,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.name = name
        self.settings = settings
        self._clock = clock
        self._sender = ConversionsSender(
            dataset_id=settings.dataset_id,
            access_token=settings.access_token.get_secret_value(),
            api_version=settings.api_version,
            graph_url=settings.graph_url,
            timeout=settings.timeout,
        )

    def ensure_ready(self) -> None:
        """Nothing to prepare: the dataset is made in Events Manager (see the README)."""

    def deliver(self, batch: Sequence[ScoredLead]) -> list[DeliveryResult]:
        leads = newest_revisions(batch)
        parts = [
            leads[start : start + LEADS_PER_REQUEST]
            for start in range(0, len(leads), LEADS_PER_REQUEST)
        ]
        return deliver_in_parts(parts, self._send, lead_ids_of)

    def _send(self, part: Sequence[ScoredLead]) -> list[DeliveryResult]:
        now = self._clock()
        events: list[dict[str, Any]] = []
        results: list[DeliveryResult] = []
        for scored in part:
            result, new = self._plan(scored, now)
            results.append(result)
            events.extend(new)
        if events:
            self._sender.send(events)
            log.info("conversions.sent", destination=self.name, events=len(events))
        return results

    def _plan(self, scored: ScoredLead, now: datetime) -> tuple[DeliveryResult, list[Any]]:
        """This lead's result if the request goes through, and the events it needs."""
        lead_id = scored.lead.id
        if not FACEBOOK_LEAD_ID.match(lead_id):
            error = BadLead(f"lead {lead_id} has no Facebook lead id; Meta matches on it")
            return DeliveryResult(lead_id, error=error), []
        done = sent_stages(scored.external_id)
        pending = [s for s in stages_of(scored, now) if s.stage not in done]
        names: Mapping[str, str] = self.settings.stages
        events, expired = stage_events(scored.lead, pending, names, now)
        for stage in expired:
            log.warning(
                "conversions.stage_expired",
                destination=self.name,
                lead_id=lead_id,
                stage=stage.stage,
                reached_at=stage.reached_at.isoformat(),
            )
        sent = [s for s in pending if s.stage in names and s not in expired]
        external_id = record(scored.external_id, sent, expired)
        return DeliveryResult(lead_id, external_id=external_id), events

    def close(self) -> None:
        self._sender.close()
