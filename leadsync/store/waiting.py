"""Opens the daemon's store, waiting with capped backoff while the database cannot be reached.

A daemon may start before its database: PostgreSQL still booting, a network
blip, a SQLite file that is read-only until someone fixes its permissions.
`PendingStore` stands for the store until it opens: every call raises
`StoreUnavailable` (so webhooks get 503 and Meta retries) and `problem` says
why for `/healthz`. `open_when_reachable` tries to open, migrate and write;
it logs one line each time the failure changes (the URL's password masked,
never a traceback) and swaps the real store in once it works. A store URL
that is wrong, not merely unreachable, still raises `ConfigError` at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import structlog

from leadsync.abc import Store
from leadsync.constants import STORE_RETRY_FIRST_SECONDS, STORE_RETRY_MAX_SECONDS
from leadsync.errors import ConfigError, LeadsyncError, TransientError
from leadsync.store import POSTGRES_SCHEMES, open_store, postgres_target

log = structlog.get_logger(__name__)

PASSWORD_MASK = "***"
# A PostgreSQL that is up answers a connection in milliseconds; one that is down refuses at once
# or, behind a dead host, never answers: then this bounds an attempt.
POSTGRES_PROBE_TIMEOUT_SECONDS = 5


class StoreUnavailable(TransientError):
    """The store has not opened yet; the caller answers 503 or waits."""


def url_password(url: str) -> str:
    """The password in a store URL ("" when it has none)."""
    try:
        return urlsplit(url).password or ""
    except ValueError:  # a malformed port: open_store reports the URL itself
        return ""


def masked_url(url: str) -> str:
    """The store URL as it may be logged: `postgresql://user:***@host/db`."""
    password = url_password(url)
    if not password:
        return url
    parts = urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    name = user.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{name}:{PASSWORD_MASK}@{host}"))


def probe_postgres(url: str) -> None:
    """One direct connection first: "connection refused" in a moment, not a pool's timeout.

    The pool would retry in the background for its whole timeout, logging each failure,
    and then report only that it got no connection.
    """
    import psycopg  # here, so that a SQLite deployment never loads it

    conninfo, _schema = postgres_target(url)
    try:
        psycopg.connect(conninfo, connect_timeout=POSTGRES_PROBE_TIMEOUT_SECONDS).close()
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"PostgreSQL: {' '.join(str(exc).split())}") from exc


def open_and_write(url: str) -> Store:
    """Opens, migrates and writes to the store: a read-only database fails here, not later."""
    if urlsplit(url).scheme in POSTGRES_SCHEMES:
        probe_postgres(url)
    store = open_store(url)
    try:
        store.migrate()
        store.ping()  # a write: SQLite opens a read-only file and only fails on the first write
    except BaseException:
        store.close()
        raise
    return store


class PendingStore:
    """The store of a daemon waiting for its database; the real store once it opened."""

    def __init__(self, url: str, opener: Callable[[str], Any] | None = None):
        self.url = url
        # What opening means: the store (migrated, written to), or the HTTP process's inbox.
        self._opener = opener or open_and_write
        self.masked_url = masked_url(url)
        self.problem = "opening"
        self.attempts = 0
        self._store: Store | None = None

    @property
    def opened(self) -> bool:
        return self._store is not None

    def __getattr__(self, name: str) -> Any:
        # Only for names this class does not define: every Store method.
        store = self.__dict__.get("_store")
        if store is None:
            raise StoreUnavailable(f"store {self.masked_url} is unavailable: {self.problem}")
        return getattr(store, name)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    async def try_open(self) -> bool:
        """One attempt; True once the store is open. Raises ConfigError for a wrong URL."""
        if self._store is not None:
            return True
        self.attempts += 1
        try:
            self._store = await asyncio.to_thread(self._opener, self.url)
        except ConfigError as exc:
            if not isinstance(exc.__cause__, sqlite3.OperationalError):
                raise  # a wrong URL or a missing folder: waiting will not fix it
            self._failed(exc)
        except (TransientError, sqlite3.OperationalError, OSError) as exc:
            self._failed(exc)
        return self._store is not None

    async def open_when_reachable(self, stopping: asyncio.Event) -> bool:
        """Tries until the store opens (True) or `stopping` is set (False)."""
        began, delay = time.monotonic(), STORE_RETRY_FIRST_SECONDS
        while not stopping.is_set():
            if await self.try_open():
                waited = round(time.monotonic() - began, 1)
                log.info(
                    "store.opened", store=self.masked_url, attempts=self.attempts, waited_s=waited
                )
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=delay)
            delay = min(delay * 2, STORE_RETRY_MAX_SECONDS)
        return False

    def _failed(self, exc: BaseException) -> None:
        text = str(exc) if isinstance(exc, LeadsyncError) else f"{type(exc).__name__}: {exc}"
        problem = " ".join(text.split())  # one line, whatever the driver's message looks like
        if password := url_password(self.url):
            problem = problem.replace(password, PASSWORD_MASK)
        if problem != self.problem:  # one line when the failure changes, not one per attempt
            log.error(
                "store.unavailable", store=self.masked_url, problem=problem,
                attempt=self.attempts, next="the daemon keeps trying; /healthz: store_unavailable",
            )  # fmt: skip
        self.problem = problem
