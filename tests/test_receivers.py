"""The webhook and Slack receivers check what real receivers check."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
import requests
from standardwebhooks import Webhook

from leadsync.emulators.receivers import SlackReceiver, WebhookReceiver

VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = '{"test": 2432232314}'


def post(receiver: WebhookReceiver, body: str | bytes, headers: dict[str, str]) -> int:
    data = body.encode() if isinstance(body, str) else body
    return requests.post(receiver.url + "/hook", data=data, headers=headers, timeout=5).status_code


def signed(secret: str, body: str, at: float, msg_id: str = "msg_1") -> dict[str, str]:
    """Headers as the reference library signs them, `at` unix seconds."""
    when = datetime.fromtimestamp(at, UTC)
    signature = Webhook(secret).sign(msg_id, when, body)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at)), "webhook-signature": signature}


def test_a_request_signed_by_the_reference_library_verifies_among_several_signatures():
    with WebhookReceiver(VECTOR_SECRET) as receiver:
        headers = signed(VECTOR_SECRET, BODY, time.time())
        headers["webhook-signature"] = "v1,bm9wZQ== v2,x " + headers["webhook-signature"]
        assert post(receiver, BODY, headers) == 200
        assert [e.verified for e in receiver.deliveries()] == [True]


def test_a_changed_body_an_old_timestamp_or_another_secret_is_refused():
    now = time.time()
    with WebhookReceiver(VECTOR_SECRET) as receiver:
        statuses = [
            post(receiver, BODY + " ", signed(VECTOR_SECRET, BODY, now)),
            post(receiver, BODY, signed(VECTOR_SECRET, BODY, now - 301)),
            post(receiver, BODY, signed(VECTOR_SECRET, BODY, now + 301)),
            post(receiver, BODY, signed(WebhookReceiver.new_secret(), BODY, now)),
            post(receiver, BODY, {}),
        ]
        assert statuses == [401] * 5
        assert not any(e.verified for e in receiver.deliveries())


def test_odd_signature_headers_and_bodies_are_refused_not_a_crash():
    """The reference library raises ValueError on these; the receiver answers 401, never 500."""
    now = time.time()
    with WebhookReceiver(VECTOR_SECRET) as receiver:
        no_comma = {**signed(VECTOR_SECRET, BODY, now), "webhook-signature": "v1"}
        not_base64 = {**signed(VECTOR_SECRET, BODY, now), "webhook-signature": "v1,%%%"}
        statuses = [
            post(receiver, BODY, no_comma),
            post(receiver, BODY, not_base64),
            post(receiver, b"\xff\xfe", signed(VECTOR_SECRET, BODY, now)),
        ]
        assert statuses == [401] * 3


def test_a_receiver_with_an_unpadded_or_unprefixed_secret_verifies():
    """The reference library takes the secret's base64 without padding or `whsec_`."""
    padded = "whsec_" + base64.b64encode(bytes(range(32))).decode()
    for secret in (padded.rstrip("="), padded.removeprefix("whsec_")):
        with WebhookReceiver(secret) as receiver:
            assert post(receiver, BODY, signed(padded, BODY, time.time())) == 200, secret


def test_an_unsigned_post_is_refused_and_kept_as_unverified():
    with WebhookReceiver() as receiver:
        response = requests.post(receiver.url + "/x", json={"a": 1}, timeout=5)

        assert response.status_code == 401
        assert [entry.verified for entry in receiver.deliveries()] == [False]


def test_slack_answers_ok_and_its_error_codes():
    with SlackReceiver() as slack:
        wrong = slack.webhook_url.rsplit("/", 1)[0] + "/not-the-token"
        answers = [
            requests.post(slack.webhook_url, json={"text": "hi"}, timeout=5),
            requests.post(slack.webhook_url, json={}, timeout=5),
            requests.post(
                slack.webhook_url, json={"blocks": [{"type": "divider"}] * 51}, timeout=5
            ),
            requests.post(wrong, json={"text": "hi"}, timeout=5),
        ]
        slack.revoke()
        answers.append(requests.post(slack.webhook_url, json={"text": "hi"}, timeout=5))

        seen = [(a.status_code, a.text) for a in answers]
        assert seen == [
            (200, "ok"),
            (400, "no_text"),
            (400, "invalid_blocks"),
            (403, "invalid_token"),
            (404, "no_service"),
        ]
        assert slack.messages == [{"text": "hi"}]


def test_a_stalled_answer_outlasts_a_short_client_timeout():
    with SlackReceiver() as slack:
        slack.stall(1.0)
        started = time.monotonic()
        with pytest.raises(requests.Timeout):
            requests.post(slack.webhook_url, json={"text": "hi"}, timeout=0.2)
        assert time.monotonic() - started < 1.0
