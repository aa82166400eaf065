"""Store fixtures for every test module, registered as a plugin by tests/conftest.py.

`store` is a migrated store, once on SQLite (a file in tmp_path) and once on
the real PostgreSQL at 127.0.0.1:5432 (its own `test_<uuid>` schema in database
`test`, dropped afterwards), so tests run in parallel under pytest-xdist.
`store_url_factory(backend)` hands out fresh URLs for tests that open stores
themselves (several replicas, subprocesses). When PostgreSQL is unreachable its
tests are skipped, except on CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import functools
import itertools
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing

import psycopg
import pytest
from psycopg import sql

from leadsync.abc import Store
from leadsync.store import open_store, postgres_target, sqlite_path

POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432/test"

STORE_BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@functools.cache
def postgres_unreachable() -> str:
    """Why the test server cannot be used ("" when it can); asked once per test process."""
    try:
        with psycopg.connect(POSTGRES_SERVER, connect_timeout=3):
            return ""
    except psycopg.OperationalError as exc:
        return str(exc).strip() or type(exc).__name__


def require_postgres() -> None:
    """Skips the test when PostgreSQL is down, or fails it on CI, where it must be up."""
    if reason := postgres_unreachable():
        message = f"PostgreSQL at 127.0.0.1:5432 is unreachable: {reason}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def run_sql(url: str, statement: str, params: tuple[object, ...] = ()) -> list[tuple]:
    """Runs one statement on a store's database behind its back (for schema tests)."""
    if url.startswith("sqlite:"):
        with closing(sqlite3.connect(sqlite_path(url))) as conn, conn:
            return conn.execute(statement, params).fetchall()
    conninfo, schema = postgres_target(url)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        cursor = conn.execute(statement.replace("?", "%s").encode(), params)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture
def store_url_factory(tmp_path) -> Iterator[Callable[[str], str]]:
    """Makes fresh, empty store URLs: make("sqlite") or make("postgres")."""
    schemas: list[str] = []
    numbers = itertools.count(1)

    def make(backend: str = "sqlite") -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / f'store-{next(numbers)}.db'}"
        if backend == "postgres":
            require_postgres()
            schemas.append(f"test_{uuid.uuid4().hex}")
            return f"{POSTGRES_SERVER}?schema={schemas[-1]}"
        raise ValueError(f"unknown store backend {backend!r}")

    yield make
    if schemas:
        with psycopg.connect(POSTGRES_SERVER, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )


@pytest.fixture(params=STORE_BACKENDS)
def store_backend(request) -> str:
    """ "sqlite" or "postgres": each test using it runs once per backend."""
    return request.param


@pytest.fixture
def store_url(store_backend, store_url_factory) -> str:
    """A fresh URL of the backend under test; nothing is created until a store opens it."""
    return store_url_factory(store_backend)


@pytest.fixture
def store(store_url) -> Iterator[Store]:
    """A migrated, empty store of the backend under test, closed afterwards."""
    opened = open_store(store_url)
    opened.migrate()
    yield opened
    opened.close()


def race(
    calls: list[tuple[Callable[..., object], tuple[object, ...]]], stores: list[Store]
) -> None:
    """Runs every (function, arguments) in its own thread at once, waits for all, then closes
    `stores` (the replicas the threads raced on)."""
    threads = [threading.Thread(target=target, args=args) for target, args in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
