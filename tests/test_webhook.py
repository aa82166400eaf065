"""Signature checks, the handshake and parsing of Meta leadgen webhooks (facebook/webhook.py)."""

from __future__ import annotations

import json

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
