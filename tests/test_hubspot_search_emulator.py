"""The HubSpot emulator's contact search (emulators/hubspot_search.py), over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from leadsync.emulators.hubspot import HubSpotEmulator
from leadsync.emulators.hubspot_search import SEARCH_PATH, edit_contact

TOKEN = "pat-na1-search"


@pytest.fixture
def emu() -> Iterator[HubSpotEmulator]:
    with HubSpotEmulator(token=TOKEN) as started:
        for n in range(5):
            stage = "customer" if n % 2 else "lead"
            started.portal.create({"email": f"p{n}@acme.test", "lifecyclestage": stage})
        yield started


def search(emu, body) -> requests.Response:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    return requests.post(emu.url + SEARCH_PATH, json=body, headers=headers, timeout=10)


def eq(name: str, value: str, operator: str = "EQ") -> dict:
    return {"propertyName": name, "operator": operator, "value": value}


def test_filters_sorts_properties_and_paging(emu):
    body = {
        "filterGroups": [{"filters": [eq("lifecyclestage", "CUSTOMER")]}],  # any case
        "sorts": [{"propertyName": "email", "direction": "DESCENDING"}],
        "properties": ["email"],
        "limit": 1,
    }
    first = search(emu, body).json()
    assert first["total"] == 2 and first["paging"] == {"next": {"after": "1"}}
    [contact] = first["results"]
    assert contact["properties"]["email"] == "p3@acme.test"
    assert set(contact["properties"]) == {"email", "createdate", "hs_object_id", "lastmodifieddate"}
    last = search(emu, body | {"after": "1"}).json()
    assert [c["properties"]["email"] for c in last["results"]] == ["p1@acme.test"]
    assert "paging" not in last


def test_groups_are_or_ed_and_date_times_compare_as_milliseconds(emu):
    [one] = emu.contacts_with("email", "p0@acme.test")
    edit_contact(emu, one["id"], lifecyclestage="opportunity")
    [edited] = emu.contacts_with("email", "p0@acme.test")
    changed = edited["properties"]["lastmodifieddate"]
    groups = [
        {"filters": [eq("lastmodifieddate", changed, "GTE")]},
        {"filters": [{"propertyName": "lifecyclestage", "operator": "IN", "values": ["customer"]}]},
    ]
    found = search(emu, {"filterGroups": groups, "properties": ["email"]}).json()
    assert sorted(c["properties"]["email"] for c in found["results"]) == [
        "p0@acme.test",
        "p1@acme.test",
        "p3@acme.test",
    ]
    missing = {"filters": [{"propertyName": "phone", "operator": "NOT_HAS_PROPERTY"}]}
    assert search(emu, {"filterGroups": [missing]}).json()["total"] == 5


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"limit": 201}, "limit must be between 1 and 200"),
        ({"limit": 100, "after": "9950"}, "Paging past 10000 results"),
        ({"filterGroups": [{"filters": [eq("email", "x", "LIKE")]}]}, "Unknown operator"),
        ({"filterGroups": [{"filters": [eq("lastmodifieddate", "soon", "GT")]}]}, "date-time"),
    ],
)
def test_what_hubspot_refuses_is_a_400(emu, body, message):
    reply = search(emu, body)
    assert reply.status_code == 400
    assert message in reply.json()["message"] and reply.json()["category"] == "VALIDATION_ERROR"


def test_search_needs_the_token(emu):
    reply = requests.post(emu.url + SEARCH_PATH, json={}, timeout=10)
    assert reply.status_code == 401
