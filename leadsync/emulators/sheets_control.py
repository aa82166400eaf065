"""The `/_emulator/` HTTP controls of the Sheets emulator.

The same controls `SheetsEmulator` offers in-process, for tests that run
leadsync as a subprocess and for `leadsync demo`: create spreadsheets and
service-account keys, share, read what a person sees, make a person's edits,
change quotas, inject faults, read request counters. JSON in, JSON out;
worksheet titles travel as the `worksheet` query parameter. An unknown
spreadsheet or worksheet answers 404, a bad argument 400.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from leadsync.emulators.sheets import SheetsEmulator

PREFIX = "/_emulator"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OK: dict[str, Any] = {}


async def _json(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    body = await request.json()
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="a JSON object is expected")
    return body


def _guarded(handler: Handler) -> Handler:
    async def run(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except KeyError as exc:
            raise web.HTTPNotFound(text=str(exc)) from None
        except (ValueError, TypeError) as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None

    return run


class ControlApi:
    """aiohttp handlers that call the in-process controls of one emulator."""

    def __init__(self, emu: SheetsEmulator):
        self.emu = emu

    def add_routes(self, app: web.Application) -> None:
        routes = [
            ("POST", "/service_accounts", self.service_account),
            ("DELETE", "/service_accounts/{email}", self.delete_key),
            ("POST", "/spreadsheets", self.create),
            ("POST", "/spreadsheets/{id}/{action:share|unshare}", self.sharing),
            ("GET", "/spreadsheets/{id}", self.view),
            ("GET", "/spreadsheets/{id}/values", self.values),
            ("GET", "/spreadsheets/{id}/cell", self.cell),
            ("POST", "/spreadsheets/{id}/edits", self.edit),
            ("POST", "/quota", self.quota),
            ("POST", "/quota/reset", self.reset_quota),
            ("POST", "/faults", self.faults),
            ("GET", "/stats", self.stats),
            ("POST", "/tokens/expire", self.expire),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, PREFIX + path, _guarded(handler))

    async def service_account(self, request: web.Request) -> web.Response:
        return web.json_response(self.emu.service_account(**await _json(request)))

    async def delete_key(self, request: web.Request) -> web.Response:
        self.emu.delete_key(request.match_info["email"])
        return web.json_response(OK)

    async def create(self, request: web.Request) -> web.Response:
        body = await _json(request)
        try:
            book_id = self.emu.create_spreadsheet(
                body.get("id"),
                body.get("title", "Leads"),
                body.get("worksheets", ["Sheet1"]),
                body.get("shared_with", []),
            )
        except ValueError as exc:
            raise web.HTTPConflict(text=str(exc)) from None
        return web.json_response({"id": book_id})

    async def sharing(self, request: web.Request) -> web.Response:
        email = (await _json(request))["email"]
        book_id = request.match_info["id"]
        if request.match_info["action"] == "share":
            self.emu.share(book_id, email)
        else:
            self.emu.unshare(book_id, email)
        return web.json_response(OK)

    async def values(self, request: web.Request) -> web.Response:
        book_id, worksheet = request.match_info["id"], request.query["worksheet"]
        return web.json_response(
            {
                "values": self.emu.values(book_id, worksheet),
                "grid": list(self.emu.grid_size(book_id, worksheet)),
                "worksheets": self.emu.worksheet_titles(book_id),
            }
        )

    async def view(self, request: web.Request) -> web.Response:
        """Every tab as an HTML table: what a person would see when opening the sheet."""
        book_id = request.match_info["id"]
        parts = [f"<!DOCTYPE html><meta charset=utf-8><title>{html.escape(book_id)}</title>"]
        for title in self.emu.worksheet_titles(book_id):
            parts.append(f"<h2>{html.escape(title)}</h2><table border=1>")
            for line in self.emu.values(book_id, title):
                cells = "".join(f"<td>{html.escape(value)}</td>" for value in line)
                parts.append(f"<tr>{cells}</tr>")
            parts.append("</table>")
        return web.Response(text="".join(parts), content_type="text/html")

    async def cell(self, request: web.Request) -> web.Response:
        book_id, worksheet = request.match_info["id"], request.query["worksheet"]
        return web.json_response(self.emu.cell(book_id, worksheet, request.query["cell"]))

    async def edit(self, request: web.Request) -> web.Response:
        """A person's edit: {"action": "set_cell" | "add_column" | "sort_rows" | ...}."""
        body = await _json(request)
        book_id, worksheet = request.match_info["id"], request.query["worksheet"]
        action = body.pop("action", "")
        if action == "set_cell":
            self.emu.set_cell(book_id, worksheet, body["cell"], body["value"])
        elif action == "add_column":
            letter = self.emu.add_column(book_id, worksheet, body["name"])
            return web.json_response({"column": letter})
        elif action == "sort_rows":
            self.emu.sort_rows(book_id, worksheet, body["column"], bool(body.get("descending")))
        elif action == "delete_worksheet":
            self.emu.delete_worksheet(book_id, worksheet)
        else:
            raise ValueError("action must be set_cell, add_column, sort_rows or delete_worksheet")
        return web.json_response(OK)

    async def quota(self, request: web.Request) -> web.Response:
        self.emu.set_quota(**await _json(request))
        return web.json_response(OK)

    async def reset_quota(self, request: web.Request) -> web.Response:
        self.emu.reset_quota()
        return web.json_response(OK)

    async def faults(self, request: web.Request) -> web.Response:
        self.emu.fail_next(**await _json(request))
        return web.json_response(OK)

    async def stats(self, request: web.Request) -> web.Response:
        log = self.emu.requests()
        return web.json_response(
            {
                "reads": sum(r.kind == "read" for r in log),
                "writes": sum(r.kind == "write" for r in log),
                "requests": [asdict(r) for r in log],
            }
        )

    async def expire(self, request: web.Request) -> web.Response:
        self.emu.expire_tokens()
        return web.json_response(OK)
