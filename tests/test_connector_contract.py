"""The built-in connectors keep the shipped contract (`leadsync.testing.ConnectorContract`),
each against its emulator over real HTTP, as a third-party connector would; plus one lead
routed to every destination at once. Harnesses live in tests/connector_harnesses.py."""

from __future__ import annotations

from contextlib import ExitStack

from leadsync.testing import ConnectorContract, Courier, Held, make_lead, scored
from tests.connector_harnesses import (
    HARNESSES,
    BatchWebhookHarness,
    EmailHarness,
    HubSpotHarness,
    MetaConversionsHarness,
    SheetsHarness,
    SlackHarness,
    WebhookHarness,
)


class TestGoogleSheets(ConnectorContract):
    harness_class = SheetsHarness


class TestHubSpot(ConnectorContract):
    harness_class = HubSpotHarness


class TestWebhook(ConnectorContract):
    harness_class = WebhookHarness


class TestBatchWebhook(ConnectorContract):
    harness_class = BatchWebhookHarness


class TestSlack(ConnectorContract):
    harness_class = SlackHarness


class TestMetaConversions(ConnectorContract):
    harness_class = MetaConversionsHarness

    def test_a_new_revision_updates_the_lead_in_place(self, harness):
        """Replaces the contract's test: Meta holds the events a lead's stages made, never
        a score, so a new revision sends only stages not sent yet (here: none)."""
        lead = make_lead(7)
        courier = Courier(harness.connector())

        courier.deliver([scored(lead, 70, revision=1)])
        courier.deliver([scored(lead, 95, revision=2)])

        assert harness.held(lead.id) == Held(1, None, True)
        assert harness.delivery_requests() == 1


class TestEmail(ConnectorContract):
    harness_class = EmailHarness


def test_every_built_in_harness_runs_the_shipped_contract():
    """A harness added to HARNESSES without its test class above would be silently skipped."""
    tested = {cls.harness_class for cls in ConnectorContract.__subclasses__()}
    assert set(HARNESSES) <= tested


def test_one_lead_routed_everywhere_arrives_once_and_an_mql_change_updates_in_place():
    """Every destination at once: nurture first, then MQL, then a redelivery and a new score."""
    lead = make_lead(42)
    with ExitStack() as stack:
        harnesses = [stack.enter_context(h()) for h in HARNESSES]
        couriers = [Courier(h.connector()) for h in harnesses]

        for revision, points in ((1, 40), (2, 75), (2, 75), (3, 82)):
            for courier in couriers:
                assert all(r.ok for r in courier.deliver([scored(lead, points, revision=revision)]))
            if revision == 1:
                for h in harnesses:
                    assert h.held(lead.id).copies == (0 if h.only_mql else 1), h.id

        for h in harnesses:
            held = h.held(lead.id)
            assert (held.copies, held.mql) == (1, True), h.id
            assert held.score == (82 if h.updates_in_place else 75), h.id
