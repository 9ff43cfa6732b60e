"""The customer lookup table in PostgreSQL (Cloud SQL in the cloud): the tables, rows and behaviour of the
SQLite file (:mod:`remarketing.customer_lookup`), for a deployment whose API and pipeline tasks run on
many machines. The rows are made and read by :mod:`remarketing.lookup_rows`, as there.

Tables: ``runs`` (one row per dataset and run, with its ``fields`` and ``layouts``), ``run_values`` (each
run's dictionary of text values), ``lookup_schema`` (the tables' version) and ``scores``, one row per
customer and run, partitioned by ``run_key``: each run's rows are a table of their own, ``scores_<key>``,
with the unique index ``(customer_id, run_key)`` that the point queries use and that refuses a customer
twice in a run. A partition per run because a run is what is written, replaced and retired whole:

- a run's rows are copied (``COPY ... FROM STDIN (FORMAT BINARY)``, in customer_id order) into a table
  made for it in the run's transaction, which no reader can see; it is attached as a partition when the
  run commits, so a reader sees the run whole or not at all (MVCC: readers are never blocked by the copy);
- a retired or replaced run's partition is dropped, its files removed, rather than its rows deleted and
  left for VACUUM (a week's million dead rows, still on disk until then, and bloat after).

Locks. Writers take one advisory lock for the transaction (a second waits ``timeout``, then gives up:
:class:`StorageError`). Attaching takes only SHARE UPDATE EXCLUSIVE on ``scores``; dropping a partition
takes ACCESS EXCLUSIVE, so it is done last, just before the commit: readers wait for that moment (a few
milliseconds a week), never for the copy. A reader reads a row and its run's dictionary in one
REPEATABLE READ, READ ONLY transaction.

Values are always bound parameters (psycopg sends them apart from the statement); the only names composed
into a statement are a partition's, ``scores_`` and an integer key the database gave (``psycopg.sql``). A
customer id holding NUL cannot be stored in PostgreSQL text: a reader finds no such customer, a writer
refuses the run (:class:`DataValidationError`, as for any value the database cannot store). The
database down, or not answering within ``timeout``, is :class:`Unavailable`, naming it; never "not
found".
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, TypeVar

import pandas as pd
import psycopg
from psycopg import errors, sql

from remarketing.errors import DataValidationError, StorageError, Unavailable
from remarketing.lookup_rows import (
    SCHEMA_VERSION,
    RunWriter,
    history_of,
    row_of,
    values_of,
)

log = logging.getLogger(__name__)

WRITE_LOCK = int.from_bytes(b"rmk-look", "big") >> 1  # the writers' advisory lock (a bigint)
# Binary COPY applies no casts: each column's type is named (psycopg would send a small int as int2).
_SCORE_COLUMNS = ("run_key", "customer_id", "model_version", "probability", "rank", "grp", "layout", "detail")
_SCORE_TYPES = ("int8", "text", "text", "float8", "int8", "text", "int4", "bytea")

_SCHEMA = (
    "CREATE TABLE lookup_schema (version integer NOT NULL)",
    """CREATE TABLE runs (
        run_key bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        dataset text NOT NULL,
        run_id text NOT NULL,
        scored_at text NOT NULL,
        scored_us bigint NOT NULL,
        model_version text NOT NULL,
        fields text NOT NULL DEFAULT '[]',
        layouts text NOT NULL DEFAULT '[]',
        customers integer NOT NULL DEFAULT 0,
        UNIQUE (dataset, run_id)
    )""",
    "CREATE INDEX runs_by_time ON runs (dataset, scored_us, run_key)",
    """CREATE TABLE scores (
        run_key bigint NOT NULL,
        customer_id text NOT NULL,
        model_version text NOT NULL,
        probability double precision,
        rank bigint,
        grp text,
        layout integer NOT NULL,
        detail bytea NOT NULL
    ) PARTITION BY LIST (run_key)""",
    "CREATE UNIQUE INDEX scores_by_customer ON scores (customer_id, run_key)",
    """CREATE TABLE run_values (
        run_key bigint NOT NULL,
        code integer NOT NULL,
        value text NOT NULL,
        PRIMARY KEY (run_key, code)
    )""",
)
_DETAILED = """SELECT s.run_key, r.run_id, r.scored_at, s.model_version, s.probability, s.rank, s.grp,
        r.fields, r.layouts, s.layout, s.detail
    FROM scores AS s JOIN runs AS r ON r.run_key = s.run_key"""
_LATEST = f"""{_DETAILED}
    WHERE s.customer_id = %s AND r.dataset = %s
    ORDER BY r.scored_us DESC, r.run_key DESC LIMIT 1"""
_OF_RUN = f"""{_DETAILED}
    WHERE s.customer_id = %s AND r.dataset = %s AND r.run_id = %s"""
_HISTORY = """SELECT r.run_id, r.scored_at, s.model_version, s.probability, s.rank, s.grp
    FROM scores AS s JOIN runs AS r ON r.run_key = s.run_key
    WHERE s.customer_id = %s AND r.dataset = %s
    ORDER BY r.scored_us DESC, r.run_key DESC LIMIT %s"""
_NEWEST_RUN = "SELECT customers FROM runs WHERE dataset = %s ORDER BY scored_us DESC, run_key DESC LIMIT 1"
_OLD_RUNS = "SELECT run_key FROM runs WHERE dataset = %s ORDER BY scored_us DESC, run_key DESC OFFSET %s"

T = TypeVar("T")


@dataclass(frozen=True)
class Database:
    """Where the table is, and who connects (the password never shown)."""

    host: str
    port: int = 5432
    dbname: str = "lookup"
    user: str = "lookup"
    password: str = field(default="", repr=False)
    sslmode: str = "require"

    def __str__(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    def connect(self, purpose: str, timeout: float, *, autocommit: bool) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(
                host=self.host,
                port=self.port,
                dbname=self.dbname,
                user=self.user,
                password=self.password or None,
                sslmode=self.sslmode,
                connect_timeout=max(2, math.ceil(timeout)),  # libpq takes whole seconds, 2 at least
                application_name=f"remarketing {purpose}",
                autocommit=autocommit,
            )
        except psycopg.OperationalError as e:
            raise self.unavailable(e) from e

    def unavailable(self, error: BaseException) -> Unavailable:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return Unavailable(
            "the customer lookup table (PostgreSQL)",
            str(self),
            "lookups answer again once it is reachable; a scoring run's publish step fails and can be "
            "run again",
            reason=reason,
        )


def _storable(customer_id: str) -> bool:
    """PostgreSQL text holds no NUL, and only what UTF-8 encodes: such an id is never in the table."""
    if "\x00" in customer_id:
        return False
    try:
        customer_id.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _ms(seconds: float) -> str:
    return f"{int(seconds * 1000)}ms"


def _partition(run_key: int) -> sql.Identifier:
    return sql.Identifier(f"scores_{int(run_key)}")


class PostgresLookupWriter(RunWriter):
    """One scoring run's rows in PostgreSQL, written in one transaction (:class:`RunWriter`)::

    with PostgresLookupWriter(database, dataset="bank", run_id=run_id, scored_at=at,
                              model_version="7") as lookup:
        for chunk in chunks:
            lookup.add(chunk)
    """

    DUPLICATE = (errors.UniqueViolation,)

    def __init__(self, database: Database, **run: Any) -> None:
        super().__init__(**run)
        self.database = database
        self._replaced: list[int] = []  # an earlier attempt of this run: its rows go when this one commits

    def __enter__(self) -> PostgresLookupWriter:
        if self._conn is not None or self._run_key:
            raise RuntimeError("a PostgresLookupWriter writes one run: make a new one for the next")
        conn = self.database.connect("publish", self.timeout, autocommit=False)
        try:
            with self._speaking(conn):
                # every lock this transaction waits for, it waits for at most timeout
                conn.execute("SELECT set_config('lock_timeout', %s, true)", (_ms(self.timeout),))
                try:
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
                except errors.LockNotAvailable as e:
                    raise StorageError(
                        f"run {self.run_id!r} could not write the lookup table {self.database}: another "
                        f"run was writing it, and this one waited {self.timeout:g} s; retry the run when "
                        "it is done"
                    ) from e
                self._prepare(conn)
        except BaseException:
            conn.rollback()
            conn.close()
            raise
        self._conn = conn
        return self

    def _speaking(self, conn: psycopg.Connection[Any]) -> _Speaking:
        return _Speaking(self.database, conn)

    def _prepare(self, conn: psycopg.Connection[Any]) -> None:
        self._create_schema(conn)
        same = conn.execute(
            "DELETE FROM runs WHERE dataset = %s AND run_id = %s RETURNING run_key",
            (self.dataset, self.run_id),
        ).fetchone()
        if same is not None:  # a retried publish: its rows replace the earlier attempt's
            self._replaced.append(same[0])
        found = conn.execute(
            "INSERT INTO runs (dataset, run_id, scored_at, scored_us, model_version)"
            " VALUES (%s, %s, %s, %s, %s) RETURNING run_key",
            (self.dataset, self.run_id, self.scored_at, self._scored_us, self.model_version),
        ).fetchone()
        assert found is not None
        self._run_key = int(found[0])
        table = _partition(self._run_key)
        # A table of its own, seen by no one until it is attached (the CHECK spares the attach a scan).
        conn.execute(
            sql.SQL("CREATE TABLE {} (LIKE scores, CHECK (run_key = {}))").format(
                table, sql.Literal(self._run_key)
            )
        )
        conn.execute(sql.SQL("CREATE UNIQUE INDEX ON {} (customer_id, run_key)").format(table))

    def _create_schema(self, conn: psycopg.Connection[Any]) -> None:
        exists = conn.execute("SELECT to_regclass('lookup_schema') IS NOT NULL").fetchone()
        if exists is not None and exists[0]:
            found = conn.execute("SELECT max(version) FROM lookup_schema").fetchone()
            version = found[0] if found is not None else None
            if version is not None and version != SCHEMA_VERSION:
                raise StorageError(
                    f"{self.database} has lookup schema {version}; this code writes {SCHEMA_VERSION}: "
                    "it was written by a newer version of remarketing"
                )
            if version is not None:
                return
        else:
            for statement in _SCHEMA:
                conn.execute(statement)
        conn.execute("INSERT INTO lookup_schema (version) VALUES (%s)", (SCHEMA_VERSION,))

    def _write(self, chunk: pd.DataFrame) -> int:
        rows = self._run.of(chunk)
        with self._speaking(self._conn), self._conn.cursor() as cursor:
            self._copy(cursor, rows)
        return len(rows)

    def _copy(self, cursor: psycopg.Cursor[Any], rows: Any) -> None:
        columns = sql.SQL(", ").join(map(sql.Identifier, _SCORE_COLUMNS))
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            _partition(self._run_key), columns
        )
        with cursor.copy(statement) as copy:
            copy.set_types(list(_SCORE_TYPES))
            for row in zip(
                repeat(self._run_key),
                rows.customer_ids,
                rows.model_versions,
                rows.probabilities,
                rows.ranks,
                rows.groups,
                repeat(rows.layout),
                rows.details,
                strict=False,  # repeat() is endless; the other columns have the chunk's length
            ):
                copy.write_row(row)
        new_values = self._run.new_values()
        if new_values:
            with cursor.copy("COPY run_values (run_key, code, value) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "int4", "text"])
                for code, value in new_values:
                    copy.write_row((self._run_key, code, value))

    def _commit(self, conn: psycopg.Connection[Any]) -> None:
        with self._speaking(conn):
            self._finish(conn)
            conn.commit()

    def _roll_back(self, conn: psycopg.Connection[Any]) -> None:
        if not conn.closed:
            conn.rollback()

    def _finish(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(
            "UPDATE runs SET fields = %s, layouts = %s, customers = %s WHERE run_key = %s",
            (self._run.fields_json(), self._run.layouts_json(), self._rows, self._run_key),
        )
        old = [key for (key,) in conn.execute(_OLD_RUNS, (self.dataset, self.keep_runs)).fetchall()]
        gone = [*self._replaced, *old]
        # Dropping a partition locks out readers until the commit: the last thing done (see the header).
        for key in gone:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_partition(key)))
        conn.execute("DELETE FROM run_values WHERE run_key = ANY(%s)", (gone,))
        conn.execute("DELETE FROM runs WHERE run_key = ANY(%s)", (gone,))
        if self._run_key not in gone:  # a run older than the kept ones retires itself
            conn.execute(
                sql.SQL("ALTER TABLE scores ATTACH PARTITION {} FOR VALUES IN ({})").format(
                    _partition(self._run_key), sql.Literal(self._run_key)
                )
            )


class _Speaking:
    """The driver's failures in the core's terms: the database out of reach (or not answering in time)
    is :class:`Unavailable`; anything else it refuses is a :class:`StorageError`."""

    def __init__(self, database: Database, conn: psycopg.Connection[Any]) -> None:
        self.database, self.conn = database, conn

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: Any) -> None:
        if error is None or not isinstance(error, psycopg.Error):
            return
        if isinstance(error, errors.UniqueViolation | errors.LockNotAvailable | errors.UndefinedTable):
            return  # the caller says what these mean
        if isinstance(error, psycopg.OperationalError) or self.conn.broken:
            raise self.database.unavailable(error) from error
        if isinstance(error, psycopg.DataError):
            raise DataValidationError([str(error).strip()], source="the lookup") from error
        raise StorageError(f"the lookup table {self.database} refused: {str(error).strip()}") from error


class PostgresCustomerLookup:
    """Reads the table (the interface of the SQLite ``CustomerLookup``). No tables yet (nothing scored)
    reads as nothing: None, [] or 0.

    One connection, opened at the first read and kept (a lookup costs a round trip, not a connection
    and its TLS handshake); opened again after it broke. Safe to share between threads: a lock
    serialises the reads. Tables of another schema are refused (:class:`Unavailable`, naming them).
    """

    def __init__(self, database: Database, *, timeout: float = 5.0) -> None:
        self.database = database
        self.timeout = timeout
        self._conn: psycopg.Connection[Any] | None = None
        self._checked = False  # the schema's version was read and is this code's
        self._lock = threading.Lock()

    def __enter__(self) -> PostgresCustomerLookup:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _read(self, reading: Callable[[psycopg.Connection[Any]], T], nothing: T) -> T:
        """``reading`` in one read-only transaction that sees one committed state. A kept connection
        found broken (cut while idle, the instance restarted or failed over) is replaced once, at
        once; a new one that fails is the database unavailable."""
        with self._lock:
            while True:
                kept = self._conn is not None and not self._conn.closed
                conn = self._connection()
                try:
                    with _Speaking(self.database, conn), conn.transaction():
                        if not self._checked:
                            self._check_schema(conn)
                        return reading(conn)
                except errors.UndefinedTable:  # no run committed yet
                    return nothing
                except Unavailable:
                    if not (kept and conn.closed):
                        raise

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:  # never opened, or broken (psycopg closes it)
            conn = self.database.connect("lookup", self.timeout, autocommit=True)
            conn.read_only = True
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            try:
                with _Speaking(self.database, conn):
                    conn.execute("SELECT set_config('statement_timeout', %s, false)", (_ms(self.timeout),))
            except BaseException:
                conn.close()
                raise
            self._conn, self._checked = conn, False
        return self._conn

    def _check_schema(self, conn: psycopg.Connection[Any]) -> None:
        found = conn.execute("SELECT max(version) FROM lookup_schema").fetchone()
        version = found[0] if found is not None else None
        if version is None:  # the first writer has not committed yet
            return
        if version != SCHEMA_VERSION:
            raise Unavailable(
                "the customer lookup table",
                str(self.database),
                "it was written by a newer version of remarketing: update this one",
                reason=f"the tables have schema {version}, this code reads schema {SCHEMA_VERSION}",
            )
        self._checked = True

    def latest(self, dataset: str, customer_id: str) -> dict[str, Any] | None:
        """The customer's row of the newest run of ``dataset`` that holds it, with its parsed ``detail``."""
        if not _storable(customer_id):
            return None
        parameters = (customer_id, dataset)
        return self._read(lambda conn: _row(conn, dataset, customer_id, _LATEST, parameters), None)

    def of_run(self, dataset: str, customer_id: str, run_id: str) -> dict[str, Any] | None:
        """The customer's row of one run, with its parsed ``detail``."""
        if not _storable(customer_id):
            return None
        parameters = (customer_id, dataset, run_id)
        return self._read(lambda conn: _row(conn, dataset, customer_id, _OF_RUN, parameters), None)

    def history(self, dataset: str, customer_id: str, limit: int = 52) -> list[dict[str, Any]]:
        """The customer's rows of the retained runs of ``dataset``, newest first, without detail."""
        if limit < 0:
            raise ValueError(f"limit must not be negative, not {limit}")
        if not _storable(customer_id):
            return []
        return self._read(
            lambda conn: history_of(conn.execute(_HISTORY, (customer_id, dataset, limit)).fetchall()), []
        )

    def customers(self, dataset: str) -> int:
        """How many customers the newest run of ``dataset`` holds (0 before the first)."""
        found = self._read(lambda conn: conn.execute(_NEWEST_RUN, (dataset,)).fetchone(), None)
        return int(found[0]) if found else 0


def _row(
    conn: psycopg.Connection[Any], dataset: str, customer_id: str, statement: str, parameters: tuple[Any, ...]
) -> dict[str, Any] | None:
    found = conn.execute(statement, parameters).fetchone()
    if found is None:
        return None
    return row_of(found, dataset, customer_id, lambda run_key, codes: _dictionary(conn, run_key, codes))


def _dictionary(conn: psycopg.Connection[Any], run_key: int, codes: set[int]) -> dict[int, Any]:
    """The values of some codes of a run's dictionary."""
    rows = conn.execute(
        "SELECT code, value FROM run_values WHERE run_key = %s AND code = ANY(%s)", (run_key, sorted(codes))
    ).fetchall()
    return values_of(rows)
