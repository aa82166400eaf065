"""Receivers for outgoing webhooks: a Standard Webhooks endpoint and a Slack incoming webhook.

`WebhookReceiver` stands for the CRM, n8n flow or small service behind a
`webhook` destination. It verifies each request as a Python receiver would,
with `standardwebhooks.Webhook(secret).verify` (the reference library: any
`v1,` signature of a space-separated list, timestamps within five minutes of
its clock), and answers 401 to a bad signature, malformed headers included.
`SlackReceiver` stands for hooks.slack.com/services/...: 200 `ok`, Slack's
plain-text error codes (`invalid_payload`, `invalid_token`, `no_service`,
`channel_is_archived`), its 50-block and 3,000-character limits, and an
optional one-message-per-second limit with 429 and Retry-After. Both keep what
they received for tests and inject failures (`fail`, `throttle`, `stall`).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError

from leadsync.emulators.background import BackgroundServer, Fault

# The Standard Webhooks headers a receiver reads.
SIGNED = ("webhook-id", "webhook-timestamp", "webhook-signature")
# Slack's limits for one message (Block Kit reference).
SLACK_MAX_BLOCKS = 50
SLACK_MAX_SECTION_CHARS = 3000


class Receiver(BackgroundServer):
    """A background server with the failures both receivers inject."""

    def fail(self, status: int = 500, times: int = 1, body: str = "", skip: int = 0) -> None:
        """The next `times` requests (after `skip`) get `status`."""
        fault = Fault(status, body or "error", content_type="text/plain", times=times, skip=skip)
        self.inject(fault)

    def throttle(self, retry_after: int = 1, times: int = 1) -> None:
        """The next `times` requests get 429 with Retry-After."""
        headers = {"Retry-After": str(retry_after)}
        self.inject(Fault(429, "rate_limited", headers, content_type="text/plain", times=times))

    def stall(self, seconds: float, times: int = 1) -> None:
        """The next `times` requests answer after `seconds` (client timeouts)."""
        self.inject(Fault(200, "ok", content_type="text/plain", delay=seconds, times=times))


def verify_signature(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """True when the reference library accepts the request as signed with `secret`, now."""
    try:
        Webhook(secret).verify(body, dict(headers), json_parse=False)
    # ValueError is the library's own parsing: a signature without ",", bad base64, not UTF-8.
    except (WebhookVerificationError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Received:
    """One request a webhook receiver got."""

    webhook_id: str
    timestamp: str
    body: bytes
    verified: bool
    headers: dict[str, str] = field(default_factory=dict)  # the webhook-* ones

    @property
    def document(self) -> dict[str, Any]:
        return json.loads(self.body)

    def leads(self) -> list[dict[str, Any]]:
        """The lead documents in this request (one, or a batch's)."""
        data = self.document.get("data", {})
        return list(data["leads"]) if "leads" in data else [data]


class WebhookReceiver(Receiver):
    """A Standard Webhooks endpoint at `url` (any path)."""

    def __init__(self, secret: str | None = None, *, reject_unsigned: bool = True):
        super().__init__()
        self.secret = secret or self.new_secret()
        self.reject_unsigned = reject_unsigned
        self.received: list[Received] = []
        self._lock = threading.Lock()

    @staticmethod
    def new_secret() -> str:
        return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/{tail:.*}", self._receive)

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() in SIGNED}
        verified = verify_signature(self.secret, headers, body)
        entry = Received(
            headers.get("webhook-id", ""),
            headers.get("webhook-timestamp", ""),
            body,
            verified,
            headers,
        )
        with self._lock:
            self.received.append(entry)
        if self.reject_unsigned and not verified:
            return web.Response(status=401, text="invalid signature")
        return web.Response(status=200, text="ok")

    def deliveries(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def documents_for(self, lead_id: str) -> list[tuple[str, dict[str, Any]]]:
        """(item id, lead document) of every verified delivery of `lead_id`, in arrival order."""
        return [
            (lead["id"], lead)
            for entry in self.deliveries()
            if entry.verified
            for lead in entry.leads()
            if lead.get("lead_id") == lead_id
        ]


class SlackReceiver(Receiver):
    """A Slack incoming webhook; post to `webhook_url`."""

    def __init__(self, *, per_second: int | None = None):
        super().__init__()
        self.token = secrets.token_urlsafe(18)
        self.per_second = per_second
        self.messages: list[dict[str, Any]] = []
        self._revoked = ""
        self._lock = threading.Lock()
        self._last_second = (0, 0)  # (second, messages in it)

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/services/T0EMULATOR/B0EMULATOR/{self.token}"

    def revoke(self, code: str = "no_service") -> None:
        """The webhook stops working: no_service (removed app), channel_is_archived, ..."""
        self._revoked = code

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/services/{team}/{bot}/{token}", self._receive)

    async def _receive(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=403, text="invalid_token")
        if self._revoked:
            return web.Response(
                status=410 if "archived" in self._revoked else 404, text=self._revoked
            )
        if self._over_limit():
            return web.Response(status=429, text="rate_limited", headers={"Retry-After": "1"})
        try:
            message = json.loads(await request.read())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.Response(status=400, text="invalid_payload")
        problem = self._problem(message)
        if problem:
            return web.Response(status=400, text=problem)
        with self._lock:
            self.messages.append(message)
        return web.Response(status=200, text="ok")

    def _over_limit(self) -> bool:
        if self.per_second is None:
            return False
        second = int(time.monotonic())
        with self._lock:
            seen, count = self._last_second
            count = count + 1 if seen == second else 1
            self._last_second = (second, count)
            return count > self.per_second

    @staticmethod
    def _problem(message: Any) -> str:
        if not isinstance(message, dict):
            return "invalid_payload"
        if not message.get("text") and not message.get("blocks"):
            return "no_text"
        blocks = message.get("blocks", [])
        too_long = any(
            len(b.get("text", {}).get("text", "")) > SLACK_MAX_SECTION_CHARS for b in blocks
        )
        return "invalid_blocks" if len(blocks) > SLACK_MAX_BLOCKS or too_long else ""

    def alerts_for(self, lead_id: str) -> list[dict[str, Any]]:
        """The section blocks that announced `lead_id` (its context line names it)."""
        with self._lock:
            messages = list(self.messages)
        found = []
        for message in messages:
            blocks = message.get("blocks", [])
            for section, context in zip(blocks, blocks[1:], strict=False):
                texts = [e.get("text", "") for e in context.get("elements", [])]
                if any(t.split(" · ")[0] == f"lead {lead_id}" for t in texts):
                    found.append(section)
        return found
