"""Ids repeated across the chunks of a streamed file, found in memory that does not grow with the file.

Each id is kept as a 64-bit hash (pandas' SipHash) with its row, appended to one of 64 files on disk by
the hash's top bits (remarketing.spill); at the end each file is sorted and checked alone (a sixty-fourth
of 16 bytes a row). A hash seen twice is confirmed on the ids themselves, which are read again from the
file for those rows only: a collision of two different ids is not a duplicate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from remarketing.spill import RecordSpill

BUCKETS = 64
_SHIFT = np.uint64(64 - (BUCKETS.bit_length() - 1))  # the hash's top bits choose the bucket
_PAIR = np.dtype([("hash", "<u8"), ("row", "<i8")])


class IdLedger:
    """Use as a context manager: its files are closed however the file's reading ends."""

    def __init__(self, folder: Path) -> None:
        self._spill = RecordSpill(folder, "ids", _PAIR, BUCKETS)

    def __enter__(self) -> IdLedger:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._spill.close()

    def add(self, ids: pd.Series) -> None:
        """The ids of one chunk, indexed by their 0-based data rows in the file."""
        pairs = np.empty(len(ids), dtype=_PAIR)
        pairs["hash"] = pd.util.hash_pandas_object(ids, index=False).to_numpy(dtype="uint64")
        pairs["row"] = ids.index.to_numpy(dtype="int64")
        self._spill.add(pairs, (pairs["hash"] >> _SHIFT).astype(np.intp))

    def repeated(self, ids_at: Callable[[np.ndarray], pd.Series]) -> pd.Series:
        """The rows whose id an earlier row already has (indexed by row, the id as value), in row order.
        ``ids_at(rows)`` reads the ids of those rows back from the file."""
        suspects = np.concatenate([_same_hash_rows(self._spill.read(b)) for b in range(BUCKETS)])
        if not len(suspects):
            return pd.Series(dtype=object)
        ids = ids_at(np.sort(suspects)).sort_index()
        return ids[ids.duplicated(keep="first")]


def _same_hash_rows(pairs: np.ndarray) -> np.ndarray:
    """The rows of one bucket whose hash another row of it shares."""
    hashes = np.sort(pairs["hash"])
    shared = np.unique(hashes[1:][hashes[1:] == hashes[:-1]])
    return pairs["row"][np.isin(pairs["hash"], shared)] if len(shared) else np.empty(0, "int64")


def ids_in_rows(chunks: Iterable[pd.Series], rows: np.ndarray) -> pd.Series:
    """The ids at ``rows`` (sorted) from a file's id column read again in chunks indexed by row."""
    wanted = pd.Index(rows)
    return pd.concat([c[c.index.isin(wanted)] for c in chunks] or [pd.Series(dtype=object)])
