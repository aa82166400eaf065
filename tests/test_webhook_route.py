"""`/webhook` over real HTTP: handshake, status codes, nothing stored for a rejected request,
a 200 only once stored, and many concurrent requests sharing commits (server/webhook_route.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from leadsync.emulators.graph import GraphEmulator
from leadsync.facebook.webhook import sign
from tests.daemon_harness import DaemonThread, daemon_settings, wait_until


@pytest.fixture(scope="module")
def graph():
    with GraphEmulator() as emu:
        yield emu


@pytest.fixture(scope="module")
def form_id(graph):
    return graph.add_form("111", "Route", ["full_name", "email"])


@pytest.fixture
def running(graph, form_id, tmp_path):
    settings = daemon_settings(graph, f"sqlite:///{tmp_path / 'l.db'}", pages=["111"])
    with DaemonThread(settings) as daemon:
        # The poll at start has read the leads of earlier tests: what comes next is webhooks'.
        wait_until(lambda: daemon.store.statuses(), 20, "the first poll")
        yield daemon


def new_lead(graph, form_id) -> str:
    return graph.create_lead(form_id, {"full_name": "Ann Example", "email": "ann@example.com"})


def post(running, body: bytes, signature: str | None, **headers) -> requests.Response:
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return requests.post(f"{running.url}/webhook", data=body, headers=headers, timeout=10)


def send_signed(running, graph, lead_id: str) -> int:
    body, signature = graph.webhook_body([lead_id])
    return post(running, body, signature).status_code


def stored(running, *lead_ids: str) -> bool:
    return len(running.store.get_leads(list(lead_ids))) == len(lead_ids)


def test_handshake_echoes_challenge_for_our_verify_token(running, graph):
    params = {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "4242"}
    reply = requests.get(f"{running.url}/webhook", params=params, timeout=5)
    assert (reply.status_code, reply.text) == (200, "4242")
    params["hub.verify_token"] = "guess"
    assert requests.get(f"{running.url}/webhook", params=params, timeout=5).status_code == 403
    assert graph.verify_webhook(f"{running.url}/webhook", "verify-me")


def test_each_bad_request_gets_its_code_and_stores_nothing(running, graph, form_id):
    secret = graph.app_secret
    rejected = new_lead(graph, form_id)
    good, signature = graph.webhook_body([rejected])
    malformed = b'{"object": "page", "entry": "nope"}'
    huge = b'{"object":"page","entry":[],"pad":"' + b"x" * (2 * 1024 * 1024) + b'"}'
    cases = [
        (good, None, 401),
        (good, "sha256=" + "0" * 64, 403),
        (good, sign(good, "wrong-secret"), 403),
        (good + b" ", signature, 403),
        (malformed, sign(malformed, secret), 400),
        (b"{not json", sign(b"{not json", secret), 400),
        (huge, sign(huge, secret), 413),
    ]
    for body, sig, status in cases:
        assert post(running, body, sig).status_code == status, (status, body[:40])
    # A good request afterwards is stored and fetched; by then nothing else was.
    accepted = new_lead(graph, form_id)
    polled = running.store.count_leads()  # leads of earlier tests, read by the first poll
    assert send_signed(running, graph, accepted) == 200
    wait_until(lambda: stored(running, accepted), 20, "the accepted lead")
    assert running.store.count_leads() == polled + 1
    assert running.store.pending_notifications(100) == []
    assert not stored(running, rejected)


def test_200_means_stored_and_concurrent_requests_share_commits(running, graph, form_id):
    ids = [new_lead(graph, form_id) for _ in range(300)]
    with ThreadPoolExecutor(32) as pool:
        statuses = list(pool.map(lambda i: send_signed(running, graph, i), ids))
    assert statuses == [200] * 300
    assert running.daemon.committer.commits < 300  # grouped: fewer fsyncs than requests
    wait_until(lambda: stored(running, *ids), 30, "300 leads")


def test_shutting_down_answers_503_so_meta_retries(running, graph, form_id):
    refused, accepted = new_lead(graph, form_id), new_lead(graph, form_id)
    running.daemon.context.accepting = False
    assert send_signed(running, graph, refused) == 503
    running.daemon.context.accepting = True
    assert send_signed(running, graph, accepted) == 200
    wait_until(lambda: stored(running, accepted), 20, "the accepted lead")
    assert not stored(running, refused)


def test_healthz_and_metrics_answer(running):
    wait_until(lambda: requests.get(f"{running.url}/healthz", timeout=5).status_code == 200, 10)
    metrics = requests.get(f"{running.url}/metrics", timeout=5)
    assert metrics.status_code == 200 and "leadsync_webhook_notifications" in metrics.text
    assert "leadsync_notifications_backlog 0.0" in metrics.text  # read from the store
