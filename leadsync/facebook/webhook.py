"""Verifies and parses Meta's leadgen webhooks; it does not store or fetch.

Meta signs the raw request body with the app secret (`X-Hub-Signature-256:
sha256=<hex>`), may put several entries in one POST and several changes in one
entry, and sends ids as strings or numbers. Test leads from the Lead Ads
Testing Tool carry no ad id. Every change with field `leadgen` becomes one
`Notification`; anything that is not the shape Meta documents is rejected
whole, so that nothing of a malformed request is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from leadsync.models import Notification, parse_time


class MalformedWebhook(ValueError):
    """The body is not a leadgen webhook as Meta sends it (answered with 400)."""


def signature_is_valid(body: bytes, header: str | None, app_secret: str) -> bool:
    """True when `header` is `sha256=<hex HMAC-SHA256 of body with app_secret>`.

    The comparison is constant-time so that the signature cannot be guessed
    byte by byte from response times.
    """
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256=").strip().lower())


def sign(body: bytes, app_secret: str) -> str:
    """The X-Hub-Signature-256 value Meta would send for `body`."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def handshake_reply(params: dict[str, str], verify_token: str) -> str | None:
    """The `hub.challenge` to echo when the subscription handshake is ours, else None."""
    if params.get("hub.mode") != "subscribe":
        return None
    offered = params.get("hub.verify_token", "")
    if not verify_token or not hmac.compare_digest(offered.encode(), verify_token.encode()):
        return None
    return params.get("hub.challenge", "")


def parse_notifications(body: bytes) -> list[Notification]:
    """Every leadgen change of every entry, as notifications; raises MalformedWebhook."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedWebhook(f"body is not JSON: {exc}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("entry"), list):
        raise MalformedWebhook("body has no 'entry' list")
    if payload.get("object") not in ("page", None):
        raise MalformedWebhook(f"object {payload.get('object')!r} is not 'page'")
    notes: list[Notification] = []
    for index, entry in enumerate(payload["entry"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("changes", []), list):
            raise MalformedWebhook(f"entry[{index}] is not an object with a 'changes' list")
        for change in entry.get("changes", []):
            if isinstance(change, dict) and change.get("field") == "leadgen":
                notes.append(_notification(change.get("value"), entry, index))
    return notes


def _notification(value: Any, entry: dict[str, Any], index: int) -> Notification:
    if not isinstance(value, dict) or not _is_id(value.get("leadgen_id")):
        raise MalformedWebhook(f"a leadgen change of entry[{index}] has no leadgen_id")
    page_id = value.get("page_id", entry.get("id"))
    if not _is_id(page_id):
        raise MalformedWebhook(f"a leadgen change of entry[{index}] has no page_id")
    try:
        created = parse_time(value.get("created_time"))
    except (TypeError, ValueError, OverflowError):
        raise MalformedWebhook(f"entry[{index}] has a bad created_time") from None
    return Notification(
        lead_id=str(value["leadgen_id"]),
        page_id=str(page_id),
        form_id=_optional_id(value.get("form_id")),
        ad_id=_optional_id(value.get("ad_id")),
        created_time=created,
        source="webhook",
    )


def _is_id(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value > 0
    return isinstance(value, str) and value.isdigit()


def _optional_id(value: Any) -> str:
    return str(value) if _is_id(value) else ""
