"""Facebook pages the token manages, and our app's webhook subscription on each.

`/me/accounts` lists the pages a system-user (or user) token manages, each with
its page access token; Graph reads and changes `/{page}/subscribed_apps` only
with that page token (any other token gets error 210), so every subscription
call here first gets the page's token. `subscribe` asks for the `leadgen`
field, without which no lead webhook is ever sent. Tokens never leave this
module in messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from leadsync.constants import GRAPH_PAGE_SIZE
from leadsync.errors import AuthError, PermanentError
from leadsync.facebook.graph import GraphClient, without_credentials

LEADGEN = "leadgen"


@dataclass(frozen=True)
class ManagedPage:
    """A page the token can act for; `token` is its page access token (never shown)."""

    id: str
    name: str
    token: str = field(repr=False, default="")
    tasks: tuple[str, ...] = ()


def managed_pages(graph: GraphClient) -> list[ManagedPage]:
    """Every page of `/me/accounts`; a page token stands for its own page only."""
    what = "pages of the token (/me/accounts)"
    try:
        body = graph.request(
            "GET",
            ("me", "accounts"),
            what,
            fields="id,name,access_token,tasks",
            limit=GRAPH_PAGE_SIZE,
        )
    except PermanentError:  # a page token: Graph has no accounts edge on a page
        me = graph.request("GET", ("me",), "the token's page", fields="id,name")
        return [ManagedPage(str(me["id"]), str(me.get("name", "")))]
    pages: list[ManagedPage] = []
    while True:
        pages += [
            ManagedPage(
                str(item["id"]),
                str(item.get("name", "")),
                str(item.get("access_token") or ""),
                tuple(item.get("tasks") or ()),
            )
            for item in body.get("data") or []
        ]
        next_url = (body.get("paging") or {}).get("next")
        if not next_url:
            return pages
        body = graph.request("GET", without_credentials(next_url), what)


def page_token(graph: GraphClient, page_id: str) -> str:
    """The page's access token (from the page's `access_token` field)."""
    body = graph.request("GET", (page_id,), f"page {page_id}", fields="access_token")
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise AuthError(
            f"page {page_id}: the token cannot act for this page (Graph gave no page token); "
            "give its system user a role on the page with the MANAGE task",
            service="facebook",
        )
    return token


def subscribed_fields(graph: GraphClient, page_id: str, token: str = "") -> set[str]:
    """Webhook fields our app is subscribed to on the page ({"leadgen"} when all is well)."""
    token = token or page_token(graph, page_id)
    what = f"subscriptions of page {page_id}"
    body = graph.request("GET", (page_id, "subscribed_apps"), what, token=token)
    app_id = graph.our_app_id()
    ours = [app for app in body.get("data") or [] if not app_id or str(app.get("id")) == app_id]
    return {str(name) for app in ours for name in app.get("subscribed_fields") or ()}


def subscribe(graph: GraphClient, page_id: str, token: str = "") -> set[str]:
    """Subscribes our app to the page's leadgen webhooks (keeping other fields); the fields now."""
    token = token or page_token(graph, page_id)
    fields = subscribed_fields(graph, page_id, token) | {LEADGEN}
    what = f"subscription of page {page_id}"
    graph.request(
        "POST",
        (page_id, "subscribed_apps"),
        what,
        token=token,
        subscribed_fields=",".join(sorted(fields)),
    )
    return subscribed_fields(graph, page_id, token)


def by_id(pages: Sequence[ManagedPage]) -> dict[str, ManagedPage]:
    return {page.id: page for page in pages}
