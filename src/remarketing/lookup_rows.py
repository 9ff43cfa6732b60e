"""What the customer lookup table's two stores (:mod:`remarketing.lookup_table`) do alike: a run's chunks
made into rows, and a stored row read back. They differ only in where they keep the rows.

Writing: each chunk is checked (the columns every row needs, no missing id), its rows put in
``customer_id`` order (an index's inserts then sweep it once) and each row's detail (every column beyond
the scalar ones) packed by :mod:`remarketing.row_codec`, in the run's layout for the chunk's codecs, its
text values coded into the run's dictionary. The column names are kept once per run (``fields``), the
codecs once per distinct layout (``layouts``).

Reading: a row's scalars by name and its detail decoded, its text codes looked up in its run's dictionary
by the store (in the same read transaction as the row: a run retired between the two reads would leave
codes without values).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import repeat
from typing import Any

import numpy as np
import orjson
import pandas as pd

from remarketing.errors import DataValidationError, StorageError
from remarketing.row_codec import (
    TextDictionary,
    decode_value,
    encode_column,
    fields_of,
    layouts_of,
    pack_rows,
)

SCHEMA_VERSION = 2  # the tables' layout (1: details as JSON text, SQLite only)
SCALAR_COLUMNS = ("customer_id", "probability", "rank", "group", "model_version")
REQUIRED_COLUMNS = ("customer_id", "probability", "rank", "group")  # model_version defaults to the run's
HISTORY_KEYS = ("run_id", "scored_at", "model_version", "probability", "rank", "group")

# A run's text codes -> their values (JSON-decoded), read by the store for one run.
Dictionary = Callable[[int, set[int]], dict[int, Any]]


def microseconds(scored_at: str) -> int:
    """``scored_at`` as UTC microseconds since the epoch: the runs' order, whatever zone the string has
    (one without a zone is taken as UTC)."""
    try:
        at = datetime.fromisoformat(scored_at)
    except ValueError as e:
        raise StorageError(f"scored_at {scored_at!r} is not an ISO 8601 time") from e
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


@dataclass
class ChunkRows:
    """One chunk's rows, column by column, in ``customer_id`` order."""

    customer_ids: list[str]
    model_versions: Iterable[str]  # the run's version repeated when the chunk has none
    probabilities: list[float]
    ranks: list[int]
    groups: list[str | None]
    layout: int
    details: list[bytes]

    def __len__(self) -> int:
        return len(self.customer_ids)


class RunRows:
    """A run's chunks as rows: the run's detail columns (its first chunk's), layouts and dictionary."""

    def __init__(self, model_version: str) -> None:
        self.model_version = model_version
        self.fields: list[str] | None = None  # the detail columns, in the first chunk's order
        self.layouts: dict[tuple[str, ...], int] = {}  # each distinct tuple of codecs, by its number
        self.texts = TextDictionary()

    def of(self, chunk: pd.DataFrame) -> ChunkRows:
        """The chunk's rows, each column converted at once, in customer_id order."""
        missing = [c for c in REQUIRED_COLUMNS if c not in chunk.columns]
        if missing:
            raise DataValidationError(
                [f"the chunk has no {c!r} column" for c in missing], source="the lookup"
            )
        ids = chunk["customer_id"]
        if ids.isna().any():
            raise DataValidationError(["a customer_id is missing"], source="the lookup")
        ids = ids.astype(str).to_numpy(dtype=object)
        order = np.argsort(ids, kind="stable")  # timsort: an already sorted chunk costs one pass
        versions: Iterable[str] = repeat(self.model_version, len(chunk))
        if "model_version" in chunk.columns:
            given = chunk["model_version"].fillna(self.model_version).astype(str)
            versions = given.to_numpy()[order].tolist()
        groups = chunk["group"]
        groups = groups.astype(str).where(groups.notna(), None).to_numpy(dtype=object)
        layout, details = self._details(chunk)
        return ChunkRows(
            ids[order].tolist(),
            versions,
            chunk["probability"].to_numpy(dtype="float64")[order].tolist(),
            chunk["rank"].to_numpy(dtype="int64")[order].tolist(),
            groups[order].tolist(),
            layout,
            details[order].tolist(),
        )

    def _details(self, chunk: pd.DataFrame) -> tuple[int, np.ndarray]:
        """The chunk's layout number and each row's detail (as an array of raw records, one a row)."""
        columns = {str(c): i for i, c in enumerate(chunk.columns) if c not in SCALAR_COLUMNS}
        if self.fields is None:
            self.fields = list(columns)
        elif set(columns) != set(self.fields):
            names, first = list(columns), self.fields
            raise DataValidationError(
                [f"a chunk has the detail columns {names}; the run's first chunk had {first}"],
                source="the lookup",
            )
        encoded = [encode_column(chunk.iloc[:, columns[name]], self.texts) for name in self.fields]
        codecs = tuple(codec for codec, _ in encoded)
        layout = self.layouts.setdefault(codecs, len(self.layouts))
        return layout, pack_rows(encoded, len(chunk))

    def new_values(self) -> list[tuple[int, str]]:
        """The dictionary's entries added since the last call, as (code, JSON text)."""
        return self.texts.unwritten()

    def fields_json(self) -> str:
        return orjson.dumps(self.fields or []).decode()

    def layouts_json(self) -> str:
        return orjson.dumps(list(self.layouts)).decode()  # in their numbers' order


