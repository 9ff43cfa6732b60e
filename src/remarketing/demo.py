"""The demo's data: bank-full split in time into a campaign history and a 'weekly' file of later
customers (outcome removed, ids added), and the actual outcome of the customers the run chose to call."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from remarketing.settings import Settings
from remarketing.storage import Storage

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
    ``customer_id`` added); the held-back outcomes go to a separate file, never uploaded."""
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
    later[["customer_id", "y"]].to_csv(paths.labels, index=False)
    return paths


def actual_conversion(settings: Settings, predictions_uri: str, labels: Path) -> dict[str, Any]:
    """What really happened to the contacted customers, read from the published predictions."""
    scored = pd.read_csv(
        io.BytesIO(Storage(settings).read_bytes(predictions_uri)), dtype={"customer_id": str}
    )
    outcome = pd.read_csv(labels, dtype=str)
    joined = scored.merge(outcome, on="customer_id", how="inner")
    converted = joined["y"] == "yes"
    return {
        "contacted": int(joined["contact"].sum()),
        "conversion_rate_contacted": float(converted[joined["contact"]].mean()),
        "base_rate": float(converted.mean()),
    }
