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
LIMITS = HttpLimits(header_timeout=1.0, body_timeout=1.0, linger=0.5, max_connections=64)
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


async def slow_client(port: int, opening: bytes | None) -> tuple[bytes | None, float]:
    """Sends `opening`, then one byte at a time (None: nothing at all); returns it with the
    seconds until the server hung up."""
    began = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(opening or b"")
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
    return opening, time.monotonic() - began


OPENINGS = [
    None,  # connects and says nothing
    b"POST /webhook HTTP/1.1\r\nHost: x\r\nX-Pad: ",  # headers that never end
    b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n",  # a crawling body
    b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
    b"Authorization: Bearer events-secret\r\n\r\n",
]


async def attack_and_post(port: int, post) -> tuple[list[float], float, int]:
    clients = [
        asyncio.create_task(slow_client(port, OPENINGS[n % len(OPENINGS)]))
        for n in range(SLOW_CLIENTS)
    ]
    await asyncio.sleep(0)  # let them connect first
    began = time.monotonic()
    status = await asyncio.to_thread(post)
    answered = time.monotonic() - began
    lifetimes = await asyncio.wait_for(asyncio.gather(*clients), 30)
    return lifetimes, answered, status


def test_slow_clients_are_closed_and_real_webhooks_flow(graph, tmp_path):
    form_id = graph.add_form("111", "Limits", ["full_name", "email"])
    lead_id = graph.create_lead(form_id, {"full_name": "Ann Example", "email": "a@example.com"})
    body, signature = graph.webhook_body([lead_id])
    with start(graph, tmp_path, LIMITS) as running:

        def post() -> int:
            headers = {"X-Hub-Signature-256": signature}
            return requests.post(f"{running.url}/webhook", data=body, headers=headers, timeout=5)

        lifetimes, answered, reply = asyncio.run(attack_and_post(running.daemon.port, post))
        assert reply.status_code == 200 and answered < 1.0
        assert running.store.pending_notifications(10) or running.store.get_leads([lead_id])
    deadline = LIMITS.header_timeout + LIMITS.body_timeout + LIMITS.linger + SLACK
    assert max(seconds for _, seconds in lifetimes) < deadline, lifetimes
    # None was refused early as garbage: each one was held until its deadline.
    assert min(seconds for _, seconds in lifetimes) >= LIMITS.header_timeout * 0.9, lifetimes


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
