"""Who may see the status page, `/report` and `/metrics`: the holder of `[server] admin_token`.

With no admin token they are open, as before (fine on a private network or behind
a proxy that does not route them). With one, a caller proves itself either with
`Authorization: Bearer <token>` (Prometheus' `authorization` scrape setting, curl)
or, in a browser, by typing the token once into the sign-in form: `POST /login`
sets an HttpOnly, SameSite=Strict cookie holding an HMAC of the token (never the
token) and sends the browser back to the page it asked for (one of ours, never a
URL from the form), so the token stays out of URLs, history and logs, and rotating
it signs everyone out. `/healthz` stays open for Docker and load balancers; without the
token it shows its status and reason codes only, not their details.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

import structlog
from aiohttp import web

from leadsync.server.auth import bearer_token, same_secret
from leadsync.server.context import CONTEXT
from leadsync.server.limits import BodyTooSlow, read_body, too_slow
from leadsync.server.status_page import sign_in_page

log = structlog.get_logger(__name__)

COOKIE = "leadsync_admin"
# A browser session lasts a working week; the token itself never expires.
COOKIE_MAX_AGE_SECONDS = 7 * 24 * 3600

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Where the sign-in form may send a browser back to: our pages only, never a URL it was given.
PAGES = ("/", "/report")


def _token(request: web.Request) -> str:
    return request.app[CONTEXT].settings.server.admin_token.get_secret_value()


def _session(token: str) -> str:
    """The cookie value for `token`: proves the token was typed without being the token."""
    return hmac.new(token.encode(), b"leadsync admin session v1", hashlib.sha256).hexdigest()


def is_admin(request: web.Request) -> bool:
    """True when no admin token is set, or the request carries it (header or cookie)."""
    token = _token(request)
    if not token:
        return True
    if same_secret(bearer_token(request), token):
        return True
    return same_secret(request.cookies.get(COOKIE), _session(token))


def admin_only(handler: Handler) -> Handler:
    """`handler` for admins; others get 401 (the sign-in form, for a browser)."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        if is_admin(request):
            response = await handler(request)
            response.headers["Cache-Control"] = "no-store"
            return response
        return _sign_in(request, status=401, note="")

    return guarded


async def login(request: web.Request) -> web.StreamResponse:
    """`POST /login` from the sign-in form: a session cookie and back to the page, or 401."""
    token = _token(request)
    try:
        form = parse_qs((await read_body(request)).decode("utf-8", "replace"))
    except BodyTooSlow:
        return too_slow()
    offered = (form.get("token") or [""])[0]
    if not token or not same_secret(offered, token):
        log.warning("admin.login_failed")  # never the offered text: it may be a real secret
        return _sign_in(request, status=401, note="That is not the admin token.")
    back = (form.get("next") or ["/"])[0]
    response = web.Response(status=303, headers={"Location": back if back in PAGES else "/"})
    secure = request.secure or request.headers.get("X-Forwarded-Proto") == "https"
    response.set_cookie(
        COOKIE, _session(token), max_age=COOKIE_MAX_AGE_SECONDS, path="/",
        httponly=True, samesite="Strict", secure=secure,
    )  # fmt: skip
    return response


def _sign_in(request: web.Request, *, status: int, note: str) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="leadsync"', "Cache-Control": "no-store"}
    if request.path == "/metrics":  # a scraper, not a person
        text = "send Authorization: Bearer <[server] admin_token>"
        return web.Response(status=status, text=text, headers=headers)
    back = request.path if request.path in PAGES else "/"
    return web.Response(
        status=status, text=sign_in_page(note, back), content_type="text/html", headers=headers
    )
