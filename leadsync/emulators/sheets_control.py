"""The `/_emulator/` HTTP controls of the Sheets emulator.

The same controls `SheetsEmulator` offers in-process, for tests that run
leadsync as a subprocess and for `leadsync demo`: create spreadsheets and
service-account keys, share, read what a person sees, make a person's edits,
change quotas, inject faults, read request counters. JSON in, JSON out;
worksheet titles travel as the `worksheet` query parameter.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from leadsync.emulators.sheets import SheetsEmulator

PREFIX = "/_emulator"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _json(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    body = await request.json()
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="a JSON object is expected")
    return body


def _guarded(handler: Handler) -> Handler:
    """Unknown spreadsheets or worksheets answer 404, bad arguments 400 (not a 500 page)."""

    async def run(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except KeyError as exc:
            raise web.HTTPNotFound(text=str(exc)) from None
        except (ValueError, TypeError) as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None

    return run


def add_control_routes(app: web.Application, emu: SheetsEmulator) -> None:
    """Adds every control endpoint of `emu` to `app`."""

    async def service_account(request: web.Request) -> web.Response:
        body = await _json(request)
        return web.json_response(emu.service_account(**body))

    async def delete_key(request: web.Request) -> web.Response:
        emu.delete_key(request.match_info["email"])
        return web.json_response({})

    async def create(request: web.Request) -> web.Response:
        body = await _json(request)
        try:
            book_id = emu.create_spreadsheet(
                body.get("id"),
                body.get("title", "Leads"),
                body.get("worksheets", ["Sheet1"]),
                body.get("shared_with", []),
            )
        except ValueError as exc:
            raise web.HTTPConflict(text=str(exc)) from None
        return web.json_response({"id": book_id})

    async def sharing(request: web.Request) -> web.Response:
        body = await _json(request)
        book_id, action = request.match_info["id"], request.match_info["action"]
        (emu.share if action == "share" else emu.unshare)(book_id, body["email"])
        return web.json_response({})

    async def values(request: web.Request) -> web.Response:
        book_id, worksheet = request.match_info["id"], request.query["worksheet"]
        return web.json_response(
            {
                "values": emu.values(book_id, worksheet),
                "grid": list(emu.grid_size(book_id, worksheet)),
                "worksheets": emu.worksheet_titles(book_id),
            }
        )

    async def cell(request: web.Request) -> web.Response:
        book_id, worksheet = request.match_info["id"], request.query["worksheet"]
        return web.json_response(emu.cell(book_id, worksheet, request.query["cell"]))

    async def edit(request: web.Request) -> web.Response:
        body = await _json(request)
        book_id, worksheet = request.match_info["id"], request.query["worksheet"]
        action = body.pop("action", "")
        if action == "set_cell":
            emu.set_cell(book_id, worksheet, body["cell"], body["value"])
            return web.json_response({})
        if action == "add_column":
            return web.json_response({"column": emu.add_column(book_id, worksheet, body["name"])})
        if action == "sort_rows":
            emu.sort_rows(book_id, worksheet, body["column"], bool(body.get("descending")))
            return web.json_response({})
        raise web.HTTPBadRequest(text="action must be set_cell, add_column or sort_rows")

    async def quota(request: web.Request) -> web.Response:
        body = await _json(request)
        if request.match_info.get("reset"):
            emu.reset_quota()
        else:
            emu.set_quota(**body)
        return web.json_response({})

    async def faults(request: web.Request) -> web.Response:
        emu.fail_next(**(await _json(request)))
        return web.json_response({})

    async def stats(request: web.Request) -> web.Response:
        log = emu.requests()
        return web.json_response(
            {
                "reads": sum(r.kind == "read" for r in log),
                "writes": sum(r.kind == "write" for r in log),
                "requests": [asdict(r) for r in log],
            }
        )

    async def expire(request: web.Request) -> web.Response:
        emu.expire_tokens()
        return web.json_response({})

    routes = [
        ("POST", "/service_accounts", service_account),
        ("DELETE", "/service_accounts/{email}", delete_key),
        ("POST", "/spreadsheets", create),
        ("POST", "/spreadsheets/{id}/{action:share|unshare}", sharing),
        ("GET", "/spreadsheets/{id}/values", values),
        ("GET", "/spreadsheets/{id}/cell", cell),
        ("POST", "/spreadsheets/{id}/edits", edit),
        ("POST", "/quota{reset:(/reset)?}", quota),
        ("POST", "/faults", faults),
        ("GET", "/stats", stats),
        ("POST", "/tokens/expire", expire),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, PREFIX + path, _guarded(handler))
