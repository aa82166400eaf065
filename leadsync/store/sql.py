"""The SQL core of the store: a dialect per backend, and transactions spoken through it.

Role modules write each statement once, in PostgreSQL's spelling with `:name`
parameters and lists of ids (always a `list`) bound as `= ANY(:ids)`; a
backend's `Dialect` turns text and values into what its driver runs, and
carries what truly differs (how an insert hands back rows, how claims lock,
how revisions and migrations are serialised). `SQLRole` gives role modules
transactions (`Tx`) on the backend's connections.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from leadsync.store.rows import Row, Rows

Params = Mapping[str, Any] | None


class Dialect:
    """How one database spells and runs the store's SQL; subclassed per backend."""

    name: str  # "sqlite" or "postgres": also the folder of its migrations
    rows: Rows  # row -> model with this backend's time decoder
    false = "false"  # a flag's false as its partial index spells it (or the index goes unused)
    words: dict[str, str]  # the types that migrations/NNNN_*.sql names in braces
    skip_locked = ""  # ends the claim's row selection (PostgreSQL: FOR UPDATE SKIP LOCKED)
    converters: dict[type, Callable[[Any], Any]] = {}  # values of these types bound converted

    def __init__(self) -> None:
        self._translated: dict[str, str] = {}

    def sql(self, text: str) -> str:
        """`text` as this driver runs it, translated once and remembered."""
        if (found := self._translated.get(text)) is None:
            found = self._translated[text] = self.translate(text)
        return found

    def translate(self, text: str) -> str:
        return text

    def executemany(self, conn: Any, text: str, params: list[Params]) -> int:
        """Runs one statement per parameter set; returns how many rows they changed."""
        return conn.executemany(text, params).rowcount

    def inserted(self, conn: Any, text: str, params: list[Params]) -> list[Row]:
        """Runs an `INSERT ... RETURNING` per parameter set; returns every row returned."""
        return [row for one in params for row in conn.execute(text, one).fetchall()]

    def lock_leads(self, tx: Tx, lead_ids: Sequence[str]) -> None:
        """Serialises score revisions of these leads until commit (SQLite's write lock does)."""

    def lock_routing(self, tx: Tx) -> None:
        """Serialises recording contacts and assigning owners until commit (SQLite's lock does)."""

    def lock_migrations(self, tx: Tx) -> None:
        """Makes replicas that start together migrate one after another."""

    def run_script(self, tx: Tx, script: str) -> None:
        raise NotImplementedError


class Tx:
    """One transaction on one connection, spoken through the dialect."""

    __slots__ = ("conn", "dialect")

    def __init__(self, conn: Any, dialect: Dialect):
        self.conn = conn
        self.dialect = dialect

    def _bind(self, params: Params) -> Params:
        if not params or not self.dialect.converters:
            return params or None
        convert = self.dialect.converters.get  # by exact type: this runs for every value
        return {k: (c(v) if (c := convert(type(v))) else v) for k, v in params.items()}

    def run(self, text: str, params: Params = None) -> Any:
        """Runs one statement; returns the driver's cursor (rowcount, fetchall)."""
        return self.conn.execute(self.dialect.sql(text), self._bind(params) or ())

    def rows(self, text: str, params: Params = None) -> list[Row]:
        return self.run(text, params).fetchall()

    def many(self, text: str, params: list[Params]) -> int:
        bound = [self._bind(p) for p in params]
        return self.dialect.executemany(self.conn, self.dialect.sql(text), bound) if bound else 0

    def inserted(self, text: str, params: list[Params]) -> list[Row]:
        bound = [self._bind(p) for p in params]
        return self.dialect.inserted(self.conn, self.dialect.sql(text), bound) if bound else []


class Connections(Protocol):
    """A backend's connections: `SQLiteFile` or `PostgresPool`."""

    def read(self) -> AbstractContextManager[Any]: ...
    def write(self) -> AbstractContextManager[Any]: ...
    def close(self) -> None: ...


class SQLRole:
    """What the role modules stand on: the backend's connections and its dialect."""

    _db: Connections
    _dialect: Dialect
    _rows: Rows  # the dialect's

    @contextmanager
    def _read(self) -> Iterator[Tx]:
        """A read transaction: every query in the block sees one snapshot."""
        with self._db.read() as conn:
            yield Tx(conn, self._dialect)

    @contextmanager
    def _write(self) -> Iterator[Tx]:
        """A write transaction, committed durably when the block ends."""
        with self._db.write() as conn:
            yield Tx(conn, self._dialect)

    def _fetch(self, text: str, params: Params = None) -> list[Row]:
        """The rows of one query, in a read transaction of its own."""
        with self._read() as tx:
            return tx.rows(text, params)

    def _column(self, text: str, params: Params = None) -> list[Any]:
        """The first column of every row of one query."""
        rows = self._fetch(text, params)
        return [next(iter(r.values())) if isinstance(r, dict) else r[0] for r in rows]

    def _exec(self, text: str, params: Params = None) -> int:
        """Runs one statement in a write transaction of its own; returns the rows changed."""
        with self._write() as tx:
            return tx.run(text, params).rowcount
