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
from datetime import datetime
from typing import Any

from leadsync.constants import CLOCK_SKEW, LEAD_ADS_LAUNCH
from leadsync.models import Notification, is_graph_id, parse_time, utcnow


class MalformedWebhook(ValueError):
    """The body is not a leadgen webhook as Meta sends it (answered with 400)."""


def signature_is_valid(body: bytes, header: str | None, app_secret: str) -> bool:
    """True when `header` is `sha256=<hex HMAC-SHA256 of body with app_secret>`.

    The comparison is constant-time so that the signature cannot be guessed
    byte by byte from response times.
    """
    # A header with bytes outside ASCII cannot be a hex digest (and compare_digest refuses
    # non-ASCII text with a TypeError): it is simply a wrong signature.
    if not header or not header.isascii() or not header.startswith("sha256="):
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
    # surrogateescape: odd bytes in the query come in as lone surrogates; they just mismatch.
    offered_bytes = offered.encode("utf-8", "surrogateescape")
    if not verify_token or not hmac.compare_digest(offered_bytes, verify_token.encode()):
        return None
    return params.get("hub.challenge", "")


def parse_notifications(body: bytes) -> list[Notification]:
    """Every leadgen change of every entry, as notifications; raises MalformedWebhook."""
    try:
        payload = json.loads(body)
    except RecursionError:
        raise MalformedWebhook("body is nested too deeply") from None
    except ValueError as exc:  # not UTF-8, not JSON, or an integer of thousands of digits
        raise MalformedWebhook(f"body is not JSON: {_first_line(exc)}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("entry"), list):
        raise MalformedWebhook("body has no 'entry' list")
    if payload.get("object") not in ("page", None):
        raise MalformedWebhook(f"object {payload.get('object')!r} is not 'page'")
    latest = utcnow() + CLOCK_SKEW  # no lead is created after this
    notes: list[Notification] = []
    for index, entry in enumerate(payload["entry"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("changes", []), list):
            raise MalformedWebhook(f"entry[{index}] is not an object with a 'changes' list")
        for change in entry.get("changes", []):
            if isinstance(change, dict) and change.get("field") == "leadgen":
                notes.append(_notification(change.get("value"), entry, index, latest))
    return notes


def _notification(value: Any, entry: dict[str, Any], index: int, latest: datetime) -> Notification:
    lead_id = _id(value.get("leadgen_id")) if isinstance(value, dict) else ""
    if not lead_id:
        raise MalformedWebhook(f"a leadgen change of entry[{index}] has no leadgen_id")
    page_id = _id(value.get("page_id", entry.get("id")))
    if not page_id:
        raise MalformedWebhook(f"a leadgen change of entry[{index}] has no page_id")
    return Notification(
        lead_id=lead_id,
        page_id=page_id,
        form_id=_id(value.get("form_id")),
        ad_id=_id(value.get("ad_id")),
        created_time=_created_time(value.get("created_time"), index, latest),
        source="webhook",
    )


def _created_time(value: Any, index: int, latest: datetime) -> datetime | None:
    """The change's created_time, or None; 400 for a time no lead can have."""
    try:
        created = parse_time(value)
    except (TypeError, ValueError, OverflowError, OSError):
        raise MalformedWebhook(f"entry[{index}] has a bad created_time") from None
    if created is not None and not LEAD_ADS_LAUNCH <= created <= latest:
        raise MalformedWebhook(f"entry[{index}] has a created_time no lead can have")
    return created


def _id(value: Any) -> str:
    """A Graph id as text (Meta sends ids as strings or as numbers), or "" if it is not one."""
    if type(value) is int:  # a bool is an int too, and never an id
        value = str(value) if value > 0 else ""
    return value if is_graph_id(value) else ""


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
