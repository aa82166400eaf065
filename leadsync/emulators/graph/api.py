"""The Graph endpoints leadsync uses, answered from the emulator's world.

`serve` takes one request (top level or a batch item), applies an injected
fault if one matches, checks the access token and `appsecret_proof`, routes it
and adds usage headers. Routes: `/{page}`, `/{page}/leadgen_forms`,
`/{page}/subscribed_apps`, `/{form}`, `/{form}/leads`, `/{lead}`, `/debug_token`,
`/me`, `/me/accounts` (with `accounts.py`, which also says who may read
leads and manage subscriptions), and the batch endpoint `POST /` whose items
are served the same way.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from leadsync.emulators.graph import accounts, conversions, nodes
from leadsync.emulators.graph.nodes import Call
from leadsync.emulators.graph.replies import (
    GraphError,
    Reply,
    bad_parameter,
    empty_page,
    fault_reply,
    not_found,
    usage_headers,
)
from leadsync.emulators.graph.world import World, lead_order_key

# Graph batch requests take at most 50 requests per call (Graph API "Batch Requests").
BATCH_LIMIT = 50
SYSTEM_USER_ID = "100000000000001"
DEFAULT_VERSION = "v24.0"


class Disconnect(Exception):
    """The emulator should drop the connection without answering (a network failure)."""


async def serve(world: World, call: Call, *, in_batch: bool = False) -> Reply | None:
    """The answer to one call; None only for a batch item Graph leaves null ("retry this")."""
    page_id = world.page_of(call.path.strip("/").split("/")[0])
    fault = world.take_fault(call.path, in_batch=in_batch)
    if fault and fault.kind == "slow":
        await asyncio.sleep(fault.seconds)
    elif fault and fault.kind == "batch_null":
        return None
    elif fault and fault.kind == "disconnect":
        raise Disconnect
    elif fault and fault.kind == "empty_page":
        after = call.params.get("after") or nodes.start_cursor()
        reply = empty_page(after, call.next_url(after))
        return with_usage(world, reply, page_id)
    elif fault:
        return with_usage(world, fault_reply(fault, page_id), page_id)
    try:
        if not in_batch:
            check_token(world, call)
        if call.method == "POST" and call.path == "/":
            reply = await run_batch(world, call)
        else:
            reply = route(world, call)
    except GraphError as error:
        reply = error.reply()
    return with_usage(world, reply, page_id)


def with_usage(world: World, reply: Reply, page_id: str) -> Reply:
    for name, value in usage_headers(world.usage_percent, page_id).items():
        reply.headers.setdefault(name, value)
    return reply


def check_token(world: World, call: Call) -> None:
    """Graph's token checks: present, `appsecret_proof` right when given, known, not expired."""
    token = call.params.get("access_token", "")
    if not token:
        raise GraphError(104, "An access token is required to request this resource.")
    proof = call.params.get("appsecret_proof")
    if proof is not None and not hmac.compare_digest(proof, world.proof_for(token)):
        message = "Invalid appsecret_proof provided in the API argument"
        raise GraphError(100, message, type="GraphMethodException")
    if world.is_app_token(token):
        return
    record = world.tokens.get(token)
    if record is None:
        raise GraphError(190, "Invalid OAuth access token - Cannot parse access token")
    if record.expired_at is not None:
        raise GraphError(
            190,
            "Error validating access token: Session has expired on "
            f"{record.expired_at:%A, %d-%b-%y %H:%M:%S} UTC. "
            f"The current time is {datetime.now(UTC):%A, %d-%b-%y %H:%M:%S} UTC.",
            subcode=463,
        )


def route(world: World, call: Call) -> Reply:
    parts = [part for part in call.path.split("/") if part]
    if parts == ["debug_token"] and call.method == "GET":
        return Reply(200, debug_token(world, call.params.get("input_token")))
    if world.is_app_token(call.params.get("access_token", "")):
        message = "(#200) This endpoint requires a page or system user access token"
        raise GraphError(200, message, status=403)
    if parts == ["me"] and call.method == "GET":
        return Reply(200, accounts.me(world, call, SYSTEM_USER_ID))
    if parts == ["me", "accounts"] and call.method == "GET":
        with world.lock:
            return Reply(200, accounts.me_accounts(world, call))
    if len(parts) == 2 and parts[1] == "events" and call.method == "POST":
        return Reply(200, receive_events(world, call, parts[0]))
    if len(parts) not in (1, 2):
        raise GraphError(2500, f"Unknown path components: {call.path}")
    with world.lock:
        body = node(world, call, parts[0]) if len(parts) == 1 else edge(world, call, *parts)
    return Reply(200, body)


