"""Destination type `email`: tells a lead's owner, over SMTP, of a new lead and of a new MQL.

The connector receives every revision of the leads routed to it (with `only_mql = true`
only once they are MQLs) and mails the lead's owner (routing's `owner.email`, else the
destination's `to`) once per trigger: "new" with the first revision it sees, "mql" when
the lead first is an MQL (one "MQL: ..." message when both come at once). What was sent
is remembered by the delivery runner, not here: a delivery answers `external_id =
"email:new,mql,ack"`, and the runner hands it back with the lead's later revisions
(`ScoredLead.external_id`). With an `acknowledge` section the lead also gets a message
from the config's templates, with its first alert, once per person: only when the lead
gave a plain email address, is not a repeat of an earlier lead (`repeat_of`, from routing),
has not the address of a lead before it in the batch and is younger than ACK_WITHIN. A
message that went out before a later one of the same lead failed (the ack after the
alert) is remembered in memory until the lead is delivered, so the runner's retry sends
only what is missing. SMTP itself is in `connectors/smtp_edge.py`,
the messages in `connectors/email_message.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import jinja2
import structlog
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from connectors.edge import WHOLE_CALL_ERRORS, deliver_in_parts, newest_revisions, row_link
from connectors.email_message import (
    AckTemplates,
    Composer,
    check_template,
    owner_of,
    plain_address,
    sender_address,
)
from connectors.smtp_edge import DEFAULT_PORTS, Security, SmtpSession
from leadsync.abc import ConnectorBase
from leadsync.errors import PermanentError, Problem
from leadsync.models import DeliveryResult, ScoredLead, utcnow

log = structlog.get_logger(__name__)

RECEIPT_PREFIX = "email:"
# What a receipt may hold, in the order it is written: alerts sent, acknowledgement sent
# or decided against (no address, a repeat, refused), so it is decided once per lead.
TOKENS = ("new", "mql", "ack", "noack")
# An acknowledgement to a lead older than this would puzzle them ("thanks for your request"
# about a form from last month): a destination added later, or a replay, does not send it.
ACK_WITHIN = timedelta(days=7)
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


class Acknowledge(BaseModel):
    """`[destinations.acknowledge]`: the message a lead gets, from Jinja2 templates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subject: str = Field(min_length=1)
    body: str = Field(min_length=1)
    html: str = ""
    reply_to: str = ""

    @field_validator("subject", "body")
    @classmethod
    def _text_template(cls, value: str) -> str:
        return check_template(value)

    @field_validator("html")
    @classmethod
    def _html_template(cls, value: str) -> str:
        return check_template(value, html=True) if value else value

    @field_validator("reply_to")
    @classmethod
    def _address(cls, value: str) -> str:
        if value and not plain_address(value):
            raise ValueError("must be one plain address such as sales@example.com")
        return value


class Settings(BaseModel):
    """The `[[destinations]]` keys of a `type = "email"` destination."""

    # A refused password is still a password: pydantic must not print the input.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    host: str = Field(min_length=1)
    port: int = Field(0, ge=0, le=65535)  # 0: the usual port of `security`
    security: Security = "starttls"
    username: str = ""
    password: SecretStr = Field(SecretStr(""), validate_default=True)
    sender: str = Field(alias="from")
    to: list[str] = []
    sheet_url: str = ""
    timeout: float = Field(10.0, gt=0)
    ca_file: str = ""
    acknowledge: Acknowledge | None = None

    @field_validator("password")
    @classmethod
    def _login(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        username = info.data.get("username")
        if username and not value.get_secret_value():
            raise ValueError('username is set: set password too (e.g. "${SMTP_PASSWORD}")')
        host, security = info.data.get("host", ""), info.data.get("security")
        if username and security == "none" and host not in _LOOPBACK:
            raise ValueError(
                'security = "none" would send it unencrypted; use "starttls" (587) or "tls" (465)'
            )
        return value

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        if not sender_address(value):
            raise ValueError('must be one address: leads@example.com or "Leads <leads@...>"')
        return value

    @field_validator("to")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        for index, address in enumerate(value):
            if not plain_address(address):
                raise ValueError(f"item {index} is not one plain address (sales@example.com)")
        return value

    _link = field_validator("sheet_url")(row_link)

    @field_validator("ca_file")
    @classmethod
    def _ca(cls, value: str) -> str:
        if value and not Path(value).is_file():
            raise ValueError("no such file; give the PEM file of your relay's CA")
        return value

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.security]


