"""Rows spilled to disk in buckets, to be read back one bucket at a time: how publish orders a file of
any size while holding only one bucket of it (remarketing.streamed_plan, remarketing.contact_file).

- :class:`RecordSpill`: fixed-width numbers (a numpy structured dtype), appended as raw bytes to one file
  per bucket and read back with ``numpy.fromfile``: nothing to encode, nothing to parse.
- :class:`TableSpill`: Arrow tables (text among them), one lz4-compressed Arrow IPC stream per bucket.

Both open a bucket's file at its first rows and keep it open until :meth:`close` (or the ``with`` block's
end); the caller bounds the number of buckets (:data:`MAX_BUCKETS`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow
import pyarrow.ipc

MAX_BUCKETS = 512  # files open at once, well under the usual limit of 1,024 descriptors


def bucket_bounds(bucket: np.ndarray, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows' order by bucket (stable: each bucket keeps the rows' order) and where each bucket's
    rows start in it (``bounds[b]:bounds[b + 1]``)."""
    order = np.argsort(bucket, kind="stable")
    return order, np.searchsorted(bucket[order], np.arange(buckets + 1))


class RecordSpill:
    """Records of ``dtype`` in ``buckets`` files under ``folder``."""

    def __init__(self, folder: Path, name: str, dtype: np.dtype, buckets: int) -> None:
        if not 0 < buckets <= MAX_BUCKETS:
            raise ValueError(f"buckets must be between 1 and {MAX_BUCKETS}, not {buckets}")
        self.dtype, self.buckets = np.dtype(dtype), buckets
        self._paths = [folder / f"{name}-{b:04d}.bin" for b in range(buckets)]
        self._files: dict[int, Any] = {}

    def add(self, records: np.ndarray, bucket: np.ndarray) -> None:
        order, bounds = bucket_bounds(bucket, self.buckets)
        records = records[order]
        for b in map(int, np.flatnonzero(np.diff(bounds))):
            if b not in self._files:
                self._files[b] = open(self._paths[b], "ab")  # noqa: SIM115 - closed by close()
            self._files[b].write(records[bounds[b] : bounds[b + 1]].tobytes())

    def read(self, b: int) -> np.ndarray:
        """Bucket ``b``'s records, in the order they were added."""
        self.close()
        path = self._paths[b]
        return np.fromfile(path, dtype=self.dtype) if path.exists() else np.empty(0, dtype=self.dtype)

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()

    def delete(self) -> None:
        """Remove the files (their disk is wanted back before the folder goes)."""
        self.close()
        for path in self._paths:
            path.unlink(missing_ok=True)

    def __enter__(self) -> RecordSpill:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class TableSpill:
    """Arrow tables of one schema in ``buckets`` files under ``folder``; a table whose columns have other
    types (a text column all empty in one chunk reads as numbers) is cast to the schema."""

    def __init__(self, folder: Path, name: str, schema: pyarrow.Schema, buckets: int) -> None:
        if not 0 < buckets <= MAX_BUCKETS:
            raise ValueError(f"buckets must be between 1 and {MAX_BUCKETS}, not {buckets}")
        self.schema, self.buckets = schema, buckets
        self._paths = [folder / f"{name}-{b:04d}.arrow" for b in range(buckets)]
        self._writers: dict[int, Any] = {}
        self._read = False  # a bucket's stream cannot be appended to once it was closed for reading
        # lz4: the buckets on disk take about a third of the rows' size as CSV
        self._options = pyarrow.ipc.IpcWriteOptions(compression="lz4")

    def add(self, table: pyarrow.Table, bucket: np.ndarray) -> None:
        if self._read:
            raise RuntimeError("TableSpill.add after a read: the buckets are complete")
        if not table.schema.equals(self.schema):
            table = table.select(self.schema.names).cast(self.schema)
        order, bounds = bucket_bounds(bucket, self.buckets)
        table = table.take(pyarrow.array(order))
        for b in map(int, np.flatnonzero(np.diff(bounds))):
            if b not in self._writers:
                path = str(self._paths[b])
                self._writers[b] = pyarrow.ipc.new_stream(path, self.schema, options=self._options)
            self._writers[b].write_table(table.slice(bounds[b], bounds[b + 1] - bounds[b]))

    def read(self, b: int) -> pyarrow.Table:
        """Bucket ``b``'s rows, in the order they were added."""
        self.close()
        self._read = True
        path = self._paths[b]
        if not path.exists():
            return self.schema.empty_table()
        with pyarrow.ipc.open_stream(pyarrow.memory_map(str(path))) as reader:
            return reader.read_all()

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def delete(self) -> None:
        """Remove the files (their disk is wanted back before the folder goes)."""
        self.close()
        for path in self._paths:
            path.unlink(missing_ok=True)

    def __enter__(self) -> TableSpill:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
