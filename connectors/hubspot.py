"""Destination type `hubspot`: leads become HubSpot contacts, upserted in batches of 100.

A private-app token authenticates every call. On first use the connector
reads the portal's contact properties, creates ours when missing
(leadsync_lead_id, unique; leadsync_score, leadsync_mql,
leadsync_score_reasons, leadsync_form, leadsync_campaign) and checks that the
mapped properties exist (`check_ready` only reads and says what it would create).
Delivery is `POST /crm/v3/objects/contacts/batch/upsert`
keyed by email, or by leadsync_lead_id for a lead without one, so redelivery and
score changes update the same contact. HubSpot rejects a whole batch for one
bad value; the batch is then halved until the bad lead stands alone and is
dead-lettered by itself. 429s become RateLimited with the wait HubSpot's
Retry-After or X-HubSpot-RateLimit-* headers ask for, and once
X-HubSpot-RateLimit-Remaining reaches 0 the rest of a burst waits for the
window without asking (HubSpot counts refused calls against the app).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

import requests
import structlog
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from connectors.edge import (
    DEFAULT_RETRY_AFTER,
    HttpEdge,
    chunks,
    deliver_in_parts,
    newest_revisions,
    retry_after,
)
from connectors.hubspot_contact import (
    CUSTOM_NAMES,
    CUSTOM_PROPERTIES,
    DEFAULT_MAPPING,
    LEAD_ID,
    MQL_STAGE,
    ContactInput,
    contact_inputs,
    input_key,
)
from leadsync.abc import ConnectorBase
from leadsync.errors import ConfigError, PermanentError, Problem, RateLimited, TransientError
from leadsync.models import DeliveryResult, ScoredLead
from leadsync.outcomes.values import DEFAULT_LIFECYCLE_STAGES, stage_lookup

log = structlog.get_logger(__name__)

# HubSpot's batch endpoints take at most 100 inputs ("Batch upsert contacts").
BATCH_LIMIT = 100
# A 429 for the daily quota says nothing about when it resets (midnight in the portal's
# time zone, which we do not know); asking again hourly costs at most 24 refusals a day.
DAILY_LIMIT_WAIT = 3600.0
# A 429 for the per-second policy clears within the second.
SECONDLY_LIMIT_WAIT = 1.0
# Errors that no smaller batch would avoid: halving on them only multiplies requests.
_BATCH_WIDE = ("PROPERTY_DOESNT_EXIST", "READ_ONLY_VALUE", "non-unique", "exceeds the limit")
_PROPERTY_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_UPSERT = "/crm/v3/objects/contacts/batch/upsert"
_PROPERTIES = "/crm/v3/properties/contacts"
_SEARCH = "/crm/v3/objects/contacts/search"
_SCOPES_FIX = (
    "check the private app's token and its scopes crm.objects.contacts.read/write and "
    "crm.schemas.contacts.read/write, then run leadsync check"
)


class Settings(BaseModel):
    """The `[[destinations]]` keys of a `type = "hubspot"` destination."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: SecretStr
    api_url: str = "https://api.hubapi.com"
    lifecycle_stage_for_mql: bool = False
    properties: dict[str, str] = {}
    timeout: float = Field(30.0, gt=0)
    # Outcomes (read by leadsync/outcomes/hubspot.py, never written): lifecycle stages that
    # mean a leadsync stage, and an optional property whose values mean lost. {} = not read.
    lifecycle_stages: dict[str, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_LIFECYCLE_STAGES.items()}
    )
    lost_property: str = ""
    lost_values: list[str] = []

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL such as https://api.hubapi.com")
        return value.rstrip("/")

    @field_validator("properties")
    @classmethod
    def _internal_names(cls, value: dict[str, str]) -> dict[str, str]:
        bad = sorted(p for p in value.values() if p and not _PROPERTY_NAME.match(p))
        if bad:
            raise ValueError(f"{bad} are not HubSpot internal property names (like jobtitle)")
        return value

    @field_validator("lifecycle_stages")
    @classmethod
    def _stages(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        stage_lookup(value)  # raises with what is wrong
        return value

    @field_validator("lost_property")
    @classmethod
    def _lost_property(cls, value: str) -> str:
        if value and not _PROPERTY_NAME.match(value):
            raise ValueError(
                f"{value!r} is not a HubSpot internal property name (like hs_lead_status)"
            )
        return value

    @model_validator(mode="after")
    def _lost_together(self) -> Settings:
        if bool(self.lost_property) != bool(self.lost_values):
            raise ValueError("set lost_property and lost_values together (or neither)")
        return self

    @property
    def reads_outcomes(self) -> bool:
        return bool(self.lifecycle_stages or self.lost_property)

    @property
    def mapping(self) -> dict[str, str]:
        """Form question -> HubSpot property: the defaults, then ours; "" leaves one out."""
        merged = {**DEFAULT_MAPPING, **self.properties}
        return {question: name for question, name in merged.items() if name}


def build(name: str, settings: Settings) -> HubSpotConnector:
    return HubSpotConnector(name, settings)


class HubSpotConnector(ConnectorBase):
    """Upserts scored leads as HubSpot contacts."""

    def __init__(self, name: str, settings: Settings):
        self.name = name
        self.settings = settings
        self._edge = HttpEdge(
            "HubSpot",
            name,
            timeout=settings.timeout,
            headers={"Authorization": f"Bearer {settings.token.get_secret_value()}"},
            auth_fix=_SCOPES_FIX,
        )
        self._ready = False
        self._window_ends = 0.0  # monotonic time before which HubSpot's window is spent

    # -- preparing the portal ------------------------------------------------------
    def ensure_ready(self) -> None:
        """Creates our contact properties when missing and checks the mapped ones exist."""
        existing = self._read_properties()
        missing = [spec for spec in CUSTOM_PROPERTIES if spec["name"] not in existing]
        if missing:
            existing.update(self._create_properties(missing))
        problems = self._problems(existing)
        if problems:
            raise ConfigError(problems)
        self._ready = True

    def check_ready(self) -> list[str]:
        """What `ensure_ready` would create, without creating it; raises what would stop it.

        Read-only, for `leadsync check`: a missing leadsync property is a note (the
        daemon creates it), a missing mapped property or a bad token is an error.
        """
        existing = self._read_properties()
        missing = [spec["name"] for spec in CUSTOM_PROPERTIES if spec["name"] not in existing]
        will_be = {name: {"name": name, "hasUniqueValue": name == LEAD_ID} for name in missing}
        problems = self._problems(will_be | existing)
        if problems:
            raise ConfigError(problems)
        if not missing:
            return []
        return [f"the daemon will create the contact properties {', '.join(missing)}"]

    def _read_properties(self) -> dict[str, dict[str, Any]]:
        response = self._send("GET", _PROPERTIES)
        if response.status_code != 200:
            raise self._error(response)
        return {p["name"]: p for p in response.json().get("results", [])}

    def _create_properties(self, specs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Creates our missing properties in one request; one by one for any it did not make."""
        body = {"inputs": [{**spec, "groupName": "contactinformation"} for spec in specs]}
        response = self._send("POST", _PROPERTIES + "/batch/create", json=body)
        if response.status_code in (401, 403, 429) or response.status_code >= 500:
            raise self._error(response)
        made = _json(response).get("results", []) if response.status_code in (200, 201, 207) else []
        created = {p["name"]: p for p in made if isinstance(p, dict) and "name" in p}
        for spec in specs:
            if spec["name"] not in created:  # already there (another replica), or refused
                created[spec["name"]] = self._create_property(spec)
        log.info("hubspot_properties.created", destination=self.name, properties=sorted(created))
        return created

    def _create_property(self, spec: dict[str, Any]) -> dict[str, Any]:
        body = {**spec, "groupName": "contactinformation"}
        response = self._send("POST", _PROPERTIES, json=body)
        if response.status_code == 409:  # another replica made it a moment ago
            return body
        if response.status_code not in (200, 201):
            raise self._error(response)
        return response.json()

    def _problems(self, existing: dict[str, dict[str, Any]]) -> list[Problem]:
        path = f"destinations.{self.name}"
        problems = []
        if not existing[LEAD_ID].get("hasUniqueValue"):
            fix = "delete that property in HubSpot (Settings > Properties); leadsync re-creates it"
            problems.append(Problem(path, f"HubSpot property {LEAD_ID} is not unique", fix))
        for question, prop in self.settings.mapping.items():
            if prop not in existing:
                fix = "create it in HubSpot or map the question to an existing property"
                message = f"HubSpot has no contact property {prop!r}"
                problems.append(Problem(f"{path}.properties.{question}", message, fix))
        stages = [o.get("value") for o in existing.get("lifecyclestage", {}).get("options", [])]
        if self.settings.lifecycle_stage_for_mql and MQL_STAGE not in stages:
            fix = "add that lifecycle stage in HubSpot or set lifecycle_stage_for_mql = false"
            problems.append(Problem(f"{path}.lifecycle_stage_for_mql", f"no {MQL_STAGE!r}", fix))
        return problems

    # -- delivering ----------------------------------------------------------------
    def deliver(self, batch: Sequence[ScoredLead]) -> list[DeliveryResult]:
        """Upserts the newest revision of every lead, 100 contacts per request."""
        if not self._ready:
            self.ensure_ready()
        inputs = contact_inputs(
            newest_revisions(batch),
            self.settings.mapping,
            lifecycle_stage_for_mql=self.settings.lifecycle_stage_for_mql,
        )
        by_email = [i for i in inputs if i.id_property == "email"]
        by_lead_id = [i for i in inputs if i.id_property == LEAD_ID]
        parts = chunks(by_email, BATCH_LIMIT) + chunks(by_lead_id, BATCH_LIMIT)
        results = deliver_in_parts(parts, self._upsert, _ids)
        delivered = sum(1 for r in results if r.ok)
        log.info("contacts.upserted", destination=self.name, leads=delivered, requests=len(parts))
        return results

    def search_contacts(self, body: dict[str, Any]) -> dict[str, Any]:
        """One page of HubSpot's contact search (the outcome reader's), errors mapped.

        Reading never writes: HubSpot refuses a filter on a property it lacks, and
        until the first delivery makes ours no contact can be ours, so that refusal
        is an empty page.
        """
        response = self._send("POST", _SEARCH, json=body)
        if response.status_code == 400 and _ours_missing(_json(response)):
            # Our properties are made by the first delivery: until then no contact is ours.
            return {"total": 0, "results": []}
        if response.status_code != 200:
            raise self._error(response)
        return _json(response)

    def _upsert(self, inputs: Sequence[ContactInput]) -> list[DeliveryResult]:
        response = self._send("POST", _UPSERT, json={"inputs": [i.body() for i in inputs]})
        if response.status_code in (200, 201, 207):
            return self._results(inputs, response.json())
        if response.status_code in (400, 409) and not any(c in response.text for c in _BATCH_WIDE):
            if len(inputs) > 1:
                # One bad value rejects the batch: halve it until the bad lead stands alone.
                log.warning("contacts.batch_rejected", destination=self.name, contacts=len(inputs))
                half = len(inputs) // 2
                return deliver_in_parts([inputs[:half], inputs[half:]], self._upsert, _ids)
            log.warning("contact.rejected", destination=self.name, lead_ids=inputs[0].lead_ids)
        body = _json(response)
        if _ours_missing(body):
            self._ready = False  # someone deleted one of ours; re-create it next time
            message = f"a leadsync property is missing in HubSpot for destination {self.name}"
            raise TransientError(message + "; it is re-created on the next attempt")
        raise self._error(response)

    def _results(
        self, inputs: Sequence[ContactInput], body: dict[str, Any]
    ) -> list[DeliveryResult]:
        found = {}
        for result in body.get("results", []):
            for id_property in ("email", LEAD_ID):
                found.setdefault((id_property, input_key(result, id_property)), str(result["id"]))
        refused = {
            str(i) for e in body.get("errors", []) for i in e.get("context", {}).get("ids", [])
        }
        results = []
        for contact in inputs:
            contact_id = found.get((contact.id_property, contact.key))
            error: Exception | None = None
            if contact.key in refused:
                error = PermanentError(f"HubSpot refused the contact for destination {self.name}")
            elif contact_id is None:
                error = TransientError(f"HubSpot did not confirm a contact for {self.name}")
            results.extend(
                DeliveryResult(lead_id, error=error, external_id=contact_id or "")
                for lead_id in contact.lead_ids
            )
        return results

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One request, unless the portal's window is spent: then wait without asking.

        HubSpot counts 429s against an app (they should stay under 5% of its calls), so
        when X-HubSpot-RateLimit-Remaining reaches 0 the rest of the batch waits for
        the window instead of collecting refusals.
        """
        wait = self._window_ends - time.monotonic()
        if wait > 0:
            message = f"HubSpot's request window is spent for destination {self.name}"
            raise RateLimited(f"{message}, retry in {wait:.1f} s", retry_after=wait)
        response = self._edge.send(method, self.settings.api_url + path, **kwargs)
        remaining = response.headers.get("X-HubSpot-RateLimit-Remaining", "")
        if remaining == "0" and response.status_code != 429:
            self._window_ends = time.monotonic() + _window_seconds(response)
        return response

    def _error(self, response: requests.Response) -> Exception:
        """HubSpot's answer as a leadsync error; HubSpot's messages may quote lead data."""
        body = _json(response)
        parts = [str(body.get("category", "")), ",".join(_codes(body))]
        if names := _property_names(body):
            parts.append(f"properties {','.join(names)}")
        if body.get("correlationId"):
            parts.append(f"correlationId {body['correlationId']}")
        detail = " ".join(p for p in parts if p)
        wait = _rate_limit_wait(response, body) if response.status_code == 429 else None
        return self._edge.error_for(response, detail, wait)

    def close(self) -> None:
        self._edge.close()


def _ids(contact: ContactInput) -> list[str]:
    return contact.lead_ids


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:  # a gateway's HTML page
        return {}
    return body if isinstance(body, dict) else {}


def _ours_missing(body: dict[str, Any]) -> bool:
    """Whether HubSpot refused a request because one of leadsync's own properties is missing."""
    return "PROPERTY_DOESNT_EXIST" in _codes(body) and bool(
        CUSTOM_NAMES & set(_property_names(body))
    )


def _codes(body: dict[str, Any]) -> list[str]:
    """HubSpot's error codes (INVALID_EMAIL, ...) from the fields that hold only codes."""
    codes = {str(e.get("code", "")) for e in body.get("errors", []) if isinstance(e, dict)}
    codes.update(re.findall(r'"error"\s*:\s*"([A-Z_]+)"', str(body.get("message", ""))))
    return sorted(c for c in codes if re.fullmatch(r"[A-Z_]+", c))


def _property_names(body: dict[str, Any]) -> list[str]:
    """The property names a HubSpot validation error is about (names, never values)."""
    names = set(re.findall(r'"name"\s*:\s*"([a-z][a-z0-9_]*)"', str(body.get("message", ""))))
    for error in body.get("errors", []):
        if isinstance(error, dict) and isinstance(error.get("context"), dict):
            names.update(str(n) for n in error["context"].get("propertyName", []))
    return sorted(n for n in names if _PROPERTY_NAME.match(n))


def _rate_limit_wait(response: requests.Response, body: dict[str, Any]) -> float:
    """How long HubSpot wants us away: Retry-After, else its policy and window headers."""
    if "Retry-After" in response.headers:
        return retry_after(response)
    policy = str(body.get("policyName", ""))
    if policy == "DAILY":
        return DAILY_LIMIT_WAIT
    if policy == "SECONDLY":
        return SECONDLY_LIMIT_WAIT
    return _window_seconds(response)


def _window_seconds(response: requests.Response) -> float:
    """The length of HubSpot's rolling window, from X-HubSpot-RateLimit-Interval-Milliseconds."""
    interval = response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds", "")
    return int(interval) / 1000 if interval.isdigit() else DEFAULT_RETRY_AFTER
