"""The HubSpot connector against the HubSpot emulator: properties, keys, mapping, limits, errors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import requests

from connectors import hubspot
from leadsync.emulators.background import Fault
from leadsync.emulators.hubspot import HubSpotEmulator
from leadsync.errors import AuthError, ConfigError, PermanentError, RateLimited, TransientError
from tests.connector_harnesses import make_lead, scored

TOKEN = "pat-na1-00000000-1111-2222-3333-444444444444"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def emu() -> Iterator[HubSpotEmulator]:
    with HubSpotEmulator(token=TOKEN) as started:
        yield started


@pytest.fixture
def connect(emu: HubSpotEmulator) -> Iterator[Any]:
    made: list[hubspot.HubSpotConnector] = []

    def build(**settings: Any) -> hubspot.HubSpotConnector:
        values = {"token": TOKEN, "api_url": emu.url, **settings}
        made.append(hubspot.build("crm", hubspot.Settings(**values)))
        return made[-1]

    yield build
    for connector in made:
        connector.close()


def only_contact(emu: HubSpotEmulator, lead_id: str) -> dict[str, str]:
    contacts = emu.contacts_with("leadsync_lead_id", lead_id)
    assert len(contacts) == 1
    return contacts[0]["properties"]


def test_our_properties_are_created_once_with_the_lead_id_unique(emu, connect):
    connect().deliver([scored(make_lead(1), 70)])
    connect().ensure_ready()  # a restart finds them in place

    properties = emu.properties()
    assert properties["leadsync_lead_id"]["hasUniqueValue"] is True
    assert properties["leadsync_mql"]["type"] == "bool"
    assert emu.request_counts["POST /crm/v3/properties/contacts/batch/create"] == 1
    assert emu.request_counts["POST /crm/v3/properties/contacts"] == 0


def test_properties_the_batch_did_not_make_are_made_one_by_one(emu, connect):
    emu.inject(Fault(400, "{}", path="/crm/v3/properties/contacts/batch/create"))

    connect().ensure_ready()

    assert emu.request_counts["POST /crm/v3/properties/contacts"] == 6
    assert {"leadsync_score", "leadsync_campaign"} <= emu.properties().keys()


def test_missing_mapped_property_and_mql_stage_are_reported_with_their_key_path(emu, connect):
    connector = connect(properties={"budget": "budget_range"}, lifecycle_stage_for_mql=True)
    emu.portal.properties["lifecyclestage"]["options"] = [{"value": "lead", "label": "Lead"}]

    with pytest.raises(ConfigError) as caught:
        connector.ensure_ready()

    paths = [p.path for p in caught.value.problems]
    assert paths == [
        "destinations.crm.properties.budget",
        "destinations.crm.lifecycle_stage_for_mql",
    ]


def test_answers_are_mapped_and_full_name_is_split(emu, connect):
    lead = make_lead(2)
    lead = replace(lead, answers={**lead.answers, "site": ("https://quartermain.test",)})
    connect(properties={"site": "website", "job_title": ""}).deliver([scored(lead, 70)])

    props = only_contact(emu, lead.id)
    assert (props["firstname"], props["lastname"]) == ("Zelda", "Quartermain2")
    assert props["email"] == lead.email
    assert props["phone"] == "+15550100002"
    assert props["company"] == "Quartermain Widgets"
    assert props["website"] == "https://quartermain.test"
    assert "jobtitle" not in props
    assert props["leadsync_score_reasons"] == "VP title +20; Demo request +50"
    assert (props["leadsync_form"], props["leadsync_campaign"]) == ("Demo request", "Autumn launch")


def test_a_lead_without_email_is_created_once_and_found_again_by_lead_id(emu, connect):
    lead = make_lead(3, email=False)
    connector = connect()

    connector.deliver([scored(lead, 40)])
    results = connector.deliver([scored(lead, 65, revision=2)])

    props = only_contact(emu, lead.id)
    assert (props["leadsync_score"], props["leadsync_mql"]) == ("65", "true")
    assert "email" not in props
    assert results[0].external_id == props["hs_object_id"]


def test_a_malformed_email_keys_the_lead_by_its_id_instead_of_failing(emu, connect):
    lead = make_lead(4)
    lead = replace(lead, answers={**lead.answers, "email": ("zelda at quartermain",)})

    assert connect().deliver([scored(lead, 50)])[0].ok
    assert "email" not in only_contact(emu, lead.id)


def test_two_leads_of_one_person_in_a_batch_become_one_contact_showing_the_newest(emu, connect):
    first, second = make_lead(5), make_lead(6)
    second = replace(second, answers={**second.answers, "email": first.answers["email"]})

    results = connect().deliver([scored(second, 90), scored(first, 40)])

    assert len(emu.contacts()) == 1
    assert {r.lead_id for r in results if r.ok} == {first.id, second.id}
    assert len({r.external_id for r in results}) == 1
    props = emu.contacts()[0]["properties"]
    assert (props["leadsync_lead_id"], props["leadsync_score"]) == (second.id, "90")


def test_mql_moves_the_lifecycle_stage_and_falling_back_leaves_it(emu, connect):
    lead = make_lead(7)
    connector = connect(lifecycle_stage_for_mql=True)

    connector.deliver([scored(lead, 40)])
    assert "lifecyclestage" not in only_contact(emu, lead.id)
    connector.deliver([scored(lead, 70, revision=2)])
    assert only_contact(emu, lead.id)["lifecyclestage"] == "marketingqualifiedlead"
    connector.deliver([scored(lead, 30, revision=3)])

    props = only_contact(emu, lead.id)
    assert (props["leadsync_mql"], props["lifecyclestage"]) == ("false", "marketingqualifiedlead")


def test_one_bad_value_is_isolated_and_only_its_lead_fails(emu, connect):
    leads = [make_lead(n) for n in range(10)]
    answers = {**leads[6].answers, "stage": ("not-a-stage",)}
    leads[6] = replace(leads[6], answers=answers)
    connector = connect(properties={"stage": "lifecyclestage"})

    results = connector.deliver([scored(lead, 70) for lead in leads])

    failed = [r for r in results if not r.ok]
    assert [r.lead_id for r in failed] == [leads[6].id]
    assert isinstance(failed[0].error, PermanentError)
    assert "INVALID_OPTION" in str(failed[0].error)
    assert "zelda" not in str(failed[0].error).lower()
    assert len(emu.contacts()) == 9
    assert emu.upsert_requests <= 1 + 2 * 4  # halving 10 inputs takes at most 4 levels


def test_a_rate_limit_after_the_first_hundred_fails_only_the_rest(emu, connect):
    connector = connect()
    connector.ensure_ready()
    emu.throttle(skip=1, retry_after=4)

    results = connector.deliver([scored(make_lead(n), 70) for n in range(250)])

    assert sum(r.ok for r in results) == 100
    errors = [r.error for r in results if not r.ok]
    assert len(errors) == 150 and all(isinstance(e, RateLimited) for e in errors)
    assert errors[0].retry_after == 4


@pytest.mark.parametrize(
    ("throttle", "wait"),
    [
        ({"policy": "DAILY"}, hubspot.DAILY_LIMIT_WAIT),
        ({"policy": "SECONDLY"}, hubspot.SECONDLY_LIMIT_WAIT),
        ({"policy": "TEN_SECONDLY_ROLLING"}, 10.0),
        ({"policy": "DAILY", "retry_after": 42}, 42.0),
    ],
)
def test_429s_wait_as_long_as_hubspot_says(emu, connect, throttle, wait):
    emu.throttle(**throttle)

    with pytest.raises(RateLimited) as caught:
        connect().deliver([scored(make_lead(1), 70)])

    assert caught.value.retry_after == wait


def test_a_window_spent_by_another_app_of_the_portal_waits_for_the_window(emu, connect):
    emu.burst_limit = 2
    for _ in range(2):  # every app of a portal shares its window
        requests.get(f"{emu.url}/crm/v3/properties/contacts", headers=AUTH, timeout=5)

    with pytest.raises(RateLimited) as caught:
        connect().deliver([scored(make_lead(1), 70)])

    assert caught.value.retry_after == 10.0


def test_a_spent_window_holds_the_rest_of_the_burst_back_without_collecting_429s(emu, connect):
    emu.burst_limit = 3  # 1 read and 1 property creation, then one upsert spends the window

    results = connect().deliver([scored(make_lead(n), 70) for n in range(250)])

    assert sum(r.ok for r in results) == 100
    waits = {r.error.retry_after for r in results if isinstance(r.error, RateLimited)}
    assert len(results) == 250 and len(waits) == 1 and 9 < waits.pop() <= 10
    assert emu.upsert_requests == 1  # the held-back parts never asked


def test_a_deleted_leadsync_property_is_recreated_on_the_next_attempt(emu, connect):
    connector = connect()
    connector.deliver([scored(make_lead(1), 70)])
    emu.delete_property("leadsync_score_reasons")

    with pytest.raises(TransientError):
        connector.deliver([scored(make_lead(2), 70)])
    assert connector.deliver([scored(make_lead(2), 70)])[0].ok
    assert "leadsync_score_reasons" in emu.properties()


@pytest.mark.parametrize("fault", ["revoked", "scopes"])
def test_credential_problems_say_what_to_do_without_the_token(emu, connect, fault):
    emu.revoke_token() if fault == "revoked" else emu.deny_scopes()

    with pytest.raises(AuthError) as caught:
        connect().ensure_ready()

    assert caught.value.service == "HubSpot"
    assert "crm.objects.contacts" in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_settings_refuse_display_names_and_unknown_keys():
    with pytest.raises(ValueError, match="internal property names"):
        hubspot.Settings(token="t", properties={"budget": "Budget Range"})
    with pytest.raises(ValueError, match="extra"):
        hubspot.Settings(token="t", portal="123")
    assert "t-secret-token" not in repr(hubspot.Settings(token="t-secret-token"))
