"""Meta's side of leadgen webhooks: payloads, signatures, delivery with retries.

A body looks like Meta's: `{"object": "page", "entry": [{"id", "time",
"changes": [{"field": "leadgen", "value": {...}}]}]}`, several entries and
changes per POST. It is signed like Meta signs it: `X-Hub-Signature-256:
sha256=<HMAC-SHA256 of the raw body with the app secret>` (plus the legacy
SHA-1 `X-Hub-Signature`). A POST that does not get a 200 is sent again with
backoff, a bounded number of times, as Meta retries failed deliveries.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from leadsync.emulators.graph.world import LeadRecord


@dataclass
class WebhookPost:
    """One webhook body and what became of each attempt to deliver it."""

    body: bytes
    signature: str
    attempts: list[int | str] = field(default_factory=list)  # HTTP status or error name

    @property
    def delivered(self) -> bool:
        return bool(self.attempts) and self.attempts[-1] == 200

    @property
    def lead_ids(self) -> list[str]:
        entries = json.loads(self.body)["entry"]
        return [str(c["value"]["leadgen_id"]) for e in entries for c in e["changes"]]


def sign(body: bytes, secret: str, digest: Any = hashlib.sha256) -> str:
    """Meta's signature header value: "sha256=<hex>" (or "sha1=<hex>")."""
    mac = hmac.new(secret.encode(), body, digest)
    return f"{digest().name}={mac.hexdigest()}"


def leadgen_value(lead: LeadRecord, *, numeric_ids: bool = False) -> dict[str, Any]:
    """The `value` of a leadgen change; test and organic leads have no ad ids."""
    value: dict[str, Any] = {
        "form_id": lead.form_id,
        "leadgen_id": lead.id,
        "created_time": int(lead.created_time.timestamp()),
        "page_id": lead.page_id,
    }
    if ad_id := lead.ad.get("ad_id"):
        value["ad_id"] = ad_id
        value["adgroup_id"] = ad_id
    if numeric_ids:  # Meta has sent ids as JSON numbers; receivers must accept both
        value = {k: int(v) if k != "created_time" else v for k, v in value.items()}
    return value


def body_of(values: Sequence[dict[str, Any]], *, group_by_page: bool = True) -> dict[str, Any]:
    """One webhook body holding these change values, one entry per page (or per change)."""
    now = int(time.time())
    entries: list[dict[str, Any]] = []
    for value in values:
        change = {"field": "leadgen", "value": value}
        page_id = value["page_id"]
        if group_by_page and entries and str(entries[-1]["id"]) == str(page_id):
            entries[-1]["changes"].append(change)
        else:
            entries.append({"id": page_id, "time": now, "changes": [change]})
    return {"object": "page", "entry": entries}


def plan_bodies(
    values: Iterable[dict[str, Any]],
    *,
    per_post: int = 1,
    copies: int = 1,
    shuffle: bool | int = False,
    group_by_page: bool = True,
) -> list[dict[str, Any]]:
    """Cuts change values into bodies of `per_post`, each value sent `copies` times.

    `shuffle` mixes the order (an int is the random seed), so copies of one lead
    land in different POSTs and leads arrive out of order, as they can from Meta.
    """
    values = [value for value in values for _ in range(copies)]
    if shuffle is not False:
        random.Random(None if shuffle is True else shuffle).shuffle(values)
    chunks = [values[i : i + per_post] for i in range(0, len(values), max(per_post, 1))]
    return [body_of(chunk, group_by_page=group_by_page) for chunk in chunks]


class WebhookSender:
    """Delivers signed bodies to the target URL from the emulator's event loop."""

    def __init__(self, app_secret: str):
        self.app_secret = app_secret
        self.target = ""
        self.posts: list[WebhookPost] = []
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(headers={"User-Agent": "facebookexternalua"})

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def encode(self, body: dict[str, Any]) -> tuple[bytes, str]:
        raw = json.dumps(body, separators=(",", ":")).encode()
        return raw, sign(raw, self.app_secret)

    async def send(
        self,
        bodies: Sequence[dict[str, Any]],
        *,
        max_attempts: int = 5,
        backoff: float = 0.05,
        concurrency: int = 4,
        timeout: float = 10.0,
    ) -> list[WebhookPost]:
        """Posts every body (up to `concurrency` at once), retrying each until a 200."""
        if not self.target:
            raise RuntimeError("no webhook target; call set_webhook_target(url) first")
        gate = asyncio.Semaphore(concurrency)
        posts = [WebhookPost(*self.encode(body)) for body in bodies]
        self.posts.extend(posts)

        async def deliver(post: WebhookPost) -> None:
            async with gate:
                await self._deliver(post, max_attempts, backoff, timeout)

        await asyncio.gather(*(deliver(post) for post in posts))
        return posts

    async def _deliver(self, post: WebhookPost, attempts: int, backoff: float, timeout: float):
        assert self._session is not None, "sender not opened"
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": post.signature,
            "X-Hub-Signature": sign(post.body, self.app_secret, hashlib.sha1),
        }
        for attempt in range(attempts):
            try:
                async with self._session.post(
                    self.target,
                    data=post.body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=timeout),
                ) as response:
                    await response.read()
                    post.attempts.append(response.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                post.attempts.append(type(exc).__name__)
            if post.delivered:
                return
            if attempt + 1 < attempts:
                await asyncio.sleep(min(backoff * 2**attempt, 5.0))

    async def verify(self, url: str, verify_token: str) -> bool:
        """Meta's subscription handshake: GET with hub.* params, expects the challenge back."""
        assert self._session is not None, "sender not opened"
        challenge = secrets.token_hex(8)
        params = {"hub.mode": "subscribe", "hub.challenge": challenge}
        params["hub.verify_token"] = verify_token
        async with self._session.get(url, params=params) as response:
            return response.status == 200 and (await response.text()).strip() == challenge
