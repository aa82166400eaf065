"""The HubSpot emulator answers like HubSpot's API reference says, over plain requests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from leadsync.emulators.hubspot import HubSpotEmulator

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
