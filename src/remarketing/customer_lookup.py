"""Each scored customer by id: why is this customer on the list? A table the publish step writes per run.

Why SQLite in WAL mode: the table is one file in the state folder (nothing to run or administer), a read
is an indexed point query of a few microseconds, and in WAL mode readers are never blocked by the weekly
write: they keep reading the previous committed state until the writer's single transaction commits, so
no reader ever sees half a run. One writer at a time; a second one waits (``timeout``) for the first. The
cloud equivalent would be Cloud SQL (the same tables) or Firestore (a document per customer and run); it
is not built here.

Layout. ``runs`` holds one row per (dataset, run_id) with what every row of the run shares; ``scores`` one
row per customer and run, keyed by the run's integer ``run_key`` rather than repeating its strings. It is
a rowid table (its rows, a few hundred bytes, are too wide to make good keys of a WITHOUT ROWID table),
with two indexes:

- ``(customer_id, run_key)``, unique: a customer's rows (a few per retained run), the point query of
  :meth:`CustomerLookup.latest` and :meth:`CustomerLookup.history`, joined to ``runs`` for the dataset
  and time; it also refuses a customer twice in one run;
- ``(run_key)``: a run's rows, so that replacing or retiring a run deletes a range, not a scan of every
  run's rows. A run's rows get consecutive rowids, so the table and this index are written at their ends.

``detail`` (reasons, contributions, values: every column of a chunk beyond the scalar ones) is a JSON
array per row, its names once in the run's ``fields``: 290 bytes a row of fourteen columns (three reasons
and their parts) where objects repeating the names took 490. orjson encodes a row in about 2.5 µs, with
the chunk's conversion to Python values (pandas' ``to_json(lines=True)`` of the chunk took 5 µs a row).

Runs are ordered by ``scored_at`` (any ISO 8601 time; one without a zone is taken as UTC), then by the
order they were written.

Retention: a run's writer keeps the newest ``keep_runs`` runs of its dataset (its own included) and
deletes the older ones, rows and all, in the run's transaction. Writing a run_id again (a retried publish)
replaces that run's rows. Every statement takes its values as ``?`` parameters: an id is plain data,
whatever its characters or length.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import repeat
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
import pandas as pd

from remarketing.errors import DataValidationError, StorageError

SCHEMA_VERSION = 1
SCALAR_COLUMNS = ("customer_id", "probability", "rank", "group", "model_version")
REQUIRED_COLUMNS = ("customer_id", "probability", "rank", "group")  # model_version defaults to the run's
HISTORY_KEYS = ("run_id", "scored_at", "model_version", "probability", "rank", "group")
WRITE_CACHE_KIB = 128 * 1024  # the writer's page cache: the customer index of a large run stays in memory
WAL_LIMIT_BYTES = 64 * 1024 * 1024  # the WAL file is cut back to this after a checkpoint
CHECKPOINT_WAIT_MS = 1000

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS runs (
        run_key INTEGER PRIMARY KEY,
        dataset TEXT NOT NULL,
        run_id TEXT NOT NULL,
        scored_at TEXT NOT NULL,
        scored_us INTEGER NOT NULL,
        model_version TEXT NOT NULL,
        fields TEXT NOT NULL DEFAULT '[]',
        customers INTEGER NOT NULL DEFAULT 0,
        UNIQUE (dataset, run_id)
    )""",
    "CREATE INDEX IF NOT EXISTS runs_by_time ON runs (dataset, scored_us, run_key)",
    """CREATE TABLE IF NOT EXISTS scores (
        run_key INTEGER NOT NULL REFERENCES runs (run_key),
        customer_id TEXT NOT NULL,
        model_version TEXT NOT NULL,
        probability REAL,
        rank INTEGER,
        grp TEXT,
        detail TEXT NOT NULL
    )""",
    "CREATE UNIQUE INDEX IF NOT EXISTS scores_by_customer ON scores (customer_id, run_key)",
    "CREATE INDEX IF NOT EXISTS scores_by_run ON scores (run_key)",
)
_INSERT = (
    "INSERT INTO scores (run_key, customer_id, model_version, probability, rank, grp, detail)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
# CROSS JOIN fixes the order: the customer's few index entries first, then each one's run by its key.
_LATEST = """SELECT r.run_id, r.scored_at, s.model_version, s.probability, s.rank, s.grp, r.fields, s.detail
    FROM scores AS s CROSS JOIN runs AS r ON r.run_key = s.run_key
    WHERE s.customer_id = ? AND r.dataset = ?
    ORDER BY r.scored_us DESC, r.run_key DESC LIMIT 1"""
_OF_RUN = """SELECT r.run_id, r.scored_at, s.model_version, s.probability, s.rank, s.grp, r.fields, s.detail
    FROM scores AS s CROSS JOIN runs AS r ON r.run_key = s.run_key
    WHERE s.customer_id = ? AND r.dataset = ? AND r.run_id = ?"""
_HISTORY = """SELECT r.run_id, r.scored_at, s.model_version, s.probability, s.rank, s.grp
    FROM scores AS s CROSS JOIN runs AS r ON r.run_key = s.run_key
    WHERE s.customer_id = ? AND r.dataset = ?
    ORDER BY r.scored_us DESC, r.run_key DESC LIMIT ?"""
_NEWEST_RUN = "SELECT customers FROM runs WHERE dataset = ? ORDER BY scored_us DESC, run_key DESC LIMIT 1"
_OLD_RUNS = (
    "SELECT run_key FROM runs WHERE dataset = ? ORDER BY scored_us DESC, run_key DESC LIMIT -1 OFFSET ?"
)


def _microseconds(scored_at: str) -> int:
    """``scored_at`` as UTC microseconds since the epoch: the runs' order, whatever zone the string has."""
    try:
        at = datetime.fromisoformat(scored_at)
    except ValueError as e:
        raise StorageError(f"scored_at {scored_at!r} is not an ISO 8601 time") from e
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _delete_run(conn: sqlite3.Connection, run_key: int) -> None:
    conn.execute("DELETE FROM scores WHERE run_key = ?", (run_key,))
    conn.execute("DELETE FROM runs WHERE run_key = ?", (run_key,))


class LookupWriter:
    """One scoring run's rows, written in one transaction. Use as a context manager::

        with LookupWriter(path, dataset="bank", run_id=run_id, scored_at=at, model_version="7") as lookup:
            for chunk in chunks:
                lookup.add(chunk)

    Leaving the ``with`` commits the run (and retires the dataset's runs beyond ``keep_runs``); an
    exception rolls everything back, so readers keep seeing the previous state.
    """

    def __init__(
        self,
        path: Path,
        *,
        dataset: str,
        run_id: str,
        scored_at: str,
        model_version: str,
        keep_runs: int = 8,
        timeout: float = 60.0,
    ) -> None:
        if keep_runs < 1:
            raise ValueError(f"keep_runs must be at least 1, not {keep_runs}")
        self.path = Path(path)
        self.dataset, self.run_id, self.scored_at = dataset, run_id, scored_at
        self.model_version, self.keep_runs, self.timeout = model_version, keep_runs, timeout
        self._scored_us = _microseconds(scored_at)
        self._conn: sqlite3.Connection | None = None
        self._run_key = 0
        self._rows = 0
        self._fields: list[str] | None = None  # the detail columns, in the first chunk's order
        self._broken: BaseException | None = None

    def __enter__(self) -> LookupWriter:
        if self._conn is not None or self._run_key:
            raise RuntimeError("a LookupWriter writes one run: make a new one for the next")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # one thread at a time, not always the one that opened it (publish adds chunks from a worker)
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StorageError(f"{self.path} cannot be put in WAL mode (it is in {mode!r} mode)")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA cache_size=-{WRITE_CACHE_KIB}")
            conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
            conn.execute("PRAGMA temp_store=MEMORY")
            # The write lock now (waiting up to timeout for another writer), not at the first insert.
            conn.execute("BEGIN IMMEDIATE")
            self._prepare(conn)
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            conn.close()
            raise
        self._conn = conn
        return self

    def _prepare(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise StorageError(f"{self.path} has lookup schema {version}; this code writes {SCHEMA_VERSION}")
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
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

    def add(self, chunk: pd.DataFrame) -> None:
        """One chunk of the run's customers: ``customer_id``, ``probability``, ``rank``, ``group`` and
        optionally ``model_version`` (the run's when absent); every other column goes into ``detail``."""
        if self._conn is None:
            raise RuntimeError("LookupWriter.add outside its with block")
        if self._broken is not None:
            raise StorageError("an earlier chunk of this run failed; the run will not be committed")
        if not len(chunk):
            return
        try:
            rows = self._rows_of(chunk)
            self._conn.executemany(_INSERT, rows)
        except sqlite3.IntegrityError as e:
            self._broken = e
            raise DataValidationError(
                [f"a customer_id appears more than once in run {self.run_id!r} ({e})"], source="the lookup"
            ) from e
        except BaseException as e:
            self._broken = e
            raise
        self._rows += len(chunk)

    def _rows_of(self, chunk: pd.DataFrame) -> Iterator[tuple[Any, ...]]:
        """The chunk's rows as parameter tuples, each column converted at once."""
        missing = [c for c in REQUIRED_COLUMNS if c not in chunk.columns]
        if missing:
            raise DataValidationError(
                [f"the chunk has no {c!r} column" for c in missing], source="the lookup"
            )
        ids = chunk["customer_id"]
        if ids.isna().any():
            raise DataValidationError(["a customer_id is missing"], source="the lookup")
        versions: Iterable[str] = repeat(self.model_version)
        if "model_version" in chunk.columns:
            versions = chunk["model_version"].fillna(self.model_version).astype(str).tolist()
        groups = chunk["group"]
        detail = chunk.drop(columns=[c for c in SCALAR_COLUMNS if c in chunk.columns])
        detail.columns = detail.columns.map(str)
        if self._fields is None:
            self._fields = list(detail.columns)
        elif set(detail.columns) != set(self._fields):
            columns, first = list(detail.columns), self._fields
            raise DataValidationError(
                [f"a chunk has the detail columns {columns}; the run's first chunk had {first}"],
                source="the lookup",
            )
        detail = detail[self._fields]
        return zip(
            repeat(self._run_key),
            ids.astype(str).tolist(),
            versions,
            chunk["probability"].to_numpy(dtype="float64").tolist(),
            chunk["rank"].to_numpy(dtype="int64").tolist(),
            groups.astype(str).where(groups.notna(), None).tolist(),
            _details(detail),
            strict=False,  # repeat() is endless; the other columns have the chunk's length
        )

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if kind is not None or self._broken is not None:
                conn.rollback()
                if kind is None:
                    raise StorageError(
                        f"run {self.run_id!r} was not written: a chunk failed"
                    ) from self._broken
                return
            self._finish(conn)
            conn.commit()
            # Copy the run into the database file and empty the WAL; a reader amid a read holds this back,
            # so it waits a second at most and otherwise leaves it to the next checkpoint.
            conn.execute(f"PRAGMA busy_timeout={CHECKPOINT_WAIT_MS}")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise
        finally:
            conn.close()

    def _finish(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "UPDATE runs SET fields = ?, customers = ? WHERE run_key = ?",
            (orjson.dumps(self._fields or []).decode(), self._rows, self._run_key),
        )
        self._retire(conn, sparing=None)  # only a run older than the kept ones retires itself here

    def _retire(self, conn: sqlite3.Connection, *, sparing: int | None) -> None:
        """Delete the dataset's runs beyond the newest ``keep_runs`` (this one counted where its time is)."""
        for (key,) in conn.execute(_OLD_RUNS, (self.dataset, self.keep_runs)).fetchall():
            if key != sparing:
                _delete_run(conn, key)


def _details(detail: pd.DataFrame) -> list[str]:
    """Each row's other columns as a JSON array (NaN and missing values as null)."""
    if not len(detail.columns):
        return ["[]"] * len(detail)
    dumps, numpy = orjson.dumps, orjson.OPT_SERIALIZE_NUMPY
    return [
        dumps(row, default=_jsonable, option=numpy).decode() for row in detail.to_numpy(dtype=object).tolist()
    ]


def _jsonable(value: Any) -> Any:
    """What orjson does not encode itself: pandas' missing values, its timestamps, anything else as text."""
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, date | pd.Timedelta):
        return value.isoformat()
    return str(value)


class CustomerLookup:
    """Reads the table, read-only. No database yet (nothing scored) reads as nothing: None, [] or 0.

    One connection, opened at the first read that finds the file; it sees each run from its commit on.
    Safe to share between threads (a lock serialises its microsecond reads).
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
        with self._lock:
            if self._conn is None:
                if not self.path.exists():
                    return []
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                self._conn = sqlite3.connect(uri, uri=True, timeout=self.timeout, check_same_thread=False)
            try:
                return self._conn.execute(sql, parameters).fetchall()
            except sqlite3.OperationalError as e:
                if "no such table" in str(e):  # the first writer has not committed yet
                    return []
                raise

    def latest(self, dataset: str, customer_id: str) -> dict[str, Any] | None:
        """The customer's row of the newest run of ``dataset`` that holds it, with its parsed ``detail``."""
        return self._row(dataset, customer_id, self._query(_LATEST, (customer_id, dataset)))

    def of_run(self, dataset: str, customer_id: str, run_id: str) -> dict[str, Any] | None:
        """The customer's row of one run, with its parsed ``detail``."""
        return self._row(dataset, customer_id, self._query(_OF_RUN, (customer_id, dataset, run_id)))

    def _row(self, dataset: str, customer_id: str, rows: list[tuple[Any, ...]]) -> dict[str, Any] | None:
        if not rows:
            return None
        *scalars, fields, detail = rows[0]
        return {
            "dataset": dataset,
            "customer_id": customer_id,
            **dict(zip(HISTORY_KEYS, scalars, strict=True)),
            "detail": dict(zip(orjson.loads(fields), orjson.loads(detail), strict=True)),
        }

    def history(self, dataset: str, customer_id: str, limit: int = 52) -> list[dict[str, Any]]:
        """The customer's rows of the retained runs of ``dataset``, newest first, without detail."""
        if limit < 0:
            raise ValueError(f"limit must not be negative, not {limit}")
        rows = self._query(_HISTORY, (customer_id, dataset, limit))
        return [dict(zip(HISTORY_KEYS, row, strict=True)) for row in rows]

    def customers(self, dataset: str) -> int:
        """How many customers the newest run of ``dataset`` holds (0 before the first)."""
        rows = self._query(_NEWEST_RUN, (dataset,))
        return int(rows[0][0]) if rows else 0
