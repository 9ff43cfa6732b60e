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
