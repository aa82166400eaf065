"""The HTTP face of the Sheets emulator: `/v4/spreadsheets/...` and `POST /token`.

Every API request goes through the gates the real service has, in its order:
an injected fault (500/503/429/502 for the next N requests, before or after
the change is applied), the bearer token (401), the per-user per-minute quota
for reads and writes (429 RESOURCE_EXHAUSTED with Google's error body), the
spreadsheet's existence (404) and sharing (403 PERMISSION_DENIED). Changes
apply under one lock; batches apply to a copy that replaces the original only
when every part succeeded.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from leadsync.emulators import sheets_batch, sheets_values
from leadsync.emulators.google_oauth import GrantError, TokenAuthority
from leadsync.emulators.sheets_grid import ApiError, Spreadsheet, bad_request

_UNAUTHENTICATED = (
    "Request {} authentication credential. Expected OAuth 2 access token, login cookie or "
    "other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
_FAULT_BODIES = {
    400: ("INVALID_ARGUMENT", "Invalid value at 'data' (injected fault)."),
    401: ("UNAUTHENTICATED", _UNAUTHENTICATED.format("had invalid")),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "Requested entity was not found."),
    500: ("INTERNAL", "Internal error encountered."),
    503: ("UNAVAILABLE", "The service is currently unavailable."),
    504: ("DEADLINE_EXCEEDED", "The request timed out. Please try again."),
}
_BAD_GATEWAY_PAGE = (
    "<!DOCTYPE html><html lang=en><title>Error 502 (Server Error)!!1</title>"
    "<p><b>502.</b> <ins>That's an error.</ins><p>The server encountered a temporary error "
    "and could not complete your request.<p>Please try again in 30 seconds. "
    "<ins>That's all we know.</ins></html>"
)


def error_response(code: int, status: str, message: str, details: list | None = None):
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return web.json_response({"error": error}, status=code)


def quota_response(kind: str, limit: int) -> web.Response:
    """Google's 429 for a per-user per-minute quota, word for word."""
    metric = "Write requests" if kind == "write" else "Read requests"
    name = "WriteRequestsPerMinutePerUser" if kind == "write" else "ReadRequestsPerMinutePerUser"
    message = (
        f"Quota exceeded for quota metric '{metric}' and limit '{metric} per minute per user' "
        "of service 'sheets.googleapis.com' for consumer 'project_number:000000000000'."
    )
    details = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "RATE_LIMIT_EXCEEDED",
            "domain": "googleapis.com",
            "metadata": {
                "quota_limit": name,
                "quota_metric": f"sheets.googleapis.com/{kind}_requests",
                "quota_location": "global",
                "quota_limit_value": str(limit),
                "consumer": "projects/000000000000",
                "service": "sheets.googleapis.com",
                "quota_unit": "1/min/{project}/{user}",
            },
        },
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [
                {
                    "description": "Request a higher quota limit.",
                    "url": "https://cloud.google.com/docs/quotas/help/request_increase",
                }
            ],
        },
    ]
    return error_response(429, "RESOURCE_EXHAUSTED", message, details)


@dataclass
class Fault:
    """The next `remaining` matching requests fail with `status`."""

    status: int
    remaining: int
    kind: str = "any"  # "read", "write" or "any"
    after_apply: bool = False  # the change is made, then the answer is an error (a lost reply)
    delay: float = 0.0  # seconds to wait before answering (client timeouts)

    def response(self) -> web.Response:
        if self.status == 429:
            return quota_response("write" if self.kind != "read" else "read", 60)
        if self.status == 502:
            return web.Response(status=502, text=_BAD_GATEWAY_PAGE, content_type="text/html")
        status, message = _FAULT_BODIES.get(self.status, ("UNKNOWN", "Injected fault."))
        return error_response(self.status, status, message)


