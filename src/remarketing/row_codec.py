"""How the customer lookup table (:mod:`remarketing.customer_lookup`) stores a row's detail: every value
side by side in one BLOB, each column in a codec chosen from its chunk's dtype, packed by numpy for a
whole chunk at once and read back for one row by ``struct``.

- ``f8``/``f4``: floats as they are (NaN and infinities read back as None);
- ``i1``/``i2``/``i4``/``i8``: integers in the narrowest width that holds the chunk's values, its lowest
  number kept for a missing one; a column that needs int64's lowest (or a uint64 above int64's highest)
  is coded as text, exactly;
- ``b1``: booleans, 0 or 1, -1 missing;
- ``t1``/``t2``/``t4``: anything else (text, timestamps, categories, mixed values) as a code into the
  run's :class:`TextDictionary`: each distinct value once, as JSON text (so 5 stays a number and "5"
  text); code 0 is a missing value.
"""

from __future__ import annotations

import math
import struct
from datetime import date
from functools import lru_cache
from typing import Any

import numpy as np
import orjson
import pandas as pd

# Each codec: the numpy type of its bytes in a row's detail (little-endian, no padding) and the struct
# letter that reads them back. The kind is its first letter, its width in bytes the digit.
CODECS = {
    "f4": ("<f4", "f"),
    "f8": ("<f8", "d"),
    "i1": ("<i1", "b"),
    "i2": ("<i2", "h"),
    "i4": ("<i4", "i"),
    "i8": ("<i8", "q"),
    "b1": ("<i1", "b"),
    "t1": ("<u1", "B"),
    "t2": ("<u2", "H"),
    "t4": ("<u4", "I"),
}
_MISSING_INTEGER = {f"i{w}": int(np.iinfo(f"i{w}").min) for w in (1, 2, 4, 8)}  # each width's lowest
_MISSING_BOOL = -1
_MISSING_JSON = "null"  # a missing value among a text column's values: code 0, not a dictionary entry
_INT64_MAX = int(np.iinfo("i8").max)


class TextDictionary:
    """A run's distinct text values, each as JSON text numbered from 1 (0 is a missing value); those not
    yet written to ``run_values`` wait in :meth:`unwritten`."""

    def __init__(self) -> None:
        self._codes: dict[str, int] = {}
        self._unwritten: list[tuple[int, str]] = []

    def codes_of(self, texts: list[str]) -> np.ndarray:
        return np.fromiter((self._code(t) for t in texts), dtype=np.uint32, count=len(texts))

    def _code(self, text: str) -> int:
        if text == _MISSING_JSON:
            return 0
        code = self._codes.get(text)
        if code is None:
            code = self._codes[text] = len(self._codes) + 1
            self._unwritten.append((code, text))
        return code

    def unwritten(self) -> list[tuple[int, str]]:
        """The entries added since the last call, as (code, JSON text)."""
        entries, self._unwritten = self._unwritten, []
        return entries


def encode_column(column: pd.Series, texts: TextDictionary) -> tuple[str, np.ndarray]:
    """A chunk's column as its codec and the values that codec stores, one per row."""
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _text_codes(column, texts)  # its categories are its values, whatever their type
    if pd.api.types.is_bool_dtype(dtype):
        return "b1", column.to_numpy(dtype="int8", na_value=_MISSING_BOOL)
    if pd.api.types.is_integer_dtype(dtype):
        return _integers(column) or _text_codes(column, texts)
    if pd.api.types.is_float_dtype(dtype) and dtype.itemsize <= 8:
        bits = 32 if dtype.itemsize <= 4 else 64  # a float32 as float32: its own value, not a wider one
        return f"f{bits // 8}", column.to_numpy(dtype=f"float{bits}", na_value=np.nan)
    return _text_codes(column, texts)


def _integers(column: pd.Series) -> tuple[str, np.ndarray] | None:
    """The narrowest integer codec that holds the chunk's values with its lowest number left for a
    missing one; None when no width does (int64's lowest, or a uint64 above int64's highest)."""
    missing = column.isna().to_numpy()
    present = column[~missing]
    low, high = (int(present.min()), int(present.max())) if len(present) else (0, 0)
    if high > _INT64_MAX:
        return None
    values = column.to_numpy(dtype="int64", na_value=0)
    for codec, lowest in _MISSING_INTEGER.items():
        if lowest < low and high <= -lowest - 1:
            return codec, np.where(missing, lowest, values)
    return None


def _text_codes(column: pd.Series, texts: TextDictionary) -> tuple[str, np.ndarray]:
    """A column as codes into the run's dictionary, in the narrowest width that holds the chunk's."""
    row_codes, distinct = _distinct(column)
    codes = np.append(texts.codes_of(distinct), np.uint32(0))[row_codes]  # -1 (missing) takes the last: 0
    largest = int(codes.max())
    width = next(w for w in (1, 2, 4) if largest < 1 << (8 * w))
    return f"t{width}", codes


def _distinct(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Each row's index into the column's distinct values (-1 missing), and each value as JSON text."""
    if column.dtype == object and pd.api.types.infer_dtype(column, skipna=True) not in ("string", "empty"):
        # Mixed values: 1, 1.0 and True are one key to a hash table but three values in JSON, so each
        # row's value is encoded before it is counted (a Python call a row, for such columns only).
        row_codes, distinct = pd.factorize(np.array([_json(v) for v in column.tolist()], dtype=object))
        return row_codes, distinct.tolist()
    row_codes, distinct = pd.factorize(column)  # text only (or dates, categories): equal is equal in JSON
    return row_codes, [_json(v) for v in np.asarray(distinct, dtype=object).tolist()]


def _json(value: Any) -> str:
    return orjson.dumps(value, default=_jsonable, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _jsonable(value: Any) -> Any:
    """What orjson does not encode itself: pandas' missing values, its timestamps, anything else as text."""
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, date | pd.Timedelta):
        return value.isoformat()
    return str(value)


def pack_rows(columns: list[tuple[str, np.ndarray]], rows: int) -> np.ndarray:
    """Each row's detail as one raw record (``.tolist()`` makes them bytes): its values side by side in
    their codecs' widths, no padding."""
    if not columns:
        return np.full(rows, b"", dtype=object)
    record = np.dtype([(f"v{i}", CODECS[codec][0]) for i, (codec, _) in enumerate(columns)])
    packed = np.empty(rows, dtype=record)
    for i, (_, values) in enumerate(columns):
        packed[f"v{i}"] = values
    return packed.view(f"V{record.itemsize}")


@lru_cache(maxsize=64)
def layouts_of(layouts: str) -> list[tuple[tuple[str, ...], struct.Struct]]:
    """A run's layouts (its ``layouts`` column), each as its codecs and the struct that reads a row."""
    return [
        (tuple(codecs), struct.Struct("<" + "".join(CODECS[c][1] for c in codecs)))
        for codecs in orjson.loads(layouts)
    ]


@lru_cache(maxsize=64)
def fields_of(fields: str) -> tuple[str, ...]:
    return tuple(orjson.loads(fields))


def decode_value(codec: str, raw: Any) -> Any:
    """One stored value as the chunk gave it; a text code stays a code (0 for missing: None)."""
    kind = codec[0]
    if kind == "f":
        return raw if math.isfinite(raw) else None
    if kind == "i":
        return None if raw == _MISSING_INTEGER[codec] else raw
    if kind == "b":
        return None if raw == _MISSING_BOOL else bool(raw)
    return raw or None
