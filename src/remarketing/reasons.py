"""Reason codes: a customer's largest signed SHAP contributions, as data, and their sentence in the words
of the dataset spec ("no contact channel on file (lowers)"), made where the reason is shown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from remarketing.datasets import DatasetSpec

TOP = 3


def direction(contribution: float) -> str:
    return "raises" if contribution > 0 else "lowers"


@dataclass(frozen=True)
class Reason:
    field: str
    value: Any
    contribution: float  # calibrated log-odds

    @property
    def direction(self) -> str:
        return direction(self.contribution)

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "value": plain(self.value), "contribution": self.contribution}


def plain(value: Any) -> Any:
    """A cell as JSON carries it: numpy scalars as Python numbers (whole numbers as int)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def top_reasons(contributions: pd.DataFrame, rows: pd.DataFrame, k: int = TOP) -> list[list[Reason]]:
    """For each customer, the ``k`` contributions largest in size (zero contributions are no reason)."""
    values = contributions.to_numpy()
    fields = list(contributions.columns)
    order = np.argsort(-np.abs(values), axis=1, kind="stable")[:, :k]
    raw = rows[fields].to_numpy(dtype=object)
    return [
        [Reason(fields[j], raw[i, j], float(values[i, j])) for j in order[i] if values[i, j] != 0]
        for i in range(len(values))
    ]


def reason_columns(contributions: pd.DataFrame, rows: pd.DataFrame, k: int = TOP) -> dict[str, np.ndarray]:
    """:func:`top_reasons` as columns: ``reason_<i>_field``, ``reason_<i>_value`` (text, as the scored file
    shows it) and ``reason_<i>_contribution`` for i = 1..k, computed per field rather than per customer.
    A customer with fewer than ``k`` non-zero contributions has empty fields and 0.0 after them."""
    values = contributions.to_numpy(dtype="float64")
    fields = list(contributions.columns)
    n = len(values)
    order = np.argsort(-np.abs(values), axis=1, kind="stable")
    cells = {name: rows[name].to_numpy() for name in fields}  # worded only where a reason shows them
    out: dict[str, np.ndarray] = {}
    for i in range(k):
        field_out = np.full(n, "", dtype=object)
        value_out = np.full(n, "", dtype=object)
        contribution = np.zeros(n)
        if i < len(fields):
            column = order[:, i]
            contribution = values[np.arange(n), column]
            for j, name in enumerate(fields):
                mine = (column == j) & (contribution != 0)
                field_out[mine] = name
                value_out[mine] = _text(cells[name][mine])
        out[f"reason_{i + 1}_field"] = field_out
        out[f"reason_{i + 1}_value"] = value_out
        out[f"reason_{i + 1}_contribution"] = contribution
    return out


def _text(values: np.ndarray) -> np.ndarray:
    """Cells as the text :func:`plain` gives them (whole numbers without ``.0``)."""
    if values.dtype.kind in "iu":
        return values.astype(str).astype(object)
    if values.dtype.kind == "f":
        text = values.astype(str).astype(object)
        whole = (np.abs(values) < 2**53) & (values == np.round(values))  # exact in int64, as plain() is
        text[whole] = values[whole].astype("int64").astype(str)
        return text
    if pd.api.types.infer_dtype(values, skipna=False) == "string":
        return values.astype(object)
    return np.asarray([str(plain(v)) for v in values], dtype=object)


def sentence(spec: DatasetSpec, field: str, value: Any, direction: str) -> str:
    """``contacted in the last 30 days (raises)``; a field the spec does not know reads ``field=value``."""
    feature = spec.features.get(field)
    try:
        words = feature.describe(field, value) if feature else f"{field}={value}"
    except (TypeError, ValueError):  # a value the spec's template cannot format
        words = f"{(feature.label or field) if feature else field}: {value}"
    return f"{words} ({direction})"


def explain_rows(
    contributions: pd.DataFrame,
    rows: pd.DataFrame,
    base_value: float,
    probabilities: np.ndarray,
    k: int = TOP,
) -> list[dict[str, Any]]:
    """One explanation per customer: probability, base value, every contribution, and the top reasons
    (field, value and contribution each)."""
    reasons = top_reasons(contributions, rows, k)
    records = contributions.to_dict("records")
    return [
        {
            "probability": float(p),
            "base_value": base_value,
            "contributions": c,
            "reasons": [reason.as_dict() for reason in r],
        }
        for p, c, r in zip(probabilities, records, reasons, strict=True)
    ]