def check_with_config(settings: Settings, config: Mapping[str, Any], path: str) -> list[Problem]:
    """`to` may stay empty only when routing gives leads owners (`[[routing.owners]]`)."""
    routing = config.get("routing")
    owners = routing.get("owners") if isinstance(routing, Mapping) else None
    if settings.to or owners:
        return []
    problem = "is empty and there are no [[routing.owners]]: an alert would have no recipient"
    fix = 'add to = ["sales@example.com"], or define [[routing.owners]] with their email'
    return [Problem(f"{path}.to", problem, fix)]


def build(name: str, settings: Settings) -> EmailConnector:
    return EmailConnector(name, settings)


def recorded_tokens(receipt: str) -> set[str]:
    """What an earlier delivery of this destination sent for the lead."""
    if not receipt.startswith(RECEIPT_PREFIX):
        return set()
    return set(receipt.removeprefix(RECEIPT_PREFIX).split(",")) & set(TOKENS)


def receipt_of(tokens: set[str]) -> str:
    return RECEIPT_PREFIX + ",".join(t for t in TOKENS if t in tokens)


@dataclass
class Plan:
    """What one lead needs now: an alert (its trigger, to whom) and an acknowledgement."""

    scored: ScoredLead
    done: set[str]
    alert: str = ""
    recipients: list[str] = field(default_factory=list)
    ack_to: str = ""
    skip_ack: str = ""  # why the lead gets no acknowledgement, decided now

    @property
    def lead_id(self) -> str:
        return self.scored.lead.id

    @property
    def sends(self) -> bool:
        return bool(self.alert or self.ack_to)


