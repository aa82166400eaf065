"""`GET /`: a small server-rendered status page for the person on call, no front-end build.

One glance answers "is it working?": a green or red banner with the health
reasons, the queues per destination, the dead letter with each item's last
error and the `leadsync replay` command that sends it again, forms with their
last poll and error, services, the newest leads by id with score, MQL flag
and state per destination, lead stages a destination gave up as too old to send
(expired), and whether the scoring is due for a calibration (with the last week's
MQLs per owner: `calibration/freshness.py`). Times read as "12 s ago" (the exact UTC
time is in the tooltip) and the page refreshes itself. Everything is escaped (the
page is the autoescaped `templates/status.html`), nothing is loaded from elsewhere,
and no lead answers are shown: ids, scores and states only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from leadsync.calibration.freshness import CalibrationStatus, calibration_status
from leadsync.health import HealthReport
from leadsync.models import Form, utcnow
from leadsync.server.context import CONTEXT, ServerContext
from leadsync.status import WAITING_SHOWN, PipelineProcess, StatusSnapshot, snapshot
from leadsync.templating import relative, style_hash, stylesheet
from leadsync.templating import render as render_template

# Often enough to watch a lead land, rare enough that an idle tab costs nothing.
REFRESH_SECONDS = 15
# An item pending longer than this is worth a look (deliveries normally take seconds).
STUCK_AFTER = timedelta(minutes=10)
# A page, not a report: a broken destination can bury thousands; the newest tell the story.
DEAD_LETTERS_SHOWN = 50

# The Content-Security-Policy (server/app.py) allows this one stylesheet, by its hash, and
# no other inline style or script: an escaping bug could not run anything.
STYLE = stylesheet("status.css")
STYLE_HASH = style_hash(STYLE)

__all__ = ["DEAD_LETTERS_SHOWN", "REFRESH_SECONDS", "STYLE_HASH", "page", "relative", "render"]


async def page(request: web.Request) -> web.Response:
    ctx: ServerContext = request.app[CONTEXT]
    now = utcnow()

    def read() -> tuple[StatusSnapshot, HealthReport, CalibrationStatus, PipelineProcess | None]:
        process = ctx.pipeline() if ctx.pipeline else None
        return snapshot(ctx.store), ctx.health(), calibration_status(ctx.store, now), process

    snap, health, calibration, process = await asyncio.to_thread(read)
    refresh = request.query.get("refresh") != "off"
    html = render(snap, health, now, refresh, calibration, process)
    return web.Response(text=html, content_type="text/html")


def render(
    snap: StatusSnapshot,
    health: HealthReport,
    now: datetime,
    refresh: bool = True,
    calibration: CalibrationStatus | None = None,
    process: PipelineProcess | None = None,
) -> str:
    """The whole page as HTML, for the snapshot and verdict taken at `now`."""
    # Paused (?refresh=off) for reading a long error without the page reloading under you.
    return render_template(
        "status.html",
        style=STYLE,
        now=now,
        refresh=refresh,
        refresh_seconds=REFRESH_SECONDS,
        health=health,
        # Reasons read "code: detail"; the code is what the README's Operations section explains.
        reasons=[reason.partition(": ")[::2] for reason in health.reasons],
        dead=sum(d.dead for d in snap.destinations),
        cards=_cards(snap),
        queues=list(_queues(snap, now)),
        form_names={f.id: f.name for f in snap.forms if f.name},
        leads=snap.recent,
        services=snap.services,
        forms=[_form_row(snap, f) for f in snap.forms],
        calibration=calibration,  # templates/status_calibration.html
        process=process,
        expired=snap.expired[:DEAD_LETTERS_SHOWN],  # a page, not a report: the count says all
        expired_count=len(snap.expired),
        waiting=snap.waiting[:WAITING_SHOWN],
        waiting_more=len(snap.waiting) > WAITING_SHOWN,
        **_dead_letters(snap),
    )


def sign_in_page(note: str, back: str = "/") -> str:
    """The form that asks for `[server] admin_token`; it posts to /login (no script), which
    sends the browser back to `back`."""
    return render_template("sign_in.html", style=STYLE, note=note, back=back)


def _cards(snap: StatusSnapshot) -> list[tuple[str, int]]:
    return [
        ("leads stored", snap.leads),
        ("waiting delivery", sum(d.pending for d in snap.destinations)),
        ("delivered", sum(d.delivered for d in snap.destinations)),
        ("dead-lettered", sum(d.dead for d in snap.destinations)),
        ("forms", len(snap.forms)),
    ]


def _queues(snap: StatusSnapshot, now: datetime) -> Iterable[dict[str, Any]]:
    errors = {s.service.removeprefix("destination:"): s.message for s in snap.services if not s.ok}
    # A destination whose deliveries die at once (a permanent error) may never be "failing";
    # its newest dead letter still says why its queue is stuck.
    for dead_letter in sorted(snap.dead_letters, key=lambda d: d.dead_at, reverse=True):
        errors.setdefault(dead_letter.item.destination, dead_letter.last_error)
    for d in snap.destinations:
        yield {
            "destination": d.destination,
            "pending": d.pending,
            "oldest": d.oldest_pending,
            "stuck": d.oldest_pending is not None and now - d.oldest_pending > STUCK_AFTER,
            "delivered": d.delivered,
            "dead": d.dead,
            "error": errors.get(d.destination),
        }


def _dead_letters(snap: StatusSnapshot) -> dict[str, Any]:
    newest = sorted(snap.dead_letters, key=lambda d: d.dead_at, reverse=True)
    return {
        "dead_letters": newest[:DEAD_LETTERS_SHOWN],
        "dead_hidden": len(newest) - DEAD_LETTERS_SHOWN,
        "dead_destinations": sorted({d.item.destination for d in snap.dead_letters}),
    }


def _form_row(snap: StatusSnapshot, form: Form) -> dict[str, Any]:
    cp = snap.checkpoints.get(form.id)
    return {
        "form": form,
        "polled": cp.polled_at if cp else None,
        "newest": cp.last_created_time if cp else None,
        "error": cp.last_error if cp else "",
    }
