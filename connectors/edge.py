"""The HTTP edge the HubSpot, webhook and Slack connectors share.

`HttpEdge` owns one `requests.Session` per connector, always sets a timeout,
never follows redirects (a signed body or a token must not wander to another
host), and maps what goes wrong, once, into leadsync's error kinds: timeouts
and broken connections -> TransientError; 401/403 -> AuthError; 429 ->
RateLimited (Retry-After honoured); 408 and 5xx -> TransientError; any other
4xx -> PermanentError. Messages name the service, the destination and the
status, never a URL (Slack's carries its secret), a token or lead data.
`deliver_in_parts` sends a batch in the parts a service accepts and turns a
failure after some parts went through into per-lead results, so the runner
never redelivers what already arrived.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import requests

import leadsync
from leadsync.errors import (
    AuthError,
    LeadsyncError,
    PermanentError,
    RateLimited,
    TransientError,
)
from leadsync.models import DeliveryResult, ScoredLead

# Seconds to open a TCP/TLS connection; the read timeout is each destination's `timeout`.
CONNECT_TIMEOUT = 5.0
# When a 429 says nothing about when to come back: long enough not to hammer, short enough
# that a burst limit (HubSpot's is per 10 s) costs one wait.
DEFAULT_RETRY_AFTER = 10.0
USER_AGENT = f"leadsync/{leadsync.__version__}"

T = TypeVar("T")

# A whole call failed: nothing of it arrived, all of it may be retried as it is.
WHOLE_CALL_ERRORS = (AuthError, RateLimited, TransientError)


def retry_after(response: requests.Response, default: float = DEFAULT_RETRY_AFTER) -> float:
    """Seconds the service asked us to wait: Retry-After in seconds or as an HTTP date."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return default
    if value.replace(".", "", 1).isdigit():
        return max(0.0, float(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class HttpEdge:
    """One service's HTTP session: timeouts set, errors mapped into leadsync.errors."""

    def __init__(
        self,
        service: str,
        destination: str,
        *,
        timeout: float,
        headers: Mapping[str, str] | None = None,
        auth_fix: str = "",
    ):
        self.service = service
        self.destination = destination
        self.timeout = timeout
        self.auth_fix = auth_fix
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.headers.update(headers or {})

    def send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One request; a TransientError when the service cannot be reached in time."""
        try:
            return self.session.request(
                method,
                url,
                timeout=(CONNECT_TIMEOUT, self.timeout),
                allow_redirects=False,
                **kwargs,
            )
        except requests.Timeout as exc:
            message = f"{self.service} did not answer within {self.timeout:g} s"
            raise TransientError(self._about(message)) from exc
        except requests.ConnectionError as exc:
            raise TransientError(self._about(f"cannot reach {self.service}")) from exc
        except requests.RequestException as exc:
            message = f"request to {self.service} failed ({type(exc).__name__})"
            raise TransientError(self._about(message)) from exc

    def error_for(
        self, response: requests.Response, detail: str = "", wait: float | None = None
    ) -> LeadsyncError:
        """The leadsync error kind for a failed answer; `detail` must hold no lead data."""
        status = response.status_code
        said = f"{self.service} answered HTTP {status}" + (f" ({detail})" if detail else "")
        if status in (401, 403):
            fix = f"; {self.auth_fix}" if self.auth_fix else ""
            return AuthError(self._about(said) + fix, service=self.service)
        if status == 429:
            seconds = retry_after(response) if wait is None else wait
            return RateLimited(self._about(f"{said}, retry in {seconds:g} s"), retry_after=seconds)
        if status == 408 or status >= 500:
            return TransientError(self._about(said))
        if 300 <= status < 400:
            return PermanentError(self._about(f"{said}: a redirect; configure the final URL"))
        return PermanentError(self._about(said))

    def _about(self, message: str) -> str:
        return f"{message} for destination {self.destination}"

    def close(self) -> None:
        self.session.close()


def lead_ids_of(scored: ScoredLead) -> list[str]:
    return [scored.lead.id]


def deliver_in_parts(
    parts: Sequence[Sequence[T]],
    send: Callable[[Sequence[T]], list[DeliveryResult]],
    lead_ids: Callable[[T], Iterable[str]],
) -> list[DeliveryResult]:
    """Sends each part in turn and returns one result per lead.

    A part the service refuses for good (PermanentError) fails its own leads
    and the next parts still go. A whole-call failure (auth, rate limit,
    outage) stops the batch: raised as it is when nothing went through yet,
    else recorded on every lead not sent, so the runner retries only those.
    `lead_ids` names the leads an item of a part stands for.
    """
    results: list[DeliveryResult] = []
    for index, part in enumerate(parts):
        try:
            results.extend(send(part))
        except PermanentError as exc:
            results.extend(DeliveryResult(i, error=exc) for item in part for i in lead_ids(item))
        except WHOLE_CALL_ERRORS as exc:
            if not results:
                raise
            unsent = [i for rest in parts[index:] for item in rest for i in lead_ids(item)]
            results.extend(DeliveryResult(i, error=exc) for i in unsent)
            break
    return results


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """`items` in consecutive parts of at most `size`."""
    return [items[start : start + size] for start in range(0, len(items), size)]


def newest_revisions(batch: Sequence[ScoredLead]) -> list[ScoredLead]:
    """One entry per lead, its newest revision, in first-seen order."""
    newest: dict[str, ScoredLead] = {}
    for scored in batch:
        current = newest.get(scored.lead.id)
        if current is None or scored.revision >= current.revision:
            newest[scored.lead.id] = scored
    return list(newest.values())


def row_link(value: str) -> str:
    """Validates a `sheet_url` setting (a link shown in alerts); raises ValueError with the fix."""
    if value and not value.startswith(("https://", "http://")):
        raise ValueError("must be an http(s) URL; {lead_id} in it is replaced by the lead id")
    return value
