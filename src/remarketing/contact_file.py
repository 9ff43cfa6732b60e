"""``predictions.csv``: the contact list best first, each customer with its group and worded reasons.

A file of any size is written without holding every customer's row. Each customer's plan and line in the
file come from :mod:`remarketing.streamed_plan` (ranked out of memory); publish then reads the scored
chunks once more and gives each chunk's rows, worded and escaped, to :class:`RankedCsv`, which spills them
to disk in buckets of consecutive lines and appends each bucket, sorted by line, to the CSV. Peak memory:
one chunk and one bucket. :func:`contact_list` is the same list made in memory (the tests' reference).
"""

from __future__ import annotations

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
from remarketing.spill import MAX_BUCKETS, TableSpill
from remarketing.streamed_plan import ARMS, BUCKET_ROWS, arm_codes

FORMULA_PREFIXES = ("=", "+", "-", "@")
FORMULA_FIRST = pyarrow.array(FORMULA_PREFIXES)
REASONS = (1, 2, 3)
_LINE = "__line"  # each spilled row's line in the file
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
            if pc.any(formula).as_py():  # most columns have none: the join is most of the cost
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


# --- the list in memory (the reference) ------------------------------------------------------------------


@dataclass(frozen=True)
class Ranking:
    """Every customer's plan, in the file's order, and the line each one gets in predictions.csv."""

    probability: np.ndarray
    arm: np.ndarray  # index into ARMS
    plan: pd.DataFrame  # contacts.assign's columns (group as a category)
    line: np.ndarray  # 0: the best customer

    def __len__(self) -> int:
        return len(self.probability)


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


# --- the list from disk ------------------------------------------------------------------------------------


class RankedCsv:
    """predictions.csv from rows given in any order with their lines: spilled to disk in buckets of
    consecutive lines (lz4 Arrow files, beside the CSV), then each bucket sorted and appended."""

    def __init__(self, folder: Path, rows: int, *, bucket_rows: int = BUCKET_ROWS) -> None:
        self.folder, self.rows = folder, rows
        self.size = max(bucket_rows, -(-rows // MAX_BUCKETS))  # lines per bucket
        self._spill: TableSpill | None = None
        self._added = 0

    def add(self, rows: pd.DataFrame, lines: np.ndarray) -> None:
        """Some customers' rows (:func:`rows_of`) and their lines (0-based, best first)."""
        if self._added + len(rows) > self.rows:
            raise RemarketingError("the scored file has more rows than when it was ranked")
        table = escape_cells(rows).append_column(_LINE, pyarrow.array(lines, type=pyarrow.int64()))
        if self._spill is None:
            self._spill = TableSpill(self.folder, "lines", _text_schema(table), -(-self.rows // self.size))
        self._spill.add(table, np.asarray(lines) // self.size)
        self._added += len(rows)

    def write(self, path: Path) -> None:
        if self._added != self.rows:
            raise RemarketingError("the scored file has fewer rows than when it was ranked")
        with open(path, "wb") as out:
            _write_header(PREDICTION_COLUMNS, out)
            for bucket in range(self._spill.buckets if self._spill else 0):
                table = self._spill.read(bucket)  # type: ignore[union-attr]
                table = table.take(pc.sort_indices(table[_LINE])).drop_columns([_LINE])
                _append_csv(table.select(PREDICTION_COLUMNS), out)
        if self._spill is not None:
            self._spill.delete()  # the buckets' disk back before the CSV is uploaded


def _text_schema(table: pyarrow.Table) -> pyarrow.Schema:
    """The chunk's schema with every text column of predictions.csv typed as text (a chunk where one is
    all empty may have it as numbers), so that every chunk has the same."""
    fields = [
        f.with_type(pyarrow.string()) if f.name in TEXT_COLUMNS and not pyarrow.types.is_string(f.type) else f
        for f in table.schema
    ]
    return pyarrow.schema(fields)


def experiment_summary(arms: Any, totals: dict[str, contacts.Totals]) -> dict[str, Any] | None:
    """Each arm's customers, calls and expected conversions (``totals`` by arm), for the manifest and the
    run record."""
    if arms.experiment_id is None:
        return None
    out: dict[str, Any] = {"experiment_id": arms.experiment_id, "share": arms.share, "arms": {}}
    for arm, model in arms.models.items():
        mine = totals.get(arm, contacts.Totals())
        out["arms"][arm] = {
            "version": model.version,
            "customers": mine.count(*contacts.GROUPS),
            "calls": mine.count(*contacts.CALLED),
            "expected_conversions": mine.expected(*contacts.CALLED),
        }
    return out
