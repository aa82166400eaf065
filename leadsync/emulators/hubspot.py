"""An emulator of the HubSpot CRM API (contacts and contact properties), over real HTTP.

It serves what the HubSpot connector and a naive script use, with HubSpot's
shapes as its API reference documents them: private-app bearer tokens;
`GET/POST /crm/v3/properties/contacts` and `.../batch/create` (custom
properties, `hasUniqueValue`; a batch makes what it can and answers 207);
`POST /crm/v3/objects/contacts/batch/upsert` (at most 100 inputs, each keyed by
`idProperty` = `email` or a unique-value property, the whole batch rejected with
400 `VALIDATION_ERROR` when one input is invalid, results in no promised
order); `POST /crm/v3/objects/contacts` (one contact); the contact search
(`hubspot_search.py`: filterGroups, one sort, `properties`, `limit` ≤ 200,
`after` paging, the 10,000-result cap); the error JSON
(`status`, `message`, `category`, `correlationId`); and the
`X-HubSpot-RateLimit-*` headers on every answer, with 429s in HubSpot's
`policyName` form when the rolling ten-second window is exceeded. Tests read
the portal back (`contacts_with`, `properties`, `request_counts`) and inject
failures (`throttle`, `fail`, `reject`, `stall`, `revoke_token`, `deny_scopes`,
`delete_property`), and act as the people using HubSpot do (`set_property`: a
salesperson moves a contact's lifecycle stage or owner; `add_owner`; also as
`POST /_emulator/contacts/{id}/properties` and `/_emulator/owners`, no token).
Where the reference is silent the emulator says so in a
comment (a unique-value conflict, the lifecycle stage never moving back).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter, deque
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from leadsync.emulators.background import BackgroundServer, Fault
from leadsync.emulators.hubspot_portal import Portal, Rejected
from leadsync.emulators.hubspot_search import search

# HubSpot's documented burst window for private apps: requests per rolling 10 seconds.
WINDOW_MS = 10_000
DEFAULT_BURST_LIMIT = 100
DAILY_LIMIT = 250_000
BATCH_LIMIT = 100
UPSERT_PATH = "/crm/v3/objects/contacts/batch/upsert"
SEARCH_PATH = "/crm/v3/objects/contacts/search"
CONTROL = "/_emulator/"  # test controls: what people do in HubSpot's UI; no token


def _error(status: int, message: str, category: str, **extra: Any) -> web.Response:
    body = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }
    return web.json_response(body, status=status)


class HubSpotEmulator(BackgroundServer):
    """A HubSpot portal with one private app token; `with HubSpotEmulator() as emu: emu.url`."""

    def __init__(self, token: str = "pat-na1-emulator", *, burst_limit: int | None = None):
        super().__init__()
        self.token = token
        self.portal = Portal()
        self.burst_limit = burst_limit  # None: report the headers, never throttle by itself
        self.request_counts: Counter[str] = Counter()
        self._hits: deque[float] = deque()
        self._daily_used = 0
        self._scopes_denied = False
        self._state = threading.Lock()

    # -- inspection -------------------------------------------------------------
    def contacts(self) -> list[dict[str, Any]]:
        """Every contact as HubSpot returns it (id, properties)."""
        with self._state:
            return self.portal.all_contacts()

    def contacts_with(self, name: str, value: str) -> list[dict[str, Any]]:
        """Contacts whose property `name` equals `value`."""
        return [c for c in self.contacts() if c["properties"].get(name) == value]

    def properties(self) -> dict[str, dict[str, Any]]:
        with self._state:
            return {name: dict(p) for name, p in self.portal.properties.items()}

    @property
    def upsert_requests(self) -> int:
        return self.request_counts[f"POST {UPSERT_PATH}"]

    @property
    def total_requests(self) -> int:
        return sum(self.request_counts.values())

    # -- what people do in HubSpot --------------------------------------------------
    def set_property(self, contact_id: str, name: str, value: str) -> dict[str, Any]:
        """A salesperson changes one property of a contact (lifecycle stage, owner, ...)."""
        with self._state:
            return self.portal.set_property(contact_id, name, value)

    def add_owner(self, owner_id: str, name: str = "") -> None:
        """A user who can own contacts (an option of hubspot_owner_id)."""
        with self._state:
            self.portal.add_owner(owner_id, name)

    # -- failures ---------------------------------------------------------------
    def throttle(
        self,
        times: int = 1,
        *,
        policy: str = "TEN_SECONDLY_ROLLING",
        retry_after: int | None = None,
        skip: int = 0,
    ) -> None:
        """The next `times` requests (after `skip`) get HubSpot's 429 for `policy`."""
        headers = self._limit_headers(remaining=0)
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        body = json.dumps(self._throttle_body(policy))
        self.inject(Fault(429, body, headers, path="/crm/", times=times, skip=skip))

    def fail(self, status: int = 500, times: int = 1, *, html: bool = False, skip: int = 0) -> None:
        """The next `times` requests (after `skip`) fail with `status`: JSON or a gateway page."""
        if html:
            page = f"<html><body><h1>{status} Bad Gateway</h1>cloudflare</body></html>"
            fault = Fault(status, page, content_type="text/html", path="/crm/", times=times)
        else:
            body = {"status": "error", "message": "internal error", "category": "INTERNAL_ERROR"}
            fault = Fault(status, json.dumps(body), path="/crm/", times=times)
        fault.skip = skip
        self.inject(fault)

    def delete_property(self, name: str) -> None:
        """Someone deletes a contact property in HubSpot's settings."""
        with self._state:
            self.portal.properties.pop(name, None)

    def reject(self, times: int = 1) -> None:
        """The next `times` upserts are refused as HubSpot refuses a bad value (400)."""
        problems = [{"isValid": False, "message": "x was not one of the allowed options",
                     "error": "INVALID_OPTION", "name": "lifecyclestage"}]  # fmt: skip
        body = {
            "status": "error",
            "message": f"Property values were not valid: {json.dumps(problems)}",
            "correlationId": str(uuid.uuid4()),
            "category": "VALIDATION_ERROR",
        }
        self.inject(Fault(400, json.dumps(body), path=UPSERT_PATH, times=times))

    def stall(self, seconds: float, times: int = 1) -> None:
        """The next `times` requests wait `seconds` before answering (client timeouts)."""
        self.inject(Fault(500, "{}", delay=seconds, path="/crm/", times=times))

    def revoke_token(self) -> None:
        """The app's token stops working (deleted private app, rotated token)."""
        self.token = f"revoked-{uuid.uuid4()}"

    def deny_scopes(self, denied: bool = True) -> None:
        """The token lacks the crm.objects.contacts.write / crm.schemas scopes."""
        self._scopes_denied = denied

    # -- HTTP -----------------------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        app.router.add_get("/crm/v3/properties/contacts", self._list_properties)
        app.router.add_post("/crm/v3/properties/contacts", self._create_property)
        app.router.add_post("/crm/v3/properties/contacts/batch/create", self._create_properties)
        app.router.add_post(UPSERT_PATH, self._batch_upsert)
        app.router.add_post("/crm/v3/objects/contacts", self._create_contact)
        app.router.add_post(SEARCH_PATH, self._search)
        app.router.add_post(CONTROL + "contacts/{contact_id}/properties", self._control_set)
        app.router.add_post(CONTROL + "owners", self._control_owner)

    def middlewares(self) -> list[Any]:
        return [self._count, *super().middlewares(), self._guard]

    @web.middleware
    async def _count(self, request: web.Request, handler: Any) -> web.StreamResponse:
        with self._state:
            self.request_counts[f"{request.method} {request.path}"] += 1
        return await handler(request)

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Authentication, scopes and the rate limit, in HubSpot's order; then the headers."""
        if request.path.startswith(CONTROL):
            return await handler(request)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _error(
                401,
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at "
                "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                "INVALID_AUTHENTICATION",
            )
        if self._scopes_denied:
            return _error(
                403,
                "This app hasn't been granted all required scopes to make this call.",
                "MISSING_SCOPES",
            )
        remaining = self._admit()
        if remaining < 0:
            body = self._throttle_body("TEN_SECONDLY_ROLLING")
            return web.json_response(body, status=429, headers=self._limit_headers(0))
        response = await handler(request)
        response.headers.update(self._limit_headers(remaining))
        return response

    def _admit(self) -> int:
        """Counts a request in the rolling window; the remaining budget, -1 when over it."""
        limit = self.burst_limit or DEFAULT_BURST_LIMIT
        now = time.monotonic()
        with self._state:
            while self._hits and now - self._hits[0] > WINDOW_MS / 1000:
                self._hits.popleft()
            if self.burst_limit is not None and len(self._hits) >= limit:
                return -1
            self._hits.append(now)
            self._daily_used += 1
            return max(0, limit - len(self._hits))

    def _limit_headers(self, remaining: int) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Daily": str(DAILY_LIMIT),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, DAILY_LIMIT - self._daily_used)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(WINDOW_MS),
            "X-HubSpot-RateLimit-Max": str(self.burst_limit or DEFAULT_BURST_LIMIT),
            "X-HubSpot-RateLimit-Remaining": str(remaining),
        }

    @staticmethod
    def _throttle_body(policy: str) -> dict[str, str]:
        return {
            "status": "error",
            "message": f"You have reached your {policy.lower()} limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()),
            "policyName": policy,
            "category": "RATE_LIMITS",
        }

    async def _json(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise Rejected(400, "Invalid input JSON", "VALIDATION_ERROR") from exc
        if not isinstance(body, dict):
            raise Rejected(400, "Invalid input JSON", "VALIDATION_ERROR")
        return body

    async def _list_properties(self, request: web.Request) -> web.Response:
        with self._state:
            results = [dict(p) for p in self.portal.properties.values()]
        return web.json_response({"results": results})

    async def _create_property(self, request: web.Request) -> web.Response:
        try:
            body = await self._json(request)
            with self._state:
                created = self.portal.create_property(body)
        except Rejected as exc:
            return _error(exc.status, exc.message, exc.category, **exc.extra)
        return web.json_response(created, status=201)

    async def _create_properties(self, request: web.Request) -> web.Response:
        """Batch create: what can be made is made; the rest come back as errors (207)."""
        try:
            inputs = (await self._json(request)).get("inputs")
            if not isinstance(inputs, list) or not inputs:
                raise Rejected(400, "Invalid input JSON: inputs is required", "VALIDATION_ERROR")
        except Rejected as exc:
            return _error(exc.status, exc.message, exc.category, **exc.extra)
        results, errors = [], []
        for spec in inputs:
            try:
                with self._state:
                    results.append(self.portal.create_property(spec))
            except Rejected as exc:
                name = str(spec.get("name", "")) if isinstance(spec, dict) else ""
                errors.append({"status": "error", "category": exc.category,
                               "message": exc.message, "context": {"name": [name]}})  # fmt: skip
        body: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if errors:
            body.update(errors=errors, numErrors=len(errors))
        return web.json_response(body, status=207 if errors else 201)

    async def _batch_upsert(self, request: web.Request) -> web.Response:
        started = datetime.now(UTC)
        try:
            body = await self._json(request)
            inputs = body.get("inputs")
            if not isinstance(inputs, list) or not inputs:
                raise Rejected(400, "Invalid input JSON: inputs is required", "VALIDATION_ERROR")
            if len(inputs) > BATCH_LIMIT:
                message = f"Batch input size {len(inputs)} exceeds the limit of {BATCH_LIMIT}"
                raise Rejected(400, message, "VALIDATION_ERROR")
            with self._state:
                results = self.portal.upsert(inputs)
        except Rejected as exc:
            return _error(exc.status, exc.message, exc.category, **exc.extra)
        # HubSpot promises no order for batch results; clients must match them by id property.
        results.sort(key=lambda r: int(r["id"]))
        return web.json_response(
            {
                "status": "COMPLETE",
                "results": results,
                "startedAt": started.isoformat(),
                "completedAt": datetime.now(UTC).isoformat(),
            }
        )

    async def _create_contact(self, request: web.Request) -> web.Response:
        try:
            body = await self._json(request)
            properties = body.get("properties")
            if not isinstance(properties, dict):
                raise Rejected(400, "Invalid input JSON: properties", "VALIDATION_ERROR")
            with self._state:
                created = self.portal.create(properties)
        except Rejected as exc:
            return _error(exc.status, exc.message, exc.category, **exc.extra)
        return web.json_response(created, status=201)

    async def _search(self, request: web.Request) -> web.Response:
        try:
            body = await self._json(request)
            with self._state:
                answer = search(self.portal.all_contacts(), body, self.portal.properties)
        except Rejected as exc:
            return _error(exc.status, exc.message, exc.category, **exc.extra)
        return web.json_response(answer)

    async def _control_set(self, request: web.Request) -> web.Response:
        """POST /_emulator/contacts/{id}/properties {"name", "value"}: a person's edit."""
        try:
            body = await self._json(request)
            contact_id = request.match_info["contact_id"]
            changed = self.set_property(contact_id, str(body["name"]), str(body["value"]))
        except KeyError as exc:
            return _error(400, f"missing {exc}", "VALIDATION_ERROR")
        except Rejected as exc:
            return _error(exc.status, exc.message, exc.category, **exc.extra)
        return web.json_response(changed)

    async def _control_owner(self, request: web.Request) -> web.Response:
        """POST /_emulator/owners {"id", "name"?}: a user who can own contacts."""
        try:
            body = await self._json(request)
            self.add_owner(str(body["id"]), str(body.get("name", "")))
        except (KeyError, Rejected) as exc:
            return _error(400, f"invalid owner: {exc}", "VALIDATION_ERROR")
        return web.json_response({"success": True})
