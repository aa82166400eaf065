"""`GET /`: a small server-rendered status page for the person on call, no front-end build.

One glance answers "is it working?": a green or red banner with the health
reasons, the queues per destination, the dead letter with each item's last
error and the `leadsync replay` command that sends it again, forms with their
last poll and error, services, and the newest leads by id with score, MQL flag
and state per destination. Times read as "12 s ago" (the exact UTC time is in
the tooltip) and the page refreshes itself. Everything is escaped, nothing is
loaded from elsewhere, and no lead answers are shown: ids, scores and states only.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from html import escape

from aiohttp import web

from leadsync.health import HealthReport
from leadsync.models import utcnow
from leadsync.server.context import CONTEXT, ServerContext
from leadsync.status import StatusSnapshot, snapshot

# Often enough to watch a lead land, rare enough that an idle tab costs nothing.
REFRESH_SECONDS = 15
# An item pending longer than this is worth a look (deliveries normally take seconds).
STUCK_AFTER = timedelta(minutes=10)
# A page, not a report: a broken destination can bury thousands; the newest tell the story.
DEAD_LETTERS_SHOWN = 50

_STYLE = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;
background:#f4f5f8}
header{display:flex;justify-content:space-between;align-items:baseline;padding:.9rem 2rem;
background:#1d2330;color:#fff}
header h1{margin:0;font-size:1.3rem}header small{color:#c5cad6}header a{color:#fff}
main{padding:1rem 2rem 2rem;max-width:80rem}
#health{border-radius:6px;padding:.8rem 1.1rem;margin:.5rem 0 1rem;font-size:1.05rem}
#health.ok{background:#e2f4e6;border:1px solid #7cc08d;color:#135424}
#health.bad{background:#fde7e7;border:1px solid #e08a8a;color:#7d1010}
#health ul{margin:.4rem 0 0;padding-left:1.2rem;font-size:.95rem}
.cards{display:flex;gap:.8rem;flex-wrap:wrap;margin-bottom:.5rem}
.card{background:#fff;border:1px solid #dde1ea;border-radius:6px;padding:.6rem 1rem;min-width:9rem}
.card b{display:block;font-size:1.5rem}.card span{color:#5b6475}
h2{font-size:1.05rem;margin:1.6rem 0 .5rem}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde1ea}
th{background:#eceef3;font-weight:600;white-space:nowrap}
td,th{border-bottom:1px solid #e3e6ee;padding:.35rem .7rem;text-align:left;vertical-align:top}
td{font-variant-numeric:tabular-nums}time,.id{white-space:nowrap}
.id,code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.9em}
code{background:#eceef3;padding:.1rem .35rem;border-radius:3px}
.none{color:#5b6475;font-style:italic}
.err{color:#a31515;overflow-wrap:anywhere}
.pill{display:inline-block;border-radius:9px;padding:0 .5rem;margin:0 .25rem .15rem 0;
font-size:.85em;white-space:nowrap}
.delivered,.ok-pill{background:#e2f4e6;color:#135424}
.pending{background:#fff2d6;color:#7a5200}
.dead,.bad-pill{background:#fde7e7;color:#7d1010;font-weight:600}
.mql{background:#1f7a3a;color:#fff;font-weight:700}.nurture{background:#eceef3;color:#3d4453}
.hint{background:#fff;border-left:4px solid #e08a8a;padding:.5rem .8rem;margin:.5rem 0}
"""

# The Content-Security-Policy (server/app.py) allows this one stylesheet, by its hash, and
# no other inline style or script: an escaping bug could not run anything.
STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()


async def page(request: web.Request) -> web.Response:
    ctx: ServerContext = request.app[CONTEXT]
    snap, health = await asyncio.to_thread(lambda: (snapshot(ctx.store), ctx.health()))
    refresh = request.query.get("refresh") != "off"
    return web.Response(text=render(snap, health, utcnow(), refresh), content_type="text/html")


def render(snap: StatusSnapshot, health: HealthReport, now: datetime, refresh: bool = True) -> str:
    """The whole page as HTML, for the snapshot and verdict taken at `now`."""
    body = (
        _banner(health, snap)
        + _cards(snap)
        + _table("Queues", "queues", _QUEUE_HEAD, _queues(snap, now), "no destinations")
        + _dead_letters(snap, now)
        + _table("Forms", "forms", _FORM_HEAD, _forms(snap, now), "no forms discovered yet")
        + _table("Recent leads", "leads", _LEAD_HEAD, _leads(snap, now), "no leads yet")
        + _table("Services", "services", _SERVICE_HEAD, _services(snap, now), "nothing yet")
    )
    # Paused (?refresh=off) for reading a long error without the page reloading under you.
    meta = f"<meta http-equiv='refresh' content='{REFRESH_SECONDS}'>" if refresh else ""
    cadence = (
        f"refreshes every {REFRESH_SECONDS} s (<a href='?refresh=off'>pause</a>)"
        if refresh
        else "auto-refresh paused (<a href='?'>resume</a>)"
    )
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>{meta}"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>leadsync: {'healthy' if health.ok else 'UNHEALTHY'}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<header><h1>leadsync</h1><small>rendered {_time(now, now)} UTC, {cadence}</small>"
        f"</header><main>{body}</main></body></html>"
    )


