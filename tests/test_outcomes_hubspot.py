"""Outcomes recorded in HubSpot (leadsync/outcomes/hubspot.py), against the HubSpot emulator.

Leads go through the real outbox and connector (so the store keeps each
contact id), then a salesperson (the emulator's `set_property`) moves contacts
along; the reader, through the contact search, records the stages once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from connectors import hubspot
from leadsync.abc import ScoreUpdate
from leadsync.emulators import hubspot_search
from leadsync.emulators.hubspot import HubSpotEmulator
from leadsync.emulators.hubspot_portal import stage_date
from leadsync.errors import AuthError
from leadsync.outbox.runner import DeliveryWorker
from leadsync.outcomes import hubspot as reader_module
from leadsync.outcomes.hubspot import HubSpotOutcomes, cursor_key
from leadsync.testing.harness import make_lead, scored

TOKEN = "pat-na1-00000000-1111-2222-3333-444444444444"
SEARCH = "POST /crm/v3/objects/contacts/search"


@pytest.fixture
def store_backend() -> str:
    """The reader is the same on every store; tests/test_store_outcomes.py covers both."""
    return "sqlite"


@pytest.fixture
def emu() -> Iterator[HubSpotEmulator]:
    with HubSpotEmulator(token=TOKEN) as started:
        yield started


def edit_contact(emu: HubSpotEmulator, contact_id: str, **properties: str) -> None:
    """A salesperson edits a contact in HubSpot's UI (a stage may move back there)."""
    for name, value in properties.items():
        emu.set_property(contact_id, name, value)


def backdate_stage(emu: HubSpotEmulator, contact_id: str, stage: str, when: datetime) -> None:
    """The contact entered `stage` at `when`, before leadsync looked (HubSpot's own date)."""
    with emu._state:  # noqa: SLF001 - HubSpot sets this read-only date itself
        properties = emu.portal.contacts[contact_id]["properties"]
        properties[stage_date(stage)] = str(int(when.timestamp() * 1000))


def settings(emu, **keys) -> hubspot.Settings:
    return hubspot.Settings(token=TOKEN, api_url=emu.url, **keys)


def deliver(emu, store, leads) -> dict[str, str]:
    """Stores, scores and delivers leads through the outbox; lead id -> contact id."""
    store.save_leads(leads)
    store.save_scores([ScoreUpdate(lead.id, scored(lead, 40).score, ("crm",)) for lead in leads])
    connector = hubspot.build("crm", settings(emu))
    while DeliveryWorker(store, "crm", connector, owner="me", batch_size=100).run_once():
        pass
    connector.close()
    return store.external_ids("crm", [lead.id for lead in leads])


def stages(store, lead_id: str) -> list[str]:
    return [s.stage for s in store.stages_for([lead_id]).get(lead_id, [])]


@pytest.fixture
def reader(emu, store) -> Iterator:
    made = []

    def make(**keys) -> HubSpotOutcomes:
        made.append(HubSpotOutcomes("crm", settings(emu, **keys), store))
        return made[-1]

    yield make
    for one in made:
        one.close()


def test_lifecycle_stages_sales_sets_become_stages_once(emu, store, reader):
    leads = [make_lead(n) for n in range(4)]
    contacts = deliver(emu, store, leads)
    read = reader()
    assert read.read() == []  # nothing moved yet
    edit_contact(emu, contacts[leads[0].id], lifecyclestage="salesqualifiedlead")
    edit_contact(emu, contacts[leads[1].id], lifecyclestage="opportunity")
    edit_contact(emu, contacts[leads[2].id], lifecyclestage="customer")
    edit_contact(emu, contacts[leads[3].id], lifecyclestage="lead")  # not a stage of ours
    new = read.read()
    assert sorted((s.lead_id, s.stage, s.source) for s in new) == [
        (leads[0].id, "sql", "hubspot:crm"),
        (leads[1].id, "sql", "hubspot:crm"),
        (leads[2].id, "won", "hubspot:crm"),
    ]
    edit_contact(emu, contacts[leads[1].id], lifecyclestage="salesqualifiedlead")  # back: same
    edit_contact(emu, contacts[leads[0].id], lifecyclestage="customer")
    assert [(s.lead_id, s.stage) for s in read.read()] == [(leads[0].id, "won")]
    assert stages(store, leads[0].id) == ["sql", "won"]
    assert stages(store, leads[1].id) == ["sql"]
    assert stages(store, leads[3].id) == []


