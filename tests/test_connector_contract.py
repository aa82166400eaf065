"""The contract every connector keeps, run against each one's emulator over real HTTP.

Batching, idempotent redelivery, score updates in place, error kinds by
fault, and logs free of personal data and secrets; plus one lead routed to
every destination at once. Harnesses live in tests/connector_harnesses.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from structlog.testing import capture_logs

from leadsync.abc import Connector
from leadsync.errors import AuthError, PermanentError, RateLimited, TransientError
from leadsync.models import ScoredLead
from tests.connector_harnesses import (
    FAULTS,
    HARNESSES,
    SHORT_TIMEOUT,
    Courier,
    Harness,
    make_lead,
    personal_data,
    scored,
)

ERROR_KIND = {
    "auth": AuthError,
    "rate_limit": RateLimited,
    "server_error": TransientError,
    "timeout": TransientError,
    "rejected": PermanentError,
}


@pytest.fixture(params=HARNESSES, ids=lambda h: h.id)
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    with request.param() as started:
        yield started


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


def test_a_batch_of_250_leads_arrives_in_the_expected_number_of_requests(harness: Harness):
    leads = [make_lead(n) for n in range(250)]
    results = Courier(harness.connector()).deliver([scored(lead, 80) for lead in leads])

    assert [r.lead_id for r in results if r.ok] == [lead.id for lead in leads]
    assert harness.delivery_requests() == harness.expected_requests(250)
    assert {harness.held(lead.id).copies for lead in leads} == {1}


def test_redelivering_the_same_revision_makes_no_duplicate(harness: Harness):
    batch = [scored(make_lead(n), 75) for n in range(3)]
    courier = Courier(harness.connector())

    courier.deliver(batch)
    results = courier.deliver(batch)  # as after a crash between sending and recording it

    assert all(r.ok for r in results)
    for item in batch:
        assert harness.held(item.lead.id).copies == 1


def test_a_new_revision_updates_the_lead_in_place(harness: Harness):
    lead = make_lead(7)
    courier = Courier(harness.connector())

    courier.deliver([scored(lead, 70, revision=1)])
    courier.deliver([scored(lead, 95, revision=2)])

    held = harness.held(lead.id)
    assert held.copies == 1
    assert held.mql is True
    # A destination that announces (Slack) keeps its first word; the others show the new score.
    assert held.score == (95 if harness.updates_in_place else 70)


def test_a_lead_that_is_no_mql_is_shown_only_where_every_lead_is(harness: Harness):
    lead = make_lead(8)
    Courier(harness.connector()).deliver([scored(lead, 30)])

    held = harness.held(lead.id)
    assert held.copies == (0 if harness.only_mql else 1)
    assert held.mql is (None if harness.only_mql else False)


@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_becomes_its_error_kind(harness: Harness, fault: str):
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
    harness: Harness, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    leads = [make_lead(n) for n in range(5)]
    batch = [scored(lead, 80) for lead in leads]
    with capture_logs() as events:
        connector = harness.connector()
        harness.inject("rejected")
        outcome(connector, batch[:1])
        harness.inject("server_error")
        outcome(connector, batch)
        Courier(connector).deliver(batch)
        harness.inject("auth")
        outcome(connector, [scored(leads[0], 90, revision=2)])

    assert any("destination" in event for event in events), "the connector logged nothing"
    written = repr(events) + caplog.text
    for forbidden in personal_data(leads) + harness.secrets():
        assert forbidden not in written


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


def test_check_ready_changes_nothing_when_a_connector_offers_it(harness: Harness):
    """`check_ready()` (optional, used by `leadsync check`) only reads: asked twice it says the
    same, and what it says would be created is still to be created."""
    connector = harness.connector()
    check_ready = getattr(connector, "check_ready", None)
    if check_ready is None:
        pytest.skip(f"{harness.id} has no read-only check")
    first = check_ready()
    assert isinstance(first, list) and all(isinstance(note, str) for note in first)
    assert check_ready() == first
    results = Courier(connector).deliver([scored(make_lead(1), 80)])
    assert all(r.ok for r in results)
    assert harness.connector().check_ready() == []  # delivery prepared what was missing
