"""Runs a real `Daemon` in a background thread for in-process tests.

The daemon keeps its own event loop, as under `leadsync run`; tests drive the
emulators and read the store from the main thread, waiting on conditions with
a deadline (`wait_until`) rather than sleeping.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from leadsync.config import Settings, parse_config
from leadsync.daemon import Daemon


def wait_until(condition: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Polls `condition` until it is truthy; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def daemon_settings(
    graph,
    store_url: str,
    *,
    pages: list[str],
    destinations: list[dict] | None = None,
    **sections: Any,
) -> Settings:
    """Settings for a daemon on the Graph emulator `graph`, listening on a free port."""
    raw: dict[str, Any] = {
        "facebook": {
            "app_id": graph.app_id,
            "app_secret": graph.app_secret,
            "verify_token": "verify-me",
            "access_token": graph.access_token,
            "graph_url": graph.url,
            "poll_interval": "1h",
            "pages": [{"id": p} for p in pages],
        },
        "server": {"host": "127.0.0.1", "port": 0, "events_token": "events-secret"},
        "store": {"url": store_url},
        "destinations": destinations or [],
    }
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return parse_config(raw, {})


class DaemonThread:
    """A started daemon on its own loop in a thread; `url` is its HTTP server."""

    def __init__(self, settings: Settings, **kwargs: Any):
        self._settings = settings
        self._kwargs = kwargs
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.daemon: Daemon | None = None

    def __enter__(self) -> DaemonThread:
        self._thread.start()
        self.daemon = self._call(self._create())
        return self

    def __exit__(self, *exc: object) -> None:
        if self.daemon is not None:
            self._call(self.daemon.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _create(self) -> Daemon:
        daemon = Daemon(self._settings, **self._kwargs)
        await daemon.start()
        return daemon

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def run(self, coro: Any) -> Any:
        """Runs a coroutine on the daemon's loop (as its signal handlers do); returns its result."""
        return self._call(coro)

    @property
    def url(self) -> str:
        assert self.daemon is not None
        return f"http://127.0.0.1:{self.daemon.port}"

    @property
    def store(self):  # noqa: ANN201
        assert self.daemon is not None
        return self.daemon.store


def sheets_destination(sheets, key_dir, *, spreadsheet: str = "sales", **keys: Any) -> dict:
    """A google_sheets destination on the Sheets emulator, with a shared spreadsheet."""
    import json

    # One key per account: a new key for the same service account revokes the previous one.
    key_file = key_dir / "service-account.json"
    if not key_file.exists():
        key_file.write_text(json.dumps(sheets.service_account()))
    key = json.loads(key_file.read_text())
    if spreadsheet not in sheets.state.books:
        sheets.create_spreadsheet(
            spreadsheet, "Sales", ["Leads"], shared_with=[key["client_email"]]
        )
    else:
        sheets.share(spreadsheet, key["client_email"])
    return {
        "name": keys.pop("name", "sheet"),
        "type": "google_sheets",
        "spreadsheet": spreadsheet,
        "worksheet": keys.pop("worksheet", "Leads"),
        "credentials": str(key_file),
        "api_url": sheets.url,
        **keys,
    }


def sheet_rows(
    sheets, spreadsheet: str = "sales", worksheet: str = "Leads"
) -> list[dict[str, str]]:
    """The sheet's rows below the header, as dicts by column name."""
    values = sheets.values(spreadsheet, worksheet)
    if not values:
        return []
    header = values[0]
    return [dict(zip(header, row, strict=False)) for row in values[1:]]
