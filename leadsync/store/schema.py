"""Versioned schema migrations, read from `migrations/<backend>/NNNN_name.sql`.

Both stores apply them the same way, inside one transaction that holds the
database's migration lock: read the highest version recorded in
`schema_version`, refuse to go on when the database is newer than this code
knows (an old replica started after an upgrade must not write to a schema it
does not understand), then apply the missing files in order and record each.
This module finds the files and decides what to apply; the stores run the SQL.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

from leadsync.errors import ConfigError, Problem

FILE_NAME = re.compile(r"(?P<version>\d{4})_(?P<name>\w+)\.sql")


@dataclass(frozen=True, slots=True, order=True)
class Migration:
    """One schema change: its version, a short name and the SQL that makes it."""

    version: int
    name: str
    sql: str


def load(backend: str) -> list[Migration]:
    """Every migration of `backend` ("sqlite", "postgres"), in version order."""
    folder = resources.files("leadsync.store").joinpath("migrations", backend)
    found = []
    for entry in folder.iterdir():
        if match := FILE_NAME.fullmatch(entry.name):
            sql = entry.read_text(encoding="utf-8")
            found.append(Migration(int(match["version"]), match["name"], sql))
    found.sort()
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        # A packaging mistake, not something an operator can fix.
        raise RuntimeError(
            f"{backend} migrations are not numbered 1..n: {[m.version for m in found]}"
        )
    return found


def to_apply(current: int, migrations: Sequence[Migration]) -> list[Migration]:
    """The migrations a database at version `current` still needs.

    Raises ConfigError when the database is newer than every migration we know.
    """
    known = migrations[-1].version if migrations else 0
    if current > known:
        raise ConfigError(
            [
                Problem(
                    "store.url",
                    f"the database schema is at version {current}, newer than this leadsync "
                    f"knows (version {known}); it was upgraded by a newer leadsync",
                    "run the newer leadsync here too, or point store.url at another database",
                )
            ]
        )
    return [m for m in migrations if m.version > current]
