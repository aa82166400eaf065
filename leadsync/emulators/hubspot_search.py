"""HubSpot's CRM search for contacts, and a salesperson editing a contact, for the emulator.

`POST /crm/v3/objects/contacts/search` as HubSpot's reference documents it:
`filterGroups` (a contact matches when every filter of one group matches; at
most 5 groups and 18 filters), operators `EQ`, `NEQ`, `LT`, `LTE`, `GT`, `GTE`,
`IN`, `NOT_IN`, `HAS_PROPERTY`, `NOT_HAS_PROPERTY`; date-time properties
compared as Unix milliseconds (ISO text is taken too); one sort;
`limit` at most 200; `after` is an offset, and paging stops at 10,000 results
(a 400 past it: a client narrows its filter instead); `properties` picks what
each result carries besides `createdate`, `hs_object_id` and `lastmodifieddate`.
Answers: `total`, `results` and `paging.next.after` while more remain.
`edit_contact` plays a person in HubSpot's UI, who may also move a lifecycle
stage back (the API only moves it forward); the edit bumps `lastmodifieddate`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from leadsync.emulators.hubspot_portal import Portal, Rejected

if TYPE_CHECKING:
    from leadsync.emulators.hubspot import HubSpotEmulator

SEARCH_PATH = "/crm/v3/objects/contacts/search"
MAX_LIMIT = 200
MAX_RESULTS = 10_000
MAX_GROUPS, MAX_FILTERS = 5, 18
DEFAULT_PROPERTIES = ("createdate", "hs_object_id", "lastmodifieddate")
OPERATORS = {"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "IN", "NOT_IN", "HAS_PROPERTY",
             "NOT_HAS_PROPERTY"}  # fmt: skip


def _bad(message: str) -> Rejected:
    return Rejected(400, message, "VALIDATION_ERROR")


def _comparable(portal: Portal, name: str, value: Any) -> Any:
    """A value as HubSpot compares it: date-times as Unix ms, numbers as numbers, text as is."""
    kind = portal.properties.get(name, {}).get("type")
    text = "" if value is None else str(value)
    if kind in ("datetime", "date"):
        if text.isdigit():
            return int(text)
        try:
            return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
        except ValueError:
            raise _bad(f"{text} is not a valid date-time for {name}") from None
    if kind == "number":
        try:
            return float(text)
        except ValueError:
            raise _bad(f"{text} is not a valid number for {name}") from None
    return text.lower()  # HubSpot's text filters ignore case


def _matches(portal: Portal, contact: dict[str, Any], spec: dict[str, Any]) -> bool:
    name, operator = str(spec.get("propertyName", "")), str(spec.get("operator", ""))
    if operator not in OPERATORS:
        raise _bad(f"Unknown operator {operator!r}")
    stored = contact["properties"].get(name)
    has = stored not in (None, "")
    if operator in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
        return has == (operator == "HAS_PROPERTY")
    if operator in ("IN", "NOT_IN"):
        wanted = {_comparable(portal, name, v) for v in spec.get("values") or []}
        inside = has and _comparable(portal, name, stored) in wanted
        return inside == (operator == "IN")
    if not has:
        return operator == "NEQ"
    left, right = _comparable(portal, name, stored), _comparable(portal, name, spec.get("value"))
    return {
        "EQ": left == right, "NEQ": left != right, "LT": left < right, "LTE": left <= right,
        "GT": left > right, "GTE": left >= right,
    }[operator]  # fmt: skip


def _checked(body: dict[str, Any]) -> tuple[list[list[dict[str, Any]]], int, int]:
    groups = [g.get("filters") or [] for g in body.get("filterGroups") or []]
    if len(groups) > MAX_GROUPS or sum(len(g) for g in groups) > MAX_FILTERS:
        raise _bad(f"At most {MAX_GROUPS} filterGroups and {MAX_FILTERS} filters in all")
    try:
        limit, after = int(body.get("limit", 10)), int(body.get("after") or 0)
    except (TypeError, ValueError):
        raise _bad("limit and after must be numbers") from None
    if not 0 < limit <= MAX_LIMIT:
        raise _bad(f"limit must be between 1 and {MAX_LIMIT}")
    if after + limit > MAX_RESULTS:
        raise _bad(f"Paging past {MAX_RESULTS} results is not allowed; narrow the filters")
    return groups, limit, after


def _sort_key(portal: Portal, contact: dict[str, Any], name: str) -> tuple[bool, Any]:
    value = contact["properties"].get(name)
    missing = value in (None, "")  # contacts without the property sort last
    return missing, _comparable(portal, name, "0" if missing else value)


def search(portal: Portal, body: dict[str, Any]) -> dict[str, Any]:
    """One page of the contacts matching the body's filters, in its sort order."""
    groups, limit, after = _checked(body)
    found = [
        c
        for c in portal.contacts.values()
        if not groups or any(all(_matches(portal, c, f) for f in g) for g in groups)
    ]
    for sort in reversed(body.get("sorts") or []):
        name = str(sort.get("propertyName", ""))
        descending = sort.get("direction") == "DESCENDING"
        found.sort(key=lambda c, n=name: _sort_key(portal, c, n), reverse=descending)
    wanted = [*DEFAULT_PROPERTIES, *(body.get("properties") or [])]
    page = found[after : after + limit]
    answer: dict[str, Any] = {
        "total": len(found),
        "results": [
            {
                "id": c["id"],
                "properties": {n: c["properties"].get(n) for n in wanted},
                "createdAt": c["createdAt"],
                "updatedAt": c["updatedAt"],
                "archived": False,
            }
            for c in page
        ],
    }
    if after + limit < len(found):
        answer["paging"] = {"next": {"after": str(after + limit)}}
    return answer


def add_routes(emu: HubSpotEmulator, app: web.Application) -> None:
    """Serves the search endpoint of `emu`'s portal."""

    async def handle(request: web.Request) -> web.Response:
        try:
            body = await emu._json(request)  # noqa: SLF001 - the emulator's own JSON rules
            with emu._state:  # noqa: SLF001
                answer = search(emu.portal, body)
        except Rejected as exc:
            return web.json_response(
                {"status": "error", "message": exc.message, "category": exc.category},
                status=exc.status,
            )
        return web.json_response(answer)

    app.router.add_post(SEARCH_PATH, handle)


def edit_contact(emu: HubSpotEmulator, contact_id: str, **properties: str) -> None:
    """A salesperson edits a contact in HubSpot's UI (a stage may move back there)."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    with emu._state:  # noqa: SLF001
        contact = emu.portal.contacts[contact_id]
        contact["properties"].update(properties)
        contact["properties"]["lastmodifieddate"] = contact["updatedAt"] = now
