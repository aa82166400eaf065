"""The signed webhook connector (connectors/webhook.py) against a Standard Webhooks receiver."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from standardwebhooks import Webhook

from connectors import webhook
from leadsync.emulators.background import Fault
from leadsync.emulators.receivers import WebhookReceiver
from leadsync.errors import AuthError, PermanentError, TransientError
from tests.connector_harnesses import make_lead, scored

# The published Standard Webhooks test vector (its reference libraries test against it).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as started:
        yield started


@pytest.fixture
def connect(receiver: WebhookReceiver) -> Iterator[Any]:
    made: list[webhook.WebhookConnector] = []

    def build(**settings: Any) -> webhook.WebhookConnector:
        values = {"url": f"{receiver.url}/leads", "secret": receiver.secret, **settings}
        made.append(webhook.build("n8n", webhook.Settings(**values)))
        return made[-1]

    yield build
    for connector in made:
        connector.close()


def test_signatures_match_the_standard_webhooks_test_vector():
    """Our request headers for the vector's inputs carry the vector's published signature."""
    signer = webhook.signer(VECTOR_SECRET)
    headers = webhook.signed_headers(signer, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY)
    assert headers == {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": VECTOR_SIGNATURE,
    }


def test_every_request_verifies_with_the_reference_library(receiver, connect):
    """What a Python receiver runs: standardwebhooks' Webhook(secret).verify(body, headers)."""
    connect().deliver([scored(make_lead(6), 70)])
    connect(batch=True).deliver([scored(make_lead(7), 70), scored(make_lead(8), 70)])

    reference = Webhook(receiver.secret)
    for entry in receiver.deliveries():
        assert reference.verify(entry.body, entry.headers)["type"] in ("lead.scored", "lead.batch")


@pytest.mark.parametrize("size", [16, 17, 18, 24, 32, 33, 64])
def test_every_accepted_secret_keys_the_library_with_its_exact_bytes(size):
    """The library decodes leniently; what we accept it decodes as strict decoders do."""
    key = bytes((7 * n + size) % 256 for n in range(size))
    encoded = base64.b64encode(key).decode()
    now = datetime.now(UTC)
    for secret in ("whsec_" + encoded, "whsec_" + encoded.rstrip("=")):
        assert webhook.signer(secret).sign("m", now, "{}") == Webhook(key).sign("m", now, "{}")


def test_a_secret_in_unpadded_base64_works_on_both_sides():
    """Receivers' libraries take `whsec_` + base64 without its "=" padding: so do we."""
    secret = "whsec_" + base64.b64encode(bytes(range(32))).decode().rstrip("=")
    with WebhookReceiver(secret) as receiver:
        settings = webhook.Settings(url=f"{receiver.url}/leads", secret=secret)
        connector = webhook.build("n8n", settings)
        try:
            assert connector.deliver([scored(make_lead(9), 70)])[0].ok
        finally:
            connector.close()
        assert [entry.verified for entry in receiver.deliveries()] == [True]


@pytest.mark.parametrize(
    ("secret", "complaint"),
    [
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "start with whsec_"),
        ("whsec_not base64!", "base64"),
        ("whsec_" + base64.urlsafe_b64encode(bytes([251] * 24)).decode(), "base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "16 random bytes"),
    ],
)
def test_settings_refuse_secrets_that_receivers_could_not_use(secret, complaint):
    with pytest.raises(ValueError, match=complaint):
        webhook.Settings(url="https://crm.test/hook", secret=secret)


def test_the_document_carries_the_lead_its_answers_and_its_score(receiver, connect):
    lead = make_lead(1)
    connect().deliver([scored(lead, 80, revision=3)])

    (entry,) = receiver.deliveries()
    assert entry.verified
    assert entry.webhook_id == f"lead_{lead.id}_r3"
    document = entry.document
    assert document["type"] == "lead.scored"
    data = document["data"]
    assert (data["lead_id"], data["revision"], data["form_name"]) == (lead.id, 3, "Demo request")
    assert data["answers"]["email"] == [lead.email]
    assert data["score"]["points"] == 80 and data["score"]["mql"] is True
    assert data["score"]["reasons"][0] == {"rule": "VP title", "points": 20, "group": "demographic"}
    assert data["score"]["reasons_text"] == "VP title +20; Demo request +60"


def test_a_redelivery_keeps_its_id_and_the_next_revision_gets_a_new_one(receiver, connect):
    lead = make_lead(2)
    connector = connect()

    for revision in (1, 1, 2):
        assert connector.deliver([scored(lead, 70, revision=revision)])[0].ok

    ids = [entry.webhook_id for entry in receiver.deliveries()]
    assert ids == [f"lead_{lead.id}_r1", f"lead_{lead.id}_r1", f"lead_{lead.id}_r2"]
    assert all(entry.verified for entry in receiver.deliveries())


def test_a_wrong_secret_is_refused_by_the_receiver_and_reported_as_auth(receiver, connect):
    with pytest.raises(AuthError, match="check the secret"):
        connect(secret=WebhookReceiver.new_secret()).deliver([scored(make_lead(3), 70)])


def test_in_single_mode_a_refused_lead_fails_alone(receiver, connect):
    receiver.fail(422, skip=1)
    batch = [scored(make_lead(n), 70) for n in range(3)]

    results = connect().deliver(batch)

    assert [r.ok for r in results] == [True, False, True]
    assert isinstance(results[1].error, PermanentError)


def test_in_batch_mode_an_outage_after_the_first_post_fails_only_the_rest(receiver, connect):
    receiver.fail(503, skip=1)
    batch = [scored(make_lead(n), 70) for n in range(250)]

    results = connect(batch=True).deliver(batch)

    assert sum(r.ok for r in results) == 100
    assert all(isinstance(r.error, TransientError) for r in results[100:])
    (entry,) = receiver.deliveries()[:1]
    assert entry.document["type"] == "lead.batch"
    assert [lead["id"] for lead in entry.leads()][:2] == [
        webhook.message_id(batch[0]),
        webhook.message_id(batch[1]),
    ]


def test_redirects_are_not_followed(receiver, connect):
    receiver.inject(
        Fault(307, "", {"Location": "https://elsewhere.test/"}, content_type="text/plain")
    )

    results = connect().deliver([scored(make_lead(4), 70)])

    assert isinstance(results[0].error, PermanentError)
    assert "redirect" in str(results[0].error)


def test_a_lead_id_unfit_for_a_header_is_hashed_into_a_stable_id():
    lead = replace(make_lead(5), id="9000\r\nX-Evil: 1")
    first, again = webhook.message_id(scored(lead, 70)), webhook.message_id(scored(lead, 70))
    assert first == again and first.startswith("lead_") and "\n" not in first