class RunWriter:
    """What both stores' writers do alike: one scoring run's rows written in one transaction, used as a
    context manager (``__enter__`` is the store's: it takes the write lock and opens the run)::

        with writer as lookup:
            for chunk in chunks:
                lookup.add(chunk)

    Leaving the ``with`` commits the run (``_commit``: it also retires the dataset's runs beyond
    ``keep_runs``); an exception, or a chunk that failed, rolls everything back, so readers keep seeing
    the previous state. A store gives ``_write`` (one chunk's rows, returning how many), ``_commit``,
    ``_roll_back`` and the error it raises for a customer twice in a run (``DUPLICATE``)."""

    DUPLICATE: tuple[type[BaseException], ...] = ()

    def __init__(
        self,
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
        self.dataset, self.run_id, self.scored_at = dataset, run_id, scored_at
        self.model_version, self.keep_runs, self.timeout = model_version, keep_runs, timeout
        self._scored_us = microseconds(scored_at)
        self._conn: Any = None
        self._run_key = 0
        self._rows = 0
        self._run = RunRows(model_version)
        self._broken: BaseException | None = None

    def add(self, chunk: pd.DataFrame) -> None:
        """One chunk of the run's customers: ``customer_id``, ``probability``, ``rank``, ``group`` and
        optionally ``model_version`` (the run's when absent); every other column goes into ``detail``."""
        if self._conn is None:
            raise RuntimeError(f"{type(self).__name__}.add outside its with block")
        if self._broken is not None:
            raise StorageError("an earlier chunk of this run failed; the run will not be committed")
        if not len(chunk):
            return
        try:
            written = self._write(chunk)
        except self.DUPLICATE as e:
            self._broken = e
            raise duplicate(self.run_id, e) from e
        except BaseException as e:
            self._broken = e
            raise
        self._rows += written

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: Any) -> None:
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
            self._commit(conn)
        except BaseException:
            self._roll_back(conn)
            raise
        finally:
            conn.close()

    def _write(self, chunk: pd.DataFrame) -> int:
        raise NotImplementedError

    def _commit(self, conn: Any) -> None:
        raise NotImplementedError

    def _roll_back(self, conn: Any) -> None:
        """After a failed commit: roll back what is still open."""
        raise NotImplementedError


def duplicate(run_id: str, error: BaseException) -> DataValidationError:
    return DataValidationError(
        [f"a customer_id appears more than once in run {run_id!r} ({error})"], source="the lookup"
    )


def row_of(found: Sequence[Any], dataset: str, customer_id: str, dictionary: Dictionary) -> dict[str, Any]:
    """A stored row (run_key, the HISTORY_KEYS' values, fields, layouts, layout, detail) as a reader gives
    it: the scalars by name and the parsed ``detail``."""
    run_key, *scalars, fields, layouts, layout, detail = found
    return {
        "dataset": dataset,
        "customer_id": customer_id,
        **dict(zip(HISTORY_KEYS, scalars, strict=True)),
        "detail": detail_of(run_key, fields, layouts, layout, bytes(detail), dictionary),
    }


def detail_of(
    run_key: int, fields: str, layouts: str, layout: int, detail: bytes, dictionary: Dictionary
) -> dict[str, Any]:
    """A row's detail by name, its text codes looked up in its run's dictionary."""
    codecs, reading = layouts_of(layouts)[layout]
    values = [decode_value(codec, raw) for codec, raw in zip(codecs, reading.unpack(detail), strict=True)]
    texts = [i for i, codec in enumerate(codecs) if codec[0] == "t" and values[i] is not None]
    if texts:
        found = dictionary(run_key, {values[i] for i in texts})
        for i in texts:
            values[i] = found[values[i]]
    return dict(zip(fields_of(fields), values, strict=True))


def history_of(rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(HISTORY_KEYS, row, strict=True)) for row in rows]


def values_of(rows: Iterable[tuple[int, str]]) -> dict[int, Any]:
    """Dictionary rows (code, JSON text) as code -> value."""
    return {code: orjson.loads(value) for code, value in rows}
