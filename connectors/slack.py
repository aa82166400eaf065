"""Destination type `slack`: one alert in a Slack channel when a lead becomes an MQL.

The connector receives every revision of the leads routed to it and posts to
a Slack incoming webhook only for a lead that is an MQL now and was never
alerted: the alert (name, company, score, reasons, a link to the sheet when
`sheet_url` is set) goes out once per lead. What was alerted is remembered by
the delivery runner, not here: a successful alert answers
`external_id = "mql-alert:r<revision>"`, and the runner hands that value back
with the lead's later revisions (`ScoredLead.external_id`, the last
`DeliveryResult.external_id` this destination gave for the lead). Alerts of
one batch share messages, 20 leads each, because Slack accepts about one
message per second per webhook. Lead answers are escaped, so a lead named
`<!channel>` cannot ping anyone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import structlog
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from connectors.edge import (
    HttpEdge,
    chunks,
    deliver_in_parts,
    lead_ids_of,
    newest_revisions,
    row_link,
)
from leadsync.abc import ConnectorBase
from leadsync.errors import AuthError
from leadsync.models import DeliveryResult, ScoredLead

log = structlog.get_logger(__name__)

# Leads per Slack message: two blocks each stays under Slack's 50 blocks per message, and a
# burst of MQLs costs few of the ~1 message per second an incoming webhook accepts.
LEADS_PER_MESSAGE = 20
# Slack cuts a section's text at 3,000 characters; reasons are shortened before that.
MAX_REASONS_CHARS = 2000
RECEIPT_PREFIX = "mql-alert:r"
# Slack answers these when the webhook is revoked, its channel gone or archived.
_DEAD_WEBHOOK = (403, 404, 410)
_SLACK_CODE = re.compile(r"^[a-z_]{1,40}$")


class Settings(BaseModel):
    """The `[[destinations]]` keys of a `type = "slack"` destination."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook_url: SecretStr  # the URL is the credential: anyone holding it may post
    sheet_url: str = ""
    timeout: float = Field(10.0, gt=0)

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("https://", "http://")):
            raise ValueError("must be the https://hooks.slack.com/services/... URL Slack gave")
        return value

    _link = field_validator("sheet_url")(row_link)


def build(name: str, settings: Settings) -> SlackConnector:
    return SlackConnector(name, settings)


def previous_receipt(scored: ScoredLead) -> str:
    """What this destination answered for the lead last time ("" when never)."""
    return scored.external_id


def escape(text: str) -> str:
    """Slack mrkdwn escaping: the three characters that start links and mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def lead_name(scored: ScoredLead) -> str:
    lead = scored.lead
    full = lead.answer("full_name").strip()
    parts = (lead.answer("first_name").strip(), lead.answer("last_name").strip())
    return full or " ".join(p for p in parts if p) or f"Lead {lead.id}"


def owner_mention(scored: ScoredLead) -> str:
    """The owner as Slack shows them: a mention `<@U…>` with a member id, else their name."""
    owner = scored.owner
    if owner is None:
        return ""
    return f"<@{owner.slack_id}>" if owner.slack_id else escape(owner.name)


def lead_blocks(scored: ScoredLead, sheet_url: str) -> list[dict[str, Any]]:
    """A section (who, score, why, link) and a context line (ids, form, campaign)."""
    lead, score = scored.lead, scored.score
    company = lead.answer("company_name").strip()
    title = lead.answer("job_title").strip()
    who = " · ".join(escape(p) for p in (company, title) if p)
    reasons = "\n".join(f"• {escape(str(r))}" for r in score.reasons)[:MAX_REASONS_CHARS]
    text = f"*New MQL: {escape(lead_name(scored))}*" + (f" — {who}" if who else "")
    text += f"\nScore *{score.points}* (fit {score.fit}, engagement {score.engagement})"
    text += f"\nOwner: {owner_mention(scored)}" if scored.owner else ""
    text += f"\nRepeat of lead {escape(scored.repeat_of)}" if scored.repeat_of else ""
    text += f"\n{reasons}" if reasons else ""
    if sheet_url:
        link = sheet_url.replace("{lead_id}", quote(lead.id, safe=""))
        text += f"\n<{escape(link)}|Open in the sheet>"
    context = " · ".join(
        escape(p) for p in (f"lead {lead.id}", lead.form_name, lead.campaign_name) if p
    )
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
    ]


def alert_message(part: Sequence[ScoredLead], sheet_url: str) -> dict[str, Any]:
    """One Slack message for up to LEADS_PER_MESSAGE new MQLs."""
    summary = "; ".join(f"{escape(lead_name(s))} ({s.score.points})" for s in part)
    heading = "New MQL" if len(part) == 1 else f"{len(part)} new MQLs"
    blocks = [block for scored in part for block in lead_blocks(scored, sheet_url)]
    return {"text": f"{heading}: {summary}", "blocks": blocks}


class SlackConnector(ConnectorBase):
    """Posts MQL alerts to a Slack incoming webhook, once per lead."""

    def __init__(self, name: str, settings: Settings):
        self.name = name
        self.settings = settings
        fix = "create a new incoming webhook in Slack and update webhook_url"
        self._edge = HttpEdge("Slack", name, timeout=settings.timeout, auth_fix=fix)

    def ensure_ready(self) -> None:
        """Nothing to prepare; a test message would spam the channel."""

    def deliver(self, batch: Sequence[ScoredLead]) -> list[DeliveryResult]:
        """Alerts the leads that are MQLs and were never alerted; the others pass through."""
        due, passed = [], []
        for scored in newest_revisions(batch):
            receipt = previous_receipt(scored)
            if scored.score.mql and not receipt.startswith(RECEIPT_PREFIX):
                due.append(scored)
            else:  # hand the receipt back, so the runner keeps remembering the alert
                passed.append(DeliveryResult(scored.lead.id, external_id=receipt))
        parts = chunks(due, LEADS_PER_MESSAGE)
        return passed + deliver_in_parts(parts, self._post, lead_ids_of)

    def _post(self, part: Sequence[ScoredLead]) -> list[DeliveryResult]:
        message = alert_message(part, self.settings.sheet_url)
        url = self.settings.webhook_url.get_secret_value()
        response = self._edge.send("POST", url, json=message)
        lead_ids = [s.lead.id for s in part]
        if response.status_code != 200:
            log.warning(
                "mql_alert.refused",
                destination=self.name,
                status=response.status_code,
                lead_ids=lead_ids,
            )
            raise self._error(response)
        log.info("mql_alert.sent", destination=self.name, lead_ids=lead_ids)
        return [
            DeliveryResult(s.lead.id, external_id=f"{RECEIPT_PREFIX}{s.revision}") for s in part
        ]

    def _error(self, response: Any) -> Exception:
        code = response.text.strip()
        code = code if _SLACK_CODE.match(code) else ""  # Slack's codes only, never an echo
        if response.status_code in _DEAD_WEBHOOK:
            message = (
                f"Slack refused the webhook of destination {self.name} "
                f"(HTTP {response.status_code} {code}); {self._edge.auth_fix}"
            )
            return AuthError(message, service="Slack")
        return self._edge.error_for(response, code)

    def close(self) -> None:
        self._edge.close()
