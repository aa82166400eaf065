"""HTTP control endpoints of the Graph emulator, under `/_emulator/`, JSON in and out.

They let another process (`leadsync demo`, process-level tests, a person with
curl) do what in-process tests do through `GraphEmulator`'s methods:

    POST /_emulator/pages          {"id", "name"}
    POST /_emulator/forms          {"page_id", "name", "questions", "status"} -> {"id"}
    POST /_emulator/forms/{id}/status  {"status": "ARCHIVED"}
    POST /_emulator/leads          {"form_id", "answers", "created_time", "ad_id",
                                    "is_organic", "platform", "consents"} -> {"id"}
    POST /_emulator/subscriptions  {"page_id", "fields"};  DELETE /_emulator/subscriptions/{page}
    POST /_emulator/token/expire   {"token"?};  POST /_emulator/token/issue {"token", "scopes"?}
    POST /_emulator/pages/{id}/lead_access  {"allowed": false}  (Leads Access Manager)
    POST /_emulator/faults         {"kind", "times", "path", "seconds", "regain_minutes"}
    POST /_emulator/usage          {"percent"}
    POST /_emulator/webhooks/target {"url"}
    POST /_emulator/webhooks       {"lead_ids", options...} -> {"posts": [{"lead_ids", "attempts",
                                    "delivered"}]} once every POST is delivered or given up
    POST /_emulator/datasets       {"id", "crm"?}  (a Conversions API dataset, CRM by default)
    GET  /_emulator/datasets/{id}/events -> {"events": [accepted, in order], "received",
                                    "accepted", "duplicates"}
    GET  /_emulator/requests?prefix=/111  -> {"count", "requests": [[method, path, params]]}
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from leadsync.emulators.graph.webhooks import (
    WebhookPost,
    WebhookSender,
    leadgen_value,
    plan_bodies,
)
from leadsync.emulators.graph.world import Dataset, Fault, World, normalize_fault_kind
from leadsync.models import parse_time

WORLD = web.AppKey("world", World)
SENDER = web.AppKey("sender", WebhookSender)

PLAN_OPTIONS = ("per_post", "copies", "shuffle", "group_by_page")
SEND_OPTIONS = ("max_attempts", "backoff", "concurrency", "timeout")

Handler = Callable[[World, dict[str, Any], web.Request], Any]


async def deliver(
    world: World, sender: WebhookSender, lead_ids: list[str], options: dict[str, Any]
) -> list[WebhookPost]:
    """Builds the webhook bodies for these leads and delivers them with retries."""
    unknown = set(options) - set(PLAN_OPTIONS) - set(SEND_OPTIONS) - {"numeric_ids"}
    if unknown:
        raise TypeError(f"unknown webhook options: {sorted(unknown)}")
    numeric = bool(options.get("numeric_ids", False))
    with world.lock:
        values = [leadgen_value(world.leads[i], numeric_ids=numeric) for i in lead_ids]
    plan = {k: options[k] for k in PLAN_OPTIONS if k in options}
    send = {k: options[k] for k in SEND_OPTIONS if k in options}
    return await sender.send(plan_bodies(values, **plan), **send)


def add_page(world: World, data: dict[str, Any], _: web.Request) -> dict[str, Any]:
    world.add_page(str(data["id"]), data.get("name", ""))
    return {"id": str(data["id"])}


def add_form(world: World, data: dict[str, Any], _: web.Request) -> dict[str, Any]:
    questions = data.get("questions", ["full_name", "email"])
    form_id = world.add_form(
        str(data["page_id"]), data["name"], questions, data.get("status", "ACTIVE")
    )
    return {"id": form_id}


def set_form_status(world: World, data: dict[str, Any], request: web.Request) -> dict[str, Any]:
    world.set_form_status(request.match_info["form_id"], data["status"])
    return {"success": True}


def create_lead(world: World, data: dict[str, Any], _: web.Request) -> dict[str, Any]:
    lead_id = world.create_lead(
        str(data["form_id"]),
        data.get("answers", {}),
        created_time=parse_time(data.get("created_time")),
        ad_id=data.get("ad_id"),
        is_organic=bool(data.get("is_organic", False)),
        platform=data.get("platform", "fb"),
        consents=data.get("consents"),
    )
    return {"id": lead_id}


def subscribe(world: World, data: dict[str, Any], _: web.Request) -> dict[str, Any]:
    world.subscribe_app(str(data["page_id"]), data.get("fields", ["leadgen"]))
    return {"success": True}


def unsubscribe(world: World, _: dict[str, Any], request: web.Request) -> dict[str, Any]:
    world.unsubscribe_app(request.match_info["page_id"])
    return {"success": True}


def expire_token(world: World, data: dict[str, Any], _: web.Request) -> dict[str, Any]:
    world.expire_token(data.get("token"))
    return {"success": True}


def issue_token(world: World, data: dict[str, Any], _: web.Request) -> dict[str, Any]:
    if "scopes" in data:
        return {"token": world.issue_token(data["token"], scopes=list(data["scopes"]))}
    return {"token": world.issue_token(data["token"])}


def set_lead_access(world: World, data: dict[str, Any], request: web.Request) -> dict[str, Any]:
    world.set_lead_access(request.match_info["page_id"], bool(data["allowed"]))
    return {"success": True}


def inject_fault(world: World, data: dict[str, Any], _: web.Request) -> dict[str, Any]:
    fault = Fault(
        normalize_fault_kind(data["kind"]),
        int(data.get("times", 1)),
        data.get("path"),
        float(data.get("seconds", 0.0)),
        int(data.get("regain_minutes", 0)),
    )
    world.inject_fault(fault)
    return {"success": True}


def set_usage(world: World, data: dict[str, Any], _: web.Request) -> dict[str, Any]:
    world.usage_percent = float(data["percent"])
    return {"success": True}


def set_target(world: World, data: dict[str, Any], request: web.Request) -> dict[str, Any]:
    request.app[SENDER].target = data["url"]
    return {"success": True}


def dataset_counts(dataset: Dataset) -> dict[str, int]:
    accepted = len(dataset.accepted)
    return {"received": dataset.received, "accepted": accepted, "duplicates": dataset.duplicates}


def add_dataset(world: World, data: dict[str, Any], _: web.Request) -> dict[str, Any]:
    world.add_dataset(str(data["id"]), crm=bool(data.get("crm", True)))
    return {"success": True}


def dataset_events(world: World, _: dict[str, Any], request: web.Request) -> dict[str, Any]:
    with world.lock:
        dataset = world.datasets[request.match_info["dataset_id"]]
        return {"events": list(dataset.accepted), **dataset_counts(dataset)}


def requests_log(world: World, _: dict[str, Any], request: web.Request) -> dict[str, Any]:
    prefix = request.query.get("prefix", "/")
    with world.lock:
        matching = [list(entry) for entry in world.requests if entry[1].startswith(prefix)]
    return {"count": len(matching), "requests": matching}


async def send_webhooks(request: web.Request) -> web.Response:
    data = await request.json()
    lead_ids = [str(i) for i in data.pop("lead_ids")]
    try:
        posts = await deliver(request.app[WORLD], request.app[SENDER], lead_ids, data)
    except (KeyError, TypeError, RuntimeError) as exc:
        return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=400)
    shown = [
        {"lead_ids": p.lead_ids, "attempts": p.attempts, "delivered": p.delivered} for p in posts
    ]
    return web.json_response({"posts": shown})


def endpoint(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Wraps a (world, json, request) -> dict handler; a bad request answers 400 with why."""

    async def handle(request: web.Request) -> web.Response:
        data = await request.json() if request.can_read_body else {}
        try:
            result = handler(request.app[WORLD], data, request)
        except (KeyError, ValueError, TypeError) as exc:
            return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=400)
        return web.json_response(result)

    return handle


def add_routes(app: web.Application) -> None:
    routes = [
        ("POST", "/pages", add_page),
        ("POST", "/pages/{page_id}/lead_access", set_lead_access),
        ("POST", "/forms", add_form),
        ("POST", "/forms/{form_id}/status", set_form_status),
        ("POST", "/leads", create_lead),
        ("POST", "/subscriptions", subscribe),
        ("DELETE", "/subscriptions/{page_id}", unsubscribe),
        ("POST", "/token/expire", expire_token),
        ("POST", "/token/issue", issue_token),
        ("POST", "/faults", inject_fault),
        ("POST", "/usage", set_usage),
        ("POST", "/webhooks/target", set_target),
        ("GET", "/requests", requests_log),
        ("POST", "/datasets", add_dataset),
        ("GET", "/datasets/{dataset_id}/events", dataset_events),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, "/_emulator" + path, endpoint(handler))
    app.router.add_post("/_emulator/webhooks", send_webhooks)
