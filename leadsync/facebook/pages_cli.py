"""`leadsync pages` and `leadsync subscribe` on a terminal.

`pages` shows every page the token manages, whether our app gets its
`leadgen` webhooks and whether the config lists it; `subscribe PAGE_ID` (or
`--all`) subscribes the app with the page's own token, which replaces the curl
command setup used to need. The Graph work is `facebook/pages.py`'s.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from leadsync.config import Settings
from leadsync.errors import LeadsyncError
from leadsync.facebook import pages
from leadsync.facebook.graph import GraphClient


def pages_command(console: Console, errors: Console, settings: Settings, graph: GraphClient) -> int:
    """Lists managed pages with their subscription state; the exit status."""
    try:
        managed = pages.managed_pages(graph)
    except LeadsyncError as exc:
        errors.print(f"could not list the token's pages: {exc}", markup=False)
        return 1
    configured = {page.id for page in settings.facebook.pages}
    table = Table("page", "name", "leadgen webhooks", "in config")
    failed = False
    for page in managed:
        try:
            fields = pages.subscribed_fields(graph, page.id, page.token)
            state = "subscribed" if pages.LEADGEN in fields else "[red]not subscribed[/red]"
        except LeadsyncError as exc:
            failed = True
            state = f"[red]unknown[/red]: {exc}"
        table.add_row(page.id, page.name, state, "yes" if page.id in configured else "no")
    console.print(table)
    missing = sorted(configured - {page.id for page in managed})
    for page_id in missing:
        errors.print(
            f"page {page_id} is in the config but the token does not manage it; give the "
            "system user a role on the page in Business Settings",
            markup=False,
        )
    if not managed:
        errors.print("the token manages no page; give its system user a role on your pages")
    return 1 if failed or missing or not managed else 0


def subscribe_command(
    console: Console, errors: Console, graph: GraphClient, page_ids: list[str], every: bool
) -> int:
    """Subscribes the app to the pages' leadgen webhooks; the exit status."""
    try:
        managed = pages.by_id(pages.managed_pages(graph))
    except LeadsyncError as exc:
        errors.print(f"could not list the token's pages: {exc}", markup=False)
        return 1
    wanted = list(managed) if every else page_ids
    if not wanted:
        errors.print("name a page id, or --all for every page the token manages (leadsync pages)")
        return 2
    failed = False
    for page_id in wanted:
        page = managed.get(page_id)
        if page is None:
            errors.print(
                f"page {page_id}: the token does not manage this page (see leadsync pages); "
                "give its system user a role on the page in Business Settings",
                markup=False,
            )
            failed = True
            continue
        try:
            fields = pages.subscribe(graph, page.id, page.token)
        except LeadsyncError as exc:
            errors.print(f"page {page.id}: {exc}", markup=False)
            failed = True
            continue
        console.print(f"page {page.id} ({page.name}): subscribed to {', '.join(sorted(fields))}")
    return 1 if failed else 0
