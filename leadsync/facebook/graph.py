"""leadsync's Graph API client, on the real facebook-business SDK.

It fetches leads by id in batch requests of up to 50, reads a form's leads page
by page (following `paging.next` itself, past empty pages, which the SDK's
Cursor stops at), discovers a page's forms, and checks the token; `pages.py`
lists pages and their webhook subscriptions through `request`, which may send
a page token. Each client has its own `FacebookAdsApi` (never the SDK's
global default; crash reporting off) whose every HTTP call is
counted, has its usage headers read, and is checked at the HTTP level: the SDK
takes an HTTP 500 `{"data": []}` or an HTML 502 page for success, we do not.
Every failure leaves here as a leadsync error kind (see `facebook/errors.py`),
and no error text carries the token.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

import requests
import structlog
from facebook_business.api import FacebookAdsApi, FacebookResponse
from facebook_business.exceptions import FacebookRequestError
from facebook_business.session import FacebookSession

from leadsync.constants import GRAPH_BATCH_LIMIT, GRAPH_PAGE_SIZE
from leadsync.errors import AuthError, LeadsyncError, RateLimited, TransientError
from leadsync.facebook.errors import graph_error, redact, usage_percent
from leadsync.facebook.objects import FORM_FIELDS, LEAD_FIELDS, form_from_graph, lead_from_graph
from leadsync.models import Form, Lead, Notification

log = structlog.get_logger(__name__)

# Graph leaves a batch item null when it timed out inside the batch; we send those again
# this many times before reporting them as failed (the caller retries them later).
BATCH_NULL_RETRIES = 3
# Graph may answer several empty pages that still have paging.next; past this many in a row
# we assume a loop and report a transient failure instead of paging forever.
MAX_EMPTY_PAGES = 50
CREDENTIAL_PARAMS = ("access_token", "appsecret_proof")


@dataclass(frozen=True)
class TokenInfo:
    """What /debug_token says about our token; `expires_at` None means it never expires."""

    valid: bool
    expires_at: datetime | None
    type: str
    scopes: tuple[str, ...]
    app_id: str
    error: str


@dataclass(frozen=True)
class FetchOutcome:
    """Leads fetched by id, and the error of each lead that could not be fetched."""

    leads: list[Lead]
    failed: dict[str, LeadsyncError]


@dataclass(frozen=True)
class LeadsPage:
    """One page of a form's leads, and the cursor of the next page ("" after the last one)."""

    leads: list[Lead]
    after: str


class CheckedApi(FacebookAdsApi):
    """The SDK's API object, with each HTTP call counted, observed and checked for HTTP failures."""

    def __init__(self, session: FacebookSession, api_version: str, observe: Callable[[Any], None]):
        super().__init__(session, api_version)
        self._observe = observe

    def call(self, method, path, params=None, headers=None, files=None, **kwargs):
        self._observe(None)
        try:
            response = super().call(method, path, params, headers, files, **kwargs)
        except FacebookRequestError as exc:
            self._observe(exc.http_headers())
            raise
        self._observe(response.headers())
        content_type = response.headers().get("Content-Type", "")
        if response.status() >= 500 or "json" not in content_type:
            raise as_request_error(response)
        return response


def as_request_error(response: FacebookResponse) -> FacebookRequestError:
    """The SDK's error for a response the SDK itself took for a success."""
    return FacebookRequestError(
        "Call was not successful",
        {},
        response.status(),
        response.headers(),
        response.body(),
    )


