"""Fixtures and helpers of the email destination's tests: a real SMTP server (aiosmtpd, see
tests/smtp_server.py) and email connectors pointed at it, closed after the test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from connectors import email
from leadsync.models import ScoredLead
from tests.smtp_server import SmtpServer

OWNER = "sales@example.com"
ACK = {
    "subject": "Thanks, {{ first_name }}",
    "body": "Hi {{ name }}, we got your {{ form_name }}.\n",
}


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A started relay on 127.0.0.1 that requires STARTTLS and a login."""
    with SmtpServer() as started:
        yield started


@pytest.fixture
def email_connect(smtp: SmtpServer) -> Iterator[Any]:
    """Builds email connectors on `smtp` (or another relay) with keys overridden."""
    made: list[email.EmailConnector] = []

    def build(relay: SmtpServer | None = None, **overrides: Any) -> email.EmailConnector:
        values = (relay or smtp).settings(**overrides)
        made.append(email.build("owners", email.Settings(**values)))
        return made[-1]

    yield build
    for connector in made:
        connector.close()


def alerts(relay: SmtpServer, lead_id: str, to: str = OWNER) -> list[Any]:
    """The alerts (not acknowledgements) `to` got about one lead."""
    return [m for m in relay.messages_to(to) if m["X-Leadsync-Lead-Id"] == lead_id]


def body(message: Any, kind: str) -> str:
    """The text or HTML part as written (the server keeps the wire's CRLF line ends)."""
    return message.get_body((kind,)).get_content().replace("\r\n", "\n")


def with_answer(scored_lead: ScoredLead, question: str, value: str) -> ScoredLead:
    lead = scored_lead.lead
    return replace(scored_lead, lead=replace(lead, answers={**lead.answers, question: (value,)}))
