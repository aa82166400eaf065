"""`leadsync run` on PostgreSQL rides out a database outage: unhealthy, refusing, then back.

The store URL points at a TCP proxy in front of the real server; cutting the
proxy (every open connection reset, new ones refused) is what a database
restart or a network blip looks like to the daemon. While it lasts,
`/healthz` says `store_not_writable` and webhooks get 503 (Meta retries); the
process keeps running. When the database is back, the daemon is healthy and
stores webhooks again without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

import pytest
import requests

from leadsync.emulators.graph import GraphEmulator
from tests.daemon_harness import wait_until
from tests.e2e.process import LeadsyncProcess, free_port, write_config
from tests.store_fixtures import run_sql

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

POSTGRES = ("127.0.0.1", 5432)


class CuttableProxy:
    """Forwards 127.0.0.1:`port` to PostgreSQL until `cut()`; `restore()` serves again."""

    def __init__(self, port: int):
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def __enter__(self) -> CuttableProxy:
        self._thread.start()
        self.restore()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def restore(self) -> None:
        self._call(self._listen())

    def cut(self) -> None:
        self._call(self._close())

    def _call(self, coro) -> None:  # noqa: ANN001
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()  # a reset, as when the server goes away

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*POSTGRES)
        self._writers.update((writer, upstream_writer))
        try:
            await asyncio.gather(
                self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
            )
        finally:
            self._writers.difference_update((writer, upstream_writer))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A reset on either side ends this pipe; the other side is aborted by `cut` or EOF.
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()


def health(url: str) -> tuple[int, list[str]]:
    reply = requests.get(f"{url}/healthz", timeout=30)
    return reply.status_code, reply.json()["reasons"]


def post_lead(graph: GraphEmulator, url: str, lead_id: str) -> int:
    body, signature = graph.webhook_body([{"leadgen_id": lead_id, "page_id": "111"}])
    headers = {"X-Hub-Signature-256": signature, "Content-Type": "application/json"}
    return requests.post(f"{url}/webhook", data=body, headers=headers, timeout=30).status_code


def test_a_database_outage_makes_the_daemon_unhealthy_until_it_is_back(store_url_factory, tmp_path):
    store_url = store_url_factory("postgres")
    port = free_port()
    proxied_url = store_url.replace(":5432/", f":{port}/")
    with GraphEmulator() as graph, CuttableProxy(port) as proxy:
        http_port = free_port()
        graph.add_page("111", "Acme")  # ours: webhooks of other pages are dropped unstored
        config = write_config(tmp_path / "leadsync.toml", graph, proxied_url, http_port, ["111"])
        daemon = LeadsyncProcess(config, http_port, tmp_path / "leadsync.log").start()
        try:
            assert health(daemon.url) == (200, [])
            assert post_lead(graph, daemon.url, "1001") == 200

            proxy.cut()
            status, reasons = health(daemon.url)
            assert status == 503 and reasons[0].startswith("store_not_writable: ")
            assert post_lead(graph, daemon.url, "1002") == 503  # Meta will retry it
            # Asked again once the pool has no connection left: it waits for one, then says so.
            status, reasons = health(daemon.url)
            assert status == 503 and reasons[0].startswith("store_not_writable: ")
            assert daemon.proc is not None and daemon.proc.poll() is None, "still running"

            proxy.restore()
            wait_until(lambda: health(daemon.url)[0] == 200, 60, "healthy again")
            assert post_lead(graph, daemon.url, "1002") == 200
            stored = run_sql(store_url, "SELECT lead_id FROM notifications ORDER BY lead_id")
            assert [row[0] for row in stored] == ["1001", "1002"]
            assert daemon.terminate() == 0, daemon.output()[-3000:]
        finally:
            daemon.ensure_stopped()