def sign_in_page(note_html: str) -> str:
    """The form that asks for `[server] admin_token`; it posts to /login (no script)."""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>leadsync: sign in</title><style>{_STYLE}</style></head><body>"
        "<header><h1>leadsync</h1></header><main><h2>Sign in</h2>"
        "<p>This status page needs the admin token (<code>[server] admin_token</code>).</p>"
        f"{f'<p class=err>{note_html}</p>' if note_html else ''}"
        "<form method='post' action='/login'><input type='password' name='token' "
        "aria-label='admin token' autocomplete='current-password' required autofocus> "
        "<button type='submit'>Open</button></form></main></body></html>"
    )


# -- sections ---------------------------------------------------------------------------
_QUEUE_HEAD = ["destination", "pending", "oldest pending", "delivered", "dead", "last error"]
_DEAD_HEAD = ["lead", "destination", "revision", "dead since", "last error"]
_FORM_HEAD = ["form", "name", "page", "status", "last poll", "newest lead", "last error"]
_LEAD_HEAD = ["lead", "created", "form", "score", "MQL", "destinations"]
_SERVICE_HEAD = ["service", "state", "message", "since"]


def _banner(health: HealthReport, snap: StatusSnapshot) -> str:
    if health.ok:
        dead = sum(d.dead for d in snap.destinations)
        waiting = "delivery waits" if dead == 1 else "deliveries wait"
        note = f" {dead} dead-lettered {waiting} for a replay (below)." if dead else ""
        return (
            '<div id="health" class="ok"><strong>Healthy</strong>: store writable, jobs '
            f"running, no token, polling or destination problem.{note}</div>"
        )
    reasons = "".join(_reason(r) for r in health.reasons)
    count = len(health.reasons)
    return (
        f'<div id="health" class="bad"><strong>Unhealthy</strong>: {count} '
        f"problem{'s' if count != 1 else ''}<ul>{reasons}</ul></div>"
    )


def _reason(reason: str) -> str:
    # Reasons read "code: detail"; the code is what the README's Operations section explains.
    code, _, detail = reason.partition(": ")
    return f"<li><code>{escape(code)}</code> {escape(detail)}</li>"


def _cards(snap: StatusSnapshot) -> str:
    figures = [
        ("leads stored", snap.leads),
        ("waiting delivery", sum(d.pending for d in snap.destinations)),
        ("delivered", sum(d.delivered for d in snap.destinations)),
        ("dead-lettered", sum(d.dead for d in snap.destinations)),
        ("forms", len(snap.forms)),
    ]
    cards = "".join(
        f'<div class="card"><b>{value}</b><span>{escape(label)}</span></div>'
        for label, value in figures
    )
    return f'<div class="cards" id="summary">{cards}</div>'


