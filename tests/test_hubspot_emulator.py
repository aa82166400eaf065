"""The HubSpot emulator answers like HubSpot's API reference says, over plain requests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from leadsync.emulators.hubspot import HubSpotEmulator
from leadsync.emulators.hubspot_portal import Rejected

TOKEN = "pat-na1-emulator-test"


@pytest.fixture
def emu() -> Iterator[HubSpotEmulator]:
    with HubSpotEmulator(token=TOKEN) as started:
        yield started


@pytest.fixture
def api(emu: HubSpotEmulator) -> Iterator[Any]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"

    def call(method: str, path: str, body: Any = None) -> requests.Response:
        return session.request(method, emu.url + path, json=body, timeout=5)

    yield call
    session.close()


def upsert(api: Any, *inputs: dict[str, Any]) -> requests.Response:
    return api("POST", "/crm/v3/objects/contacts/batch/upsert", {"inputs": list(inputs)})


def by_email(email: str, **properties: str) -> dict[str, Any]:
    return {"idProperty": "email", "id": email, "properties": properties}


def test_a_wrong_token_gets_hubspots_error_json(emu):
    response = requests.get(emu.url + "/crm/v3/properties/contacts", timeout=5)

    assert response.status_code == 401
    body = response.json()
    assert (body["status"], body["category"]) == ("error", "INVALID_AUTHENTICATION")
    assert body["correlationId"]


def test_every_answer_carries_the_rate_limit_headers(api):
    headers = api("GET", "/crm/v3/properties/contacts").headers

    assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert headers["X-HubSpot-RateLimit-Max"] == "100"
    assert headers["X-HubSpot-RateLimit-Remaining"] == "99"


def test_a_burst_past_the_window_gets_the_429_body_with_its_policy(emu, api):
    emu.burst_limit = 2
    statuses = [api("GET", "/crm/v3/properties/contacts").status_code for _ in range(3)]
    last = api("GET", "/crm/v3/properties/contacts")

    assert statuses == [200, 200, 429]
    assert last.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert last.headers["X-HubSpot-RateLimit-Remaining"] == "0"


def test_upsert_by_email_creates_then_updates_the_same_contact(api):
    first = upsert(api, by_email("Zoe@Example.test", firstname="Zoe")).json()["results"][0]
    again = upsert(api, by_email("zoe@example.test", lastname="Q")).json()["results"][0]

    assert (first["new"], again["new"]) == (True, False)
    assert first["id"] == again["id"]
    assert again["properties"]["email"] == "zoe@example.test"
    assert (again["properties"]["firstname"], again["properties"]["lastname"]) == ("Zoe", "Q")


@pytest.mark.parametrize(
    ("inputs", "says"),
    [
        ([by_email(f"p{n}@example.test") for n in range(101)], "exceeds the limit of 100"),
        ([by_email("a@example.test"), by_email("A@example.test")], "Duplicate IDs"),
        ([{"idProperty": "firstname", "id": "Zoe", "properties": {}}], "non-unique"),
        ([by_email("a@example.test", favourite="x")], "PROPERTY_DOESNT_EXIST"),
        ([by_email("not-an-email")], "INVALID_EMAIL"),
        ([by_email("a@example.test", lifecyclestage="hot")], "INVALID_OPTION"),
    ],
)
def test_one_bad_input_rejects_the_whole_batch(emu, api, inputs, says):
    response = upsert(api, by_email("fine@example.test"), *inputs)

    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"
    assert says in response.json()["message"]
    assert emu.contacts() == []


def test_custom_unique_properties_key_upserts(api):
    spec = {"name": "ext_id", "label": "Ext", "type": "string", "fieldType": "text",
            "groupName": "contactinformation", "hasUniqueValue": True}  # fmt: skip
    assert api("POST", "/crm/v3/properties/contacts", spec).status_code == 201
    assert api("POST", "/crm/v3/properties/contacts", spec).status_code == 409
    keyed = {"idProperty": "ext_id", "id": "L1", "properties": {"firstname": "A"}}

    ids = {upsert(api, keyed).json()["results"][0]["id"] for _ in range(2)}

    assert len(ids) == 1


def test_a_bool_property_needs_its_options(api):
    spec = {"name": "flag", "label": "Flag", "type": "bool", "fieldType": "booleancheckbox",
            "groupName": "contactinformation"}  # fmt: skip
    assert api("POST", "/crm/v3/properties/contacts", spec).status_code == 400


def test_lifecycle_stages_only_move_forward(emu, api):
    upsert(api, by_email("c@example.test", lifecyclestage="customer"))
    upsert(api, by_email("c@example.test", lifecyclestage="marketingqualifiedlead"))

    assert emu.contacts()[0]["properties"]["lifecyclestage"] == "customer"


def test_creating_a_known_email_one_by_one_conflicts(api):
    body = {"properties": {"email": "d@example.test"}}
    assert api("POST", "/crm/v3/objects/contacts", body).status_code == 201

    conflict = api("POST", "/crm/v3/objects/contacts", body)

    assert conflict.status_code == 409
    assert conflict.json()["category"] == "CONFLICT"


def test_injected_failures_are_served_in_order_then_clear(emu, api):
    emu.fail(502, html=True)
    emu.throttle(policy="DAILY")

    first, second = (
        api("GET", "/crm/v3/properties/contacts"),
        api("GET", "/crm/v3/properties/contacts"),
    )

    assert (first.status_code, second.status_code) == (502, 429)
    assert "text/html" in first.headers["Content-Type"]
    assert second.json()["policyName"] == "DAILY"
    assert api("GET", "/crm/v3/properties/contacts").status_code == 200


def test_batch_property_creation_reports_what_it_could_not_make(api):
    make = {"label": "L", "type": "string", "fieldType": "text", "groupName": "contactinformation"}

    response = api(
        "POST",
        "/crm/v3/properties/contacts/batch/create",
        {"inputs": [{**make, "name": "fresh_one"}, {**make, "name": "email"}]},
    )

    assert response.status_code == 207
    body = response.json()
    assert [p["name"] for p in body["results"]] == ["fresh_one"]
    assert body["errors"][0]["category"] == "OBJECT_ALREADY_EXISTS"


# -- contact search and what people change ------------------------------------------------

SEARCH = "/crm/v3/objects/contacts/search"


def contact_ids(api: Any, *emails: str) -> list[str]:
    results = upsert(api, *(by_email(e, firstname=e[:3]) for e in emails)).json()["results"]
    by_mail = {r["properties"]["email"]: r["id"] for r in results}
    return [by_mail[e] for e in emails]


def modified_since(moment: str) -> dict[str, Any]:
    return {"propertyName": "lastmodifieddate", "operator": "GT", "value": moment}


def test_search_answers_hubspots_shape_with_the_default_properties(api):
    contact_ids(api, "a@x.test", "b@x.test")

    body = api("POST", SEARCH, {}).json()

    assert body["total"] == 2 and "paging" not in body
    first = body["results"][0]
    assert set(first["properties"]) == {
        "createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"
    }  # fmt: skip
    assert first["properties"]["lastname"] is None
    assert {"id", "createdAt", "updatedAt", "archived"} <= set(first)


def test_a_salesperson_moving_a_stage_is_found_by_lastmodifieddate_in_order(emu, api):
    first, second, third = contact_ids(api, "a@x.test", "b@x.test", "c@x.test")
    mark = emu.contacts_with("email", "c@x.test")[0]["properties"]["lastmodifieddate"]

    emu.set_property(second, "lifecyclestage", "customer")
    emu.set_property(first, "lifecyclestage", "salesqualifiedlead")
    body = {
        "filterGroups": [{"filters": [modified_since(mark)]}],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["lifecyclestage"],
    }
    found = api("POST", SEARCH, body).json()

    assert [r["id"] for r in found["results"]] == [second, first]
    assert [r["properties"]["lifecyclestage"] for r in found["results"]] == [
        "customer", "salesqualifiedlead"
    ]  # fmt: skip
    assert set(found["results"][0]["properties"]) == {
        "createdate", "hs_object_id", "lastmodifieddate", "lifecyclestage"
    }  # fmt: skip
    assert third not in [r["id"] for r in found["results"]]


def test_every_change_moves_lastmodifieddate_forward(emu, api):
    [contact] = contact_ids(api, "a@x.test")
    stamps = [emu.contacts()[0]["properties"]["lastmodifieddate"]]
    for stage in ("lead", "marketingqualifiedlead", "lead"):
        stamps.append(
            emu.set_property(contact, "lifecyclestage", stage)["properties"]["lastmodifieddate"]
        )

    assert stamps == sorted(stamps) and len(set(stamps)) == 4
    assert emu.contacts()[0]["properties"]["lifecyclestage"] == "lead"  # a person may move it back


def test_eq_filters_an_owner_and_groups_are_ored(emu, api):
    a, b, c = contact_ids(api, "a@x.test", "b@x.test", "c@x.test")
    emu.add_owner("7001", "Sam Seller")
    emu.set_property(a, "hubspot_owner_id", "7001")
    emu.set_property(c, "lifecyclestage", "customer")
    owner = {"propertyName": "hubspot_owner_id", "operator": "EQ", "value": "7001"}
    customer = {"propertyName": "lifecyclestage", "operator": "EQ", "value": "customer"}

    only_owner = api("POST", SEARCH, {"filterGroups": [{"filters": [owner]}]}).json()
    either = api("POST", SEARCH, {"filterGroups": [{"filters": [owner]}, {"filters": [customer]}]})
    both = api("POST", SEARCH, {"filterGroups": [{"filters": [owner, customer]}]}).json()

    assert [r["id"] for r in only_owner["results"]] == [a]
    assert [r["id"] for r in either.json()["results"]] == [a, c]
    assert both["total"] == 0 and b


def test_a_property_change_hubspot_would_refuse_is_refused(emu, api):
    [contact] = contact_ids(api, "a@x.test")

    with pytest.raises(Rejected, match="not one of the allowed options"):
        emu.set_property(contact, "hubspot_owner_id", "404")
    with pytest.raises(Rejected, match="does not exist"):
        emu.set_property("999999", "lifecyclestage", "customer")


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"limit": 201}, "limit must be between 0 and 200"),
        ({"after": "10000"}, "Paging past the first 10000"),
        (
            {
                "filterGroups": [
                    {"filters": [{"propertyName": "nope", "operator": "EQ", "value": 1}]}
                ]
            },
            "Property nope does not exist",
        ),
        ({"filterGroups": [{"filters": [modified_since("0")]}] * 6}, "at most 5 groups"),
        ({"sorts": ["email", "firstname"]}, "at most one sort"),
    ],
)
def test_search_refuses_what_hubspot_refuses(api, body, says):
    response = api("POST", SEARCH, body)

    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"
    assert says in response.json()["message"]


def test_after_pages_and_no_query_reaches_past_10000_results(emu, api):
    with emu._state:  # noqa: SLF001 - 10,050 contacts in-process; through HTTP it takes minutes
        for start in range(0, 10_050, 100):
            emu.portal.upsert(
                [by_email(f"c{n}@x.test") for n in range(start, min(start + 100, 10_050))]
            )
    first = api("POST", SEARCH, {"limit": 200}).json()
    second = api("POST", SEARCH, {"limit": 200, "after": first["paging"]["next"]["after"]}).json()
    last = api("POST", SEARCH, {"limit": 200, "after": "9900"}).json()

    assert first["total"] == 10_050 and len(first["results"]) == 200
    assert first["paging"]["next"]["after"] == "200"
    assert int(second["results"][0]["id"]) == int(first["results"][-1]["id"]) + 1
    assert len(last["results"]) == 100 and "paging" not in last


def test_search_needs_the_token_and_the_controls_do_not(emu, api):
    [contact] = contact_ids(api, "a@x.test")

    assert requests.post(emu.url + SEARCH, json={}, timeout=5).status_code == 401
    assert requests.post(f"{emu.url}/_emulator/owners", json={"id": "7"}, timeout=5).ok
    changed = requests.post(
        f"{emu.url}/_emulator/contacts/{contact}/properties",
        json={"name": "hubspot_owner_id", "value": "7"},
        timeout=5,
    )
    assert changed.json()["properties"]["hubspot_owner_id"] == "7"
