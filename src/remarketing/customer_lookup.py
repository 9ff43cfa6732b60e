"""Each scored customer by id: why is this customer on the list? A table the publish step writes per run.

Why SQLite in WAL mode: the table is one file in the state folder (nothing to run or administer), a read
is an indexed point query of a few microseconds, and in WAL mode readers are never blocked by the weekly
write: they keep reading the previous committed state until the writer's single transaction commits, so
no reader ever sees half a run. One writer at a time; a second one waits (``timeout``) for the first, then
gives up (:class:`StorageError`). In the cloud the same tables are in PostgreSQL
(:mod:`remarketing.customer_lookup_postgres`); :mod:`remarketing.lookup_table` chooses, and
:mod:`remarketing.lookup_rows` makes and reads the rows for both.

Layout. ``runs`` holds one row per (dataset, run_id) with what every row of the run shares; ``scores`` one
row per customer and run, keyed by the run's integer ``run_key`` rather than repeating its strings. It is
a rowid table (its rows, about 190 bytes, are too wide to make good keys of a WITHOUT ROWID table) whose
rowid ``row_key`` is ``run_key * 2**32`` plus the row's number in its run: a run's rows are one range of
the table, written at its end and deleted as a range when the run is replaced or retired. One index:
``(customer_id, run_key)``, unique: a customer's rows (a few per retained run), the point query of
:meth:`CustomerLookup.latest` and :meth:`CustomerLookup.history`, joined to ``runs`` for the dataset and
time; it also refuses a customer twice in one run. (An index on ``run_key`` did the ranges' work before:
it cost 0.7 s of a million rows' inserts.) Each chunk's rows are inserted in ``customer_id`` order, so
the index's inserts sweep it once rather than jump about it: a million customers in a random order took
4.7 s to insert, 3.1 s sorted (the sort costs 0.5 s; a file in id order costs nothing more).

``detail`` (reasons, contributions, values: every column of a chunk beyond the scalar ones) is a BLOB per
row: the row's values side by side, each in its column's codec (:mod:`remarketing.row_codec`: floats,
narrow integers and booleans as they are, anything else as a code into the run's dictionary
``run_values``, keyed ``(run_key, code)``). The column names are stored once in the run's ``fields``; the
codecs once per distinct *layout* in the run's ``layouts``, each row naming its layout.

A layout per chunk rather than per run: a column that is whole numbers in one chunk and floats with NaN
in the next (or text) is read back as each chunk gave it, as JSON did, with no rule to choose between
them. Publish's rows (forty detail columns: fifteen floats, six integers, a boolean, eighteen texts)
take 150 bytes of detail a row where a JSON array took 557, and a million customers 220 MB of file where
they took 683 MB; a chunk's rows are made in 1.5 µs a row, where orjson's took 4.4 µs. A read is a
point query and, when the row has text, a second one for its codes in the run's dictionary, both in one
read transaction (a run retired between them would leave codes without values).

Runs are ordered by ``scored_at`` (any ISO 8601 time; one without a zone is taken as UTC), then by the
order they were written.

Retention: a run's writer keeps the newest ``keep_runs`` runs of its dataset (its own included) and
deletes the older ones, rows, dictionary and all, in the run's transaction; their pages are overwritten
(``secure_delete``), not only freed. Writing a run_id again (a retried publish) replaces that run's
rows. Every statement takes its values as ``?`` parameters: an id is plain data, whatever its characters
or length.

Schema versions (``PRAGMA user_version``). A file of an earlier schema (1: details as JSON text) is
started afresh by the next writer, in its run's transaction: the table is derived, each run's scores stay
in its ``output/`` folder, so its runs are dropped, not converted (their pages are zeroed and reused by
the next runs; the file does not shrink). Until then a reader refuses it as unavailable, naming the file.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from itertools import repeat
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from remarketing.errors import StorageError, Unavailable
from remarketing.lookup_rows import (
    SCHEMA_VERSION,
    RunWriter,
    history_of,
    row_of,
    values_of,
)

log = logging.getLogger(__name__)

WRITE_CACHE_KIB = 128 * 1024  # the writer's page cache: the customer index of a large run stays in memory
WAL_LIMIT_BYTES = 64 * 1024 * 1024  # the WAL file is cut back to this after a checkpoint
CHECKPOINT_WAIT_MS = 1000
ROW_BITS = 32  # a row's key is its run's key times 2**32 plus its number in the run

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS runs (
        run_key INTEGER PRIMARY KEY,
        dataset TEXT NOT NULL,
        run_id TEXT NOT NULL,
        scored_at TEXT NOT NULL,
        scored_us INTEGER NOT NULL,
        model_version TEXT NOT NULL,
        fields TEXT NOT NULL DEFAULT '[]',
        layouts TEXT NOT NULL DEFAULT '[]',
        customers INTEGER NOT NULL DEFAULT 0,
        UNIQUE (dataset, run_id)
    )""",
    "CREATE INDEX IF NOT EXISTS runs_by_time ON runs (dataset, scored_us, run_key)",
    """CREATE TABLE IF NOT EXISTS scores (
        row_key INTEGER PRIMARY KEY,
        run_key INTEGER NOT NULL REFERENCES runs (run_key),
        customer_id TEXT NOT NULL,
        model_version TEXT NOT NULL,
        probability REAL,
        rank INTEGER,
        grp TEXT,
        layout INTEGER NOT NULL,
        detail BLOB NOT NULL
    )""",
    "CREATE UNIQUE INDEX IF NOT EXISTS scores_by_customer ON scores (customer_id, run_key)",
    """CREATE TABLE IF NOT EXISTS run_values (
        run_key INTEGER NOT NULL REFERENCES runs (run_key),
        code INTEGER NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (run_key, code)
    ) WITHOUT ROWID""",
)
_EARLIER_TABLES = ("scores", "runs")  # schema 1's (their indexes go with them)
_INSERT = (
    "INSERT INTO scores"
    " (row_key, run_key, customer_id, model_version, probability, rank, grp, layout, detail)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_VALUE = "INSERT INTO run_values (run_key, code, value) VALUES (?, ?, ?)"
# CROSS JOIN fixes the order: the customer's few index entries first, then each one's run by its key.
_DETAILED = """SELECT s.run_key, r.run_id, r.scored_at, s.model_version, s.probability, s.rank, s.grp,
        r.fields, r.layouts, s.layout, s.detail
    FROM scores AS s CROSS JOIN runs AS r ON r.run_key = s.run_key"""
_LATEST = f"""{_DETAILED}
    WHERE s.customer_id = ? AND r.dataset = ?
    ORDER BY r.scored_us DESC, r.run_key DESC LIMIT 1"""
_OF_RUN = f"""{_DETAILED}
    WHERE s.customer_id = ? AND r.dataset = ? AND r.run_id = ?"""
_HISTORY = """SELECT r.run_id, r.scored_at, s.model_version, s.probability, s.rank, s.grp
    FROM scores AS s CROSS JOIN runs AS r ON r.run_key = s.run_key
    WHERE s.customer_id = ? AND r.dataset = ?
    ORDER BY r.scored_us DESC, r.run_key DESC LIMIT ?"""
_NEWEST_RUN = "SELECT customers FROM runs WHERE dataset = ? ORDER BY scored_us DESC, run_key DESC LIMIT 1"
_OLD_RUNS = (
    "SELECT run_key FROM runs WHERE dataset = ? ORDER BY scored_us DESC, run_key DESC LIMIT -1 OFFSET ?"
)

T = TypeVar("T")


def _delete_run(conn: sqlite3.Connection, run_key: int) -> None:
    first = run_key << ROW_BITS
    conn.execute("DELETE FROM scores WHERE row_key BETWEEN ? AND ?", (first, first + (1 << ROW_BITS) - 1))
    conn.execute("DELETE FROM run_values WHERE run_key = ?", (run_key,))
    conn.execute("DELETE FROM runs WHERE run_key = ?", (run_key,))


class LookupWriter(RunWriter):
    """One scoring run's rows in the SQLite file, written in one transaction (:class:`RunWriter`)::

    with LookupWriter(path, dataset="bank", run_id=run_id, scored_at=at, model_version="7") as lookup:
        for chunk in chunks:
            lookup.add(chunk)
    """

    DUPLICATE = (sqlite3.IntegrityError,)

    def __init__(self, path: Path, **run: Any) -> None:
        super().__init__(**run)
        self.path = Path(path)

    def __enter__(self) -> LookupWriter:
        if self._conn is not None or self._run_key:
            raise RuntimeError("a LookupWriter writes one run: make a new one for the next")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # one thread at a time, not always the one that opened it (publish adds chunks from a worker)
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
        try:
            mode = _into_wal(conn, self.timeout)
            if str(mode).lower() != "wal":
                raise StorageError(f"{self.path} cannot be put in WAL mode (it is in {mode!r} mode)")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA cache_size=-{WRITE_CACHE_KIB}")
            conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
            conn.execute("PRAGMA temp_store=MEMORY")
            # Deleted runs' pages (customers' ids and values) are overwritten, not only freed, whatever
            # the SQLite build's default (Debian's is on).
            conn.execute("PRAGMA secure_delete=ON")
            # The write lock now (waiting up to timeout for another writer), not at the first insert.
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as e:
                raise StorageError(
                    f"run {self.run_id!r} could not write the lookup table {self.path}: another run was "
                    f"writing it, and this one waited {self.timeout:g} s ({e}); retry the run when it is done"
                ) from e
            self._prepare(conn)
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            conn.close()
            raise
        self._conn = conn
        return self

    def _prepare(self, conn: sqlite3.Connection) -> None:
        self._create_schema(conn)
        same = conn.execute(
            "SELECT run_key FROM runs WHERE dataset = ? AND run_id = ?", (self.dataset, self.run_id)
        ).fetchone()
        if same is not None:  # a retried publish: its rows replace the earlier attempt's
            _delete_run(conn, same[0])
        cursor = conn.execute(
            "INSERT INTO runs (dataset, run_id, scored_at, scored_us, model_version) VALUES (?, ?, ?, ?, ?)",
            (self.dataset, self.run_id, self.scored_at, self._scored_us, self.model_version),
        )
        assert cursor.lastrowid is not None
        self._run_key = cursor.lastrowid
        # Retired before the inserts, which reuse the freed pages: the file holds keep_runs runs, no more.
        self._retire(conn, sparing=self._run_key)

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StorageError(
                f"{self.path} has lookup schema {version}; this code writes {SCHEMA_VERSION}: "
                "it was written by a newer version of remarketing"
            )
        if 0 < version < SCHEMA_VERSION:
            self._drop_earlier_schema(conn, version)
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _drop_earlier_schema(self, conn: sqlite3.Connection, version: int) -> None:
        """The table is derived (every run's scores stay in its output folder): an earlier schema's runs
        are dropped, in this run's transaction, rather than converted."""
        log.warning(
            "%s holds the lookup table of schema %s: its runs are dropped, run %r starts it afresh",
            self.path,
            version,
            self.run_id,
        )
        for table in _EARLIER_TABLES:
            conn.execute(f"DROP TABLE IF EXISTS {table}")  # a fixed name: identifiers take no '?'

    def _write(self, chunk: pd.DataFrame) -> int:
        self._conn.executemany(_INSERT, self._rows_of(chunk))
        new_values = self._run.new_values()
        self._conn.executemany(_INSERT_VALUE, ((self._run_key, *value) for value in new_values))
        return len(chunk)

    def _rows_of(self, chunk: pd.DataFrame) -> Iterator[tuple[Any, ...]]:
        """The chunk's rows as parameter tuples, in customer_id order, each keyed in its run's range."""
        rows = self._run.of(chunk)
        first = (self._run_key << ROW_BITS) + self._rows
        return zip(
            range(first, first + len(rows)),
            repeat(self._run_key),
            rows.customer_ids,
            rows.model_versions,
            rows.probabilities,
            rows.ranks,
            rows.groups,
            repeat(rows.layout),
            rows.details,
            strict=False,  # repeat() is endless; the other columns have the chunk's length
        )

    def _commit(self, conn: sqlite3.Connection) -> None:
        self._finish(conn)
        conn.commit()
        # Copy the run into the database file and empty the WAL; a reader amid a read holds this back, so
        # it waits a second at most and otherwise leaves it to the next checkpoint.
        conn.execute(f"PRAGMA busy_timeout={CHECKPOINT_WAIT_MS}")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _roll_back(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            conn.rollback()

    def _finish(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "UPDATE runs SET fields = ?, layouts = ?, customers = ? WHERE run_key = ?",
            (self._run.fields_json(), self._run.layouts_json(), self._rows, self._run_key),
        )
        self._retire(conn, sparing=None)  # only a run older than the kept ones retires itself here

    def _retire(self, conn: sqlite3.Connection, *, sparing: int | None) -> None:
        """Delete the dataset's runs beyond the newest ``keep_runs`` (this one counted where its time is)."""
        for (key,) in conn.execute(_OLD_RUNS, (self.dataset, self.keep_runs)).fetchall():
            if key != sparing:
                _delete_run(conn, key)


def _into_wal(conn: sqlite3.Connection, timeout: float) -> str:
    """``PRAGMA journal_mode=WAL``, waiting up to ``timeout`` for another writer that is putting a new file
    into WAL mode: that switch is not covered by SQLite's busy wait, so the second of two runs writing a
    new file at once got "database is locked" at once. A file already in WAL mode answers at once."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0])
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class CustomerLookup:
    """Reads the table, read-only. No database yet (nothing scored) reads as nothing: None, [] or 0.

    One connection, opened at the first read that finds the file; it sees each run from its commit on.
    Safe to share between threads (a lock serialises its microsecond reads). A file of another schema
    is refused (:class:`Unavailable`, naming the file) and not kept open, so the first read after the
    next run's commit reads it.
    """

    def __init__(self, path: Path, *, timeout: float = 5.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> CustomerLookup:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _query(self, sql: str, parameters: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return self._read(lambda conn: conn.execute(sql, parameters).fetchall(), [])

    def _read(self, reading: Callable[[sqlite3.Connection], T], nothing: T) -> T:
        """``reading`` in one read transaction (a row and its run's text values from one committed
        state: a run retired between the two reads would leave codes without values)."""
        with self._lock:
            conn = self._connection()
            if conn is None:
                return nothing
            conn.execute("BEGIN")
            try:
                return reading(conn)
            except sqlite3.OperationalError as e:
                if "no such table" in str(e):  # the first writer has not committed yet
                    return nothing
                raise
            finally:
                conn.commit()  # ends the read; nothing was written

    def _connection(self) -> sqlite3.Connection | None:
        if self._conn is None:
            if not self.path.exists():
                return None
            uri = f"{self.path.resolve().as_uri()}?mode=ro"
            conn = sqlite3.connect(
                uri, uri=True, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
            try:
                self._check_schema(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version in (0, SCHEMA_VERSION):  # 0: no run committed yet
            return
        if version < SCHEMA_VERSION:
            what_to_do = (
                "the next scoring run's publish step starts it afresh (earlier runs' scores stay in "
                "output/<run>/predictions.csv); or delete the file"
            )
        else:
            what_to_do = "it was written by a newer version of remarketing: update this one"
        raise Unavailable(
            "the customer lookup table",
            str(self.path),
            what_to_do,
            reason=f"the file has schema {version}, this code reads schema {SCHEMA_VERSION}",
        )

    def latest(self, dataset: str, customer_id: str) -> dict[str, Any] | None:
        """The customer's row of the newest run of ``dataset`` that holds it, with its parsed ``detail``."""
        parameters = (customer_id, dataset)
        return self._read(lambda conn: _row(conn, dataset, customer_id, _LATEST, parameters), None)

    def of_run(self, dataset: str, customer_id: str, run_id: str) -> dict[str, Any] | None:
        """The customer's row of one run, with its parsed ``detail``."""
        parameters = (customer_id, dataset, run_id)
        return self._read(lambda conn: _row(conn, dataset, customer_id, _OF_RUN, parameters), None)

    def history(self, dataset: str, customer_id: str, limit: int = 52) -> list[dict[str, Any]]:
        """The customer's rows of the retained runs of ``dataset``, newest first, without detail."""
        if limit < 0:
            raise ValueError(f"limit must not be negative, not {limit}")
        return history_of(self._query(_HISTORY, (customer_id, dataset, limit)))

    def customers(self, dataset: str) -> int:
        """How many customers the newest run of ``dataset`` holds (0 before the first)."""
        rows = self._query(_NEWEST_RUN, (dataset,))
        return int(rows[0][0]) if rows else 0


def _row(
    conn: sqlite3.Connection, dataset: str, customer_id: str, sql: str, parameters: tuple[Any, ...]
) -> dict[str, Any] | None:
    found = conn.execute(sql, parameters).fetchone()
    if found is None:
        return None
    return row_of(found, dataset, customer_id, lambda run_key, codes: _dictionary(conn, run_key, codes))


def _dictionary(conn: sqlite3.Connection, run_key: int, codes: set[int]) -> dict[int, Any]:
    """The values of some codes of a run's dictionary."""
    marks = ", ".join("?" * len(codes))  # only the count of parameters is in the text
    rows = conn.execute(
        f"SELECT code, value FROM run_values WHERE run_key = ? AND code IN ({marks})", (run_key, *codes)
    )
    return values_of(rows)