def _table(
    title: str, anchor: str, headers: Sequence[str], rows: Iterable[list[str]], empty: str
) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    lines = ["<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows]
    if not lines:
        lines = [f'<tr><td colspan="{len(headers)}" class="none">{escape(empty)}</td></tr>']
    return f'<h2>{escape(title)}</h2><table id="{anchor}"><tr>{head}</tr>{"".join(lines)}</table>'


def _queues(snap: StatusSnapshot, now: datetime) -> Iterable[list[str]]:
    errors = {s.service.removeprefix("destination:"): s.message for s in snap.services if not s.ok}
    # A destination whose deliveries die at once (a permanent error) may never be "failing";
    # its newest dead letter still says why its queue is stuck.
    for dead_letter in sorted(snap.dead_letters, key=lambda d: d.dead_at, reverse=True):
        errors.setdefault(dead_letter.item.destination, dead_letter.last_error)
    for d in snap.destinations:
        dead = f'<a class="pill dead" href="#dead-letters">{d.dead}</a>' if d.dead else "0"
        stuck = d.oldest_pending is not None and now - d.oldest_pending > STUCK_AFTER
        oldest = _time(d.oldest_pending, now)
        failing = errors.get(d.destination)
        yield [
            _id(d.destination),
            str(d.pending),
            f'<span class="err">{oldest}</span>' if stuck else oldest,
            str(d.delivered),
            dead,
            _error(failing) if failing else "",
        ]


def _dead_letters(snap: StatusSnapshot, now: datetime) -> str:
    if not snap.dead_letters:
        return '<h2>Dead letter</h2><p id="dead-letters" class="none">empty</p>'
    newest = sorted(snap.dead_letters, key=lambda d: d.dead_at, reverse=True)
    rows = (
        [
            _id(d.item.lead_id),
            _id(d.item.destination),
            str(d.item.revision),
            _time(d.dead_at, now),
            _error(d.last_error),
        ]
        for d in newest[:DEAD_LETTERS_SHOWN]
    )
    more = len(newest) - DEAD_LETTERS_SHOWN
    rest = (
        f" {more} older ones are not shown; <code>leadsync status</code> lists all."
        if more > 0
        else ""
    )
    names = sorted({d.item.destination for d in snap.dead_letters})
    commands = " or ".join(f"<code>leadsync replay --destination {escape(n)}</code>" for n in names)
    hint = (
        '<p class="hint" id="replay-hint">Fix the cause shown in <em>last error</em>, then '
        f"send them again with {commands} (one lead: <code>leadsync replay --lead ID</code>). "
        f"The running daemon picks them up.{rest}</p>"
    )
    return _table("Dead letter", "dead-letters", _DEAD_HEAD, rows, "") + hint


def _forms(snap: StatusSnapshot, now: datetime) -> Iterable[list[str]]:
    for f in snap.forms:
        cp = snap.checkpoints.get(f.id)
        polled = _time(cp.polled_at, now) if cp and cp.polled_at else _none("never")
        newest = _time(cp.last_created_time, now) if cp and cp.last_created_time else ""
        error = _error(cp.last_error) if cp and cp.last_error else ""
        yield [_id(f.id), escape(f.name), _id(f.page_id), escape(f.status), polled, newest, error]


def _leads(snap: StatusSnapshot, now: datetime) -> Iterable[list[str]]:
    form_names = {f.id: f.name for f in snap.forms if f.name}
    for lead in snap.recent:
        if lead.mql is None:
            mql = _none("not scored")
        else:
            mql = '<span class="pill mql">MQL</span>' if lead.mql else _pill("nurture", "no")
        states = "".join(
            _pill(state, f"{name}: {state}") for name, state in sorted(lead.destinations.items())
        )
        yield [
            _id(lead.lead_id),
            _time(lead.created_time, now),
            _form(lead.form_id, form_names.get(lead.form_id)),
            "" if lead.points is None else str(lead.points),
            mql,
            states or _none("not routed yet"),
        ]


def _services(snap: StatusSnapshot, now: datetime) -> Iterable[list[str]]:
    for s in snap.services:
        state = _pill("ok-pill", "ok") if s.ok else _pill("bad-pill", "failing")
        message = escape(s.message) if s.ok else _error(s.message)
        yield [_id(s.service), state, message, _time(s.at, now) if s.at else ""]


# -- pieces ----------------------------------------------------------------------------
def _id(value: str) -> str:
    return f'<span class="id">{escape(value)}</span>'


def _form(form_id: str, name: str | None) -> str:
    # A person knows forms by name; the id stays in the tooltip, for logs and Graph.
    if not name:
        return _id(form_id)
    return f'<span title="form {escape(form_id)}">{escape(name)}</span>'


def _pill(kind: str, text: str) -> str:
    return f'<span class="pill {escape(kind)}">{escape(text)}</span>'


def _error(text: str) -> str:
    return f'<span class="err">{escape(text)}</span>'


def _none(text: str) -> str:
    return f'<span class="none">{escape(text)}</span>'


def _time(when: datetime | None, now: datetime) -> str:
    """`<time>` reading "12 s ago"; the exact UTC time is its tooltip and datetime."""
    if when is None:
        return ""
    exact = escape(when.isoformat(timespec="seconds"))
    return f'<time datetime="{exact}" title="{exact}">{relative(when, now)}</time>'


def relative(when: datetime, now: datetime) -> str:
    """How long ago `when` was, in the largest whole unit ("just now", "5 min ago", "in 3 h")."""
    seconds = (now - when).total_seconds()
    span = abs(seconds)
    if span < 5:
        return "just now"
    unit, size = next(
        ((u, s) for u, s in (("d", 86400), ("h", 3600), ("min", 60)) if span >= s), ("s", 1)
    )
    amount = f"{int(span // size)} {unit}"
    return f"{amount} ago" if seconds > 0 else f"in {amount}"
