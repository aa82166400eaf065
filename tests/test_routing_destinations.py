"""Each destination shows the lead's owner, its E.164 phone and the lead it repeats,
delivered by the real connector to its emulator (harnesses of tests/connector_harnesses.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from leadsync.models import Contact, Owner, ScoredLead
from tests.connector_harnesses import (
    HubSpotHarness,
    SheetsHarness,
    SlackHarness,
    WebhookHarness,
    make_lead,
    scored,
)

ANA = Owner("Ana", "ana@example.com", "U0ANA", "77")


def routed(number: int, *, phone: Contact | None = None, revision: int = 1) -> ScoredLead:
    lead = make_lead(number)
    contact = phone or Contact(lead.id, "email:x", "+14155552671", True, "(415) 555-2671", "9001")
    return replace(scored(lead, 80, revision=revision), owner=ANA, contact=contact)


@pytest.fixture
def harness(request) -> Iterator:
    started = request.param()
    started.start()
    yield started
    started.stop()


@pytest.mark.parametrize("harness", [SheetsHarness], indirect=True)
def test_the_sheet_has_owner_phone_and_repeat_columns_and_fills_an_owner_given_later(harness):
    connector = harness.build()
    bad_phone = Contact(make_lead(2).id, "", "", False, "12")
    first = replace(routed(1), owner=None)  # delivered before an only_mql rule gave an owner
    connector.deliver([first, routed(2, phone=bad_phone)])
    connector.deliver([routed(1, revision=2)])
    header, *rows = harness.emulator.values(harness.book, "Leads")
    assert header[-6:] == ["score", "mql", "score_reasons", "owner", "phone_e164", "repeat_of"]
    by_id = {row[0]: dict(zip(header, row, strict=False)) for row in rows}
    one, two = by_id[make_lead(1).id], by_id[make_lead(2).id]
    assert (one["owner"], one["phone_e164"], one["repeat_of"]) == ("Ana", "+14155552671", "9001")
    assert two["phone_e164"] == "invalid: 12"  # kept as typed, and flagged


@pytest.mark.parametrize("harness", [HubSpotHarness], indirect=True)
def test_hubspot_gets_the_owner_id_and_the_e164_phone(harness):
    harness.emulator.portal.add_owner("77", "Ana")
    connector = harness.build()
    connector.ensure_ready()
    [result] = connector.deliver([routed(1)])
    assert result.ok, result.error
    [contact] = harness.emulator.contacts_with("leadsync_lead_id", make_lead(1).id)
    assert contact["properties"]["hubspot_owner_id"] == "77"
    assert contact["properties"]["phone"] == "+14155552671"


@pytest.mark.parametrize("harness", [WebhookHarness], indirect=True)
def test_the_webhook_payload_names_owner_phone_and_repeat(harness):
    harness.build().deliver([routed(1)])
    [(_, document)] = harness.emulator.documents_for(make_lead(1).id)
    assert document["owner"] == {
        "name": "Ana",
        "email": "ana@example.com",
        "slack_id": "U0ANA",
        "hubspot_owner_id": "77",
    }
    assert (document["phone_e164"], document["phone_valid"]) == ("+14155552671", True)
    assert document["repeat_of"] == "9001"


@pytest.mark.parametrize("harness", [SlackHarness], indirect=True)
def test_the_slack_alert_mentions_the_owner(harness):
    harness.build().deliver([routed(1)])
    [alert] = harness.emulator.alerts_for(make_lead(1).id)
    assert "Owner: <@U0ANA>" in alert["text"]["text"]
    assert "Repeat of lead 9001" in alert["text"]["text"]
