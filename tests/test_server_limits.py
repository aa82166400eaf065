"""Slow clients on the public port (server/limits.py, server/listener.py): connections that
trickle headers or a body, or idle, are closed by the server within its deadlines, a real
webhook posted meanwhile gets its 200 at once, and connections past the cap get a 503."""

from __future__ import annotations

import asyncio
import time

import pytest
import requests

from leadsync.emulators.graph import GraphEmulator
from leadsync.server.limits import HttpLimits
from tests.daemon_harness import DaemonThread, daemon_settings, wait_until

# Short deadlines so the test is quick; the daemon's own are in leadsync/constants.py.
LIMITS = HttpLimits(header_timeout=2.0, body_timeout=1.0, linger=0.5, max_connections=64)
SLOW_CLIENTS = 30
TRICKLE_EVERY = 0.1  # the attacker's pace: a byte this often keeps a naive server waiting
SLACK = 2.0  # the server's timers fire on a loop shared with other work


@pytest.fixture(scope="module")
def graph():
    with GraphEmulator() as emu:
        yield emu


def start(graph, tmp_path, limits: HttpLimits) -> DaemonThread:
    settings = daemon_settings(graph, f"sqlite:///{tmp_path / 'l.db'}", pages=["111"])
    return DaemonThread(settings, http_limits=limits)


async def slow_client(
    port: int, opening: bytes | None, connected: asyncio.Event
) -> tuple[bytes | None, float, float]:
    """Sends `opening`, then one byte at a time (None: nothing at all); returns it with the
    seconds until the server hung up and the monotonic time it did."""
    began = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(opening or b"")
    await writer.drain()
    connected.set()
    try:
        while True:
            try:
                if await asyncio.wait_for(reader.read(4096), TRICKLE_EVERY) == b"":
                    break  # closed by the server (after a 408, or silently)
            except TimeoutError:
                if opening is not None:
                    writer.write(b"x")
                    await writer.drain()
    except ConnectionError:
        pass  # reset by the server: closed as well
    writer.close()
    closed_at = time.monotonic()
    return opening, closed_at - began, closed_at


OPENINGS = [
    None,  # connects and says nothing
    b"POST /webhook HTTP/1.1\r\nHost: x\r\nX-Pad: ",  # headers that never end
    b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n",  # a crawling body
    b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
    b"Authorization: Bearer events-secret\r\n\r\n",
]


async def attack_and_post(port: int, post) -> tuple[list[tuple], float, float, int]:
    """Slow clients connect; once all have, the real webhook is posted. Returns the slow
    clients' fates, the seconds the webhook took, when it was answered, and its status."""
    connected = [asyncio.Event() for _ in range(SLOW_CLIENTS)]
    clients = [
        asyncio.create_task(slow_client(port, OPENINGS[n % len(OPENINGS)], connected[n]))
        for n in range(SLOW_CLIENTS)
    ]
    await asyncio.wait_for(asyncio.gather(*(event.wait() for event in connected)), 10)
    began = time.monotonic()
    status = await asyncio.to_thread(post)
    answered_at = time.monotonic()
    fates = await asyncio.wait_for(asyncio.gather(*clients), 30)
    return fates, answered_at - began, answered_at, status


def test_slow_clients_are_closed_and_real_webhooks_flow(graph, tmp_path):
    form_id = graph.add_form("111", "Limits", ["full_name", "email"])
    lead_id = graph.create_lead(form_id, {"full_name": "Ann Example", "email": "a@example.com"})
    body, signature = graph.webhook_body([lead_id])
    with start(graph, tmp_path, LIMITS) as running:

        def post() -> int:
            headers = {"X-Hub-Signature-256": signature}
            reply = requests.post(f"{running.url}/webhook", data=body, headers=headers, timeout=5)
            return reply.status_code

        port = running.daemon.port
        fates, took, answered_at, status = asyncio.run(attack_and_post(port, post))
        assert status == 200
        assert running.store.pending_notifications(10) or running.store.get_leads([lead_id])
    # The webhook did not wait for the slow clients to be cut loose: it was answered first.
    assert answered_at < min(closed_at for _, _, closed_at in fates), (took, fates)
    deadline = LIMITS.header_timeout + LIMITS.body_timeout + LIMITS.linger + SLACK
    assert max(seconds for _, seconds, _ in fates) < deadline, fates
    # None was refused early as garbage: each one was held until its deadline.
    shortest = min(LIMITS.header_timeout, LIMITS.body_timeout)
    assert min(seconds for _, seconds, _ in fates) >= shortest * 0.9, fates


def test_connections_past_the_cap_get_503_until_one_closes(graph, tmp_path):
    limits = HttpLimits(header_timeout=30, body_timeout=30, max_connections=3)
    with start(graph, tmp_path, limits) as running:

        async def held_connection() -> asyncio.StreamWriter:
            """A kept-alive connection, known to the server: it has answered on it."""
            reader, writer = await asyncio.open_connection("127.0.0.1", running.daemon.port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await reader.readline()).startswith(b"HTTP/1.1 ")
            return writer

        async def scenario() -> requests.Response:
            held = [await held_connection() for _ in range(3)]
            full = await asyncio.to_thread(requests.get, f"{running.url}/healthz", timeout=5)
            for writer in held:
                writer.close()
                await writer.wait_closed()
            return full

        full = asyncio.run(scenario())
        assert (full.status_code, full.headers.get("Retry-After")) == (503, "1")

        def served() -> bool:
            reply = requests.get(f"{running.url}/healthz", timeout=5)
            return "Retry-After" not in reply.headers  # answered by the app, not refused

        wait_until(served, 10, "a free connection slot")
