"""Sends speed-to-lead alerts through the configured email and Slack destinations.

The reminder goes by email to the lead's owner, over the SMTP relay of the first
`type = "email"` destination; the escalation goes where the rule's `escalate_to`
says: a `type = "slack"` destination's channel (the owner mentioned), or by email
to an owner named there or to an address. Alerts are not outbox items: an outbox
item is a score revision for a destination, and a reminder is due because time
passed with no revision at all. What makes them once-only is the store's claim
(`claim_sla_alerts`) around each send; each email carries a Message-ID fixed per
lead and kind, so a copy resent after a crash between the relay's "250" and the
store's commit is recognisably the same message. `sla_problems` checks the
config once at load.
"""

from __future__ import annotations

from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

import structlog

from connectors.edge import HttpEdge
from connectors.email_message import message_id, one_line, plain_address, sender_address
from connectors.slack import escape
from connectors.smtp_edge import SmtpSession
from leadsync.errors import PermanentError, Problem
from leadsync.models import Lead
from leadsync.sla import SlaAlert, WaitingMql

if TYPE_CHECKING:
    from leadsync.config import Settings
    from leadsync.routing import RoutingRuleSettings

log = structlog.get_logger(__name__)


def sla_problems(settings: Settings) -> list[Problem]:
    """What stops SLA alerts from reaching anyone, by key path, with the fix."""
    problems: list[Problem] = []
    types = {d.name: d.type for d in settings.destinations}
    owners = {o.name for o in settings.routing.owners}
    for index, rule in enumerate(settings.routing.rules):
        path = f"routing.rules[{index}]"
        if rule.speed_to_lead is not None and "email" not in types.values():
            fix = 'add a [[destinations]] of type = "email": reminders go to the owner by email'
            problems.append(Problem(f"{path}.speed_to_lead", "has no email destination", fix))
        target = rule.escalate_to
        if not target or target in owners or plain_address(target):
            continue
        if types.get(target) != "slack":
            message = f"{target!r} is neither a slack destination, an owner nor an email address"
            fix = "name a type = slack destination, an owner of [[routing.owners]], or an address"
            problems.append(Problem(f"{path}.escalate_to", message, fix))
    return problems


class SlaSender:
    """Sends one alert at a time; raises the project's errors (PermanentError: give up)."""

    def __init__(self, settings: Settings):
        emails = [d for d in settings.destinations if d.type == "email"]
        self._email = emails[0] if emails else None
        self._slack = {d.name: d for d in settings.destinations if d.type == "slack"}
        self._owners = {o.name: o.owner() for o in settings.routing.owners}

    def target(self, alert_kind: str, mql: WaitingMql, rule: RoutingRuleSettings) -> str:
        """Where the alert goes, as people read it: an address or "slack:<destination>"."""
        if alert_kind == "reminder":
            return plain_address(mql.owner.email) if mql.owner else ""
        name = rule.escalate_to
        if name in self._slack:
            return f"slack:{name}"
        if name in self._owners:
            return plain_address(self._owners[name].email)
        return plain_address(name)

    def send(self, alert: SlaAlert, mql: WaitingMql, lead: Lead | None, now: datetime) -> None:
        if not alert.target:
            raise PermanentError(f"lead {alert.lead_id}: no address for its {alert.kind}")
        if alert.target.startswith("slack:"):
            self._post(alert, mql, now)
        else:
            self._mail(alert, mql, lead, now)
        log.info("sla.alert_sent", lead_id=alert.lead_id, kind=alert.kind)

    def _mail(self, alert: SlaAlert, mql: WaitingMql, lead: Lead | None, now: datetime) -> None:
        if self._email is None:
            raise PermanentError("no email destination to send SLA alerts through")
        s = self._email.settings
        session = SmtpSession(
            host=s.host, port=s.effective_port, security=s.security, timeout=s.timeout,
            username=s.username, password=s.password.get_secret_value(), ca_file=s.ca_file,
            destination=self._email.name,
        )  # fmt: skip
        with session:
            session.send(
                self._message(alert, mql, lead, now), sender_address(s.sender), [alert.target]
            )

    def _message(
        self, alert: SlaAlert, mql: WaitingMql, lead: Lead | None, now: datetime
    ) -> EmailMessage:
        assert self._email is not None
        sender = self._email.settings.sender
        name = one_line(_lead_name(lead, alert.lead_id), 120)
        waited = _minutes(now - mql.mql_at)
        owner = mql.owner.name if mql.owner else "nobody"
        message = EmailMessage(policy=policy.SMTP)
        message["From"] = sender
        message["To"] = alert.target
        heading = "Reminder" if alert.kind == "reminder" else "Escalation"
        message["Subject"] = one_line(f"{heading}: MQL {name} waits for first contact ({waited})")
        message["Date"] = format_datetime(now)
        trigger = f"sla-{alert.kind}"
        message["Message-ID"] = message_id(
            alert.lead_id, trigger, self._email.name, sender_address(sender)
        )
        message["Auto-Submitted"] = "auto-generated"
        message["X-Leadsync-Lead-Id"] = one_line(alert.lead_id, 100)
        message["X-Leadsync-Trigger"] = trigger
        message.set_content(
            f"{name} (lead {alert.lead_id}) became an MQL {waited} ago and no one has marked"
            f" them contacted yet.\nOwner: {owner}\n"
            + _contact_lines(lead)
            + "\nMark the lead contacted (the sheet's status, HubSpot or POST /events)"
            " and this stops.\n"
        )
        return message

    def _post(self, alert: SlaAlert, mql: WaitingMql, now: datetime) -> None:
        dest = self._slack[alert.target.removeprefix("slack:")]
        fix = "create a new incoming webhook in Slack and update webhook_url"
        edge = HttpEdge("Slack", dest.name, timeout=dest.settings.timeout, auth_fix=fix)
        owner = mql.owner
        mention = (
            (f"<@{owner.slack_id}>" if owner.slack_id else escape(owner.name)) if owner else ""
        )
        text = (
            f"Speed to lead: MQL lead {escape(alert.lead_id)} has waited"
            f" {_minutes(now - mql.mql_at)} for first contact"
            + (f"; owner {mention}" if mention else "; no owner")
        )
        try:
            response = edge.send(
                "POST", dest.settings.webhook_url.get_secret_value(), json=_slack(text)
            )
            if response.status_code != 200:
                raise edge.error_for(response, "")
        finally:
            edge.close()


def _slack(text: str) -> dict[str, Any]:
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def _lead_name(lead: Lead | None, lead_id: str) -> str:
    if lead is None:
        return f"Lead {lead_id}"
    full = lead.answer("full_name").strip()
    parts = " ".join(p for p in (lead.answer("first_name"), lead.answer("last_name")) if p.strip())
    return full or parts.strip() or f"Lead {lead_id}"


def _contact_lines(lead: Lead | None) -> str:
    if lead is None:
        return ""
    found = [
        (label, lead.answer(q).strip())
        for label, q in (("Phone", "phone_number"), ("Email", "email"))
    ]
    return "".join(f"{label}: {one_line(value, 120)}\n" for label, value in found if value)


def _minutes(span: Any) -> str:
    minutes = max(int(span.total_seconds() // 60), 0)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"
