"""`GET /`: a small server-rendered status page, no front-end build.

Shows health, queues per destination, forms with their last poll and error,
and the newest leads by id with score, MQL flag and per-destination state.
Everything is escaped; no lead answers are shown, only ids.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from html import escape

from aiohttp import web

from leadsync.server.context import CONTEXT, ServerContext
from leadsync.status import StatusSnapshot, snapshot

_STYLE = """
body{font:14px system-ui,sans-serif;margin:2rem;color:#1d2330}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;min-width:40rem}
td,th{border-bottom:1px solid #dde;padding:.3rem .7rem;text-align:left}
.ok{color:#176b2c}.bad{color:#a31515;font-weight:600}.mql{font-weight:700;color:#176b2c}
"""


async def page(request: web.Request) -> web.Response:
    ctx: ServerContext = request.app[CONTEXT]
    snap, health = await asyncio.to_thread(lambda: (snapshot(ctx.store), ctx.health()))
    verdict = (
        '<p class="ok" id="health">Healthy</p>'
        if health.ok
        else '<p class="bad" id="health">Unhealthy: ' + escape("; ".join(health.reasons)) + "</p>"
    )
    body = (
        f"<h1>leadsync</h1>{verdict}<p>{snap.leads} leads stored</p>"
        + _section(
            "Destinations",
            ["destination", "pending", "oldest pending", "delivered", "dead"],
            _queues(snap),
            "queues",
        )  # noqa: E501
        + _section(
            "Forms",
            ["form", "name", "page", "status", "last poll", "last error"],
            _forms(snap),
            "forms",
        )  # noqa: E501
        + _section(
            "Recent leads",
            ["lead", "created", "form", "score", "MQL", "destinations"],
            _leads(snap),
            "leads",
        )  # noqa: E501
        + _section("Services", ["service", "state", "message", "at"], _services(snap), "services")
    )
    html = f"<!doctype html><html><head><meta charset='utf-8'><title>leadsync</title><style>{_STYLE}</style></head><body>{body}</body></html>"  # noqa: E501
    return web.Response(text=html, content_type="text/html")


def _section(title: str, headers: list[str], rows: Iterable[list[str]], anchor: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    cells = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<h2>{escape(title)}</h2><table id="{anchor}"><tr>{head}</tr>{cells}</table>'


def _when(value: object) -> str:
    return escape(value.isoformat(timespec="seconds")) if hasattr(value, "isoformat") else ""


def _queues(snap: StatusSnapshot) -> Iterable[list[str]]:
    for d in snap.destinations:
        dead = f'<span class="bad">{d.dead}</span>' if d.dead else "0"
        yield [
            escape(d.destination),
            str(d.pending),
            _when(d.oldest_pending),
            str(d.delivered),
            dead,
        ]


def _forms(snap: StatusSnapshot) -> Iterable[list[str]]:
    for f in snap.forms:
        cp = snap.checkpoints.get(f.id)
        error = f'<span class="bad">{escape(cp.last_error)}</span>' if cp and cp.last_error else ""
        polled = _when(cp.polled_at) if cp else ""
        yield [escape(f.id), escape(f.name), escape(f.page_id), escape(f.status), polled, error]


def _leads(snap: StatusSnapshot) -> Iterable[list[str]]:
    for lead in snap.recent:
        mql = '<span class="mql">MQL</span>' if lead.mql else ("no" if lead.mql is not None else "")
        states = ", ".join(
            f"{escape(d)}: {escape(s)}" for d, s in sorted(lead.destinations.items())
        )
        score = "" if lead.points is None else str(lead.points)
        yield [
            escape(lead.lead_id),
            _when(lead.created_time),
            escape(lead.form_id),
            score,
            mql,
            states,
        ]


def _services(snap: StatusSnapshot) -> Iterable[list[str]]:
    for s in snap.services:
        state = '<span class="ok">ok</span>' if s.ok else '<span class="bad">failing</span>'
        yield [escape(s.service), state, escape(s.message), _when(s.at)]