class EmailConnector(ConnectorBase):
    """Mails owners once per lead and trigger; acknowledges leads once per person."""

    # A mail cannot be taken back and a batch is settled only when `deliver` returns: a
    # crash mid-batch sends it again, so a batch is small (20 mails is one SMTP session
    # of a second or two) rather than the 500 rows a sheet takes in one request.
    max_batch = 20

    def __init__(self, name: str, settings: Settings):
        self.name = name
        self.settings = settings
        ack = settings.acknowledge
        templates = AckTemplates(ack.subject, ack.body, ack.html, ack.reply_to) if ack else None
        self._composer = Composer(name, settings.sender, settings.sheet_url, templates)
        # Sent, but not yet answered to the runner (a later message of the lead failed).
        self._unrecorded: dict[str, set[str]] = {}

    def _session(self) -> SmtpSession:
        s = self.settings
        return SmtpSession(
            host=s.host,
            port=s.effective_port,
            security=s.security,
            timeout=s.timeout,
            username=s.username,
            password=s.password.get_secret_value(),
            ca_file=s.ca_file,
            destination=self.name,
        )

    def ensure_ready(self) -> None:
        """Connects, secures and logs in, then quits: sends nothing."""
        with self._session() as session:
            session.open()

    def check_ready(self) -> list[str]:
        """The same login as `ensure_ready`, which prepares nothing either."""
        self.ensure_ready()
        return []

    def deliver(self, batch: Sequence[ScoredLead]) -> list[DeliveryResult]:
        """Sends what each lead is due; leads with nothing due pass with their receipt."""
        people: set[str] = set()
        plans = [self._plan(scored, people) for scored in newest_revisions(batch)]
        results = {p.lead_id: self._settled(p) for p in plans if not p.sends}
        due = [p for p in plans if p.sends]
        if due:
            with self._session() as session:
                try:
                    sent = deliver_in_parts(
                        [[p] for p in due],
                        lambda part: [self._send(session, part[0])],
                        lambda plan: [plan.lead_id],
                    )
                except WHOLE_CALL_ERRORS as exc:
                    if not results:
                        raise
                    sent = [DeliveryResult(p.lead_id, error=exc) for p in due]
            results.update((r.lead_id, r) for r in sent)
        return [results[p.lead_id] for p in plans]

    def _plan(self, scored: ScoredLead, people: set[str]) -> Plan:
        recorded = recorded_tokens(scored.external_id)
        plan = Plan(scored, recorded | self._unrecorded.get(scored.lead.id, set()))
        if "new" not in plan.done:
            plan.alert = "mql" if scored.score.mql else "new"
        elif scored.score.mql and "mql" not in plan.done:
            plan.alert = "mql"
        if plan.alert:
            _, owner_address = owner_of(scored)
            plan.recipients = [owner_address] if owner_address else list(self.settings.to)
        if self.settings.acknowledge and "new" not in recorded and not {"ack", "noack"} & plan.done:
            self._plan_ack(plan, people)
        return plan

    def _plan_ack(self, plan: Plan, people: set[str]) -> None:
        """Once per person: the lower-cased, trimmed address; a repeat lead is not acked."""
        lead = plan.scored.lead
        address = plain_address(lead.email)
        if not address:
            plan.skip_ack = "no plain email address"
        elif plan.scored.repeat_of:
            plan.skip_ack = "repeat of an earlier lead"
        elif address.lower() in people:
            plan.skip_ack = "same person as an earlier lead of the batch"
        elif utcnow() - lead.created_time > ACK_WITHIN:
            plan.skip_ack = f"lead older than {ACK_WITHIN.days} days"
        else:
            plan.ack_to = address
            people.add(address.lower())

    def _send(self, session: SmtpSession, plan: Plan) -> DeliveryResult:
        done = plan.done
        if plan.alert:
            if not plan.recipients:
                raise PermanentError(
                    f"lead {plan.lead_id} has no owner and destination {self.name} has no `to`; "
                    "add to = [...] or [[routing.owners]], then leadsync replay"
                )
            message = self._composer.alert(plan.scored, plan.alert, plan.recipients, utcnow())
            refused = session.send(message, self._composer.envelope_from, plan.recipients)
            done = done | ({"new", "mql"} if plan.alert == "mql" else {"new"})
            self._unrecorded[plan.lead_id] = done
            log.info(
                "email.alert_sent",
                destination=self.name,
                lead_id=plan.lead_id,
                trigger=plan.alert,
                refused_recipients=refused,
            )
        if plan.ack_to:
            done = done | {self._acknowledge(session, plan)}
            self._unrecorded[plan.lead_id] = done
        plan.done = done
        return self._settled(plan)

    def _acknowledge(self, session: SmtpSession, plan: Plan) -> str:
        """Sends the lead's acknowledgement; "noack" when its template or address fails."""
        try:
            message = self._composer.acknowledgement(plan.scored, plan.ack_to, utcnow())
        except (jinja2.TemplateError, TypeError, ValueError, LookupError, ArithmeticError) as exc:
            log.warning(
                "email.acknowledgement_failed",
                destination=self.name,
                lead_id=plan.lead_id,
                error=f"the acknowledge template failed to render ({type(exc).__name__})",
            )
            return "noack"
        try:
            session.send(message, self._composer.envelope_from, [plan.ack_to])
        except PermanentError as exc:  # the lead's own address: nothing the owner must fix
            log.warning(
                "email.acknowledgement_refused",
                destination=self.name,
                lead_id=plan.lead_id,
                error=str(exc),
            )
            return "noack"
        log.info("email.acknowledgement_sent", destination=self.name, lead_id=plan.lead_id)
        return "ack"

    def _settled(self, plan: Plan) -> DeliveryResult:
        """The lead's result; what was only in memory is now the runner's to remember."""
        if plan.skip_ack:
            plan.done = plan.done | {"noack"}
            log.info(
                "email.acknowledgement_skipped",
                destination=self.name,
                lead_id=plan.lead_id,
                reason=plan.skip_ack,
            )
        self._unrecorded.pop(plan.lead_id, None)
        return DeliveryResult(plan.lead_id, external_id=receipt_of(plan.done))
