"""HubSpot's CRM search (`POST /crm/v3/objects/contacts/search`) over the emulator's contacts.

Pure: `search(contacts, body, properties)` answers what HubSpot answers, or
raises `Rejected`. As HubSpot's "Search the CRM" reference and changelog say:
`filterGroups` are OR-ed and the filters inside a group AND-ed (at most 5
groups, 10 filters in a group, 25 in all); operators EQ, NEQ, LT, LTE, GT, GTE,
BETWEEN, IN, NOT_IN, HAS_PROPERTY, NOT_HAS_PROPERTY; datetime values compare
as instants (epoch milliseconds or ISO text); one sort; `properties` chooses
the returned properties (else createdate, email, firstname, hs_object_id,
lastmodifieddate, lastname); `limit` at most 200; `after` pages on, and no
query reaches past its 10,000th result (HubSpot answers 400 there).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from leadsync.emulators.hubspot_portal import Rejected

# "Search the CRM" limits: 200 records per page (raised from 100), 10,000 results per query.
MAX_LIMIT = 200
DEFAULT_LIMIT = 10
MAX_RESULTS = 10_000
# Changelog, Aug 2024: up to 5 filter groups, 10 filters per group, 25 filters in all.
MAX_GROUPS, MAX_GROUP_FILTERS, MAX_FILTERS = 5, 10, 25
DEFAULT_PROPERTIES = ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate",
                      "lastname")  # fmt: skip
ALWAYS = ("createdate", "hs_object_id", "lastmodifieddate")


def invalid(message: str) -> Rejected:
    return Rejected(400, message, "VALIDATION_ERROR")


def search(
    contacts: list[dict[str, Any]], body: Mapping[str, Any], specs: Mapping[str, Any]
) -> dict[str, Any]:
    """HubSpot's answer to a contact search `body` over `contacts` with property `specs`."""
    limit = bounded_int(body.get("limit", DEFAULT_LIMIT), "limit", 0, MAX_LIMIT)
    offset = bounded_int(body.get("after", 0) or 0, "after", 0, None)
    if offset >= MAX_RESULTS:
        raise invalid(f"Paging past the first {MAX_RESULTS} results of a search is not possible")
    keep = matcher(body.get("filterGroups") or [], specs)
    found = [c for c in contacts if keep(c["properties"])]
    sort_contacts(found, body.get("sorts") or [], specs)
    end = min(offset + limit, MAX_RESULTS, len(found))
    names = wanted_properties(body.get("properties"))
    answer: dict[str, Any] = {
        "total": len(found),
        "results": [shown(contact, names) for contact in found[offset:end]],
    }
    if end < min(len(found), MAX_RESULTS):
        answer["paging"] = {"next": {"after": str(end)}}
    return answer


def bounded_int(value: Any, name: str, low: int, high: int | None) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise invalid(f"Invalid input JSON: {name} must be an integer") from None
    if number < low or (high is not None and number > high):
        raise invalid(f"{name} must be between {low} and {high}" if high else f"{name} < {low}")
    return number


def wanted_properties(requested: Any) -> list[str]:
    if not requested:
        return list(DEFAULT_PROPERTIES)
    return list(dict.fromkeys([*ALWAYS, *(str(name) for name in requested)]))


def shown(contact: dict[str, Any], names: list[str]) -> dict[str, Any]:
    props = contact["properties"]
    return {
        "id": contact["id"],
        "properties": {name: props.get(name) for name in names},
        "createdAt": contact["createdAt"],
        "updatedAt": contact["updatedAt"],
        "archived": False,
    }


Match = Callable[[Mapping[str, str]], bool]