@dataclass
class Quota:
    """Per-user, per-minute request quota over a sliding window; None means unlimited."""

    writes_per_minute: int | None = 60
    reads_per_minute: int | None = 60
    window: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _seen: dict[tuple[str, str], deque[float]] = field(default_factory=lambda: defaultdict(deque))

    def limit(self, kind: str) -> int | None:
        return self.writes_per_minute if kind == "write" else self.reads_per_minute

    def take(self, user: str, kind: str) -> bool:
        """Counts one request; False when the user has used up the window's quota."""
        limit = self.limit(kind)
        if limit is None:
            return True
        now = self.clock()
        seen = self._seen[(user, kind)]
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        if len(seen) >= limit:
            return False
        seen.append(now)
        return True

    def reset(self) -> None:
        self._seen.clear()


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One API request as the emulator saw it (for tests and benchmarks)."""

    op: str
    kind: str
    status: int
    spreadsheet_id: str
    user: str = ""


@dataclass
class SheetsState:
    """Everything the emulator knows; guarded by `lock`."""

    authority: TokenAuthority
    quota: Quota
    books: dict[str, Spreadsheet] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    log: list[RequestRecord] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def take_fault(self, kind: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.kind in ("any", kind) and fault.remaining > 0:
                    fault.remaining -= 1
                    if not fault.remaining:
                        self.faults.remove(fault)
                    return fault
        return None


@dataclass(frozen=True, slots=True)
class Route:
    """What a request path means: the API method, read or write, its spreadsheet and range."""

    op: str
    kind: str
    spreadsheet_id: str
    range: str = ""


def parse_route(method: str, raw_tail: str) -> Route | None:
    """Reads `{id}`, `{id}:batchUpdate`, `{id}/values/{range}:append`, ... (range still quoted)."""
    book, slash, rest = raw_tail.partition("/")
    if not slash:
        book, _, verb = book.partition(":")
        if method == "GET" and not verb:
            return Route("spreadsheets.get", "read", book)
        if method == "POST" and verb == "batchUpdate":
            return Route("spreadsheets.batchUpdate", "write", book)
        return None
    if rest.startswith("values:"):
        verb = rest.removeprefix("values:")
        kind = "read" if verb == "batchGet" else "write"
        wanted = "GET" if verb == "batchGet" else "POST"
        if verb in ("batchGet", "batchUpdate", "batchClear") and method == wanted:
            return Route(f"values.{verb}", kind, book)
        return None
    if not rest.startswith("values/"):
        return None
    quoted, _, verb = rest.removeprefix("values/").partition(":")
    text = unquote(quoted)
    if not verb and method == "GET":
        return Route("values.get", "read", book, text)
    if not verb and method == "PUT":
        return Route("values.update", "write", book, text)
    if verb in ("append", "clear") and method == "POST":
        return Route(f"values.{verb}", "write", book, text)
    return None


def _run(route: Route, book: Spreadsheet, query: Any, body: dict[str, Any]) -> tuple[Any, bool]:
    """Runs one API method; returns its answer and whether `book` must be replaced by a copy."""
    q = query.get
    match route.op:
        case "spreadsheets.get":
            return book.metadata(), False
        case "values.get":
            return sheets_values.get(
                book, route.range, q("majorDimension"), q("valueRenderOption")
            ), False
        case "values.batchGet":
            ranges = query.getall("ranges", [])
            return sheets_values.batch_get(
                book, ranges, q("majorDimension"), q("valueRenderOption")
            ), False
        case "values.update":
            return sheets_values.update(
                book,
                route.range,
                body.get("values"),
                q("valueInputOption"),
                body.get("majorDimension"),
            ), False
        case "values.append":
            return sheets_values.append(
                book,
                route.range,
                body.get("values"),
                q("valueInputOption"),
                q("insertDataOption"),
                body.get("majorDimension"),
            ), False
        case "values.clear":
            return sheets_values.clear(book, route.range), False
        case "values.batchClear":
            cleared = [sheets_values.clear(book, r)["clearedRange"] for r in body.get("ranges", [])]
            return {"spreadsheetId": book.spreadsheet_id, "clearedRanges": cleared}, True
        case "values.batchUpdate":
            return sheets_values.batch_update(book, body), True
        case "spreadsheets.batchUpdate":
            replies = sheets_batch.apply(book, body.get("requests") or [])
            return {"spreadsheetId": book.spreadsheet_id, "replies": replies}, True
    raise bad_request(f"unsupported method {route.op}")  # pragma: no cover - routes are fixed


class SheetsApi:
    """aiohttp handlers for the Sheets v4 API and the OAuth2 token endpoint."""

    def __init__(self, state: SheetsState):
        self.state = state

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/token", self.token)
        app.router.add_route("*", "/v4/spreadsheets/{tail:.+}", self.dispatch)

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        try:
            answer = self.state.authority.grant({k: str(v) for k, v in form.items()})
        except GrantError as exc:
            return web.json_response(exc.body, status=exc.status)
        return web.json_response(answer)

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        raw_tail = request.raw_path.split("?", 1)[0].removeprefix("/v4/spreadsheets/")
        route = parse_route(request.method, raw_tail)
        if route is None:
            return error_response(404, "NOT_FOUND", "Method not found.")
        fault = self.state.take_fault(route.kind)
        if fault is not None and not fault.after_apply:
            return await self._finish(route, "", fault.response(), fault.delay)
        try:
            body = await request.json() if request.can_read_body else {}
        except json.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            return error_response(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        response, user = self._gate_and_run(request, route, body)
        if fault is not None:
            return await self._finish(route, user, fault.response(), fault.delay)
        return await self._finish(route, user, response, 0.0)

    def _gate_and_run(
        self, request: web.Request, route: Route, body: dict[str, Any]
    ) -> tuple[web.Response, str]:
        try:
            access = self.state.authority.check(
                request.headers.get("Authorization"), write=route.kind == "write"
            )
        except GrantError as exc:
            if exc.status == 401:
                which = (
                    "is missing required"
                    if exc.body["error_description"] == "missing"
                    else ("had invalid")
                )
                return error_response(401, "UNAUTHENTICATED", _UNAUTHENTICATED.format(which)), ""
            return error_response(403, exc.body["error"], exc.body["error_description"]), ""
        user = access.email
        with self.state.lock:
            if not self.state.quota.take(user, route.kind):
                limit = self.state.quota.limit(route.kind) or 0
                return quota_response(route.kind, limit), user
            book = self.state.books.get(route.spreadsheet_id)
            if book is None:
                return error_response(404, "NOT_FOUND", "Requested entity was not found."), user
            if user not in book.shared_with:
                return error_response(
                    403, "PERMISSION_DENIED", "The caller does not have permission"
                ), user
            return self._apply(route, book, request, body), user

    def _apply(
        self, route: Route, book: Spreadsheet, request: web.Request, body: dict[str, Any]
    ) -> web.Response:
        atomic = route.op in ("values.batchUpdate", "values.batchClear", "spreadsheets.batchUpdate")
        target = book.clone() if atomic else book
        try:
            answer, replace = _run(route, target, request.query, body)
        except ApiError as exc:
            return error_response(exc.code, exc.status, exc.message)
        if replace:
            self.state.books[book.spreadsheet_id] = target
        return web.json_response(answer)

    async def _finish(
        self, route: Route, user: str, response: web.Response, delay: float
    ) -> web.Response:
        with self.state.lock:
            self.state.log.append(
                RequestRecord(route.op, route.kind, response.status, route.spreadsheet_id, user)
            )
        if delay:
            await asyncio.sleep(delay)
        return response
