"""Durable state of the daemon: `open_store(url)` picks the backend from the URL.

`sqlite:///relative/path.db` or `sqlite:////absolute/path.db` opens the default
SQLite store (one file, one host); `postgresql://user@host:port/db` opens the
PostgreSQL store that several replicas can share, with an optional
`?schema=name` to keep leadsync's tables in their own schema (created when
missing). Both implement `leadsync.abc.Store`; call `migrate()` before use.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from leadsync.abc import Store
from leadsync.errors import ConfigError, Problem

SQLITE_PREFIX = "sqlite:///"
POSTGRES_SCHEMES = ("postgresql", "postgres")
URL_FIX = "use sqlite:///leadsync.db or postgresql://user@host:5432/dbname"


def open_store(url: str) -> Store:
    """Opens the store that `url` names; raises ConfigError (at store.url) when it cannot."""
    if url.startswith(SQLITE_PREFIX):
        from leadsync.store.sqlite import SQLiteStore

        return SQLiteStore(sqlite_path(url))
    if urlsplit(url).scheme in POSTGRES_SCHEMES:
        # Imported here so a SQLite deployment never loads psycopg.
        from leadsync.store.postgres import PostgresStore

        conninfo, schema = postgres_target(url)
        return PostgresStore(conninfo, schema=schema)
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        message = f"{url!r} is not a sqlite:/// URL (three slashes, then the file's path)"
    else:
        message = f"unknown store URL scheme {scheme or '(none)'!r}"  # the URL may hold a password
    raise ConfigError([Problem("store.url", message, URL_FIX)])


def sqlite_path(url: str) -> Path:
    """The database file of a sqlite:/// URL; its folder must exist."""
    path = Path(url.removeprefix(SQLITE_PREFIX))
    if not path.name or path.name == ":memory:":
        raise ConfigError(
            [Problem("store.url", f"{url!r} names no database file", "sqlite:///leadsync.db")]
        )
    if not path.parent.is_dir():
        raise ConfigError(
            [Problem("store.url", f"folder {path.parent} does not exist", "create it first")]
        )
    return path


def postgres_target(url: str) -> tuple[str, str]:
    """The libpq connection URL without our `schema` parameter, and that schema ("" if none)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((value for key, value in query if key == "schema"), "")
    rest = urlencode([(key, value) for key, value in query if key != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


__all__ = ["open_store", "Store"]
