"""Graph API failures mapped once into leadsync's error kinds, and Graph's usage headers read.

The facebook-business SDK raises `FacebookRequestError` (whose text holds the
request URL and parameters, access token included) and lets requests raise
its own errors. `graph_error` turns any of them into one of our kinds, with a
message that names the object, says what happened and what to do, and never
carries a token: expired or revoked tokens (190, 102, subcodes 458-467) and
missing permissions (10, 200-299, a page's Leads Access Manager among them) are
`AuthError`; throttling (4, 17, 32, 613,
80000-80014) is `RateLimited`; HTTP 5xx, HTML pages, timeouts and broken
connections are `TransientError`; an object that does not exist (100/33) is
`BadLead`; the rest is `PermanentError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import requests
from facebook_business.exceptions import FacebookRequestError

from leadsync.constants import GRAPH_THROTTLE_WAIT
from leadsync.errors import (
    AuthError,
    BadLead,
    LeadsyncError,
    PermanentError,
    RateLimited,
    TransientError,
)

TOKEN_CODES = frozenset({102, 190})
# Subcodes for tokens that expired, were revoked or lost the app (Graph "Handle Errors").
TOKEN_SUBCODES = frozenset({458, 459, 460, 463, 464, 467})
THROTTLE_CODES = frozenset({4, 17, 32, 613, *range(80000, 80015)})
# Graph documents 1 ("unknown error") and 2 ("service temporarily unavailable") as retryable.
RETRYABLE_CODES = frozenset({1, 2})
USAGE_HEADERS = ("x-app-usage", "x-business-use-case-usage", "x-page-usage", "x-ad-account-usage")
USAGE_KEYS = ("call_count", "total_cputime", "total_time", "acc_id_util_pct")

# Anything shaped like a Facebook token or an access_token parameter, wherever it shows up.
TOKEN_SHAPES = re.compile(r"(EAA[A-Za-z0-9]{20,}|(access_token|appsecret_proof)=[^&\s'\"]+)")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """The text without our secrets or anything that looks like a token."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return TOKEN_SHAPES.sub("[redacted]", text)


def header_map(headers: Any) -> dict[str, str]:
    """Headers by lower-case name, from a requests mapping or a batch item's name/value list."""
    if isinstance(headers, list):
        return {str(h.get("name", "")).lower(): str(h.get("value", "")) for h in headers}
    return {str(k).lower(): str(v) for k, v in (headers or {}).items()}


def usage_entries(headers: Any) -> list[dict[str, Any]]:
    """Every usage record in Graph's usage headers (flat ones and per-business lists)."""
    found: list[dict[str, Any]] = []
    lowered = header_map(headers)
    for name in USAGE_HEADERS:
        try:
            data = json.loads(lowered.get(name, "") or "null")
        except ValueError:
            continue
        if isinstance(data, dict) and any(key in data for key in USAGE_KEYS):
            found.append(data)
        elif isinstance(data, dict):
            found.extend(e for v in data.values() if isinstance(v, list) for e in v)
    return [entry for entry in found if isinstance(entry, dict)]


def usage_percent(headers: Any) -> float:
    """The highest usage percentage any usage header shows; 0 when there is none."""
    values = [
        float(entry[key])
        for entry in usage_entries(headers)
        for key in USAGE_KEYS
        if isinstance(entry.get(key), int | float)
    ]
    return max(values, default=0.0)


def regain_seconds(headers: Any) -> float:
    """Seconds until Graph lets us in again (`estimated_time_to_regain_access` is in minutes)."""
    minutes = [
        float(entry["estimated_time_to_regain_access"])
        for entry in usage_entries(headers)
        if isinstance(entry.get("estimated_time_to_regain_access"), int | float)
    ]
    return max(minutes, default=0.0) * 60


def graph_error(
    exc: BaseException, what: str, *, app_id: str = "", secrets: Iterable[str] = ()
) -> LeadsyncError:
    """Our error kind for a failed Graph call about `what` ("lead 123", "forms of page 4")."""
    if isinstance(exc, requests.Timeout):
        return TransientError(f"{what}: Facebook did not answer in time; will retry")
    if isinstance(exc, requests.RequestException):
        return TransientError(
            f"{what}: could not reach Facebook ({type(exc).__name__}); will retry"
        )
    if not isinstance(exc, FacebookRequestError):
        raise TypeError(f"not a Graph failure: {type(exc).__name__}") from exc
    status = exc.http_status() or 0
    body = exc.body()
    if not isinstance(body, Mapping) or "error" not in body:
        # 5xx with {"data": []}, an HTML error page, or anything that is not a Graph error.
        return TransientError(f"{what}: Facebook answered HTTP {status} without a Graph error")
    return api_error(exc, what, app_id=app_id, secrets=list(secrets))


def api_error(
    exc: FacebookRequestError, what: str, *, app_id: str, secrets: list[str]
) -> LeadsyncError:
    code = exc.api_error_code() or 0
    subcode = exc.api_error_subcode() or 0
    detail = redact(str(exc.api_error_message() or ""), secrets)
    tag = f"Graph error {code}" + (f"/{subcode}" if subcode else "")
    if code in TOKEN_CODES or subcode in TOKEN_SUBCODES:
        app = f"app {app_id}" if app_id else "our app"
        return AuthError(
            f"{what}: the Facebook token for {app} is expired or revoked ({tag}: {detail}); "
            "create a system-user token, put it in facebook.access_token and run `leadsync check`",
            service="facebook",
        )
    if code == 200 and "leads access" in detail.lower():
        return AuthError(
            f"{what}: the page's Leads Access Manager does not let our app read leads ({tag}); "
            "in Business Settings > Integrations > Leads Access, add the app under CRMs, then "
            "run `leadsync check`",
            service="facebook",
        )
    if code == 10 or 200 <= code <= 299:
        return AuthError(
            f"{what}: the Facebook token lacks a permission ({tag}: {detail}); give it "
            "leads_retrieval, pages_show_list, pages_read_engagement, pages_manage_metadata and "
            "ads_management on the page, then run `leadsync check`",
            service="facebook",
        )
    if code in THROTTLE_CODES:
        wait = regain_seconds(exc.http_headers()) or GRAPH_THROTTLE_WAIT.total_seconds()
        return RateLimited(
            f"{what}: Facebook is throttling us ({tag}); waiting {wait:.0f}s", retry_after=wait
        )
    if code == 100 and subcode == 33:
        return BadLead(f"{what}: does not exist or is not visible to this token ({tag})")
    status = exc.http_status() or 0
    if status >= 500 or code in RETRYABLE_CODES or exc.api_transient_error():
        return TransientError(f"{what}: Facebook failed for now ({tag}: {detail}); will retry")
    return PermanentError(f"{what}: Facebook refused the request ({tag}: {detail})")