def matcher(groups: Any, specs: Mapping[str, Any]) -> Match:
    """True for properties that match any group (all filters of it); no groups: everything."""
    if not isinstance(groups, list) or len(groups) > MAX_GROUPS:
        raise invalid(f"filterGroups must be a list of at most {MAX_GROUPS} groups")
    tests: list[list[Match]] = []
    for group in groups:
        filters = group.get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list) or not 0 < len(filters) <= MAX_GROUP_FILTERS:
            raise invalid(f"each filter group needs 1 to {MAX_GROUP_FILTERS} filters")
        tests.append([single(f, specs) for f in filters])
    if sum(len(group) for group in tests) > MAX_FILTERS:
        raise invalid(f"a search takes at most {MAX_FILTERS} filters")
    if not tests:
        return lambda props: True
    return lambda props: any(all(test(props) for test in group) for group in tests)


def single(spec: Any, specs: Mapping[str, Any]) -> Match:
    if not isinstance(spec, dict) or not spec.get("propertyName") or not spec.get("operator"):
        raise invalid("Invalid input JSON: each filter needs propertyName and operator")
    name, operator = str(spec["propertyName"]), str(spec["operator"])
    if name not in specs:
        raise invalid(f"Property {name} does not exist")
    key = value_key(specs[name]["type"])
    if operator == "HAS_PROPERTY":
        return lambda props: bool(props.get(name))
    if operator == "NOT_HAS_PROPERTY":
        return lambda props: not props.get(name)
    if operator in ("IN", "NOT_IN"):
        wanted = {key(str(v)) for v in spec.get("values") or []}
        inside = operator == "IN"
        return lambda props: bool(props.get(name)) and (key(props[name]) in wanted) == inside
    if operator == "BETWEEN":
        low, high = key(str(spec.get("value"))), key(str(spec.get("highValue")))
        return lambda props: bool(props.get(name)) and low <= key(props[name]) <= high
    compare = COMPARISONS.get(operator)
    if compare is None or "value" not in spec:
        raise invalid(f"Unsupported filter {operator} on {name}")
    target = key(str(spec["value"]))
    if operator == "NEQ":
        return lambda props: not props.get(name) or key(props[name]) != target
    return lambda props: bool(props.get(name)) and compare(key(props[name]), target)


COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "EQ": lambda a, b: a == b,
    "NEQ": lambda a, b: a != b,
    "LT": lambda a, b: a < b,
    "LTE": lambda a, b: a <= b,
    "GT": lambda a, b: a > b,
    "GTE": lambda a, b: a >= b,
}


def value_key(type_: str) -> Callable[[str], Any]:
    """How values of a property type compare: instants, numbers, or text without case."""
    if type_ in ("datetime", "date"):
        return instant
    if type_ == "number":
        return number
    return lambda text: text.lower()


def instant(text: str) -> float:
    """Epoch milliseconds of an epoch-ms value or ISO-8601 text."""
    if text.lstrip("-").isdigit():
        return float(text)
    try:
        return datetime.fromisoformat(text).timestamp() * 1000
    except ValueError:
        raise invalid(f"{text} is not a valid datetime (epoch milliseconds or ISO 8601)") from None


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise invalid(f"{text} was not a valid number.") from None


def sort_contacts(contacts: list[dict[str, Any]], sorts: Any, specs: Mapping[str, Any]) -> None:
    """Sorts in place by HubSpot's one sort (default: record id); empty values go last."""
    if not isinstance(sorts, list) or len(sorts) > 1:
        raise invalid("sorts takes at most one sort")
    name, descending = "hs_object_id", False
    if sorts:
        sort = sorts[0]
        if isinstance(sort, str):
            name, descending = sort.lstrip("-"), sort.startswith("-")
        elif isinstance(sort, dict) and sort.get("propertyName"):
            name = str(sort["propertyName"])
            descending = str(sort.get("direction", "ASCENDING")).upper() == "DESCENDING"
        else:
            raise invalid("Invalid input JSON: each sort needs propertyName")
    if name not in specs:
        raise invalid(f"Property {name} does not exist")
    key = value_key(specs[name]["type"])
    by_id = sorted(contacts, key=lambda c: int(c["id"]))  # ties stay in record id order
    valued = [c for c in by_id if c["properties"].get(name)]
    valued.sort(key=lambda c: key(c["properties"][name]), reverse=descending)
    contacts[:] = valued + [c for c in by_id if not c["properties"].get(name)]
