"""The demo's data: bank-full split in time into a campaign history and a 'weekly' file of later
customers (outcome removed, ids added), and the actual outcome of the customers the run chose to call."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

HISTORY_SHARE = 0.8


@dataclass(frozen=True)
class DemoFiles:
    history: Path
    weekly: Path
    labels: Path
    history_rows: int
    weekly_rows: int


def prepare(source: Path, folder: Path) -> DemoFiles:
    """Write the history (first 80%, as the file is) and the weekly file (last 20%, ``y`` removed,
    ``customer_id`` added); the held-back outcomes go to a separate file, sent last (the campaign's
    outcomes, as the bank reports them)."""
    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.read_csv(source, sep=";", dtype=str, keep_default_na=False)
    cut = int(len(frame) * HISTORY_SHARE)
    history, later = frame.iloc[:cut], frame.iloc[cut:].copy()
    later.insert(0, "customer_id", [f"C{i + 1:06d}" for i in later.index])
    paths = DemoFiles(
        folder / "bank-history.csv",
        folder / "bank-weekly.csv",
        folder / "bank-weekly-outcomes.csv",
        len(history),
        len(later),
    )
    history.to_csv(paths.history, sep=";", index=False)
    later.drop(columns="y").to_csv(paths.weekly, sep=";", index=False)
    later[["customer_id", "y"]].to_csv(paths.labels, sep=";", index=False)  # the spec's format, as uploaded
    return paths


def actual_outcomes(predictions_csv: bytes, labels: Path) -> dict[str, Any]:
    """What really happened, read from the published predictions (as the predictions URL served them)
    and the held-back outcomes: the
    targeted customers' conversion against everyone's (the lift over calling at random), the ROC-AUC of
    the scores, and the conversion of each group."""
    from sklearn.metrics import roc_auc_score

    from remarketing.evaluation import conversion_of_top, top_n

    scored = pd.read_csv(io.BytesIO(predictions_csv), dtype={"customer_id": str})
    outcome = pd.read_csv(labels, sep=";", dtype=str)
    joined = scored.merge(outcome, on="customer_id", how="inner")
    converted = (joined["y"] == "yes").to_numpy()
    targeted = (joined["group"] == "targeted").to_numpy()
    base = float(converted.mean())
    rate = float(converted[targeted].mean()) if targeted.any() else 0.0
    return {
        "customers": len(joined),
        "targeted": int(targeted.sum()),
        "conversions_targeted": int(converted[targeted].sum()),
        "conversion_rate_targeted": rate,
        "base_rate": base,
        "lift": rate / base,
        "roc_auc": float(roc_auc_score(converted, joined["probability"])),
        "precision_at_10pct": conversion_of_top(
            converted, joined["probability"].to_numpy(), top_n(converted, 0.1)
        ),
        "conversion_rate_by_group": {
            g: float(converted[(joined["group"] == g).to_numpy()].mean())
            for g in ("targeted", "holdout", "explore", "not_selected")
            if (joined["group"] == g).any()
        },
    }
