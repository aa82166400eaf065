"""`POST /events` over real HTTP (server/events_route.py): the Bearer scheme, times that
cannot be (future, before the lead), and 400s that name each bad item in our words."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import requests

from leadsync.emulators.graph import GraphEmulator
from leadsync.models import Lead, utcnow
from tests.daemon_harness import DaemonThread, daemon_settings

AUTH = {"Authorization": "Bearer events-secret"}
LEAD_AGE = timedelta(days=2)


@pytest.fixture(scope="module")
def graph():
    with GraphEmulator() as emu:
        yield emu


@pytest.fixture
def running(graph, tmp_path):
    settings = daemon_settings(graph, f"sqlite:///{tmp_path / 'l.db'}", pages=[])
    with DaemonThread(settings) as daemon:
        created = utcnow() - LEAD_AGE
        daemon.store.save_leads([Lead(id="9001", created_time=created, page_id="1", form_id="2")])
        yield daemon


def post(running, events, headers=AUTH) -> requests.Response:
    return requests.post(f"{running.url}/events", json=events, headers=headers, timeout=10)


def event(at, **fields) -> dict:
    return {
        "id": "e1",
        "lead_id": "9001",
        "type": "webinar_attended",
        "at": at.isoformat(),
        **fields,
    }


def stored_events(running) -> list:
    return running.store.events_for(["9001"]).get("9001", [])


@pytest.mark.parametrize(
    "authorization",
    [
        "events-secret",
        "Basic events-secret",
        "Token events-secret",
        "Bearer",
        "Bearerevents-secret",
    ],
)
def test_only_the_bearer_scheme_is_taken(running, authorization):
    reply = post(running, event(utcnow()), {"Authorization": authorization})
    assert reply.status_code == 401 and "events-secret" not in reply.text
    assert stored_events(running) == []


def test_the_scheme_name_is_case_insensitive(running):
    reply = post(running, event(utcnow()), {"Authorization": "bearer events-secret"})
    assert reply.status_code == 200 and reply.json()["stored"] == 1


def test_an_event_in_the_future_is_refused_beyond_clock_skew(running):
    later = post(running, [event(utcnow() + timedelta(hours=1))])
    assert later.status_code == 400
    assert later.json()["problems"] == [
        "[0].at: is in the future; send the time the event happened"
    ]
    assert stored_events(running) == []
    slightly_fast = post(running, event(utcnow() + timedelta(minutes=1)))
    assert slightly_fast.status_code == 200 and slightly_fast.json()["stored"] == 1


def test_an_event_before_its_lead_existed_is_refused_and_nothing_is_stored(running):
    before = utcnow() - LEAD_AGE - timedelta(hours=1)
    fine = event(utcnow(), id="e2")
    reply = post(running, [fine, event(before)])
    assert reply.status_code == 400
    assert reply.json()["problems"] == ["[1].at: is before its lead was created"]
    assert stored_events(running) == []
    assert post(running, event(utcnow() - LEAD_AGE + timedelta(minutes=1))).status_code == 200


def test_errors_are_in_our_words_and_name_each_item(running):
    now = utcnow().isoformat()
    items = [
        {"id": " ", "lead_id": "9001", "type": "t", "at": now},
        {"id": "b", "lead_id": "9001", "type": "t", "at": "yesterday"},
        {"id": "c", "lead_id": "١٢٣٤", "type": "t", "at": now},
        {"id": "d", "type": "t", "at": now},
        {"id": "e", "lead_id": "9001", "at": "2026-11-20T10:00:00"},
        "not an event",
    ]
    reply = post(running, items)
    assert reply.status_code == 400
    assert reply.json() == {
        "error": "invalid events",
        "problems": [
            "[0].id: id is empty",
            "[1].at: is not a time; write it like 2026-11-20T10:00:00Z",
            "[2].lead_id: is not a lead id (the digits of a Facebook lead id)",
            "[3]: give lead_id or email",
            "[4].type: is missing",
            "[4].at: needs a timezone; write it like 2026-11-20T10:00:00Z",
            "[5]: must be an object with id, type, at and lead_id or email",
        ],
    }
    assert stored_events(running) == []


def test_a_body_that_is_not_json_says_so(running):
    reply = requests.post(f"{running.url}/events", data=b"{nope", headers=AUTH, timeout=10)
    assert reply.status_code == 400 and reply.json()["problems"] == ["body is not JSON"]


# -- outcomes ---------------------------------------------------------------------------


def stages(running) -> list[tuple]:
    found = running.store.stages_for(["9001"]).get("9001", [])
    return [(s.stage, s.reached_at, s.value, s.source) for s in found]


def test_outcome_events_record_the_lead_s_stages_once(running):
    contacted, won = utcnow() - timedelta(hours=5), utcnow() - timedelta(hours=1)
    reply = post(
        running,
        [
            event(contacted, id="o1", type="contacted"),
            event(won, id="o2", type="won", value="1200.50"),
        ],
    )
    assert reply.status_code == 200
    assert reply.json() == {"stored": 2, "duplicates": 0, "unknown_lead": [], "stages": 2}
    expected = [
        ("contacted", contacted, None, "events"),
        ("won", won, Decimal("1200.50"), "events"),
    ]
    assert stages(running) == expected
    assert [e.type for e in stored_events(running)] == ["contacted", "won"]  # kept as events too
    again = post(running, event(won, id="o2", type="won", value="1200.50"))  # a retry
    assert again.json() == {"stored": 0, "duplicates": 1, "unknown_lead": [], "stages": 0}
    later = post(running, event(utcnow(), id="o3", type="contacted"))  # reached again later
    assert later.json()["stages"] == 0 and later.json()["stored"] == 1
    assert stages(running) == expected


def test_an_outcome_value_may_be_a_json_number_and_is_optional(running):
    reply = post(
        running,
        [event(utcnow(), id="o1", type="sql"), event(utcnow(), id="o2", type="lost", value=0)],
    )
    assert reply.status_code == 200 and reply.json()["stages"] == 2
    assert [(s[0], s[2]) for s in stages(running)] == [("sql", None), ("lost", Decimal("0"))]


def test_an_outcome_by_email_goes_to_the_newest_lead_of_that_email(running):
    email = {"email": ("ann@example.com",)}
    older = Lead("9002", utcnow() - timedelta(days=9), "1", "2", answers=email)
    newer = Lead("9003", utcnow() - timedelta(days=1), "1", "2", answers=email)
    running.store.save_leads([older, newer])
    reply = post(
        running,
        {
            "id": "o1",
            "email": "Ann@example.com",
            "type": "won",
            "at": utcnow().isoformat(),
            "value": 90,
        },
    )
    assert reply.json()["stages"] == 1
    assert running.store.stages_for(["9002", "9003"]).keys() == {"9003"}


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (-1, "[0].value: is negative; a deal value is a number of 0 or more, like 1200.50"),
        (
            "$1,200",
            "[0].value: is not a number; a deal value is a number of 0 or more, like 1200.50",
        ),
        ("NaN", "[0].value: is not a number; a deal value is a number of 0 or more, like 1200.50"),
        ("1e400", "[0].value: has too many digits"),
        ("0.0000001", "[0].value: has more than 6 decimal places"),
        (True, "[0].value: is not a number; a deal value is a number of 0 or more, like 1200.50"),
    ],
)
def test_a_bad_outcome_value_is_refused_in_our_words_and_nothing_is_stored(running, value, problem):
    reply = post(
        running,
        [event(utcnow(), id="o0", type="sql"), event(utcnow(), id="o1", type="won", value=value)],
    )
    assert reply.status_code == 400
    assert reply.json()["problems"] == [problem.replace("[0]", "[1]")]
    assert stored_events(running) == [] and stages(running) == []
