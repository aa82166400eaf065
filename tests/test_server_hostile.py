"""Hostile requests to the internet-facing port (server/webhook_route.py, events_route.py):
odd header bytes, deep nesting, huge ids and absurd times get a 4xx and one log line, never
a 500 with a traceback, and nothing of them is stored."""

from __future__ import annotations

import json
import logging
import socket
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from leadsync.emulators.graph import GraphEmulator
from leadsync.facebook.webhook import sign
from tests.daemon_harness import DaemonThread, daemon_settings

SECRET_TOKEN = b"events-secret"


@pytest.fixture(scope="module")
def graph():
    with GraphEmulator() as emu:
        yield emu


@pytest.fixture(scope="module")
def running(graph, tmp_path_factory):
    store = tmp_path_factory.mktemp("hostile") / "l.db"
    with DaemonThread(daemon_settings(graph, f"sqlite:///{store}", pages=[])) as daemon:
        yield daemon


def raw_post(port: int, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    """POSTs bytes exactly as given (no client cleans them up); returns the status code."""
    head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    request = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"Content-Length: {len(body)}\r\n".encode()
        + head
        + b"\r\n"
        + body
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        status_line = sock.makefile("rb").readline()
    return int(status_line.split()[1])


def nothing_stored(running) -> bool:
    store = running.store
    return store.pending_notifications(10) == [] and store.count_leads() == 0


def signed(body: bytes, secret: str) -> list[tuple[bytes, bytes]]:
    return [(b"X-Hub-Signature-256", sign(body, secret).encode())]


def leadgen(value: dict) -> bytes:
    change = {"field": "leadgen", "value": value}
    return json.dumps({"object": "page", "entry": [{"id": "111", "changes": [change]}]}).encode()


def hostile_webhooks(secret: str) -> list[tuple[bytes, list[tuple[bytes, bytes]], int]]:
    deep = b'{"object":"page","entry":' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    big_int = leadgen({"leadgen_id": 1}).replace(
        b'"leadgen_id": 1', b'"leadgen_id": ' + b"9" * 5000
    )
    bodies = [
        deep,
        big_int,
        leadgen({"leadgen_id": "9" * 5000, "page_id": "111"}),
        leadgen({"leadgen_id": "²³", "page_id": "111"}),
        leadgen({"leadgen_id": "١٢٣٤", "page_id": "111"}),
        leadgen({"leadgen_id": "5", "page_id": "111", "created_time": 10**20}),
        leadgen({"leadgen_id": "5", "page_id": "111", "created_time": "9999-12-31T00:00:00Z"}),
        leadgen({"leadgen_id": "5", "page_id": "111", "created_time": int(time.time()) + 86400}),
    ]
    body = leadgen({"leadgen_id": "5", "page_id": "111"})
    odd_signatures = [b"sha256=\xc3\xa9" + b"0" * 62, b"sha256=\xff\xfe" * 9, b"\xe2\x98\x83"]
    return [(b, signed(b, secret), 400) for b in bodies] + [
        (body, [(b"X-Hub-Signature-256", s)], 403) for s in odd_signatures
    ]


def test_hostile_webhooks_get_a_4xx_and_one_log_line(running, graph, caplog):
    for body, headers, status in hostile_webhooks(graph.app_secret):
        with capture_logs() as logs:
            assert raw_post(running.daemon.port, "/webhook", headers, body) == status, body[:60]
        assert [e["event"] for e in logs if "status" in e] == ["webhook.rejected"]
        assert not any("exc_info" in e for e in logs)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert nothing_stored(running)


def test_malformed_http_is_a_400_and_one_line_without_traceback(running, caplog):
    """A request aiohttp cannot parse is answered by aiohttp itself: it must not log an error."""
    garbage = b"POST /webhook HTTP/1.1\r\nHost: x\r\nBad Header\r\nContent-Length: 0\r\n\r\n"
    with capture_logs() as logs, socket.create_connection(("127.0.0.1", running.daemon.port)) as s:
        s.sendall(garbage)
        assert s.makefile("rb").readline().split()[1] == b"400"
    assert [e["event"] for e in logs if e["event"].startswith("http.")] == ["http.malformed"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.mark.parametrize(
    "authorization",
    [b"Bearer \xc3\xa9vents-secret", b"Bearer \xff\xfe", b"\xe2\x98\x83 events-secret"],
)
def test_non_ascii_authorization_is_a_401_not_a_500(running, authorization):
    headers = [(b"Authorization", authorization), (b"Content-Type", b"application/json")]
    with capture_logs() as logs:
        assert raw_post(running.daemon.port, "/events", headers, b"[]") == 401
    assert [e["event"] for e in logs if "status" in e] == ["events.refused"]


def test_deeply_nested_events_are_a_400(running):
    headers = [(b"Authorization", b"Bearer " + SECRET_TOKEN)]
    body = b"[" * 10_000 + b"]" * 10_000
    assert raw_post(running.daemon.port, "/events", headers, body) == 400


# Header values: any bytes but the line breaks that end a header (those are HTTP framing,
# refused by the parser before our code runs).
header_bytes = st.binary(max_size=80).filter(lambda b: b"\r" not in b and b"\n" not in b)


json_bodies = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
).map(lambda value: json.dumps(value).encode())


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(["/webhook", "/events"]),
    body=st.one_of(st.binary(max_size=400), json_bodies),
    signature=st.one_of(st.none(), header_bytes, st.just(b"good")),
    authorization=st.one_of(st.none(), header_bytes, st.just(b"Bearer " + SECRET_TOKEN)),
)  # fmt: skip
def test_any_request_gets_an_answer_below_500_and_stores_nothing(
    running, graph, path, body, signature, authorization
):
    headers = []
    if signature is not None:
        value = sign(body, graph.app_secret).encode() if signature == b"good" else signature
        headers.append((b"X-Hub-Signature-256", value))
    if authorization is not None:
        headers.append((b"Authorization", authorization))
    assert raw_post(running.daemon.port, path, headers, body) < 500
    assert nothing_stored(running)
