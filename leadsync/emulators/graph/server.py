"""The Graph emulator as a running HTTP server, in a background thread or standalone.

`GraphEmulator` owns the world, an aiohttp server on 127.0.0.1 (port 0 picks a
free one) in its own thread and event loop, and the webhook sender. Tests and
`leadsync demo` drive it through its methods; other processes drive it through
the `/_emulator/...` control endpoints (`control.py`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from aiohttp import web

from leadsync.emulators.graph import control
from leadsync.emulators.graph.api import DEFAULT_VERSION, Disconnect, serve
from leadsync.emulators.graph.nodes import Call
from leadsync.emulators.graph.webhooks import (
    WebhookPost,
    WebhookSender,
    body_of,
    leadgen_value,
)
from leadsync.emulators.graph.world import Fault, World, normalize_fault_kind, page_token_of

VERSIONED = re.compile(r"^/(v\d+\.\d+)(/.*)?$")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def split_version(path: str) -> tuple[str, str]:
    """("v24.0", "/111/leads") from "/v24.0/111/leads"; unversioned paths get the default."""
    if match := VERSIONED.match(path):
        return match.group(1), match.group(2) or "/"
    return DEFAULT_VERSION, path or "/"


async def graph_endpoint(request: web.Request) -> web.StreamResponse:
    world = request.app[control.WORLD]
    version, path = split_version(request.path)
    # The first value wins when a parameter is repeated (a paging URL plus session params).
    params = {key: request.query.getone(key) for key in request.query}
    if request.method == "POST" and request.content_type in FORM_TYPES:
        form = await request.post()
        for key in form:
            params.setdefault(key, str(form.getone(key)))
    elif request.method == "POST" and request.content_type == "application/json":
        params.update(await json_params(request))
    world.log_request(request.method, path, params)
    call = Call(request.method, path, params, f"{request.scheme}://{request.host}", version)
    try:
        reply = await serve(world, call)
    except Disconnect:
        assert request.transport is not None
        request.transport.abort()
        return web.Response(status=500)
    assert reply is not None, "top-level requests always get an answer"
    headers = {"Content-Type": reply.content_type, **reply.headers}
    return web.Response(status=reply.status, body=reply.text().encode(), headers=headers)


async def json_params(request: web.Request) -> dict[str, str]:
    """A JSON object body as Graph parameters (Conversions API clients post `data` this way)."""
    try:
        body = json.loads(await request.read())
    except ValueError:
        return {}
    if not isinstance(body, dict):
        return {}
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}


def make_app(world: World, sender: WebhookSender) -> web.Application:
    app = web.Application()
    app[control.WORLD] = world
    app[control.SENDER] = sender
    control.add_routes(app)
    app.router.add_route("*", "/{tail:.*}", graph_endpoint)
    return app


class GraphEmulator:
    """A faithful stand-in for graph.facebook.com, for tests and the demo."""

    def __init__(
        self,
        *,
        app_id: str = "1000",
        app_secret: str = "emulator-app-secret",
        access_token: str = "emulator-token",
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.world = World(app_id=app_id, app_secret=app_secret, access_token=access_token)
        self.sender = WebhookSender(app_secret)
        self.host, self.port = host, port
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._failure: BaseException | None = None

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> GraphEmulator:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="graph-emulator", daemon=True
        )
        self._thread.start()
        ready.wait(timeout=30)
        if self._failure is not None:
            raise RuntimeError("graph emulator failed to start") from self._failure
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
            self._loop = self._thread = None

    def __enter__(self) -> GraphEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, ready: threading.Event) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._open())
        except OSError as exc:
            self._failure = exc
            ready.set()
            loop.close()
            return
        ready.set()
        loop.run_forever()
        loop.run_until_complete(self._close())
        loop.close()

    async def _open(self) -> None:
        await self.sender.open()
        self._runner = web.AppRunner(make_app(self.world, self.sender), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://{self.host}:{port}"

    async def _close(self) -> None:
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        await self.sender.close()

    # -- objects ----------------------------------------------------------------
    @property
    def app_id(self) -> str:
        return self.world.app_id

    @property
    def app_secret(self) -> str:
        return self.world.app_secret

    @property
    def access_token(self) -> str:
        """The token issued last (the one `expire_token()` expires by default)."""
        return self.world.current_token

    def add_page(self, page_id: str, name: str = "") -> None:
        self.world.add_page(page_id, name)

    def add_form(
        self,
        page_id: str,
        name: str,
        questions: Sequence[str | Mapping[str, Any]] = ("full_name", "email"),
        status: str = "ACTIVE",
    ) -> str:
        return self.world.add_form(page_id, name, questions, status)

    def archive_form(self, form_id: str) -> None:
        self.world.set_form_status(form_id, "ARCHIVED")

    def create_lead(
        self,
        form_id: str,
        answers: Mapping[str, str | Iterable[str]],
        *,
        created_time: datetime | None = None,
        ad_id: str | None = None,
        is_organic: bool = False,
        platform: str = "fb",
        consents: Mapping[str, bool] | None = None,
    ) -> str:
        return self.world.create_lead(
            form_id,
            answers,
            created_time=created_time,
            ad_id=ad_id,
            is_organic=is_organic,
            platform=platform,
            consents=consents,
        )

    def delete_lead(self, lead_id: str) -> None:
        self.world.delete_lead(lead_id)

    def subscribe_app(self, page_id: str, fields: Sequence[str] = ("leadgen",)) -> None:
        self.world.subscribe_app(page_id, fields)

    def unsubscribe_app(self, page_id: str) -> None:
        self.world.unsubscribe_app(page_id)

    # -- Conversions API -------------------------------------------------------------
    def add_dataset(self, dataset_id: str, *, crm: bool = True) -> None:
        """An Events Manager dataset for `/{dataset_id}/events` (a CRM one unless crm=False)."""
        self.world.add_dataset(dataset_id, crm=crm)

    def conversion_events(self, dataset_id: str) -> list[dict[str, Any]]:
        """The events the dataset accepted, in the order received, each once (no duplicates)."""
        with self.world.lock:
            return [dict(event) for event in self.world.datasets[dataset_id].accepted]

    def conversion_counts(self, dataset_id: str) -> dict[str, int]:
        """{"received", "accepted", "duplicates"}: events of accepted requests, kept, dropped."""
        with self.world.lock:
            return control.dataset_counts(self.world.datasets[dataset_id])

    # -- tokens, faults, usage ------------------------------------------------------
    def expire_token(self, token: str | None = None) -> None:
        """From now on the token (default: the current one) gets error 190/463."""
        self.world.expire_token(token)

    def issue_token(self, token: str, *, scopes: Sequence[str] | None = None) -> str:
        """A new current token with `scopes` (default: every scope leadsync needs)."""
        if scopes is None:
            return self.world.issue_token(token)
        return self.world.issue_token(token, scopes=scopes)

    def page_token(self, page_id: str) -> str:
        """The page access token /me/accounts hands out for the page."""
        return page_token_of(page_id)

    def set_lead_access(self, page_id: str, allowed: bool) -> None:
        """Leads Access Manager: when not allowed, reading the page's leads gets error 200."""
        self.world.set_lead_access(page_id, allowed)

    def subscribed_fields(self, page_id: str) -> list[str]:
        """The webhook fields our app is subscribed to on the page (none: [])."""
        with self.world.lock:
            return list(self.world.subscriptions.get(page_id, []))

    def inject_fault(
        self,
        kind: str | int,
        times: int = 1,
        path: str | None = None,
        *,
        seconds: float = 0.0,
        regain_minutes: int = 0,
    ) -> None:
        """Serves `kind` instead of the next `times` matching answers (see world.Fault)."""
        fault = Fault(normalize_fault_kind(kind), times, path, seconds, regain_minutes)
        self.world.inject_fault(fault)

    def set_usage(self, percent: float) -> None:
        self.world.usage_percent = percent

    @property
    def requests(self) -> list[tuple[str, str, dict[str, str]]]:
        with self.world.lock:
            return list(self.world.requests)

    def call_count(self, path_prefix: str = "/") -> int:
        return self.world.call_count(path_prefix)

    def lead_reads(self) -> dict[str, int]:
        """How often each lead was served by id (GET /{lead}, alone or in a batch)."""
        with self.world.lock:
            return dict(self.world.lead_reads)

    # -- webhooks ----------------------------------------------------------------------
    def set_webhook_target(self, url: str) -> None:
        self.sender.target = url

    def webhook_body(self, changes: Iterable[str | Mapping[str, Any]]) -> tuple[bytes, str]:
        """A signed body for lead ids or raw change values: (raw bytes, X-Hub-Signature-256)."""
        return self.sender.encode(body_of(self._values(changes)))

    def send_webhook(
        self, lead_ids: Iterable[str], **options: Any
    ) -> concurrent.futures.Future[list[WebhookPost]]:
        """Delivers leadgen notifications in the background; the future gives each POST's fate.

        Options: per_post, copies, shuffle, group_by_page, numeric_ids (building),
        max_attempts, backoff, concurrency, timeout (delivery).
        """
        return self._submit(control.deliver(self.world, self.sender, list(lead_ids), options))

    def verify_webhook(self, url: str, verify_token: str) -> bool:
        """Meta's GET handshake against `url`; True when the challenge comes back."""
        return self._submit(self.sender.verify(url, verify_token)).result(timeout=30)

    @property
    def webhook_posts(self) -> list[WebhookPost]:
        return list(self.sender.posts)

    def _values(self, changes: Iterable[str | Mapping[str, Any]]) -> list[dict[str, Any]]:
        with self.world.lock:
            return [
                leadgen_value(self.world.leads[c]) if isinstance(c, str) else dict(c)
                for c in changes
            ]

    def _submit(self, coro: Any) -> concurrent.futures.Future[Any]:
        if self._loop is None:
            coro.close()
            raise RuntimeError("the graph emulator is not running; call start() first")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)
