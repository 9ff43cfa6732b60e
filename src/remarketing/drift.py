"""Per-feature drift of a scored file against the training rows: population stability index (PSI)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

EPSILON = 1e-4
OTHER = "__other__"


def reference_profile(rows: pd.DataFrame, features: list[str]) -> dict[str, Any]:
    """Numeric features: decile edges (unique) and the share of rows in each bin; categories: shares."""
    out: dict[str, Any] = {}
    for column in features:
        values = rows[column]
        if pd.api.types.is_numeric_dtype(values):
            edges = np.unique(np.quantile(values, np.linspace(0.1, 0.9, 9)))
            counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
            out[column] = {
                "type": "numeric",
                "edges": edges.tolist(),
                "shares": (counts / counts.sum()).tolist(),
                "mean": float(values.mean()),
            }
        else:
            out[column] = {"type": "category", "shares": values.value_counts(normalize=True).to_dict()}
    return out


class DriftCounter:
    """Accumulates a scored file's bin and category counts chunk by chunk (memory stays flat)."""

    def __init__(self, profile: dict[str, Any]) -> None:
        # A model registered before profiles had this shape has no usable reference: it is skipped.
        self.profile = {
            c: ref
            for c, ref in profile.items()
            if "shares" in ref and (ref["type"] != "numeric" or "edges" in ref)
        }
        self.skipped = sorted(set(profile) - set(self.profile))
        self.counts: dict[str, Any] = {}
        self.sums: dict[str, float] = {}
        self.rows = 0

    def add(self, chunk: pd.DataFrame) -> None:
        self.rows += len(chunk)
        for column, ref in self.profile.items():
            if column not in chunk.columns:
                continue
            values = chunk[column]
            if ref["type"] == "numeric":
                edges = np.asarray(ref["edges"])
                bins = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
                self.counts[column] = self.counts.get(column, 0) + bins
                self.sums[column] = self.sums.get(column, 0.0) + float(values.sum())
            else:
                known = values.where(values.isin(ref["shares"].keys()), OTHER)
                current = self.counts.setdefault(column, {})
                for key, count in known.value_counts().items():
                    current[key] = current.get(key, 0) + int(count)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {c: {"psi": None, "level": "no reference in the model"} for c in self.skipped}
        for column, ref in self.profile.items():
            if column not in self.counts or not self.rows:
                continue
            if ref["type"] == "numeric":
                expected = np.asarray(ref["shares"])
                actual = np.asarray(self.counts[column]) / self.rows
                extra = {"training_mean": ref["mean"], "mean": self.sums[column] / self.rows}
            else:
                keys = sorted(set(ref["shares"]) | set(self.counts[column]) | {OTHER})
                expected = np.asarray([ref["shares"].get(k, 0.0) for k in keys])
                actual = np.asarray([self.counts[column].get(k, 0) for k in keys]) / self.rows
                extra = {"unseen_share": float(self.counts[column].get(OTHER, 0) / self.rows)}
            psi = float(np.sum((actual - expected) * np.log((actual + EPSILON) / (expected + EPSILON))))
            out[column] = {"psi": round(psi, 4), "level": level(psi), **extra}
        return out


def level(psi: float) -> str:
    """The usual reading of PSI: below 0.1 stable, up to 0.25 moderate, above that a major shift."""
    return "stable" if psi < 0.1 else "moderate" if psi < 0.25 else "major"
