"""``predictions.csv``: the contact list best first, each customer with its group and worded reasons.

A file of any size is written without holding every customer's row. Ranking needs every probability at
once; a row's text (its id, its reasons) does not. So publish reads the scored chunks three times:

1. :func:`rank_file`: the numbers alone (probability, arm, the random draw of :func:`contacts.uniform`)
   give every customer's plan (rank, decile, group) and line in the file: about 40 bytes a customer;
2. :func:`write_ranked`: each chunk's rows in full, worded and escaped, go to disk in buckets of
   consecutive lines (an Arrow dataset partitioned by bucket, so Arrow does the sorting into buckets);
3. then each bucket in turn, sorted by line, is appended to the CSV.

Peak memory: the numbers, one chunk and one bucket. :func:`contact_list` is the same list in memory.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.compute as pc

from remarketing import contacts
from remarketing.datasets import DatasetSpec
from remarketing.errors import RemarketingError
from remarketing.ports import CHALLENGER, CHAMPION

FORMULA_PREFIXES = ("=", "+", "-", "@")
FORMULA_FIRST = pyarrow.array(FORMULA_PREFIXES)
REASONS = (1, 2, 3)
REASON_PARTS = [f"reason_{k}_{part}" for k in REASONS for part in ("field", "value", "contribution")]
SCORED_COLUMNS = ["customer_id", "arm", "model_version", "probability", *REASON_PARTS]  # what it reads
PREDICTION_COLUMNS = [
    "customer_id",
    "probability",
    "rank",
    "decile",
    "contact",
    "group",
    "group_probability",
    *(f"reason_{k}" for k in REASONS),
    *(f"reason_{k}_{part}" for k in REASONS for part in ("field", "value")),
    "arm",  # champion, or in an experiment the customer's arm (challenger)
    "model_version",  # the version that scored the customer (its arm's)
]
TEXT_COLUMNS = {
    "customer_id",
    "contact",
    "group",
    *(f"reason_{k}" for k in REASONS),
    *(f"reason_{k}_{part}" for k in REASONS for part in ("field", "value")),
    "arm",
    "model_version",
}
ARMS = tuple(sorted((CHALLENGER, CHAMPION)))  # customers of the same rank in two arms: in this order
BUCKET_ROWS = 50_000  # lines per bucket, at least
MAX_BUCKETS = 256  # files open while the buckets are written
_LINE, _BUCKET = "__line", "__bucket"


# --- cells --------------------------------------------------------------------------------------------


def escape_cells(frame: pd.DataFrame) -> pyarrow.Table:
    """``frame`` as an Arrow table ready for a spreadsheet: text cells that it would run as a formula
    (= + - @) get a leading apostrophe, numbers are left alone (floats rounded to 6 decimals), booleans
    read True/False. Vectorised in Arrow: a million rows in well under a second."""
    columns = {}
    for name in frame.columns:
        values = frame[name]
        if values.dtype == bool:
            column = pc.if_else(pyarrow.array(values.to_numpy()), "True", "False")
        elif values.dtype.kind == "f":
            column = pc.round(pyarrow.array(values.to_numpy(), from_pandas=True), 6)  # NaN: empty
        elif values.dtype.kind in "iu":
            column = pyarrow.array(values.to_numpy())
        else:
            try:  # None, NaN and pd.NA are written as empty cells
                column = pyarrow.array(values, type=pyarrow.string(), from_pandas=True)
            except (pyarrow.ArrowInvalid, pyarrow.ArrowTypeError):  # numbers among the text
                column = pyarrow.array(values.astype(str).to_numpy(dtype=object), type=pyarrow.string())
            formula = pc.is_in(pc.utf8_slice_codeunits(column, 0, 1), value_set=FORMULA_FIRST)
            column = pc.if_else(formula, pc.binary_join_element_wise("'", column, ""), column)
        columns[str(name)] = column
    return pyarrow.table(columns)


def _write_header(names: list[str], out: Any) -> None:
    out.write((",".join(names) + "\n").encode())  # unquoted: the file starts customer_id,probability,...


def _append_csv(table: pyarrow.Table, out: Any) -> None:
    import pyarrow.csv as arrow_csv

    arrow_csv.write_csv(table, out, arrow_csv.WriteOptions(include_header=False))


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """``frame`` escaped (:func:`escape_cells`) as CSV, through Arrow's writer (about 4x pandas' with a
    float format). Text is quoted; the header is not, so the file starts ``customer_id,probability,...``."""
    table = escape_cells(frame)
    with open(path, "wb") as out:
        _write_header(table.column_names, out)
        _append_csv(table, out)


def unescape(value: str) -> str:
    """A cell as it was before :func:`escape_cells` (the API answers with the customer's own id)."""
    return value[1:] if value.startswith("'") and value[1:2] in FORMULA_PREFIXES else value


def reason_sentences(spec: DatasetSpec, scored: pd.DataFrame) -> pd.DataFrame:
    """``reason_1..3`` in the spec's words, from each reason's field, value and contribution: each distinct
    (field, value, direction) is worded once and spread to its customers by its code."""
    from remarketing.reasons import direction, sentence

    out = pd.DataFrame(index=scored.index)
    for k in REASONS:
        # one integer key per (field, value, raises): factorizing integers is fast, tuples are not
        field_codes, fields = pd.factorize(scored[f"reason_{k}_field"].fillna(""))
        value_codes, values = pd.factorize(scored[f"reason_{k}_value"].fillna(""))
        raises = scored[f"reason_{k}_contribution"].to_numpy() > 0
        codes, keys = pd.factorize((field_codes * len(values) + value_codes) * 2 + raises)
        words = []
        for key in keys:
            pair, up = divmod(int(key), 2)
            field, value = fields[pair // len(values)], values[pair % len(values)]
            words.append(sentence(spec, field, value, direction(1.0 if up else -1.0)) if field else "")
        out[f"reason_{k}"] = np.asarray(words, dtype=object)[codes] if words else ""
    return out


# --- the ranking ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ranking:
    """Every customer's plan, in the file's order, and the line each one gets in predictions.csv."""

    probability: np.ndarray
    arm: np.ndarray  # index into ARMS
    plan: pd.DataFrame  # contacts.assign's columns (group as a category)
    line: np.ndarray  # 0: the best customer

    def __len__(self) -> int:
        return len(self.probability)


def arm_codes(arms: pd.Series) -> np.ndarray:
    """Each row's arm as its index in :data:`ARMS` (int8); an arm that is neither is refused."""
    codes = pd.Categorical(arms, categories=ARMS).codes
    if (codes < 0).any():
        unknown = sorted(set(np.asarray(arms)[codes < 0].astype(str)))
        raise RemarketingError(f"scored rows name an arm that is neither of {ARMS}: {', '.join(unknown)}")
    return codes.astype("int8")


def ranking(probability: np.ndarray, draws: np.ndarray, arm: np.ndarray, policy: contacts.Policy) -> Ranking:
    """The plan and each customer's line: by rank, then arm. In an experiment each arm ranks its own
    customers and picks its contacts within its arm, at the same budget share (ranks and deciles are
    within the arm)."""
    from remarketing.experiments import split_budget

    present = np.unique(arm)
    if len(present) < 2:
        plan = contacts.assign_drawn(draws, probability, policy)
    else:
        budgets = split_budget(policy.budget, {ARMS[k]: int((arm == k).sum()) for k in present})
        parts = []
        for k in present:
            mine = np.flatnonzero(arm == k)
            part = contacts.assign_drawn(
                draws[mine], probability[mine], replace(policy, budget=budgets[ARMS[k]])
            )
            parts.append(part.set_index(mine))
        plan = pd.concat(parts).sort_index()
    plan["decile"] = plan["decile"].astype("int8")  # column by column: no copy of the whole plan
    plan["group"] = pd.Categorical(plan["group"], categories=contacts.GROUPS)
    order = np.lexsort((arm, plan["rank"].to_numpy()))
    line = np.empty(len(order), dtype="int64")
    line[order] = np.arange(len(order))
    return Ranking(probability, arm, plan, line)


def rank_file(frames: Iterable[pd.DataFrame], policy: contacts.Policy, rows: int) -> Ranking:
    """Pass 1: the ranking of a file of ``rows`` rows, read as chunks with ``customer_id``, ``arm`` and
    ``probability`` (filled into arrays of the file's length: no second copy to concatenate)."""
    probability, draws, arm = np.empty(rows), np.empty(rows), np.empty(rows, dtype="int8")
    start = 0
    for frame in frames:
        end = start + len(frame)
        if end > rows:
            raise RemarketingError(f"the scored file has more than the {rows:,} rows it was counted with")
        probability[start:end] = frame["probability"].to_numpy(dtype="float64")
        draws[start:end] = contacts.uniform(frame["customer_id"], policy.seed, policy.key)
        arm[start:end] = arm_codes(frame["arm"])
        start = end
    if start != rows:
        raise RemarketingError(f"the scored file has {start:,} rows, not the {rows:,} it was counted with")
    return ranking(probability, draws, arm, policy)


def rows_of(spec: DatasetSpec, scored: pd.DataFrame, plan: pd.DataFrame) -> pd.DataFrame:
    """The predictions.csv rows of some scored customers (in their order) with their plan's rows."""
    scored = scored.reset_index(drop=True)
    plan = plan.reset_index(drop=True).astype({"group": object, "decile": "int64"})
    return pd.concat([scored, plan, reason_sentences(spec, scored)], axis=1)[PREDICTION_COLUMNS]


def contact_list(
    spec: DatasetSpec, customers: pd.DataFrame, policy: contacts.Policy
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """In memory: ``predictions.csv``'s rows, best first (the arms interleaved rank by rank), and the
    groups in the customers' own order. Publish writes the same rows through :func:`write_ranked`; this
    is the reference its tests compare with."""
    draws = contacts.uniform(customers["customer_id"], policy.seed, policy.key)
    ranked = ranking(
        customers["probability"].to_numpy(dtype="float64"), draws, arm_codes(customers["arm"]), policy
    )
    rows = rows_of(spec, customers, ranked.plan)
    plan = ranked.plan.astype({"group": object}).set_axis(customers.index)
    return rows.take(np.argsort(ranked.line)), plan


def write_ranked(
    spec: DatasetSpec,
    chunks: Iterable[pd.DataFrame],
    ranked: Ranking,
    path: Path,
    *,
    bucket_rows: int = BUCKET_ROWS,
) -> None:
    """Passes 2 and 3: ``chunks`` (the scored file again, with :data:`SCORED_COLUMNS`, in the order
    :func:`rank_file` read it) written to ``path`` as predictions.csv, best first."""
    import pyarrow.dataset as ds

    size = max(bucket_rows, -(-len(ranked) // MAX_BUCKETS))
    partitioning = ds.partitioning(pyarrow.schema([(_BUCKET, pyarrow.int64())]))
    with tempfile.TemporaryDirectory(dir=path.parent, prefix="buckets-") as buckets:
        tables = _bucketed(spec, chunks, ranked, size)
        first = next(tables, None)
        if first is not None:
            batches = (b for t in _same_schema(first, tables) for b in t.to_batches())
            ds.write_dataset(
                pyarrow.RecordBatchReader.from_batches(_text_schema(first), batches),
                buckets,
                format="arrow",
                # lz4: the buckets on disk beside the CSV take about a third of its size, not all of it
                file_options=ds.IpcFileFormat().make_write_options(compression="lz4"),
                partitioning=partitioning,
                max_open_files=MAX_BUCKETS + 1,
            )
        dataset = ds.dataset(buckets, format="arrow", partitioning=partitioning)
        with open(path, "wb") as out:
            _write_header(PREDICTION_COLUMNS, out)
            for bucket in range(-(-len(ranked) // size)):
                table = dataset.to_table(filter=ds.field(_BUCKET) == bucket)
                table = table.take(pc.sort_indices(table[_LINE])).drop_columns([_LINE, _BUCKET])
                _append_csv(table.select(PREDICTION_COLUMNS), out)


def _bucketed(
    spec: DatasetSpec, chunks: Iterable[pd.DataFrame], ranked: Ranking, size: int
) -> Iterator[pyarrow.Table]:
    start = 0
    for chunk in chunks:
        end = start + len(chunk)
        if end > len(ranked):
            raise RemarketingError("the scored file has more rows than when it was ranked")
        table = escape_cells(rows_of(spec, chunk, ranked.plan.iloc[start:end]))
        lines = ranked.line[start:end]
        yield table.append_column(_LINE, pyarrow.array(lines)).append_column(
            _BUCKET, pyarrow.array(lines // size)
        )
        start = end
    if start != len(ranked):
        raise RemarketingError("the scored file has fewer rows than when it was ranked")


def _text_schema(table: pyarrow.Table) -> pyarrow.Schema:
    """The chunk's schema with every text column of predictions.csv typed as text (a chunk where one is
    all empty may have it as numbers), so that every chunk has the same."""
    fields = [
        f.with_type(pyarrow.string()) if f.name in TEXT_COLUMNS and not pyarrow.types.is_string(f.type) else f
        for f in table.schema
    ]
    return pyarrow.schema(fields)


def _same_schema(first: pyarrow.Table, rest: Iterator[pyarrow.Table]) -> Iterator[pyarrow.Table]:
    schema = _text_schema(first)
    for table in itertools.chain([first], rest):
        yield table if table.schema.equals(schema) else table.cast(schema)


def experiment_summary(arms: Any, ranked: Ranking) -> dict[str, Any] | None:
    """Each arm's customers, calls and expected conversions, for the manifest and the run record."""
    if arms.experiment_id is None:
        return None
    called = ranked.plan["contact"].to_numpy(dtype=bool)
    out: dict[str, Any] = {"experiment_id": arms.experiment_id, "share": arms.share, "arms": {}}
    for arm, model in arms.models.items():
        mine = ranked.arm == ARMS.index(arm)
        out["arms"][arm] = {
            "version": model.version,
            "customers": int(mine.sum()),
            "calls": int(called[mine].sum()),
            "expected_conversions": float(ranked.probability[mine & called].sum()),
        }
    return out
