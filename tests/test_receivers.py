"""The webhook and Slack receivers check what real receivers check."""

from __future__ import annotations

import time

import pytest
import requests

from leadsync.emulators.receivers import SlackReceiver, WebhookReceiver, verify_signature

VECTOR = {
    "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
    "webhook-timestamp": "1614265330",
    "webhook-signature": "v1,bm9wZQ== v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
}
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_BODY = b'{"test": 2432232314}'


def test_the_published_vector_verifies_among_several_signatures():
    assert verify_signature(VECTOR_SECRET, VECTOR, VECTOR_BODY, now=1614265330 + 60)


def test_a_changed_body_an_old_timestamp_or_another_secret_fails():
    now = 1614265330
    assert not verify_signature(VECTOR_SECRET, VECTOR, VECTOR_BODY + b" ", now)
    assert not verify_signature(VECTOR_SECRET, VECTOR, VECTOR_BODY, now + 301)
    assert not verify_signature(WebhookReceiver.new_secret(), VECTOR, VECTOR_BODY, now)
    assert not verify_signature(VECTOR_SECRET, {}, VECTOR_BODY, now)


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