def without_credentials(url: str) -> str:
    """A paging.next URL without its token; the session adds the current one."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, True) if k not in CREDENTIAL_PARAMS]
    return urlunsplit(parts._replace(query=urlencode(query)))


def leads_params(since: datetime | None, fields: Sequence[str]) -> dict[str, Any]:
    """The query of /{form}/leads: our fields, our page size, and created at or after `since`."""
    params: dict[str, Any] = {"fields": ",".join(fields), "limit": GRAPH_PAGE_SIZE}
    if since is not None:
        rule = {"field": "time_created", "operator": "GREATER_THAN_OR_EQUAL"}
        params["filtering"] = [rule | {"value": int(since.timestamp())}]
    return params


class GraphClient:
    """Everything leadsync asks of the Graph API; one instance may serve several threads."""

    def __init__(
        self,
        *,
        access_token: str,
        app_secret: str,
        api_version: str = "v24.0",
        graph_url: str = "https://graph.facebook.com",
        timeout: float = 30,
        app_id: str = "",
    ):
        self._app_secret = app_secret
        self._version = api_version
        self._graph_url = graph_url.rstrip("/")
        self._app_id = app_id
        self._lock = threading.Lock()
        self._calls = 0
        self._throttles = 0
        self._usage = 0.0
        # Not FacebookAdsApi.init(): that sets a process-wide default api and, unless told
        # crash_log=False, installs the SDK's crash reporter. Our api object is ours alone.
        self._session = FacebookSession(app_secret=app_secret, access_token=access_token)
        self._session.timeout = timeout
        self._session.GRAPH = self._graph_url
        self._api = CheckedApi(self._session, api_version, self._observe)
        self._token = access_token
        self._other_apis: dict[str, CheckedApi] = {}  # by page token

    # -- token and counters ------------------------------------------------------
    def set_access_token(self, token: str) -> None:
        """Uses `token` from the next call on (a replaced token needs no restart)."""
        credentials = {"access_token": token}
        if self._app_secret:
            credentials["appsecret_proof"] = self._proof(token)
        with self._lock:
            self._session.access_token = token
            self._session.requests.params.update(credentials)
            self._token = token

    def close(self) -> None:
        """Closes the HTTP connections; the client is unusable afterwards."""
        self._session.requests.close()
        for api in self._other_apis.values():
            api._session.requests.close()  # noqa: SLF001 - the SDK keeps its session there
        self._other_apis.clear()

    @property
    def calls(self) -> int:
        """HTTP calls made to Graph so far (a batch of 50 is one)."""
        return self._calls

    @property
    def throttles(self) -> int:
        """Rate-limit answers from Graph so far (codes 4, 17, 32, 613, 80000-80014)."""
        return self._throttles

    @property
    def usage_percent(self) -> float:
        """The highest usage % in the last response's X-App-Usage / X-Business-Use-Case-Usage."""
        return self._usage

    def _observe(self, headers: Any) -> None:
        with self._lock:
            if headers is None:
                self._calls += 1
            else:
                self._usage = usage_percent(headers)

    def _error(self, exc: BaseException, what: str, token: str | None = None) -> LeadsyncError:
        secrets = (self._token, self._app_secret, token or "")
        error = graph_error(exc, what, app_id=self._app_id, secrets=secrets)
        if isinstance(error, RateLimited):
            with self._lock:
                self._throttles += 1
        return error

    def _get(self, path: tuple[str, ...] | str, what: str, **params: Any) -> dict[str, Any]:
        return self.request("GET", path, what, **params)

    def request(
        self,
        method: str,
        path: tuple[str, ...] | str,
        what: str,
        *,
        token: str | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        """One Graph call, with our token or `token` (a page token), as a Graph object.

        `what` names the object in error messages ("subscriptions of page 4").
        """
        api = self._api if token is None else self._api_for(token)
        try:
            body = api.call(method, path, params=params).json()
        except (FacebookRequestError, requests.RequestException) as exc:
            raise self._error(exc, what, token) from None
        if not isinstance(body, dict):
            raise TransientError(f"{what}: Facebook answered something that is not a Graph object")
        return body

    def _api_for(self, token: str) -> CheckedApi:
        """An API object that sends `token` (and its own appsecret_proof) instead of ours."""
        with self._lock:
            if token not in self._other_apis:
                session = FacebookSession(app_secret=self._app_secret or None, access_token=token)
                session.timeout = self._session.timeout
                session.GRAPH = self._graph_url
                self._other_apis[token] = CheckedApi(session, self._version, self._observe)
            return self._other_apis[token]

    # -- leads -------------------------------------------------------------------
    def fetch_leads(self, notes: Sequence[Notification]) -> FetchOutcome:
        """Full leads for notifications, in batch calls of at most GRAPH_BATCH_LIMIT.

        A lead Graph cannot give comes back in `failed` with its own error kind; a
        failure of a whole batch call raises.
        """
        by_id = {note.lead_id: note for note in notes}
        ids = list(by_id)
        leads: list[Lead] = []
        failed: dict[str, LeadsyncError] = {}
        for start in range(0, len(ids), GRAPH_BATCH_LIMIT):
            chunk = [by_id[lead_id] for lead_id in ids[start : start + GRAPH_BATCH_LIMIT]]
            self._fetch_batch(chunk, leads, failed)
        return FetchOutcome(leads, failed)

    def _fetch_batch(
        self, notes: list[Notification], leads: list[Lead], failed: dict[str, LeadsyncError]
    ) -> None:
        unanswered = {note.lead_id for note in notes}
        batch = self._api.new_batch()
        for note in notes:
            done = self._lead_answered(note, leads, failed, unanswered)
            url = f"{self._version}/{note.lead_id}"
            batch.add(
                "GET", url, params={"fields": ",".join(LEAD_FIELDS)}, success=done, failure=done
            )
        for _ in range(1 + BATCH_NULL_RETRIES):
            try:
                batch = batch.execute()
            except (FacebookRequestError, requests.RequestException) as exc:
                raise self._error(exc, f"batch of {len(notes)} leads") from None
            if batch is None:
                return
        log.warning("leads.batch_unanswered", count=len(unanswered))
        for lead_id in unanswered:
            failed[lead_id] = TransientError(
                f"lead {lead_id}: Graph left it unanswered; will retry"
            )

    def _lead_answered(
        self,
        note: Notification,
        leads: list[Lead],
        failed: dict[str, LeadsyncError],
        unanswered: set[str],
    ) -> Callable[[FacebookResponse], None]:
        def settle(response: FacebookResponse) -> None:
            unanswered.discard(note.lead_id)
            body = response.json()
            if response.status() != 200 or not isinstance(body, dict) or "error" in body:
                error = response.error() or as_request_error(response)
                failed[note.lead_id] = self._error(error, f"lead {note.lead_id}")
                return
            try:
                leads.append(lead_from_graph(body, page_id=note.page_id, form_id=note.form_id))
            except LeadsyncError as exc:
                failed[note.lead_id] = exc

        return settle

    def iter_form_leads(
        self,
        form_id: str,
        page_id: str,
        since: datetime | None,
        fields: Sequence[str] = LEAD_FIELDS,
    ) -> Iterator[list[Lead]]:
        """A form's leads created at or after `since`, newest first, one list per non-empty page.

        Follows `paging.next` itself, past empty pages that still have one; stops
        when a page has no `paging.next`.
        """
        what = f"leads of form {form_id}"
        body = self._get((form_id, "leads"), what, **leads_params(since, fields))
        empty_in_a_row = 0
        while True:
            data = body.get("data") or []
            if data:
                empty_in_a_row = 0
                yield [self._lead(item, page_id, form_id) for item in data]
            else:
                empty_in_a_row += 1
            next_url = (body.get("paging") or {}).get("next")
            if not next_url:
                return
            if empty_in_a_row >= MAX_EMPTY_PAGES:
                raise TransientError(f"{what}: Graph kept answering empty pages; will retry")
            body = self._get(without_credentials(next_url), what)

    def form_leads_page(
        self, form_id: str, page_id: str, since: datetime | None, after: str = ""
    ) -> LeadsPage:
        """One page of a form's leads (newest first) from the cursor `after`, for resumable reads.

        The cursor is what `paging.next` carries, so a read stopped between two pages
        (throttled, interrupted) goes on where it was, with the same filter.
        """
        params = leads_params(since, LEAD_FIELDS) | ({"after": after} if after else {})
        body = self._get((form_id, "leads"), f"leads of form {form_id}", **params)
        leads = [self._lead(item, page_id, form_id) for item in body.get("data") or []]
        next_url = (body.get("paging") or {}).get("next") or ""
        cursor = parse_qs(urlsplit(next_url).query).get("after", [""])[0] if next_url else ""
        if next_url and not cursor:
            raise TransientError(f"leads of form {form_id}: a next page without a cursor")
        return LeadsPage(leads, cursor)

    def leads_count(self, form_id: str) -> int | None:
        """How many leads the form holds, as Graph counts them (None when Graph does not say)."""
        body = self._get((form_id,), f"form {form_id}", fields="leads_count")
        count = body.get("leads_count")
        return int(count) if isinstance(count, int) else None

    def _lead(self, item: dict[str, Any], page_id: str, form_id: str) -> Lead:
        return lead_from_graph(item, page_id=page_id, form_id=form_id)

    # -- forms, pages, token ----------------------------------------------------------
    def list_forms(self, page_id: str) -> list[Form]:
        """Every lead form of the page, whatever its status, across all pages of results."""
        what = f"forms of page {page_id}"
        fields = ",".join(FORM_FIELDS)
        body = self._get((page_id, "leadgen_forms"), what, fields=fields, limit=GRAPH_PAGE_SIZE)
        forms = []
        while True:
            forms += [form_from_graph(item, page_id=page_id) for item in body.get("data") or []]
            next_url = (body.get("paging") or {}).get("next")
            if not next_url:
                return forms
            body = self._get(without_credentials(next_url), what)

    def get_form(self, form_id: str) -> Form:
        body = self._get((form_id,), f"form {form_id}", fields=",".join(FORM_FIELDS))
        return form_from_graph(body)

    def page_name(self, page_id: str) -> str:
        return str(self._get((page_id,), f"page {page_id}", fields="id,name").get("name", ""))

    def our_app_id(self) -> str:
        """Our app's id: from the config, else as debug_token tells it (asked once)."""
        if not self._app_id:
            self._app_id = self.token_info().app_id
        return self._app_id

    def token_info(self) -> TokenInfo:
        """What Graph says about our token; an expired or revoked one comes back not valid."""
        params: dict[str, Any] = {"input_token": self._token}
        if self._app_id:  # an app token can inspect a user token even once it has expired
            app_token = f"{self._app_id}|{self._app_secret}"
            params |= {"access_token": app_token, "appsecret_proof": self._proof(app_token)}
        try:
            data = self._get(("debug_token",), "token check", **params).get("data") or {}
        except AuthError as exc:  # asked with the token itself, which Graph now refuses
            return TokenInfo(False, None, "", (), self._app_id, str(exc))
        error = data.get("error") or {}
        expires = int(data.get("expires_at") or 0)
        return TokenInfo(
            valid=bool(data.get("is_valid")),
            expires_at=datetime.fromtimestamp(expires, UTC) if expires else None,
            type=str(data.get("type", "")),
            scopes=tuple(str(s) for s in data.get("scopes") or ()),
            app_id=str(data.get("app_id", "")),
            error=self._error_text(error),
        )

    def _error_text(self, error: dict[str, Any]) -> str:
        return redact(str(error.get("message", "")), (self._token, self._app_secret))

    def _proof(self, token: str) -> str:
        return hmac.new(self._app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()
