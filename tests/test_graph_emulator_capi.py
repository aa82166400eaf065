"""The Graph emulator's Conversions API refuses what Meta refuses and keeps what CRM datasets keep.

Events go through the facebook-business SDK's own serverside objects and
`AdsPixel.create_event` (JSON strings inside `data`, form-encoded), or through
plain requests with a JSON body, over real HTTP.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from facebook_business.adobjects.adspixel import AdsPixel
from facebook_business.adobjects.serverside.action_source import ActionSource
from facebook_business.adobjects.serverside.custom_data import CustomData
from facebook_business.adobjects.serverside.event import Event
from facebook_business.adobjects.serverside.user_data import UserData
from facebook_business.api import FacebookAdsApi
from facebook_business.exceptions import FacebookRequestError
from facebook_business.session import FacebookSession

from leadsync.emulators.graph import GraphEmulator

TOKEN = "emulator-token"
DATASET = "880000000000001"
LEAD = "900000000000123"
DAY = 24 * 3600


@pytest.fixture
def emu() -> Iterator[GraphEmulator]:
    with GraphEmulator(access_token=TOKEN) as emulator:
        emulator.add_dataset(DATASET)
        yield emulator


def crm_event(stage: str = "Lead", *, lead_id: str = LEAD, age: int = 3600, **changes: Any):
    """A Conversion Leads event as the payload specification shows it; `changes` override keys."""
    event: dict[str, Any] = {
        "event_name": stage,
        "event_time": int(time.time()) - age,
        "event_id": f"{lead_id}.{stage}",
        "action_source": "system_generated",
        "user_data": {"lead_id": lead_id},
        "custom_data": {"event_source": "crm", "lead_event_source": "leadsync"},
    }
    for key, value in changes.items():
        if value is None:
            event.pop(key, None)
        else:
            event[key] = value
    return event


def post(emu: GraphEmulator, data: Any, token: str | None = TOKEN, dataset: str = DATASET):
    body: dict[str, Any] = {"data": data}
    if token is not None:
        body["access_token"] = token
    return requests.post(f"{emu.url}/v24.0/{dataset}/events", json=body, timeout=10)


def sdk_event(stage: str, at: int) -> Event:
    return Event(
        event_name=stage,
        event_time=at,
        event_id=f"{LEAD}.{stage}",
        action_source=ActionSource.SYSTEM_GENERATED,
        user_data=UserData(lead_id=LEAD),
        custom_data=CustomData(custom_properties={"event_source": "crm", "lead_event_source": "x"}),
    )


def test_the_sdk_sends_crm_events_and_gets_metas_answer(emu):
    session = FacebookSession(access_token=TOKEN)
    session.GRAPH = emu.url
    api = FacebookAdsApi(session, api_version="v24.0")
    now = int(time.time())
    events = [json.dumps(sdk_event(s, now - 60).normalize()) for s in ("Lead", "Converted")]

    answer = AdsPixel(DATASET, api=api).create_event(params={"data": events})

    assert answer["events_received"] == 2
    assert answer["messages"] == [] and answer["fbtrace_id"]
    received = emu.conversion_events(DATASET)
    assert [e["event_name"] for e in received] == ["Lead", "Converted"]
    assert received[0]["user_data"] == {"lead_id": LEAD}


@pytest.mark.parametrize(
    ("event", "says"),
    [
        (crm_event(event_name=None), "['event_name'] is required"),
        (crm_event(event_time=None), "['event_time'] is required"),
        (crm_event(action_source=None), "['action_source'] is required"),
        (crm_event(action_source="website"), "must be system_generated"),
        (crm_event(user_data={}), "['lead_id'] is required"),
        (crm_event(lead_id="12345678"), "not a valid Facebook lead id"),
        (crm_event(custom_data={"lead_event_source": "x"}), "must be crm"),
        (crm_event(custom_data={"event_source": "crm"}), "['lead_event_source'] is required"),
        (crm_event(age=8 * DAY), "more than 7 days in the past"),
        (crm_event(age=-3600), "in the future"),
    ],
)
def test_a_crm_dataset_refuses_the_whole_request_for_one_bad_event(emu, event, says):
    response = post(emu, [crm_event("Lead"), event])

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["message"]) == (100, "Invalid parameter")
    assert says in error["error_user_msg"]
    assert error["fbtrace_id"]
    assert emu.conversion_events(DATASET) == []  # nothing of the request was processed


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"event_name": "Lead"}, "must be an array"),
        ([crm_event(event_id=str(n)) for n in range(1001)], "at most 1000 events"),
        (["not json"], "must be an object"),
    ],
)
def test_data_must_be_an_array_of_at_most_1000_events(emu, data, says):
    response = post(emu, data)

    assert response.status_code == 400
    assert says in response.json()["error"]["error_user_msg"]


def test_1000_events_are_taken_in_one_request(emu):
    data = [crm_event(lead_id=str(900000000000000 + n)) for n in range(1000)]

    assert post(emu, data).json()["events_received"] == 1000


def test_an_unknown_dataset_is_graphs_missing_object(emu):
    error = post(emu, [crm_event()], dataset="880000000000999").json()["error"]

    assert (error["code"], error["error_subcode"]) == (100, 33)
    assert "Unsupported post request" in error["message"]


def test_bad_expired_and_missing_tokens_are_refused(emu):
    assert post(emu, [crm_event()], token="not-a-token").json()["error"]["code"] == 190
    assert post(emu, [crm_event()], token=None).json()["error"]["code"] == 104
    emu.expire_token()
    error = post(emu, [crm_event()]).json()["error"]

    assert (error["code"], error["error_subcode"]) == (190, 463)
    assert emu.conversion_events(DATASET) == []


def test_a_resent_event_is_deduplicated_by_name_and_id(emu):
    first = post(emu, [crm_event("Lead"), crm_event("Converted")])
    again = post(emu, [crm_event("Lead")])

    assert (first.json()["events_received"], again.json()["events_received"]) == (2, 1)
    assert [e["event_name"] for e in emu.conversion_events(DATASET)] == ["Lead", "Converted"]
    assert emu.conversion_counts(DATASET) == {"received": 3, "accepted": 2, "duplicates": 1}


def test_events_without_an_id_are_never_deduplicated(emu):
    post(emu, [crm_event(event_id=None), crm_event(event_id=None)])

    assert emu.conversion_counts(DATASET)["accepted"] == 2


def test_a_dataset_that_is_not_for_crm_takes_website_events(emu):
    emu.add_dataset("880000000000002", crm=False)
    event = {"event_name": "Purchase", "event_time": int(time.time()), "action_source": "website"}

    response = post(emu, [event | {"user_data": {"em": ["ab" * 32]}}], dataset="880000000000002")

    assert response.json()["events_received"] == 1


def test_injected_faults_come_before_the_events_are_kept(emu):
    emu.inject_fault("http500", path=f"/{DATASET}/events")
    emu.inject_fault(4, path=f"/{DATASET}/events")

    assert post(emu, [crm_event()]).status_code == 500
    throttled = post(emu, [crm_event()])
    assert (throttled.status_code, throttled.json()["error"]["code"]) == (400, 4)
    assert emu.conversion_events(DATASET) == []
    assert post(emu, [crm_event()]).json()["events_received"] == 1


def test_the_control_endpoints_make_a_dataset_and_show_its_events(emu):
    made = requests.post(f"{emu.url}/_emulator/datasets", json={"id": "7" * 15}, timeout=10)
    assert made.json() == {"success": True}
    post(emu, [crm_event(), crm_event()], dataset="7" * 15)

    shown = requests.get(f"{emu.url}/_emulator/datasets/{'7' * 15}/events", timeout=10).json()

    assert [e["event_id"] for e in shown["events"]] == [f"{LEAD}.Lead"]
    assert (shown["received"], shown["accepted"], shown["duplicates"]) == (2, 1, 1)


def test_leads_the_emulator_makes_have_ids_conversion_leads_accepts(emu):
    form_id = emu.add_form("111", "Demo request")
    lead_id = emu.create_lead(form_id, {"full_name": "Zoe"})

    assert post(emu, [crm_event(lead_id=lead_id)]).json()["events_received"] == 1


def test_the_sdk_error_carries_metas_user_message(emu):
    session = FacebookSession(access_token=TOKEN)
    session.GRAPH = emu.url
    api = FacebookAdsApi(session, api_version="v24.0")
    old = json.dumps(sdk_event("Lead", int(time.time()) - 8 * DAY).normalize())

    with pytest.raises(FacebookRequestError) as info:
        AdsPixel(DATASET, api=api).create_event(params={"data": [old]})

    assert info.value.api_error_code() == 100
    assert "7 days" in info.value.body()["error"]["error_user_msg"]
