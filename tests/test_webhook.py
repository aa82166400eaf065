"""Signature checks, the handshake and parsing of Meta leadgen webhooks (facebook/webhook.py)."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadsync.facebook.webhook import (
    MalformedWebhook,
    handshake_reply,
    parse_notifications,
    sign,
    signature_is_valid,
)

SECRET = "app-secret-123"


def body(*entries: dict) -> bytes:
    return json.dumps({"object": "page", "entry": list(entries)}).encode()


def change(lead_id, page_id=111, form_id=222, ad_id=333, created_time=1764000000) -> dict:
    value = {
        "leadgen_id": lead_id,
        "page_id": page_id,
        "form_id": form_id,
        "created_time": created_time,
    }
    if ad_id is not None:
        value["ad_id"] = ad_id
    return {"field": "leadgen", "value": value}


def test_signature_of_the_raw_body_is_accepted():
    raw = body({"id": "111", "time": 1, "changes": [change(1)]})
    assert signature_is_valid(raw, sign(raw, SECRET), SECRET)


@pytest.mark.parametrize(
    "header", [None, "", "sha1=abc", "sha256=", "sha256=" + "0" * 64, sign(b"other", SECRET)]
)
def test_missing_or_wrong_signature_is_refused(header):
    raw = body({"id": "111", "changes": [change(1)]})
    assert not signature_is_valid(raw, header, SECRET)


def test_signature_made_with_another_secret_is_refused():
    raw = body({"id": "111", "changes": [change(1)]})
    assert not signature_is_valid(raw, sign(raw, "not-the-secret"), SECRET)


def test_every_entry_and_every_change_becomes_a_notification():
    raw = body(
        {"id": "111", "time": 1, "changes": [change(1), change(2)]},
        {
            "id": "444",
            "time": 1,
            "changes": [change(3, page_id=444), {"field": "feed", "value": {}}],
        },
    )
    notes = parse_notifications(raw)
    assert [n.lead_id for n in notes] == ["1", "2", "3"]
    assert [n.page_id for n in notes] == ["111", "111", "444"]
    assert all(n.source == "webhook" for n in notes)


def test_ids_as_strings_or_numbers_read_the_same():
    as_numbers = parse_notifications(body({"id": 111, "changes": [change(98765, 111, 222, 333)]}))
    as_strings = parse_notifications(
        body({"id": "111", "changes": [change("98765", "111", "222", "333")]})
    )
    assert as_numbers == as_strings
    assert as_numbers[0].lead_id == "98765" and as_numbers[0].form_id == "222"


def test_test_lead_without_ad_id_is_accepted():
    (note,) = parse_notifications(body({"id": "111", "changes": [change(5, ad_id=None)]}))
    assert note.ad_id == "" and note.lead_id == "5"
    assert note.created_time is not None and note.created_time.tzinfo is not None


def test_page_id_falls_back_to_the_entry_id():
    value = {"leadgen_id": "7", "form_id": "2"}
    (note,) = parse_notifications(
        body({"id": "999", "changes": [{"field": "leadgen", "value": value}]})
    )
    assert note.page_id == "999"


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"object": "page"}',
        b'{"object": "user", "entry": []}',
        b'{"object": "page", "entry": [5]}',
        body({"id": "1", "changes": [{"field": "leadgen", "value": {"page_id": "1"}}]}),
        body({"id": "1", "changes": [{"field": "leadgen", "value": {"leadgen_id": "abc"}}]}),
        body({"id": "1", "changes": [{"field": "leadgen", "value": {"leadgen_id": True}}]}),
        body({"id": "1", "changes": [change(1, created_time="yesterday")]}),
    ],
)
def test_malformed_bodies_are_rejected_whole(raw):
    with pytest.raises(MalformedWebhook):
        parse_notifications(raw)


def leadgen(value: dict) -> bytes:
    return body({"id": "111", "changes": [{"field": "leadgen", "value": value}]})


NOW = int(time.time())


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b'{"object":"page","entry":' + b"[" * 10_000 + b"]" * 10_000 + b"}", "nested too deeply"),
        (leadgen({"leadgen_id": "9" * 5000, "page_id": "1"}), "no leadgen_id"),
        (b'{"object":"page","entry":[{"id":"1","changes":[{"field":"leadgen","value":'
         b'{"leadgen_id":' + b"9" * 5000 + b"}}]}]}", "not JSON"),
        (leadgen({"leadgen_id": "9" * 33, "page_id": "1"}), "no leadgen_id"),
        (leadgen({"leadgen_id": "\u00b2\u00b3", "page_id": "1"}), "no leadgen_id"),
        (leadgen({"leadgen_id": "\u0661\u0662\u0663\u0664", "page_id": "1"}), "no leadgen_id"),
        (leadgen({"leadgen_id": "5", "page_id": "\u0661\u0662"}), "no page_id"),
        (leadgen({"leadgen_id": "5", "page_id": "1", "created_time": 10**20}), "created_time"),
        (leadgen({"leadgen_id": "5", "page_id": "1", "created_time": 1e300}), "created_time"),
        (leadgen({"leadgen_id": "5", "page_id": "1", "created_time": -(10**12)}), "created_time"),
        (leadgen({"leadgen_id": "5", "page_id": "1", "created_time": "9" * 5000}), "created_time"),
        (leadgen({"leadgen_id": "5", "page_id": "1", "created_time": "9999-12-31T23:59:59Z"}),
         "created_time"),
        (leadgen({"leadgen_id": "5", "page_id": "1", "created_time": NOW + 86400}), "created_time"),
        (leadgen({"leadgen_id": "5", "page_id": "1", "created_time": 86400}), "created_time"),
    ],
)  # fmt: skip
def test_hostile_bodies_are_malformed_not_crashes(raw, why):
    """Deep nesting, huge or Unicode-digit ids and absurd times are a 400, never an exception."""
    with pytest.raises(MalformedWebhook, match=why):
        parse_notifications(raw)


def test_a_lead_created_just_now_by_a_slightly_fast_clock_is_taken():
    (note,) = parse_notifications(leadgen({"leadgen_id": "5", "created_time": NOW + 60}))
    assert note.created_time is not None


@pytest.mark.parametrize("header", ["sha256=\u00e9" + "0" * 63, "sha256=\udcff" * 3, "\u2603"])
def test_non_ascii_signature_is_wrong_not_a_crash(header):
    raw = body({"id": "111", "changes": [change(1)]})
    assert not signature_is_valid(raw, header, SECRET)


def test_non_ascii_verify_token_is_refused_not_a_crash():
    params = {"hub.mode": "subscribe", "hub.verify_token": "v\udcfft", "hub.challenge": "1"}
    assert handshake_reply(params, "vt") is None


@given(st.binary(max_size=300))
def test_any_bytes_either_parse_or_raise_malformed(raw):
    try:
        notes = parse_notifications(raw)
    except MalformedWebhook:
        return
    assert all(n.lead_id.isdigit() for n in notes)


def test_handshake_echoes_the_challenge_only_for_our_verify_token():
    params = {"hub.mode": "subscribe", "hub.verify_token": "vt", "hub.challenge": "12345"}
    assert handshake_reply(params, "vt") == "12345"
    assert handshake_reply({**params, "hub.verify_token": "other"}, "vt") is None
    assert handshake_reply({**params, "hub.mode": "unsubscribe"}, "vt") is None
    assert handshake_reply(params, "") is None
