"""`leadsync run`'s HTTP process on the internet-facing port (leadsync/server/front.py).

It serves its own routes on aiohttp's low-level server and passes the rest to its worker.
Here, over real sockets: every answer (its own, the worker's, a refusal) carries the
security headers once; HEAD works where GET does; odd bytes, bad signatures and deep
nesting get a 4xx, never a 500; methods it does not serve reach the worker's router; and
nothing of a refused webhook is stored, while a good one is acknowledged and fetched.
"""

from __future__ import annotations

import json
import socket

import pytest
import requests

from leadsync.emulators.graph import GraphEmulator
from leadsync.facebook.webhook import sign
from leadsync.ingest.journal import waiting_notifications
from leadsync.server.app import SECURITY_HEADERS
from leadsync.store import open_store, sqlite_path
from tests.daemon_harness import wait_until
from tests.e2e.process import LeadsyncProcess, free_port, write_config

pytestmark = pytest.mark.e2e

PAGE = "111"


@pytest.fixture(scope="module")
def graph():
    with GraphEmulator() as emu:
        yield emu


@pytest.fixture(scope="module")
def daemon(graph, tmp_path_factory):
    folder = tmp_path_factory.mktemp("front")
    port = free_port()
    store_url = f"sqlite:///{folder / 'leadsync.db'}"
    config = write_config(folder / "leadsync.toml", graph, store_url, port, [PAGE])
    process = LeadsyncProcess(config, port, folder / "leadsync.log").start()
    process.store_url = store_url  # type: ignore[attr-defined]
    yield process
    process.ensure_stopped()


def stored_lead_ids(daemon) -> set[str]:
    """Lead ids anywhere: in the HTTP process's journal, waiting in the store, or fetched."""
    journal = {note.lead_id for note in waiting_notifications(sqlite_path(daemon.store_url))}
    store = open_store(daemon.store_url)
    try:
        waiting = {note.lead_id for note in store.pending_notifications(1000)}
        return journal | waiting | set(store.lead_ids(after="", limit=1000))
    finally:
        store.close()


def raw(port: int, request: bytes) -> bytes:
    """Sends bytes exactly as given; returns the whole answer (the server closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def assert_secure(reply: requests.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert reply.headers.get(name) == value, (name, reply.headers.get(name))


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/healthz"), ("GET", "/webhook"), ("POST", "/webhook"), ("GET", "/"),
     ("GET", "/metrics"), ("GET", "/nowhere"), ("POST", "/events")],
)  # fmt: skip
def test_every_answer_carries_the_security_headers_once(daemon, method, path):
    reply = requests.request(method, daemon.url + path, timeout=10, data=b"{}")
    assert reply.status_code < 500
    assert_secure(reply)  # once: a duplicated header would read "a, a" here


def test_head_is_answered_where_get_is(daemon):
    for path in ("/healthz", "/metrics"):
        get = requests.get(daemon.url + path, timeout=10)
        head = requests.head(daemon.url + path, timeout=10)
        assert head.status_code == get.status_code
        assert head.content == b""


def test_a_method_the_http_process_does_not_serve_reaches_the_workers_router(daemon):
    reply = requests.put(daemon.url + "/events", data=b"{}", timeout=10)
    assert reply.status_code == 405  # the worker's router: /events takes POST only
    assert reply.headers["Allow"] == "POST"
    assert_secure(reply)


def test_the_handshake_echoes_the_challenge_for_the_verify_token_only(daemon):
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444"}
    ok = requests.get(daemon.url + "/webhook", params=query | {"hub.verify_token": "verify-me"})
    assert (ok.status_code, ok.text) == (200, "1158201444")
    wrong = requests.get(daemon.url + "/webhook", params=query | {"hub.verify_token": "guess"})
    assert wrong.status_code == 403


def test_hostile_webhooks_get_a_4xx_and_store_nothing(daemon, graph):
    secret = graph.app_secret
    deep = b'{"entry": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    cases = [
        (b'{"entry": []}', {}, 401),  # unsigned
        (b'{"entry": []}', {"X-Hub-Signature-256": "sha256=" + "0" * 64}, 403),
        (b"not json", {"X-Hub-Signature-256": sign(b"not json", secret)}, 400),
        (deep, {"X-Hub-Signature-256": sign(deep, secret)}, 400),
        (b"x" * (1024 * 1024 + 1), {}, 413),
    ]
    for body, headers, status in cases:
        reply = requests.post(daemon.url + "/webhook", data=body, headers=headers, timeout=30)
        assert reply.status_code == status, (status, reply.text[:200])
        assert_secure(reply)
    assert stored_lead_ids(daemon) == set()


def test_malformed_http_is_a_400_without_versions_and_the_process_keeps_serving(daemon):
    bare_cr = b"POST /webhook HTTP/1.1\r\nHost: x\r\nBad\rHeader: 1\r\n\r\n"
    tls_hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(40)
    for request in (bare_cr, tls_hello):
        head = raw(daemon.port, request).split(b"\r\n\r\n")[0].decode("latin-1")
        status_line, *lines = head.split("\r\n")
        assert status_line.split()[1] == "400"
        headers = dict(line.split(": ", 1) for line in lines)
        # aiohttp's own error answers too: no "Python/3.x aiohttp/3.x" for an attacker.
        assert headers["Server"] == SECURITY_HEADERS["Server"]
        assert headers["X-Content-Type-Options"] == "nosniff"
    assert requests.get(daemon.url + "/healthz", timeout=10).status_code == 200
    assert "Traceback" not in daemon.output()


def test_a_signed_webhook_is_acknowledged_and_its_lead_fetched(daemon, graph):
    form_id = graph.add_form(PAGE, "Front", ["full_name", "email"])
    lead_id = graph.create_lead(form_id, {"full_name": "Ada", "email": "ada@example.com"})
    body, signature = graph.webhook_body([lead_id])
    reply = requests.post(
        daemon.url + "/webhook", data=body, timeout=10,
        headers={"X-Hub-Signature-256": signature, "Content-Type": "application/json"},
    )  # fmt: skip
    assert (reply.status_code, reply.text) == (200, "EVENT_RECEIVED")
    assert_secure(reply)
    wait_until(lambda: lead_id in stored_lead_ids(daemon), 30, "the lead in the store")
    assert json.loads(requests.get(daemon.url + "/healthz", timeout=10).text)["status"] == "ok"
