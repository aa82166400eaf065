"""Lead stages reach Meta's Conversions API once each, in order, and old stages are not sent.

The builder (`leadsync/facebook/conversions.py`) is tested on its own; the
connector (`connectors/meta_conversions.py`) against the Graph emulator's CRM
dataset over real HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError
from structlog.testing import capture_logs

import connectors
from connectors.meta_conversions import MetaConversionsConnector, Settings
from leadsync.emulators.graph import GraphEmulator
from leadsync.errors import AuthError, BadLead, PermanentError, RateLimited, TransientError
from leadsync.facebook.conversions import DEFAULT_STAGE_NAMES, stage_events
from leadsync.models import Lead, LeadStage, Score, ScoredLead

DATASET = "880000000000001"
TOKEN = "emulator-token"
NOW = datetime.now(UTC).replace(microsecond=0)


def lead(number: int = 1, *, age: timedelta = timedelta(hours=5)) -> Lead:
    return Lead(
        id=str(900_000_000_000_000 + number),
        created_time=NOW - age,
        page_id="111",
        form_id="222",
        answers={"email": (f"zoe{number}@example.test",)},
    )


def staged(the_lead: Lead, *stages: tuple[str, timedelta], mql: bool = True, **kw) -> ScoredLead:
    """`the_lead` scored (an MQL or not) with stages reached `ago` before NOW."""
    made = tuple(LeadStage(the_lead.id, name, NOW - ago) for name, ago in stages)
    return ScoredLead(the_lead, Score(80 if mql else 20, mql), stages=made, **kw)


@pytest.fixture
def emu() -> Iterator[GraphEmulator]:
    with GraphEmulator(access_token=TOKEN) as emulator:
        emulator.add_dataset(DATASET)
        yield emulator


@pytest.fixture
def connector(emu: GraphEmulator) -> Iterator[MetaConversionsConnector]:
    settings = Settings(dataset_id=DATASET, access_token=TOKEN, graph_url=emu.url)
    built = MetaConversionsConnector("meta", settings, clock=lambda: NOW)
    yield built
    built.close()


def received(emu: GraphEmulator) -> list[tuple[str, str]]:
    """(lead id, event name) of every event the dataset kept, in order."""
    return [(e["user_data"]["lead_id"], e["event_name"]) for e in emu.conversion_events(DATASET)]


# -- the builder ----------------------------------------------------------------------


def test_events_follow_the_stage_order_with_the_crm_fields():
    the_lead = lead()
    stages = [
        LeadStage(the_lead.id, "won", NOW - timedelta(hours=1), Decimal("1200.50")),
        LeadStage(the_lead.id, "lead", the_lead.created_time),
        LeadStage(the_lead.id, "sql", NOW - timedelta(hours=2)),
    ]

    events, expired = stage_events(the_lead, stages, DEFAULT_STAGE_NAMES, NOW)

    assert expired == []
    assert [e["event_name"] for e in events] == ["Lead", "Sales Qualified Lead", "Converted"]
    first = events[0]
    assert first["event_time"] == int(the_lead.created_time.timestamp())
    assert first["event_id"] == f"{the_lead.id}.lead"
    assert first["action_source"] == "system_generated"
    assert first["user_data"] == {"lead_id": the_lead.id}
    assert first["custom_data"] == {"event_source": "crm", "lead_event_source": "leadsync"}
    assert events[2]["custom_data"]["value"] == 1200.5


def test_unmapped_stages_are_neither_sent_nor_expired():
    the_lead = lead()
    stages = [LeadStage(the_lead.id, s, NOW) for s in ("contacted", "lost", "sql")]

    events, expired = stage_events(the_lead, stages, DEFAULT_STAGE_NAMES, NOW)

    assert [e["event_id"] for e in events] == [f"{the_lead.id}.sql"]
    assert expired == []


def test_stages_older_than_seven_days_or_the_lead_are_expired_not_sent():
    the_lead = lead(age=timedelta(days=8))
    too_old = LeadStage(the_lead.id, "lead", the_lead.created_time)
    edge = LeadStage(the_lead.id, "mql", NOW - timedelta(days=7) + timedelta(minutes=30))
    before_lead = LeadStage(the_lead.id, "sql", the_lead.created_time - timedelta(hours=1))
    fresh = LeadStage(the_lead.id, "won", NOW - timedelta(days=6))

    events, expired = stage_events(
        the_lead, [too_old, edge, before_lead, fresh], {**DEFAULT_STAGE_NAMES}, NOW
    )

    assert [e["event_name"] for e in events] == ["Converted"]
    assert expired == [too_old, edge, before_lead]  # the margin keeps the 7-day edge back


def test_a_stage_dated_in_the_future_is_sent_as_now():
    the_lead = lead()
    ahead = LeadStage(the_lead.id, "sql", NOW + timedelta(minutes=10))

    events, _ = stage_events(the_lead, [ahead], DEFAULT_STAGE_NAMES, NOW)

    assert events[0]["event_time"] == int(NOW.timestamp())


# -- the connector -------------------------------------------------------------------------


def test_a_new_mql_sends_lead_then_mql_and_records_both(emu, connector):
    the_lead = lead()

    [result] = connector.deliver([staged(the_lead)])

    assert result.ok and result.external_id == "lead,mql"
    assert received(emu) == [(the_lead.id, "Lead"), (the_lead.id, "Marketing Qualified Lead")]


def test_each_stage_is_sent_once_in_order_across_revisions(emu, connector):
    the_lead = lead()
    first = staged(the_lead, mql=False)
    [r1] = connector.deliver([first])
    later = staged(the_lead, ("mql", timedelta(hours=3)), ("sql", timedelta(hours=2)), revision=2)
    [r2] = connector.deliver([replace(later, external_id=r1.external_id)])
    won = staged(
        the_lead,
        ("mql", timedelta(hours=3)),
        ("sql", timedelta(hours=2)),
        ("won", timedelta(hours=1)),
        revision=3,
    )
    [r3] = connector.deliver([replace(won, external_id=r2.external_id)])
    [r4] = connector.deliver([replace(won, external_id=r3.external_id)])

    assert (r1.external_id, r2.external_id, r3.external_id) == (
        "lead",
        "lead,mql,sql",
        "lead,mql,sql,won",
    )
    assert r4.external_id == r3.external_id
    names = [name for _, name in received(emu)]
    assert names == ["Lead", "Marketing Qualified Lead", "Sales Qualified Lead", "Converted"]
    assert emu.conversion_counts(DATASET)["duplicates"] == 0
    assert emu.call_count(f"/{DATASET}/events") == 3  # nothing new: no request


def test_a_batch_resent_after_a_crash_is_counted_once_by_meta(emu, connector):
    """The runner did not record the first delivery, so the same batch goes again."""
    batch = [staged(lead(n), ("sql", timedelta(hours=1))) for n in range(3)]

    first = connector.deliver(batch)
    again = connector.deliver(batch)

    assert [r.external_id for r in first] == [r.external_id for r in again]
    counts = emu.conversion_counts(DATASET)
    assert counts == {"received": 18, "accepted": 9, "duplicates": 9}
    for n in range(3):
        lead_id = lead(n).id
        mine = [name for who, name in received(emu) if who == lead_id]
        assert mine == ["Lead", "Marketing Qualified Lead", "Sales Qualified Lead"]


def test_expired_stages_are_logged_and_recorded_not_sent(emu, connector):
    old = lead(1, age=timedelta(days=9))
    item = staged(old, ("mql", timedelta(days=8)), ("sql", timedelta(days=1)))

    with capture_logs() as logs:
        [result] = connector.deliver([item])

    assert result.ok and result.external_id == "lead!expired,mql!expired,sql"
    assert received(emu) == [(old.id, "Sales Qualified Lead")]
    expired = [e for e in logs if e["event"] == "conversions.stage_expired"]
    assert [(e["lead_id"], e["stage"]) for e in expired] == [(old.id, "lead"), (old.id, "mql")]
    assert "zoe1@example.test" not in repr(logs)
    [again] = connector.deliver([replace(item, external_id=result.external_id)])
    assert again.external_id == result.external_id
    assert emu.call_count(f"/{DATASET}/events") == 1


def test_a_lead_without_a_facebook_id_fails_alone(emu, connector):
    stray = replace(lead(), id="90001")

    results = connector.deliver([staged(stray), staged(lead(2))])

    assert isinstance(results[0].error, BadLead)
    assert results[1].ok
    assert {who for who, _ in received(emu)} == {lead(2).id}


def test_more_than_1000_events_go_in_several_requests(emu, connector):
    batch = [staged(lead(n), ("sql", timedelta(hours=1))) for n in range(400)]

    results = connector.deliver(batch)

    assert all(r.ok for r in results)
    assert emu.conversion_counts(DATASET)["accepted"] == 1200
    assert emu.call_count(f"/{DATASET}/events") == 3


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (lambda emu: emu.expire_token(), AuthError),
        (lambda emu: emu.inject_fault(80001, path=f"/{DATASET}/events"), RateLimited),
        (lambda emu: emu.inject_fault("http500", path=f"/{DATASET}/events"), TransientError),
        (lambda emu: emu.inject_fault("html502", path=f"/{DATASET}/events"), TransientError),
    ],
)
def test_faults_become_error_kinds_and_nothing_is_recorded(emu, connector, fault, kind):
    fault(emu)

    with pytest.raises(kind) as info:
        connector.deliver([staged(lead())])

    assert TOKEN not in str(info.value)
    assert emu.conversion_events(DATASET) == []


def test_an_unknown_dataset_is_a_permanent_error_that_names_it(emu):
    settings = Settings(dataset_id="880000000000999", access_token=TOKEN, graph_url=emu.url)
    connector = MetaConversionsConnector("meta", settings, clock=lambda: NOW)

    [result] = connector.deliver([staged(lead())])
    connector.close()

    assert isinstance(result.error, PermanentError)
    assert "dataset 880000000000999" in str(result.error)


def test_the_type_is_registered_and_its_settings_checked():
    assert connectors.load("meta_conversions").Settings is Settings
    with pytest.raises(ValidationError, match="digits only"):
        Settings(dataset_id="pixel-1", access_token=TOKEN)
    with pytest.raises(ValidationError, match="unknown stages"):
        Settings(dataset_id=DATASET, access_token=TOKEN, stages={"closed": "Converted"})
    with pytest.raises(ValidationError) as info:
        Settings(dataset_id=DATASET, access_token="")  # type: ignore[arg-type]
    assert info.value.errors()[0]["loc"] == ("access_token",)
    assert "system-user token" in str(info.value)
    with pytest.raises(ValidationError):
        Settings(dataset_id=DATASET)  # type: ignore[call-arg]


def test_a_refused_token_says_to_fix_this_destinations_token(emu, connector):
    emu.expire_token()

    with pytest.raises(AuthError) as info:
        connector.deliver([staged(lead())])

    message = str(info.value)
    assert f"dataset {DATASET}" in message and "190/463" in message
    assert "the destination's access_token" in message
    assert "facebook.access_token" not in message and TOKEN not in message
