"""Graph objects as JSON: pages, lead forms and leads, with `fields` selection and paging.

Shapes follow the Graph API reference and the facebook-business SDK's field
lists: a lead's `created_time` is "2026-11-20T10:00:00+0000", `field_data` keeps
every value of every answer, ad fields are absent on organic and test leads.
Only requested fields are returned, plus `id`; an unknown field is error 100.
Edges are paged newest first with opaque cursors; `paging.next` is a full URL
and is absent on the last page.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

from facebook_business.adobjects.lead import Lead
from facebook_business.adobjects.leadgenform import LeadgenForm

from leadsync.emulators.graph.replies import bad_parameter, no_field
from leadsync.emulators.graph.world import FormRecord, LeadRecord, Page, World

T = TypeVar("T")

LEAD_FIELDS = frozenset(v for k, v in vars(Lead.Field).items() if not k.startswith("_"))
FORM_FIELDS = frozenset(v for k, v in vars(LeadgenForm.Field).items() if not k.startswith("_"))
PAGE_FIELDS = frozenset({"id", "name", "category", "link", "access_token"})

DEFAULT_LEAD_FIELDS = ("created_time", "id", "field_data")
DEFAULT_FORM_FIELDS = ("id", "locale", "name", "status")

DEFAULT_LIMIT = 25
# Graph clamps an oversized `limit` silently rather than failing; the cap per edge is
# not documented, so the emulator picks one well above what leadsync asks for.
MAX_LIMIT = 500

LEAD_FILTER_OPERATORS: dict[str, Callable[[int, int], bool]] = {
    "GREATER_THAN": lambda a, b: a > b,
    "GREATER_THAN_OR_EQUAL": lambda a, b: a >= b,
    "LESS_THAN": lambda a, b: a < b,
    "LESS_THAN_OR_EQUAL": lambda a, b: a <= b,
    "EQUAL": lambda a, b: a == b,
}


@dataclass
class Call:
    """One Graph request, top level or inside a batch."""

    method: str
    path: str  # without the version: "/111/leads", "/" for a batch
    params: dict[str, str]
    base_url: str  # "http://127.0.0.1:PORT", for paging.next
    version: str = "v24.0"

    def next_url(self, after: str) -> str:
        query = {k: v for k, v in self.params.items() if k not in ("after", "before")}
        query["after"] = after
        return f"{self.base_url}/{self.version}{self.path}?{urlencode(query)}"


def graph_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S+0000")


def requested_fields(call: Call, default: Sequence[str]) -> list[str]:
    """Top-level names of the `fields` parameter; nested selections like page{id} are kept whole."""
    text = call.params.get("fields", "")
    if not text:
        return list(default)
    names, depth, current = [], 0, ""
    for char in text:
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            names.append(current.strip())
            current = ""
        else:
            current += char
    names.append(current.strip())
    return [name.split("{")[0] for name in names if name]


def select(
    fields: list[str], known: frozenset[str], node_type: str, value: Callable[[str], Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in fields:
        if name not in known:
            raise no_field(name, node_type)
        item = value(name)
        if item is not None:
            out[name] = item
    return out


def page_json(page: Page, call: Call, page_token: str | None = None) -> dict[str, Any]:
    """The page; its `access_token` only for a caller that manages it (else left out)."""
    values = {"id": page.id, "name": page.name, "category": "Software", "access_token": page_token}
    values["link"] = f"https://www.facebook.com/{page.id}"
    out = select(requested_fields(call, ("id", "name")), PAGE_FIELDS, "Page", values.get)
    return out | {"id": page.id}


def form_json(world: World, form: FormRecord, fields: list[str]) -> dict[str, Any]:
    leads = world.leads_by_form.get(form.id, [])
    values: dict[str, Any] = {
        "id": form.id,
        "name": form.name,
        "status": form.status,
        "locale": form.locale,
        "questions": form.questions,
        "leads_count": len(leads),
        "organic_leads_count": sum(1 for lead in leads if lead.is_organic),
        "expired_leads_count": 0,
        "created_time": graph_time(form.created_time),
        "page": {"id": form.page_id, "name": world.pages[form.page_id].name},
        "page_id": form.page_id,
    }
    return select(fields, FORM_FIELDS, "LeadgenForm", values.get) | {"id": form.id}


def lead_json(world: World, lead: LeadRecord, fields: list[str]) -> dict[str, Any]:
    form = world.forms[lead.form_id]
    order = [q["key"] for q in form.questions]
    names = [k for k in order if k in lead.answers] + [k for k in lead.answers if k not in order]
    values: dict[str, Any] = {
        "id": lead.id,
        "created_time": graph_time(lead.created_time),
        "field_data": [{"name": name, "values": list(lead.answers[name])} for name in names],
        "form_id": lead.form_id,
        "is_organic": lead.is_organic,
        "platform": lead.platform,
        **lead.ad,
    }
    if lead.consents:
        values["custom_disclaimer_responses"] = [
            {"checkbox_key": key, "is_checked": "1" if checked else ""}
            for key, checked in lead.consents.items()
        ]
    return select(fields, LEAD_FIELDS, "Lead", values.get) | {"id": lead.id}


def encode_cursor(key: tuple[int, ...]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[int, ...]:
    try:
        padded = text + "=" * (-len(text) % 4)
        return tuple(int(part) for part in json.loads(base64.urlsafe_b64decode(padded)))
    except (ValueError, TypeError) as exc:
        raise bad_parameter("The after cursor is not valid") from exc


def page_limit(call: Call) -> int:
    text = call.params.get("limit", "")
    if not text:
        return DEFAULT_LIMIT
    if not text.isdigit():
        raise bad_parameter("Param limit must be a non-negative integer")
    return min(max(int(text), 1), MAX_LIMIT)


def paged(
    call: Call,
    items: list[T],
    key: Callable[[T], tuple[int, ...]],
    render: Callable[[T], dict[str, Any]],
) -> dict[str, Any]:
    """One page of `items` (sorted newest first) after the `after` cursor, Graph-style."""
    if after := call.params.get("after"):
        bound = decode_cursor(after)
        items = [item for item in items if key(item) < bound]
    limit = page_limit(call)
    page = items[:limit]
    body: dict[str, Any] = {"data": [render(item) for item in page]}
    if page:
        cursors = {"before": encode_cursor(key(page[0])), "after": encode_cursor(key(page[-1]))}
        body["paging"] = {"cursors": cursors}
        if len(items) > limit:
            body["paging"]["next"] = call.next_url(cursors["after"])
    if call.params.get("summary") == "true":
        body["summary"] = {"total_count": len(items)}
    return body


def start_cursor() -> str:
    """A cursor before the newest item: the `after` of a page that skipped nothing."""
    return encode_cursor((2**62, 0))


def lead_filter(call: Call) -> Callable[[LeadRecord], bool]:
    """The `filtering` parameter of /{form}/leads, on time_created only, as Graph allows."""
    text = call.params.get("filtering", "")
    if not text:
        return lambda lead: True
    try:
        rules = json.loads(text)
        checks = [
            (LEAD_FILTER_OPERATORS[rule["operator"]], int(rule["value"]))
            for rule in rules
            if rule["field"] == "time_created"
        ]
        if len(checks) != len(rules):
            raise ValueError("only time_created can be filtered on")
    except (ValueError, TypeError, KeyError) as exc:
        raise bad_parameter(f"Param filtering is invalid: {exc}") from exc

    def keep(lead: LeadRecord) -> bool:
        created = int(lead.created_time.timestamp())
        return all(check(created, value) for check, value in checks)

    return keep
