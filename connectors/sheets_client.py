"""How the Google Sheets connector talks to Google: key, session, pacing, errors.

`load_key` reads a service-account key from a file, from the JSON itself (as
`${GOOGLE_SERVICE_ACCOUNT_JSON}` gives it, quotes and all) or from its base64,
and never quotes the value in an error. `open_client` builds a gspread
client on google-auth's `AuthorizedSession`; when `api_url` is not Google's
(emulators, tests) the session sends the Sheets calls there, so gspread itself
is never patched. `MinuteBudget` keeps requests under a per-minute quota.
`google_errors` maps gspread, google-auth and requests failures, once, into
leadsync's error kinds, with messages that say what to do.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gspread
import requests
from google.auth import exceptions as auth_exceptions
from google.auth.transport.requests import AuthorizedSession
from google.oauth2.service_account import Credentials

from leadsync.errors import AuthError, PermanentError, RateLimited, TransientError

GOOGLE_SHEETS_URL = "https://sheets.googleapis.com"
# Least privilege: the Sheets scope is enough to read and write a sheet shared with us.
SCOPES = ("https://www.googleapis.com/auth/spreadsheets",)
# (connect, read) seconds; Sheets answers a 500-row append within a few seconds.
TIMEOUT = (5.0, 30.0)
# Sheets quotas are per minute and "refill every minute" (Sheets API "Usage limits"); its 429
# carries no Retry-After, so after one we wait a whole window.
QUOTA_WINDOW_SECONDS = 60.0
# A burst of up to a sixth of the quota goes at once (a quiet sheet gets its row now);
# beyond it requests are spaced evenly over the window.
BURST_SHARE = 6
SERVICE = "google_sheets"
KEY_FIELDS = ("client_email", "private_key", "token_uri")
KEY_FIX = "give the path of the service-account key file, the key JSON, or its base64"
_URLSAFE = str.maketrans("-_", "+/")


def load_key(credentials: str) -> dict[str, Any]:
    """The service-account key from a file path, the key JSON, or the key JSON in base64.

    ValueError if it is none of them. No message quotes the value: a key pasted in a
    form we did not expect is still a key, and it must not reach a screen or a log.
    """
    text = _unquote(credentials.strip())
    if not text:
        raise ValueError(f"is empty; {KEY_FIX}")
    if text.startswith("{"):
        return _parse(text, "the key JSON")
    if text.startswith("-----BEGIN"):
        raise ValueError(f"holds only a private key, not the key JSON; {KEY_FIX}")
    decoded = _base64_json(text)
    if decoded is not None:
        return _parse(decoded, "the base64 key JSON")
    content = _read_key_file(text)
    # A secret store may hand the key file over base64-encoded, as it stores it.
    return _parse(_base64_json(content) or content, "the key file")


def _unquote(text: str) -> str:
    # `export GSA='{...}'` copied with its quotes into a .env file or a secret store.
    while len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1].strip()
    return text


def _base64_json(text: str) -> str | None:
    """The JSON text that `text` is the base64 of (standard or url-safe, wrapped or not)."""
    compact = "".join(text.split()).translate(_URLSAFE).rstrip("=")
    if not compact:
        return None
    try:
        raw = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
        decoded = raw.decode("utf-8-sig").strip()
    except (binascii.Error, UnicodeDecodeError):
        return None  # not base64 of text: a path, then
    return decoded if decoded.startswith("{") else None


def _read_key_file(text: str) -> str:
    try:
        return Path(text).expanduser().read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:  # missing, a directory, too long a name...
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not text"
        raise ValueError(
            f"not a readable file ({reason}), the key JSON or the key JSON in base64; {KEY_FIX}"
        ) from None


def _parse(text: str, what: str) -> dict[str, Any]:
    try:
        # strict=False: a key JSON pasted into a TOML "..." string has real newlines in it.
        info = json.loads(text, strict=False)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise ValueError(f"{what} is not valid JSON ({where}); {KEY_FIX}") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise ValueError(
            f'{what} is not a service-account key JSON (its "type" must be service_account); '
            "create a key for a service account in the Cloud console"
        )
    missing = [name for name in KEY_FIELDS if not info.get(name)]
    if missing:
        raise ValueError(f"{what} lacks {', '.join(missing)}; download the key again")
    return info


class RebasedSession(AuthorizedSession):
    """An AuthorizedSession that sends requests for Google's Sheets host to `api_url`."""

    def __init__(self, credentials: Credentials, api_url: str):
        super().__init__(credentials)
        self.api_url = api_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        if url.startswith(GOOGLE_SHEETS_URL):
            url = self.api_url + url[len(GOOGLE_SHEETS_URL) :]
        return super().request(method, url, *args, **kwargs)


def open_client(
    key: dict[str, Any],
    api_url: str = GOOGLE_SHEETS_URL,
    timeout: tuple[float, float] = TIMEOUT,
) -> gspread.Client:
    """A gspread client authenticated as the service account, talking to `api_url`."""
    credentials = Credentials.from_service_account_info(key, scopes=SCOPES)
    if api_url.rstrip("/") == GOOGLE_SHEETS_URL:
        session: AuthorizedSession = AuthorizedSession(credentials)
    else:
        session = RebasedSession(credentials, api_url)
    client = gspread.Client(auth=credentials, session=session)
    client.set_timeout(timeout)
    return client


