"""Who may do what in the Graph emulator: page tokens, /me/accounts, subscriptions, lead access.

As Graph does: `/me/accounts` lists the pages a user or system-user token
manages, each with its page access token; `/{page}/subscribed_apps` (read,
subscribe, unsubscribe) takes only that page's token and answers error 210 to
any other; `POST` needs `subscribed_fields`. Reading leads needs the
`leads_retrieval` scope, and a page whose Leads Access Manager does not list
our app refuses lead reads with error 200 even to a token that has the scope.
"""

from __future__ import annotations

import json
from typing import Any

from leadsync.emulators.graph import nodes
from leadsync.emulators.graph.nodes import Call
from leadsync.emulators.graph.replies import GraphError, bad_parameter, no_field
from leadsync.emulators.graph.world import TokenRecord, World, page_token_of

# What a page role of a system user allows, as /me/accounts shows it.
PAGE_TASKS = ["ADVERTISE", "ANALYZE", "CREATE_CONTENT", "MESSAGING", "MODERATE", "MANAGE"]
LEADS_ACCESS_MESSAGE = (
    "(#200) Leads retrieval requires the app to have access to the page's leads. Ask a page "
    "admin to allow this app in Leads Access Manager (Business Settings > Integrations > "
    "Leads Access)"
)
NO_LEADS_RETRIEVAL = "(#200) Requires leads_retrieval permission to access leads of this page"


def caller(world: World, call: Call) -> TokenRecord:
    """The token record of the call (tokens were checked before routing)."""
    token = call.params.get("access_token", "")
    return world.tokens.get(token) or TokenRecord(token)


def me(world: World, call: Call, system_user_id: str) -> dict[str, Any]:
    record = caller(world, call)
    if record.type == "PAGE":  # a page token's /me is the page itself
        page = world.pages[record.page_id]
        return {"id": page.id, "name": page.name}
    return {"id": system_user_id, "name": "leadsync emulator system user"}


def me_accounts(world: World, call: Call) -> dict[str, Any]:
    """The pages the token manages, with their page access tokens, paged like any edge."""
    if caller(world, call).type == "PAGE":
        raise no_field("accounts", "Page")
    pages = sorted(world.pages.values(), key=lambda p: p.id)
    fields = nodes.requested_fields(call, ("access_token", "category", "name", "id", "tasks"))

    def render(page: Any) -> dict[str, Any]:
        values = {
            "id": page.id,
            "name": page.name,
            "access_token": page_token_of(page.id),
            "category": "Software",
            "tasks": PAGE_TASKS,
        }
        return {name: values[name] for name in fields if name in values} | {"id": page.id}

    return nodes.paged(call, pages, lambda p: (int(p.id) if p.id.isdigit() else 0,), render)


def page_token_for(world: World, call: Call, page_id: str) -> str | None:
    """The page token a caller may read as the page's `access_token` field."""
    record = caller(world, call)
    if record.type == "PAGE" and record.page_id != page_id:
        return None
    return page_token_of(page_id)


def subscribed_apps(world: World, call: Call, page_id: str) -> dict[str, Any]:
    """GET lists our app when subscribed; POST subscribes fields; DELETE unsubscribes."""
    record = caller(world, call)
    if record.type != "PAGE" or record.page_id != page_id:
        raise GraphError(210, "(#210) A page access token is required to request this resource.")
    if call.method == "POST":
        text = call.params.get("subscribed_fields", "")
        if not text.strip():
            raise bad_parameter("The parameter subscribed_fields is required.")
        fields = json.loads(text) if text.startswith("[") else text.split(",")
        world.subscribe_app(page_id, [f.strip() for f in fields if f.strip()])
        return {"success": True}
    if call.method == "DELETE":
        world.unsubscribe_app(page_id)
        return {"success": True}
    fields = world.subscriptions.get(page_id)
    if fields is None:
        return {"data": []}
    app = {"category": "Business", "link": "https://leadsync.invalid/", "name": world.app_name}
    return {"data": [app | {"id": world.app_id, "subscribed_fields": fields}]}


def check_lead_access(world: World, call: Call, page_id: str) -> None:
    """Graph's refusals to read a page's leads: no leads_retrieval, or Leads Access Manager."""
    if "leads_retrieval" not in caller(world, call).scopes:
        raise GraphError(200, NO_LEADS_RETRIEVAL, status=403)
    if page_id in world.lead_access_blocked:
        raise GraphError(200, LEADS_ACCESS_MESSAGE, status=403)
