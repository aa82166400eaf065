"""Destination type `webhook`: a signed JSON POST per lead (or per batch) to any URL.

Requests are signed with `standardwebhooks`, the Standard Webhooks reference
library, so a receiver that verifies with it (or with its ports to other
languages) agrees with us by construction: `webhook-id`, `webhook-timestamp`
(unix seconds) and `webhook-signature` = `v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}">`, keyed by the base64 bytes after `whsec_` in the
secret. The library decodes any secret leniently (it drops characters that are
not base64), so the config is checked first: a secret it would misread is
refused with the fix. The id is stable per lead and revision
(`lead_<lead id>_r<revision>`), so a receiver drops a redelivery by id and
updates its record when a new revision comes; in batch mode each lead in the
body carries that id too. 5xx, 408, 429 and timeouts are retried; any other
4xx sends the lead to the dead letter.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from standardwebhooks import Webhook

from connectors.edge import HttpEdge, chunks, deliver_in_parts, lead_ids_of, newest_revisions
from leadsync.abc import ConnectorBase
from leadsync.models import LEAD_ATTRIBUTES, DeliveryResult, ScoredLead

log = structlog.get_logger(__name__)

# Leads per POST in batch mode: a few hundred kilobytes at most, which n8n, Zapier and
# serverless functions accept by default (their body limits start around 1-6 MB).
BATCH_LIMIT = 100
SECRET_PREFIX = "whsec_"
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


class Settings(BaseModel):
    """The `[[destinations]]` keys of a `type = "webhook"` destination."""

    # A refused secret is still a secret: pydantic must not print the input.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    url: str
    secret: SecretStr
    batch: bool = False
    timeout: float = Field(10.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("secret")
    @classmethod
    def _whsec(cls, value: SecretStr) -> SecretStr:
        check_secret(value.get_secret_value())
        return value


def check_secret(secret: str) -> None:
    """ValueError unless `secret` is `whsec_` + base64 (padded or not) of 16 bytes or more."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("must start with whsec_ followed by base64 (Standard Webhooks)")
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        # Strict here because the library is not: it would sign with a key the receiver's
        # library (Go, JS, ...) decodes differently, and every request would be refused.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise ValueError("the part after whsec_ must be base64 (A-Z, a-z, 0-9, + and /)") from None
    if len(key) < 16:
        raise ValueError(
            "must hold at least 16 random bytes, e.g. whsec_ + `openssl rand -base64 32`"
        )


def signer(secret: str) -> Webhook:
    """The reference library's signer for a checked `whsec_...` secret."""
    check_secret(secret)
    return Webhook(secret)


def signed_headers(signer: Webhook, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one request with this body."""
    when = datetime.fromtimestamp(timestamp, UTC)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        # The library signs text and encodes it as UTF-8: our body is UTF-8 JSON.
        "webhook-signature": signer.sign(webhook_id, when, body.decode()),
    }


def message_id(scored: ScoredLead) -> str:
    """The same id for every delivery of one revision of one lead."""
    lead_id = scored.lead.id
    if not _SAFE_ID.match(lead_id):  # ids go into a header; anything odd is hashed
        lead_id = hashlib.sha256(lead_id.encode()).hexdigest()[:32]
    return f"lead_{lead_id}_r{scored.revision}"


def lead_document(scored: ScoredLead) -> dict[str, Any]:
    """A lead, its answers and its score, as the receiver gets them."""
    lead, score = scored.lead, scored.score
    return {
        "id": message_id(scored),
        "lead_id": lead.id,
        "revision": scored.revision,
        "created_time": lead.created_time.isoformat(),
        **{name: getattr(lead, name) for name in LEAD_ATTRIBUTES},
        "answers": {question: list(values) for question, values in lead.answers.items()},
        "consents": dict(lead.consents),
        "score": {
            "points": score.points,
            "mql": score.mql,
            "fit": score.fit,
            "engagement": score.engagement,
            "reasons": [
                {"rule": r.rule, "points": r.points, "group": r.group} for r in score.reasons
            ],
            "reasons_text": score.reasons_text,
            "rules_version": score.rules_version,
        },
        **routing_document(scored),
    }


def routing_document(scored: ScoredLead) -> dict[str, Any]:
    """The lead's owner (null: none), its phone in E.164 and the lead it repeats ("" for none).

    `phone_valid` is false when the typed number could not be read; `phone_e164`
    then holds it as typed.
    """
    owner = scored.owner
    contact = scored.contact
    return {
        "owner": None
        if owner is None
        else {
            "name": owner.name,
            "email": owner.email,
            "slack_id": owner.slack_id,
            "hubspot_owner_id": owner.hubspot_owner_id,
        },
        "phone_e164": scored.phone_e164,
        "phone_valid": contact.phone_valid if contact else True,
        "repeat_of": scored.repeat_of,
    }


def build(name: str, settings: Settings) -> WebhookConnector:
    return WebhookConnector(name, settings)


class WebhookConnector(ConnectorBase):
    """POSTs signed lead documents to one URL."""

    def __init__(self, name: str, settings: Settings):
        self.name = name
        self.settings = settings
        self._signer = signer(settings.secret.get_secret_value())
        fix = "the receiver refused our signature or credentials; check the secret on both sides"
        self._edge = HttpEdge("webhook", name, timeout=settings.timeout, auth_fix=fix)

    def ensure_ready(self) -> None:
        """Nothing to prepare: the URL and secret were checked with the configuration."""

    def deliver(self, batch: Sequence[ScoredLead]) -> list[DeliveryResult]:
        """One POST per lead, or per 100 leads in batch mode."""
        leads = newest_revisions(batch)
        size = BATCH_LIMIT if self.settings.batch else 1
        return deliver_in_parts(chunks(leads, size), self._post, lead_ids_of)

    def _post(self, part: Sequence[ScoredLead]) -> list[DeliveryResult]:
        if self.settings.batch:
            ids = [message_id(s) for s in part]
            webhook_id = "batch_" + hashlib.sha256("\n".join(ids).encode()).hexdigest()[:32]
            document = {"type": "lead.batch", "data": {"leads": [lead_document(s) for s in part]}}
        else:
            webhook_id = message_id(part[0])
            document = {"type": "lead.scored", "data": lead_document(part[0])}
        body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
        timestamp = int(time.time())  # fresh on every attempt, as the spec asks
        headers = {
            "Content-Type": "application/json",
            **signed_headers(self._signer, webhook_id, timestamp, body),
        }
        response = self._edge.send("POST", self.settings.url, data=body, headers=headers)
        if not 200 <= response.status_code < 300:
            lead_ids = [s.lead.id for s in part]
            log.warning(
                "webhook.refused",
                destination=self.name,
                webhook_id=webhook_id,
                status=response.status_code,
                lead_ids=lead_ids,
            )
            raise self._edge.error_for(response)
        log.info("webhook.sent", destination=self.name, webhook_id=webhook_id, leads=len(part))
        return [DeliveryResult(s.lead.id, external_id=message_id(s)) for s in part]

    def close(self) -> None:
        self._edge.close()
