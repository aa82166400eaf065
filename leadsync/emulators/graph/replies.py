"""How the Graph emulator answers: Graph-shaped errors, usage headers and injected faults.

Every error body has Graph's shape, `{"error": {"message", "type", "code",
"error_subcode", "fbtrace_id"}}`, with the HTTP status Graph uses, so the real
facebook-business SDK raises exactly what it raises in production. Throttling
comes as HTTP 400 with no Retry-After, only usage headers, like Graph.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from leadsync.emulators.graph.world import Fault

JSON = "application/json; charset=UTF-8"

THROTTLE_MESSAGES = {
    4: "(#4) Application request limit reached",
    17: "(#17) User request limit reached",
    32: "(#32) Page request limit reached",
    613: "(#613) Calls to this api have exceeded the rate limit.",
    80001: "(#80001) There have been too many calls to this Page account. Wait a bit and try "
    "again. For more info, please refer to "
    "https://developers.facebook.com/docs/graph-api/overview/rate-limiting.",
    80005: "(#80005) There have been too many leadgen api calls to this Page account. Wait a bit "
    "and try again. For more info, please refer to "
    "https://developers.facebook.com/docs/graph-api/overview/rate-limiting.",
}

# The business use case type each BUC throttle code belongs to (Graph "Rate Limits").
BUC_TYPES = {80000: "ads_insights", 80001: "pages", 80002: "instagram", 80003: "custom_audience"}
BUC_TYPES |= {80004: "ads_management", 80005: "leadgen", 80006: "messenger", 32: "pages"}

HTML_502 = (
    "<!DOCTYPE html><html><head><title>Facebook | Error</title></head><body>"
    "<h1>Sorry, something went wrong.</h1><p>We're working on it and we'll get it fixed as "
    "soon as we can.</p></body></html>"
)


@dataclass
class Reply:
    """One HTTP answer before it is written: status, body, headers."""

    status: int
    body: Any  # a JSON-able value, or str for non-JSON bodies
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON

    def text(self) -> str:
        if isinstance(self.body, str) and self.content_type != JSON:
            return self.body
        return compact(self.body)


class GraphError(Exception):
    """A Graph error; `reply()` gives the body and status Graph sends for it."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        type: str = "OAuthException",  # noqa: A002 - Graph's own key
        subcode: int | None = None,
        status: int = 400,
        transient: bool = False,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.code, self.message, self.type = code, message, type
        self.subcode, self.status, self.transient = subcode, status, transient
        self.headers = headers or {}
        self.extra: dict[str, Any] = {}  # more error keys (error_user_title, error_user_msg)

    def reply(self) -> Reply:
        error: dict[str, Any] = {"message": self.message, "type": self.type, "code": self.code}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.transient:
            error["is_transient"] = True
        error.update(self.extra)
        error["fbtrace_id"] = fbtrace_id()
        headers = dict(self.headers)
        if self.code == 190:
            headers["WWW-Authenticate"] = (
                f'OAuth "Facebook Platform" "invalid_token" "{self.message}"'
            )
        return Reply(self.status, {"error": error}, headers)


def fbtrace_id() -> str:
    return secrets.token_urlsafe(8)


def not_found(object_id: str) -> GraphError:
    return GraphError(
        100,
        f"Unsupported get request. Object with ID '{object_id}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation. Please read "
        "the Graph API documentation at https://developers.facebook.com/docs/graph-api",
        type="GraphMethodException",
        subcode=33,
    )


def bad_parameter(message: str) -> GraphError:
    return GraphError(100, f"(#100) {message}")


def no_field(name: str, node_type: str) -> GraphError:
    return bad_parameter(f"Tried accessing nonexisting field ({name}) on node type ({node_type})")


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def usage_headers(percent: float, page_id: str, bucket: str = "leadgen", regain: int = 0):
    """X-App-Usage and, for page objects, X-Business-Use-Case-Usage, each showing `percent`."""
    value = round(percent)
    headers = {
        "X-App-Usage": compact({"call_count": value, "total_cputime": value, "total_time": value})
    }
    if page_id:
        entry = {
            "type": bucket,
            "call_count": value,
            "total_cputime": value,
            "total_time": value,
            "estimated_time_to_regain_access": regain,
        }
        headers["X-Business-Use-Case-Usage"] = compact({page_id: [entry]})
    return headers


def throttle(code: int, page_id: str, regain_minutes: int) -> GraphError:
    """Graph's throttling answer: HTTP 400, no Retry-After, usage at 100%."""
    message = THROTTLE_MESSAGES.get(
        code, f"(#{code}) There have been too many calls. Wait a bit and try again."
    )
    headers = usage_headers(100, page_id or "0", BUC_TYPES.get(code, "pages"), regain_minutes)
    return GraphError(code, message, transient=True, headers=headers)


def fault_reply(fault: Fault, page_id: str) -> Reply:
    """The answer an injected fault gives instead of the normal one."""
    if fault.kind.isdigit():
        return throttle(int(fault.kind), page_id, fault.regain_minutes).reply()
    if fault.kind == "http500":
        # Graph sometimes answers 500 with an empty data list and no error object.
        return Reply(500, {"data": []})
    if fault.kind == "html502":
        return Reply(502, HTML_502, content_type="text/html; charset=utf-8")
    if fault.kind == "hidden":
        return not_found(fault.path.strip("/") if fault.path else "0").reply()
    if fault.kind == "permission":
        message = "(#200) Requires pages_read_engagement and leads_retrieval permissions"
        return GraphError(200, message, status=403).reply()
    raise ValueError(f"fault {fault.kind!r} has no reply of its own")


def empty_page(after: str, next_url: str) -> Reply:
    """A /{form}/leads page with no data that still says there is a next page."""
    cursors = {"before": after, "after": after}
    return Reply(200, {"data": [], "paging": {"cursors": cursors, "next": next_url}})
