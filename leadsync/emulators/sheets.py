"""A Google Sheets API emulator for tests, benchmarks and `leadsync demo`.

Serves the Sheets v4 endpoints gspread 6 uses and the OAuth2 token endpoint
google-auth calls for service accounts (see `sheets_api`), over real HTTP from
a background thread with its own event loop::

    with SheetsEmulator() as emu:
        key = emu.service_account()                  # key JSON; token_uri -> emulator
        emu.create_spreadsheet("sheet-1", shared_with=[key["client_email"]])
        ...gspread against emu.url...
        emu.values("sheet-1", "Leads")               # what a person would see

It also plays the person working in the sheet (type in a cell, add a "Status"
column, insert a column, sort rows) and the service misbehaving (quota, faults, expired
tokens). The same controls are served under `/_emulator/` for subprocess
tests and the demo. Standalone: `python -m leadsync.emulators.sheets --port N`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from leadsync.emulators import sheets_a1 as a1
from leadsync.emulators import sheets_batch
from leadsync.emulators.google_oauth import DEFAULT_ACCOUNT, TokenAuthority
from leadsync.emulators.sheets_api import Fault, Quota, RequestRecord, SheetsApi, SheetsState
from leadsync.emulators.sheets_control import ControlApi
from leadsync.emulators.sheets_grid import Spreadsheet, Worksheet, make_cell

__all__ = ["SheetsEmulator", "RequestRecord", "main"]


class SheetsEmulator:
    """The Sheets API and Google's token endpoint on 127.0.0.1, in a background thread."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        writes_per_minute: int | None = 60,
        reads_per_minute: int | None = 60,
        quota_window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        token_lifetime: int = 3600,
    ):
        self.host, self._port = host, port
        quota = Quota(writes_per_minute, reads_per_minute, quota_window, clock)
        self.state = SheetsState(TokenAuthority(token_lifetime=token_lifetime), quota)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    # -- lifecycle -----------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}"

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    def start(self) -> SheetsEmulator:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._serve, args=(ready,), name="sheets-emulator", daemon=True
        )
        self._thread.start()
        if not ready.wait(10) or self._error is not None:
            raise RuntimeError(f"sheets emulator did not start: {self._error!r}")
        return self

    def _serve(self, ready: threading.Event) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        app = web.Application(client_max_size=32 * 1024 * 1024)
        SheetsApi(self.state).add_routes(app)
        ControlApi(self).add_routes(app)
        runner = web.AppRunner(app, access_log=None)
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, self.host, self._port)
            loop.run_until_complete(site.start())
            self._port = runner.addresses[0][1]
        except OSError as exc:
            self._error = exc
            ready.set()
            loop.run_until_complete(runner.cleanup())
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._thread = None

    def __enter__(self) -> SheetsEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- accounts and files ------------------------------------------------------
    def service_account(self, email: str = DEFAULT_ACCOUNT) -> dict[str, str]:
        """A new key JSON for `email` whose token_uri is this emulator's /token."""
        return self.state.authority.new_key(self.token_uri, email)

    def delete_key(self, email: str) -> None:
        """The account's key was deleted: token requests fail, issued tokens stop working."""
        self.state.authority.delete_key(email)

    def expire_tokens(self) -> None:
        """Every access token expires now; google-auth must fetch a new one."""
        self.state.authority.expire_tokens()

    def create_spreadsheet(
        self,
        spreadsheet_id: str | None = None,
        title: str = "Leads",
        worksheets: Iterable[str] = ("Sheet1",),
        shared_with: Iterable[str] = (),
    ) -> str:
        """Creates a spreadsheet (as a person would in Drive); returns its id."""
        book_id = spreadsheet_id or "emu-" + secrets.token_urlsafe(24)
        sheets = [Worksheet(sheet_id=i, title=t) for i, t in enumerate(worksheets)]
        with self.state.lock:
            if book_id in self.state.books:
                raise ValueError(f"spreadsheet {book_id} exists")
            self.state.books[book_id] = Spreadsheet(book_id, title, sheets, set(shared_with))
        return book_id

    def share(self, spreadsheet_id: str, email: str) -> None:
        with self.state.lock:
            self._book(spreadsheet_id).shared_with.add(email)

    def unshare(self, spreadsheet_id: str, email: str) -> None:
        with self.state.lock:
            self._book(spreadsheet_id).shared_with.discard(email)

    def _book(self, spreadsheet_id: str) -> Spreadsheet:
        try:
            return self.state.books[spreadsheet_id]
        except KeyError:
            raise KeyError(f"no spreadsheet {spreadsheet_id}") from None

    def _sheet(self, spreadsheet_id: str, worksheet: str) -> Worksheet:
        for sheet in self._book(spreadsheet_id).sheets:
            if sheet.title == worksheet:
                return sheet
        raise KeyError(f"no worksheet {worksheet!r} in {spreadsheet_id}")

    # -- what a person sees --------------------------------------------------------
    def worksheet_titles(self, spreadsheet_id: str) -> list[str]:
        with self.state.lock:
            return [s.title for s in self._book(spreadsheet_id).sheets]

    def grid_size(self, spreadsheet_id: str, worksheet: str) -> tuple[int, int]:
        """(rowCount, columnCount) of a worksheet."""
        with self.state.lock:
            sheet = self._sheet(spreadsheet_id, worksheet)
            return sheet.row_count, sheet.column_count

    def values(self, spreadsheet_id: str, worksheet: str) -> list[list[str]]:
        """The displayed text of every used row, trailing blanks trimmed (like values.get)."""
        with self.state.lock:
            sheet = self._sheet(spreadsheet_id, worksheet)
            rows = []
            for line in sheet.rows[: sheet.last_used_row() + 1]:
                cells = list(line)
                while cells and cells[-1] is None:
                    cells.pop()
                rows.append(["" if c is None else c.formatted() for c in cells])
            return rows

    def cell(self, spreadsheet_id: str, worksheet: str, label: str) -> dict[str, Any]:
        """What one cell holds: its typed value, its formula (if it became one), its text."""
        grid = a1.parse(label)
        with self.state.lock:
            found = self._sheet(spreadsheet_id, worksheet).get(grid.start_row, grid.start_col)
        if found is None:
            return {"value": None, "formula": None, "formatted": ""}
        return {"value": found.value, "formula": found.formula, "formatted": found.formatted()}

    def is_formula(self, spreadsheet_id: str, worksheet: str, label: str) -> bool:
        """True when the cell holds a formula (USER_ENTERED "=..."), not text."""
        return self.cell(spreadsheet_id, worksheet, label)["formula"] is not None

    # -- what a person does ---------------------------------------------------------
    def set_cell(self, spreadsheet_id: str, worksheet: str, label: str, value: Any) -> None:
        """Types `value` into a cell, parsed like the UI does (USER_ENTERED)."""
        grid = a1.parse(label)
        with self.state.lock:
            sheet = self._sheet(spreadsheet_id, worksheet)
            if grid.start_row >= sheet.row_count or grid.start_col >= sheet.column_count:
                raise ValueError(f"{label} is outside the grid of {worksheet!r}")
            sheet.put(grid.start_row, grid.start_col, make_cell(value, "USER_ENTERED"))

    def add_column(self, spreadsheet_id: str, worksheet: str, name: str) -> str:
        """Adds header `name` after the last header cell (growing the grid); returns its letter."""
        with self.state.lock:
            sheet = self._sheet(spreadsheet_id, worksheet)
            header = sheet.rows[0] if sheet.rows else []
            used = [i for i, c in enumerate(header) if c is not None]
            col = used[-1] + 1 if used else 0
            if col >= sheet.column_count:
                sheet.column_count = col + 1
            sheet.put(0, col, make_cell(name, "RAW"))
            return a1.column_letters(col)

    def insert_column(self, spreadsheet_id: str, worksheet: str, before: str) -> None:
        """Inserts an empty column left of column `before` ("A"), as Insert > Column left does.

        Every column from `before` on moves one to the right, its header with it.
        """
        with self.state.lock:
            sheet = self._sheet(spreadsheet_id, worksheet)
            index = a1.parse(f"{before}1").start_col
            span = {"sheetId": sheet.sheet_id, "dimension": "COLUMNS"}
            body = {"range": span | {"startIndex": index, "endIndex": index + 1}}
            sheets_batch.HANDLERS["insertDimension"](self._book(spreadsheet_id), body)

    def sort_rows(
        self, spreadsheet_id: str, worksheet: str, column: str, descending: bool = False
    ) -> None:
        """Sorts every row under the header by the column headed `column` (Data > Sort range)."""
        with self.state.lock:
            sheet = self._sheet(spreadsheet_id, worksheet)
            header = [c.formatted() if c else "" for c in (sheet.rows[0] if sheet.rows else [])]
            index = header.index(column)
            body = {
                "range": {"sheetId": sheet.sheet_id, "startRowIndex": 1},
                "sortSpecs": [
                    {
                        "dimensionIndex": index,
                        "sortOrder": "DESCENDING" if descending else "ASCENDING",
                    }
                ],
            }
            sheets_batch.HANDLERS["sortRange"](self._book(spreadsheet_id), body)

    def delete_worksheet(self, spreadsheet_id: str, worksheet: str) -> None:
        """Deletes a tab, as a person tidying up the spreadsheet might."""
        with self.state.lock:
            book = self._book(spreadsheet_id)
            book.sheets.remove(self._sheet(spreadsheet_id, worksheet))

    # -- how the service behaves ------------------------------------------------------
    def set_quota(
        self, *, writes_per_minute: int | None = 60, reads_per_minute: int | None = 60
    ) -> None:
        """Changes the per-user per-minute quotas (None = unlimited) and starts a new window."""
        with self.state.lock:
            self.state.quota.writes_per_minute = writes_per_minute
            self.state.quota.reads_per_minute = reads_per_minute
            self.state.quota.reset()

    def reset_quota(self) -> None:
        """Forgets the requests counted so far, as if a minute had passed."""
        with self.state.lock:
            self.state.quota.reset()

    def fail_next(
        self,
        count: int = 1,
        status: int = 500,
        *,
        kind: str = "any",
        after_apply: bool = False,
        delay: float = 0.0,
    ) -> None:
        """The next `count` API requests of `kind` ("read", "write", "any") fail with `status`.

        With `after_apply` the change is made first and only the answer is lost, as
        when a reply times out; `delay` holds the answer back that many seconds.
        """
        if kind not in ("any", "read", "write"):
            raise ValueError(f"kind must be any, read or write, not {kind!r}")
        with self.state.lock:
            self.state.faults.append(Fault(status, count, kind, after_apply, delay))

    def clear_faults(self) -> None:
        """Forgets every injected fault not served yet: the outage is over."""
        with self.state.lock:
            self.state.faults.clear()

    def requests(self, op: str | None = None, kind: str | None = None) -> list[RequestRecord]:
        """API requests seen so far, optionally of one method ("values.append") or kind."""
        with self.state.lock:
            return [
                r
                for r in self.state.log
                if (op is None or r.op == op) and (kind is None or r.kind == kind)
            ]

    @property
    def reads(self) -> int:
        return len(self.requests(kind="read"))

    @property
    def writes(self) -> int:
        return len(self.requests(kind="write"))

    def reset_counters(self) -> None:
        with self.state.lock:
            self.state.log.clear()


def main(argv: list[str] | None = None) -> None:
    """Runs the emulator in the foreground until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m leadsync.emulators.sheets")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--writes-per-minute", type=int, default=60)
    parser.add_argument("--reads-per-minute", type=int, default=60)
    parser.add_argument("--spreadsheet", help="create a spreadsheet with this id")
    parser.add_argument("--key-file", type=Path, help="write a service-account key here")
    args = parser.parse_args(argv)
    emulator = SheetsEmulator(
        host=args.host,
        port=args.port,
        writes_per_minute=args.writes_per_minute,
        reads_per_minute=args.reads_per_minute,
    ).start()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    if args.key_file:
        key = emulator.service_account()
        args.key_file.write_text(json.dumps(key, indent=2))
        args.key_file.chmod(0o600)
    if args.spreadsheet:
        shared = [DEFAULT_ACCOUNT] if args.key_file else []
        emulator.create_spreadsheet(args.spreadsheet, shared_with=shared)
    print(f"sheets emulator listening on {emulator.url}", flush=True)
    stop.wait()
    emulator.stop()


if __name__ == "__main__":
    main()
