"""Campaign metrics: how well a model ranks customers, and what calling the top of the list yields."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

TOP_SHARES = (0.10, 0.20)


def top_n(probabilities: np.ndarray, share: float) -> int:
    return max(1, int(round(len(probabilities) * share)))


def conversion_of_top(labels: np.ndarray, probabilities: np.ndarray, n: int) -> float:
    """The conversion rate among the ``n`` highest-scored customers (ties broken by position)."""
    order = np.argsort(-probabilities, kind="stable")[:n]
    return float(labels[order].mean())


def campaign_metrics(labels: np.ndarray, probabilities: np.ndarray, *, budget: int) -> dict[str, float]:
    """ROC-AUC, PR-AUC, precision and lift in the top 10% and 20%, Brier score, and the conversion rate
    if the top ``budget`` customers are called, beside the base rate."""
    labels = np.asarray(labels, dtype="float64")
    probabilities = np.asarray(probabilities, dtype="float64")
    if len(np.unique(labels)) < 2:
        raise ValueError("metrics need both outcomes among the rows (all customers have the same label)")
    base = float(labels.mean())
    metrics = {
        "roc_auc": float(roc_auc_score(labels, probabilities)),
        "pr_auc": float(average_precision_score(labels, probabilities)),
        "brier": float(brier_score_loss(labels, probabilities)),
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
    metrics["conversion_at_budget"] = conversion_of_top(labels, probabilities, n)
    metrics["expected_conversion_at_budget"] = float(np.sort(probabilities)[::-1][:n].mean())
    return metrics