def node(world: World, call: Call, object_id: str) -> dict[str, Any]:
    if call.method != "GET":
        raise not_found(object_id)
    if page := world.pages.get(object_id):
        return nodes.page_json(page, call, accounts.page_token_for(world, call, page.id))
    if form := world.forms.get(object_id):
        return nodes.form_json(world, form, nodes.requested_fields(call, nodes.DEFAULT_FORM_FIELDS))
    if lead := world.leads.get(object_id):
        accounts.check_lead_access(world, call, lead.page_id)
        fields = nodes.requested_fields(call, nodes.DEFAULT_LEAD_FIELDS)
        body = nodes.lead_json(world, lead, fields)
        world.lead_reads[object_id] += 1
        return body
    raise not_found(object_id)


def edge(world: World, call: Call, object_id: str, name: str) -> dict[str, Any]:
    if object_id in world.pages and name == "leadgen_forms" and call.method == "GET":
        fields = nodes.requested_fields(call, nodes.DEFAULT_FORM_FIELDS)
        forms = world.forms_newest_first(object_id)
        return nodes.paged(
            call, forms, lambda f: (f.seq,), lambda f: nodes.form_json(world, f, fields)
        )
    if object_id in world.pages and name == "subscribed_apps":
        return accounts.subscribed_apps(world, call, object_id)
    if object_id in world.forms and name == "leads" and call.method == "GET":
        accounts.check_lead_access(world, call, world.forms[object_id].page_id)
        fields = nodes.requested_fields(call, nodes.DEFAULT_LEAD_FIELDS)
        keep = nodes.lead_filter(call)
        leads = [lead for lead in world.leads_newest_first(object_id) if keep(lead)]
        return nodes.paged(
            call, leads, lead_order_key, lambda lead: nodes.lead_json(world, lead, fields)
        )
    if object_id in world.pages or object_id in world.forms or object_id in world.leads:
        raise GraphError(2500, f"Unknown path components: /{name}")
    raise not_found(object_id)


def receive_events(world: World, call: Call, dataset_id: str) -> dict[str, Any]:
    """Conversions API: a dataset's `/events` edge (see `conversions.py`)."""
    with world.lock:
        dataset = world.datasets.get(dataset_id)
        if dataset is None:
            error = not_found(dataset_id)
            error.message = error.message.replace("get request", "post request")
            raise error
        return conversions.receive(dataset, call.params)


def debug_token(world: World, input_token: str | None) -> dict[str, Any]:
    """What /debug_token tells about a token: validity, expiry, type, scopes."""
    if not input_token:
        raise bad_parameter("The parameter input_token is required")
    app = {"app_id": world.app_id, "application": world.app_name}
    if world.is_app_token(input_token):
        return {"data": app | {"type": "APP", "is_valid": True, "scopes": []}}
    record = world.tokens.get(input_token)
    if record is None:
        error = {"code": 190, "message": "Invalid OAuth access token."}
        return {"data": {"error": error, "is_valid": False, "scopes": []}}
    data: dict[str, Any] = app | {
        "type": record.type,
        "data_access_expires_at": 0,
        "expires_at": record.expires_at,
        "is_valid": record.expired_at is None,
        "scopes": list(record.scopes),
        "user_id": SYSTEM_USER_ID,
    }
    if record.expired_at is not None:
        message = f"Error validating access token: Session has expired on {record.expired_at:%c}."
        data["error"] = {"code": 190, "message": message, "subcode": 463}
    return {"data": data}


async def run_batch(world: World, call: Call) -> Reply:
    """Graph's batch endpoint: a JSON list of at most 50 requests, one answer (or null) each."""
    try:
        items = json.loads(call.params["batch"])
    except (KeyError, ValueError) as exc:
        raise bad_parameter("The parameter batch is required and must be a JSON array") from exc
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise bad_parameter("Param batch must be a JSON array of request objects")
    if len(items) > BATCH_LIMIT:
        message = f"Too many requests in batch message. Maximum batch size is {BATCH_LIMIT}"
        raise GraphError(1, message, type="GraphBatchException")
    headers = call.params.get("include_headers", "true") != "false"
    return Reply(200, [await batch_item(world, call, item, headers) for item in items])


async def batch_item(
    world: World, batch: Call, item: dict[str, Any], include_headers: bool
) -> dict[str, Any] | None:
    relative = str(item.get("relative_url", "")).lstrip("/")
    path, _, query = relative.partition("?")
    version, _, rest = path.partition("/")
    if not (version.startswith("v") and version[1:].replace(".", "").isdigit()):
        version, rest = batch.version, path
    params = dict(parse_qsl(query, keep_blank_values=True))
    params.update(parse_qsl(str(item.get("body", "")), keep_blank_values=True))
    params.setdefault("access_token", batch.params.get("access_token", ""))
    method = str(item.get("method", "GET")).upper()
    call = Call(method, "/" + rest, params, batch.base_url, version)
    reply = await serve(world, call, in_batch=True)
    if reply is None:
        return None
    answer: dict[str, Any] = {"code": reply.status, "body": reply.text()}
    if include_headers:
        pairs = {"Content-Type": reply.content_type} | reply.headers
        answer["headers"] = [{"name": name, "value": value} for name, value in pairs.items()]
    return answer
