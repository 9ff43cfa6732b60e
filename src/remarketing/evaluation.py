"""Campaign metrics: how well a model ranks customers, and what calling the top of the list yields."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

TOP_SHARES = (0.10, 0.20)
CALIBRATION_BINS = 10
# Higher is better for every metric except these (the "worst" of a backtest is then the largest).
LOWER_IS_BETTER = frozenset({"brier", "calibration_error"})
# The figures a model is judged on, in the order people read them (run record, CLI, MLflow, pages).
HEADLINE = (
    "roc_auc",
    "pr_auc",
    "precision_at_10pct",
    "lift_at_10pct",
    "precision_at_budget",
    "lift_at_budget",
    "calibration_error",
    "brier",
)


def top_n(probabilities: np.ndarray, share: float) -> int:
    return max(1, int(round(len(probabilities) * share)))


def top_order(probabilities: np.ndarray, n: int) -> np.ndarray:
    """Positions of the ``n`` highest-scored customers (ties broken by position)."""
    return np.argsort(-np.asarray(probabilities), kind="stable")[:n]


def conversion_of_top(labels: np.ndarray, probabilities: np.ndarray, n: int) -> float:
    """The conversion rate among the ``n`` highest-scored customers."""
    return float(np.asarray(labels)[top_order(probabilities, n)].mean())


def calibration_error(labels: np.ndarray, probabilities: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """Expected calibration error: over ``bins`` groups of equal size by score (so the plain mean is the
    size-weighted one), the mean absolute gap between the predicted and the actual conversion rate."""
    order = np.argsort(probabilities, kind="stable")
    gaps = [
        abs(float(np.mean(probabilities[part])) - float(np.mean(labels[part])))
        for part in np.array_split(order, min(bins, len(order)))
        if len(part)
    ]
    return float(np.mean(gaps))


def campaign_metrics(labels: np.ndarray, probabilities: np.ndarray, *, budget: int) -> dict[str, float]:
    """ROC-AUC, PR-AUC, precision and lift in the top 10% and 20% and at the ``budget`` (the top
    ``budget`` customers called), calibration error, Brier score, and the base rate."""
    labels = np.asarray(labels, dtype="float64")
    probabilities = np.asarray(probabilities, dtype="float64")
    if len(np.unique(labels)) < 2:
        raise ValueError("metrics need both outcomes among the rows (all customers have the same label)")
    base = float(labels.mean())
    metrics = {
        "roc_auc": float(roc_auc_score(labels, probabilities)),
        "pr_auc": float(average_precision_score(labels, probabilities)),
        "brier": float(brier_score_loss(labels, probabilities)),
        "calibration_error": calibration_error(labels, probabilities),
        "base_rate": base,
        "rows": float(len(labels)),
    }
    for share in TOP_SHARES:
        pct = f"{int(share * 100)}pct"
        precision = conversion_of_top(labels, probabilities, top_n(probabilities, share))
        metrics[f"precision_at_{pct}"] = precision
        metrics[f"lift_at_{pct}"] = precision / base
    n = min(budget, len(labels))
    metrics["budget"] = float(n)
    metrics["precision_at_budget"] = conversion_of_top(labels, probabilities, n)
    metrics["lift_at_budget"] = metrics["precision_at_budget"] / base
    metrics["expected_precision_at_budget"] = float(probabilities[top_order(probabilities, n)].mean())
    return metrics
