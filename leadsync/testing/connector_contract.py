"""The contract every connector keeps, as a test class to subclass with your harness.

Batching, idempotent redelivery, score updates in place, error kinds by fault, logs
free of personal data and secrets, and the members the runner and the daemon call
(`leadsync.abc.Connector`). The built-in connectors run it against their emulators
(tests/test_connector_contract.py); a third-party connector runs it the same way::

    class TestMyCrm(ConnectorContract):
        harness_class = MyCrmHarness   # a leadsync.testing.Harness

The class name does not start with "Test", so pytest collects only your subclass.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import ClassVar

import pytest
from structlog.testing import capture_logs

from leadsync.abc import Connector
from leadsync.errors import AuthError, PermanentError, RateLimited, TransientError
from leadsync.models import ScoredLead
from leadsync.testing.harness import (
    FAULTS,
    SHORT_TIMEOUT,
    Courier,
    Harness,
    make_lead,
    personal_data,
    scored,
)

# The error each injected fault must become: what the runner does next depends on it.
ERROR_KIND = {
    "auth": AuthError,
    "rate_limit": RateLimited,
    "server_error": TransientError,
    "timeout": TransientError,
    "rejected": PermanentError,
}


def outcome(connector: Connector, batch: list[ScoredLead]) -> Exception | None:
    """The error a delivery ended in: raised for the whole call, or the same on every lead."""
    try:
        results = connector.deliver(batch)
    except Exception as exc:  # noqa: BLE001 - the kind is what the test looks at
        return exc
    errors = {type(r.error) for r in results}
    assert len(errors) == 1, f"mixed outcomes {errors}"
    assert {r.lead_id for r in results} == {s.lead.id for s in batch}
    return results[0].error


class ConnectorContract:
    """The standard connector tests; a subclass names its harness in `harness_class`."""

    harness_class: ClassVar[type[Harness]]

    @pytest.fixture
    def harness(self) -> Iterator[Harness]:
        with self.harness_class() as started:
            yield started

    def test_the_connector_has_every_member_the_daemon_calls(self, harness: Harness):
        connector = harness.connector()

        assert isinstance(connector, Connector), "see leadsync.abc.Connector (or ConnectorBase)"
        assert isinstance(connector.name, str) and connector.name
        wait = connector.ready_in()
        assert isinstance(wait, int | float) and wait >= 0
        connector.ensure_ready()
        connector.close()
        connector.close()  # the daemon's stop and a harness may both close it

    def test_check_ready_only_reads(self, harness: Harness):
        """`check_ready()` (what `leadsync check` asks) changes nothing: asked twice it says
        the same, and what it says would be created is created by the first delivery."""
        connector = harness.connector()
        first = connector.check_ready()
        assert isinstance(first, list) and all(isinstance(note, str) for note in first)
        assert connector.check_ready() == first
        results = Courier(connector).deliver([scored(make_lead(1), 80)])
        assert all(r.ok for r in results)
        assert harness.connector().check_ready() == []  # delivery prepared what was missing

    def test_a_batch_of_250_leads_arrives_in_the_expected_number_of_requests(
        self, harness: Harness
    ):
        leads = [make_lead(n) for n in range(250)]
        results = Courier(harness.connector()).deliver([scored(lead, 80) for lead in leads])

        assert [r.lead_id for r in results if r.ok] == [lead.id for lead in leads]
        assert harness.delivery_requests() == harness.expected_requests(250)
        assert {harness.held(lead.id).copies for lead in leads} == {1}

    def test_redelivering_the_same_revision_makes_no_duplicate(self, harness: Harness):
        batch = [scored(make_lead(n), 75) for n in range(3)]
        courier = Courier(harness.connector())

        courier.deliver(batch)
        results = courier.deliver(batch)  # as after a crash between sending and recording it

        assert all(r.ok for r in results)
        for item in batch:
            assert harness.held(item.lead.id).copies == 1

    def test_a_new_revision_updates_the_lead_in_place(self, harness: Harness):
        lead = make_lead(7)
        courier = Courier(harness.connector())

        courier.deliver([scored(lead, 70, revision=1)])
        courier.deliver([scored(lead, 95, revision=2)])

        held = harness.held(lead.id)
        assert held.copies == 1
        assert held.mql is True
        # A destination that announces (Slack) keeps its first word; the others show the new score.
        assert held.score == (95 if harness.updates_in_place else 70)

    def test_a_lead_that_is_no_mql_is_shown_only_where_every_lead_is(self, harness: Harness):
        lead = make_lead(8)
        Courier(harness.connector()).deliver([scored(lead, 30)])

        held = harness.held(lead.id)
        assert held.copies == (0 if harness.only_mql else 1)
        assert held.mql is (None if harness.only_mql else False)

    @pytest.mark.parametrize("fault", FAULTS)
    def test_each_fault_becomes_its_error_kind(self, harness: Harness, fault: str):
        if fault not in harness.faults:
            pytest.skip(f"{harness.id} cannot be given a {fault} fault yet")
        timeout = {"timeout": SHORT_TIMEOUT} if fault == "timeout" else {}
        connector = harness.connector(**timeout)
        batch = [scored(make_lead(1), 80)]
        harness.inject(fault)

        error = outcome(connector, batch)

        assert isinstance(error, ERROR_KIND[fault]), repr(error)
        if fault == "rate_limit":
            assert error.retry_after == pytest.approx(harness.expected_wait)
        if fault not in ("auth", "rate_limit"):  # a connector may rightly hold back after a 429
            assert outcome(connector, batch) is None
            assert harness.held(batch[0].lead.id).copies == 1

    def test_logs_hold_no_personal_data_and_no_secret(
        self, harness: Harness, caplog: pytest.LogCaptureFixture
    ):
        caplog.set_level(logging.INFO)
        leads = [make_lead(n) for n in range(5)]
        batch = [scored(lead, 80) for lead in leads]
        with capture_logs() as events:
            connector = harness.connector()
            for fault, part in (("rejected", batch[:1]), ("server_error", batch)):
                if fault in harness.faults:
                    harness.inject(fault)
                    outcome(connector, part)
            Courier(connector).deliver(batch)
            if "auth" in harness.faults:
                harness.inject("auth")
                outcome(connector, [scored(leads[0], 90, revision=2)])

        assert any("destination" in event for event in events), "the connector logged nothing"
        written = repr(events) + caplog.text
        for forbidden in personal_data(leads) + harness.secrets():
            assert forbidden not in written
