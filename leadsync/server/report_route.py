"""`GET /report`: the closed-loop report as the admin sees it in a browser.

The same page `leadsync report --html` writes, for `?since=90d&by=form` (the
command's defaults), built from the store's `report_leads` off the event
loop. It sits behind the admin token like the status page (server/admin.py), and
its one stylesheet is allowed by hash in the CSP (server/app.py). A bad `since` or
`by` is a 400 that says what to write.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from leadsync.models import utcnow
from leadsync.report.cli import parse_options
from leadsync.report.figures import build_report
from leadsync.report.render import render_html
from leadsync.server.context import CONTEXT

DEFAULT_SINCE = "90d"


async def page(request: web.Request) -> web.Response:
    try:
        since, by = parse_options(
            request.query.get("since", DEFAULT_SINCE), request.query.get("by", "form"), utcnow()
        )
    except ValueError as exc:
        return web.Response(status=400, text=f"{exc}\n")
    source = request.app[CONTEXT].store

    def build() -> str:
        return render_html(build_report(source.report_leads(since), since, by))

    return web.Response(text=await asyncio.to_thread(build), content_type="text/html")
