"""Reason codes: the top signed SHAP contributions of a customer, in words a marketer reads."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

TOP = 3


def _shown(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"{value:g}"
    return str(value)


def reason(field: str, value: Any, contribution: float) -> str:
    """``poutcome=success raises`` / ``campaign=7 lowers``."""
    return f"{field}={_shown(value)} {'raises' if contribution > 0 else 'lowers'}"


def top_reasons(contributions: pd.DataFrame, rows: pd.DataFrame, k: int = TOP) -> list[list[str]]:
    """For each customer, the ``k`` contributions largest in size, as reason texts (vectorised)."""
    values = contributions.to_numpy()
    fields = np.asarray(contributions.columns)
    order = np.argsort(-np.abs(values), axis=1, kind="stable")[:, :k]
    raw = rows[list(contributions.columns)].to_numpy(dtype=object)
    out = []
    for i in range(len(values)):
        out.append([reason(fields[j], raw[i, j], values[i, j]) for j in order[i] if values[i, j] != 0])
    return out


def explain_rows(
    contributions: pd.DataFrame,
    rows: pd.DataFrame,
    base_value: float,
    probabilities: np.ndarray,
    k: int = TOP,
) -> list[dict[str, Any]]:
    """One explanation per customer: probability, base value, every contribution, and the top reasons."""
    reasons = top_reasons(contributions, rows, k)
    records = contributions.to_dict("records")
    return [
        {"probability": float(p), "base_value": base_value, "contributions": c, "reasons": r}
        for p, c, r in zip(probabilities, records, reasons, strict=True)
    ]
