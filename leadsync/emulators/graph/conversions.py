"""Meta's Conversions API in the Graph emulator: `POST /{dataset_id}/events`, CRM rules included.

A dataset (Events Manager's "pixel" or "dataset" id) takes a JSON array of at
most 1,000 events in `data` (form field or JSON body; the facebook-business SDK
sends each event as a JSON string inside the array, plain clients send
objects, and Meta takes both). As Meta documents for every event: `event_name`,
`event_time` (Unix seconds, at most 7 days old, not in the future) and
`action_source` are required, and one bad event refuses the whole request, so
nothing of it is processed. A CRM dataset (the "Conversion Leads" integration)
also needs `action_source = "system_generated"`, the lead ad's `lead_id`
(15 to 17 digits, unhashed) in `user_data`, and `custom_data.event_source =
"crm"` with a `lead_event_source` naming the CRM. Accepted events are
deduplicated by (`event_name`, `event_id`) as Meta does, and every one is
recorded, so tests can see each lead's stages arrive once and in order.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from leadsync.emulators.graph.replies import GraphError, fbtrace_id
from leadsync.emulators.graph.world import Dataset

# Conversions API: "a maximum of 1,000 events" per request ("Using the API", batch requests).
MAX_EVENTS = 1000
# "The event_time can be up to 7 days before you send an event" (Server Event parameters).
MAX_AGE_SECONDS = 7 * 24 * 3600
# A minute of clock difference between sender and Meta is not "the future".
FUTURE_SKEW_SECONDS = 60
# The payload specification says 15 or 16 digits; ids of 17 digits are seen too.
LEAD_ID = re.compile(r"^\d{15,17}$")
# Subcode of a real "parameter ... is required" answer (error_user_title below).
REQUIRED_SUBCODE = 2804019
# Subcode of "event timestamp too old" answers (seen in real answers, not in a reference).
TOO_OLD_SUBCODE = 2804003
INVALID_SUBCODE = 2804050  # the emulator's own for other invalid values; Meta's varies


def invalid(message: str, subcode: int = INVALID_SUBCODE, title: str = "") -> GraphError:
    """Meta's answer to a payload it refuses: code 100, its subcode, a user title and message."""
    error = GraphError(100, "Invalid parameter", subcode=subcode)
    error.extra = {
        "error_user_title": title or "Server-side API parameter error",
        "error_user_msg": message,
    }
    return error


def receive(dataset: Dataset, params: dict[str, str], now: float | None = None) -> dict[str, Any]:
    """Checks a request's events, keeps the new ones; the answer Meta gives, or GraphError."""
    events = parse_data(params.get("data"))
    moment = time.time() if now is None else now
    for index, event in enumerate(events):
        check_event(dataset, index, event, moment)
    for event in events:
        key = (str(event["event_name"]), str(event.get("event_id", "")))
        if event.get("event_id") not in (None, "") and key in dataset.seen:
            dataset.duplicates += 1
            continue
        dataset.seen.add(key)
        dataset.accepted.append(event)
    dataset.received += len(events)
    return {"events_received": len(events), "messages": [], "fbtrace_id": fbtrace_id()}


def parse_data(text: str | None) -> list[dict[str, Any]]:
    """The `data` parameter as a list of event objects (each may come as a JSON string)."""
    if text is None or text == "":
        raise invalid("The parameter $['data'] is required.", REQUIRED_SUBCODE)
    try:
        items = json.loads(text)
    except ValueError:
        items = None
    if not isinstance(items, list):
        raise invalid("The parameter $['data'] must be an array.")
    if len(items) > MAX_EVENTS:
        raise invalid(f"The parameter $['data'] can hold at most {MAX_EVENTS} events.")
    events = []
    for index, item in enumerate(items):
        if isinstance(item, str):
            try:
                item = json.loads(item)
            except ValueError:
                item = None
        if not isinstance(item, dict):
            raise invalid(f"The parameter $['data'][{index}] must be an object.")
        events.append(item)
    return events


def check_event(dataset: Dataset, index: int, event: dict[str, Any], now: float) -> None:
    at = f"$['data'][{index}]"
    for name in ("event_name", "event_time", "action_source"):
        if event.get(name) in (None, ""):
            raise invalid(f"The parameter {at}['{name}'] is required.", REQUIRED_SUBCODE)
    check_time(at, event["event_time"], now)
    if not isinstance(event.get("user_data"), dict):
        raise invalid(f"The parameter {at}['user_data'] is required.", REQUIRED_SUBCODE)
    if dataset.crm:
        check_crm(at, event)


def check_time(at: str, value: Any, now: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise invalid(f"The parameter {at}['event_time'] must be a Unix time in seconds.")
    moment = int(value)
    if moment < now - MAX_AGE_SECONDS:
        message = (
            f"The timestamp for {at} is more than 7 days in the past. Events must be sent "
            "within 7 days of when they happened."
        )
        raise invalid(message, TOO_OLD_SUBCODE, "Event Timestamp Too Old")
    if moment > now + FUTURE_SKEW_SECONDS:
        message = f"The timestamp for {at} is in the future."
        raise invalid(message, TOO_OLD_SUBCODE, "Event Timestamp In Future")


def check_crm(at: str, event: dict[str, Any]) -> None:
    """The Conversion Leads payload rules of a CRM dataset."""
    if event["action_source"] != "system_generated":
        raise invalid(f"{at}['action_source'] must be system_generated for CRM events.")
    lead_id = event["user_data"].get("lead_id")
    if lead_id in (None, ""):
        raise invalid(f"The parameter {at}['user_data']['lead_id'] is required.", REQUIRED_SUBCODE)
    if isinstance(lead_id, bool) or not LEAD_ID.match(str(lead_id)):
        raise invalid(f"{at}['user_data']['lead_id'] is not a valid Facebook lead id.")
    custom = event.get("custom_data")
    if not isinstance(custom, dict) or custom.get("event_source") != "crm":
        raise invalid(f"{at}['custom_data']['event_source'] must be crm.")
    if not str(custom.get("lead_event_source") or "").strip():
        message = f"The parameter {at}['custom_data']['lead_event_source'] is required."
        raise invalid(message, REQUIRED_SUBCODE)