def test_a_lost_property_and_a_mapping_of_its_own(emu, store, reader):
    leads = [make_lead(n) for n in range(2)]
    contacts = deliver(emu, store, leads)
    read = reader(
        lifecycle_stages={"won": ["evangelist"]},
        lost_property="hs_lead_status",
        lost_values=["UNQUALIFIED"],
    )
    edit_contact(emu, contacts[leads[0].id], hs_lead_status="UNQUALIFIED")
    edit_contact(emu, contacts[leads[1].id], lifecyclestage="evangelist")
    new = read.read()
    assert sorted((s.lead_id, s.stage) for s in new) == [
        (leads[0].id, "lost"),
        (leads[1].id, "won"),
    ]


def test_a_stage_is_dated_by_hubspot_s_own_stage_date_when_it_has_one(emu, store, reader):
    [lead] = [make_lead(1)]
    contacts = deliver(emu, store, [lead])
    when = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    edit_contact(emu, contacts[lead.id], lifecyclestage="customer")
    backdate_stage(emu, contacts[lead.id], "customer", when)
    reader().read()
    [won] = store.stages_for([lead.id])[lead.id]
    assert won.reached_at == when


def test_reading_goes_on_from_the_stored_cursor_with_an_overlap(emu, store, reader):
    leads = [make_lead(n) for n in range(2)]
    contacts = deliver(emu, store, leads)
    reader().read()
    cursor = store.get_meta(cursor_key("crm"))
    assert cursor
    # A contact whose last change is long before the cursor is not read again...
    edit_contact(emu, contacts[leads[0].id], lifecyclestage="customer")
    emu.portal.contacts[contacts[leads[0].id]]["properties"]["lastmodifieddate"] = (
        (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    )
    # ...one changed within the overlap is (HubSpot's index may have shown it late).
    edit_contact(emu, contacts[leads[1].id], lifecyclestage="customer")
    assert [s.lead_id for s in reader().read()] == [leads[1].id]  # a replica taking over
    store.set_meta(cursor_key("crm"), "")  # a new destination reads 90 days back
    assert [s.lead_id for s in reader().read()] == [leads[0].id]


def test_many_changed_contacts_are_read_in_pages_of_100(emu, store, reader):
    leads = [make_lead(n) for n in range(250)]
    contacts = deliver(emu, store, leads)
    for lead in leads:
        edit_contact(emu, contacts[lead.id], lifecyclestage="customer")
    emu.request_counts.clear()
    assert len(reader().read()) == 250
    assert emu.request_counts[SEARCH] == 3


def test_past_hubspot_s_paging_cap_the_search_starts_again_from_the_newest(
    emu, store, reader, monkeypatch
):
    monkeypatch.setattr(hubspot_search, "MAX_RESULTS", 200)  # HubSpot's is 10,000
    monkeypatch.setattr(reader_module, "SEARCH_RESULTS_CAP", 200)
    leads = [make_lead(n) for n in range(350)]
    contacts = deliver(emu, store, leads)
    for lead in leads:
        edit_contact(emu, contacts[lead.id], lifecyclestage="salesqualifiedlead")
    assert len(reader().read()) == 350


def test_one_contact_for_two_leads_is_the_newest_lead_s_outcome(emu, store, reader):
    first = make_lead(1)
    again = replace(
        first, id=str(int(first.id) + 1), created_time=first.created_time + timedelta(days=1)
    )
    contacts = deliver(emu, store, [first, again])
    assert contacts[first.id] == contacts[again.id]
    edit_contact(emu, contacts[first.id], lifecyclestage="customer")
    assert [s.lead_id for s in reader().read()] == [again.id]


def test_contacts_leadsync_did_not_make_are_not_read(emu, store, reader):
    hubspot.build("crm", settings(emu)).ensure_ready()  # leadsync's properties exist
    with emu._state:
        emu.portal.create({"email": "someone@else.test", "lifecyclestage": "customer"})
    assert reader().read() == []


def test_a_revoked_token_is_an_auth_error_and_the_cursor_stays(emu, store, reader):
    deliver(emu, store, [make_lead(1)])
    read = reader()
    read.read()
    cursor = store.get_meta(cursor_key("crm"))
    emu.revoke_token()
    with pytest.raises(AuthError):
        read.read()
    assert store.get_meta(cursor_key("crm")) == cursor


def test_hubspot_outcome_keys_are_checked(emu):
    with pytest.raises(ValueError, match="unknown stage 'closed'"):
        settings(emu, lifecycle_stages={"closed": ["customer"]})
    with pytest.raises(ValueError, match="together"):
        settings(emu, lost_property="hs_lead_status")
    assert not settings(emu, lifecycle_stages={}).reads_outcomes
