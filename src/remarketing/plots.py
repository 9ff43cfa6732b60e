"""Evaluation and explanation plots (matplotlib, headless), returned as figures for MLflow to log."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.metrics import precision_recall_curve, roc_curve  # noqa: E402

WHERE = "backtests, out of time"


def _figure(title: str, xlabel: str, ylabel: str) -> tuple[Figure, plt.Axes]:
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    return fig, ax


def roc(labels: np.ndarray, probabilities: np.ndarray, where: str = WHERE) -> Figure:
    fpr, tpr, _ = roc_curve(labels, probabilities)
    fig, ax = _figure(f"ROC ({where})", "false positive rate", "true positive rate")
    ax.plot(fpr, tpr)
    ax.plot([0, 1], [0, 1], "--", color="grey")
    return fig


def precision_recall(labels: np.ndarray, probabilities: np.ndarray, where: str = WHERE) -> Figure:
    precision, recall, _ = precision_recall_curve(labels, probabilities)
    fig, ax = _figure(f"Precision-recall ({where})", "recall", "precision")
    ax.plot(recall, precision)
    ax.axhline(float(np.mean(labels)), ls="--", color="grey", label="base rate")
    ax.legend()
    return fig


def lift(labels: np.ndarray, probabilities: np.ndarray, where: str = WHERE) -> Figure:
    order = np.argsort(-probabilities, kind="stable")
    hits = np.cumsum(np.asarray(labels)[order])
    called = np.arange(1, len(order) + 1)
    fig, ax = _figure(f"Lift ({where})", "share of customers called", "lift over calling at random")
    ax.plot(called / len(order), (hits / called) / np.mean(labels))
    ax.axhline(1.0, ls="--", color="grey")
    return fig


def calibration(labels: np.ndarray, probabilities: np.ndarray, where: str = WHERE) -> Figure:
    observed, predicted = calibration_curve(labels, probabilities, n_bins=10, strategy="quantile")
    fig, ax = _figure(f"Calibration ({where})", "predicted probability", "observed rate")
    ax.plot(predicted, observed, marker="o")
    ax.plot([0, 1], [0, 1], "--", color="grey")
    return fig


def shap_summary(contributions: pd.DataFrame, rows: pd.DataFrame) -> Figure:
    """The SHAP beeswarm over the customer's own fields (categories coloured by their code)."""
    import shap

    coded = rows[contributions.columns].apply(
        lambda s: s if pd.api.types.is_numeric_dtype(s) else s.astype("category").cat.codes
    )
    plt.figure(figsize=(7, 5), dpi=100)
    shap.summary_plot(contributions.to_numpy(), coded, show=False, plot_size=None)
    fig = plt.gcf()
    fig.tight_layout()
    return fig


def importance(global_importance: pd.Series) -> Figure:
    fig, ax = _figure("Global SHAP importance", "mean |contribution| (log-odds)", "")
    ordered = global_importance.sort_values()
    ax.barh(ordered.index, ordered.to_numpy())
    fig.tight_layout()
    return fig


def backtest(
    periods: dict[str, list[dict]], metrics: tuple[str, ...] = ("roc_auc", "lift_at_budget")
) -> Figure:
    """Each family's figure on each backtest period (one panel per metric): how steady it is over time.
    ``periods`` maps a family to its periods (``index``, ``start``, ``end``, ``metrics``)."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4), dpi=100, squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for family, rows in periods.items():
            ax.plot(
                [p["index"] for p in rows], [p["metrics"][metric] for p in rows], marker="o", label=family
            )
        ax.axhline(0.5 if metric == "roc_auc" else 1.0, ls="--", color="grey", label="random")
        first = next(iter(periods.values()))
        ax.set_xticks([p["index"] for p in first], [f"{p['start'] + 1:,}-{p['end']:,}" for p in first])
        ax.set(title=f"{metric} per backtest period", xlabel="rows scored (each fitted on all rows before)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