class MinuteBudget:
    """At most `limit` requests in any `window` seconds, as Google counts its quotas, paced.

    A sliding log rather than a refilling bucket: a bucket allows a full burst on top
    of its refill, which can exceed a per-minute quota. Past a small burst, requests are
    also spaced evenly (window / limit apart): spending the whole minute's quota in the
    first seconds of a sustained flow would leave every later lead waiting for the next
    minute, where spacing keeps each one within about a second. Thread-safe: the
    connector and the outcome reader of one sheet share its read budget.
    """

    def __init__(
        self,
        limit: int,
        window: float = QUOTA_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.limit, self.window = limit, window
        self._clock, self._sleep = clock, sleep
        self._sent: deque[float] = deque()
        self._lock = threading.RLock()
        self.burst = max(1, limit // BURST_SHARE)
        self.spacing = window / limit

    def wait_time(self, count: int) -> float:
        """Seconds until `count` more requests fit in the window and the pace."""
        with self._lock:
            return self._wait_time(count)

    def _wait_time(self, count: int) -> float:
        now = self._clock()
        while self._sent and self._sent[0] <= now - self.window:
            self._sent.popleft()
        paced = 0.0
        if len(self._sent) >= self.burst:
            paced = max(0.0, self._sent[-1] + self.spacing * count - now)
        excess = len(self._sent) + min(count, self.limit) - self.limit
        if excess <= 0:
            return paced
        return max(paced, self._sent[excess - 1] + self.window - now)

    def take(self, count: int, max_wait: float, what: str) -> None:
        """Waits for room for `count` requests, or raises RateLimited when that is too long."""
        if count <= 0:
            return
        with self._lock:  # held while sleeping: the other user of the budget waits its turn
            wait = self._wait_time(count)
            if wait > max_wait:
                raise RateLimited(f"{what}: holding back to stay under the quota", retry_after=wait)
            if wait > 0:
                self._sleep(wait)
            now = self._clock()
            self._sent.extend([now] * count)

    def exhaust(self) -> None:
        """Google said 429: count the window as full from now."""
        with self._lock:
            now = self._clock()
            self._sent = deque([now] * self.limit)


def _api_error(exc: gspread.exceptions.APIError, sheet: str, account: str) -> Exception:
    status = exc.response.status_code
    error = exc.error if isinstance(exc.error, dict) else {}
    message = str(error.get("message", ""))
    if status == 429:
        return RateLimited(
            f"Sheets quota used up for {account} (spreadsheet {sheet})",
            retry_after=QUOTA_WINDOW_SECONDS,
        )
    if status == 401:
        return AuthError(
            f"Google rejected the access token of {account}; check the service-account key "
            "and run leadsync check",
            service=SERVICE,
        )
    if status == 403 and "has not been used" in message:
        return AuthError(
            f"the Google Sheets API is disabled for the project of {account}; enable it in the "
            "Cloud console",
            service=SERVICE,
        )
    if status == 403:
        return AuthError(f"share the sheet {sheet} with {account} as Editor", service=SERVICE)
    if status == 404:
        return AuthError(
            f"spreadsheet {sheet} was not found; check [destinations] spreadsheet, and share "
            f"it with {account} as Editor",
            service=SERVICE,
        )
    if status in (408, 409) or status >= 500:
        return TransientError(f"Sheets answered {status} for spreadsheet {sheet}")
    if "Unable to parse range" in message or "already exists" in message:
        # A person renamed or deleted the worksheet, or made it at the same moment: look again.
        return TransientError(f"a worksheet of spreadsheet {sheet} changed under us ({status})")
    # The API's message can quote cell values, so only its status travels on.
    return PermanentError(f"Sheets refused a request to spreadsheet {sheet}: {error.get('status')}")


@contextmanager
def google_errors(spreadsheet_id: str, account: str) -> Iterator[None]:
    """Re-raises whatever gspread, google-auth or requests raise as a leadsync error kind."""
    try:
        yield
    except gspread.exceptions.APIError as exc:
        raise _api_error(exc, spreadsheet_id, account) from exc
    except PermissionError as exc:  # gspread's open_by_key turns a 403 into this
        raise AuthError(
            f"share the sheet {spreadsheet_id} with {account} as Editor", service=SERVICE
        ) from exc
    except gspread.exceptions.SpreadsheetNotFound as exc:
        raise AuthError(
            f"spreadsheet {spreadsheet_id} was not found; check [destinations] spreadsheet",
            service=SERVICE,
        ) from exc
    except auth_exceptions.RefreshError as exc:
        if getattr(exc, "retryable", False):
            raise TransientError(f"Google's token endpoint failed for {account}") from exc
        reason = str(exc.args[0]) if exc.args else "refused"
        raise AuthError(
            f"Google refused the service-account key of {account} ({reason}); create a new "
            "key in the Cloud console and update [destinations] credentials",
            service=SERVICE,
        ) from exc
    except (auth_exceptions.TransportError, requests.RequestException) as exc:
        raise TransientError(
            f"could not reach Google Sheets for spreadsheet {spreadsheet_id}: {type(exc).__name__}"
        ) from exc
