"""The candidate model families, declared once and simplest first (when backtests cannot tell two apart,
the simpler one is chosen). The pipeline runs one training step per family, the app shows their progress
and the gate compares them from this table; ``remarketing.models`` fits and explains them.

Recency weights (by row position: the history is in time order) help the linear model follow the
drifting prior over every cut-off of bank-full (benchmarks/recency_experiment.py); the tree and neural
families are not weighted. The MLP trains for a fixed number of epochs: with every labelled row in the
fit, no slice is left to stop early on.

Kept free of heavy imports: the API and the app read it to know the steps.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    name: str
    description: str
    explainer: str  # how its SHAP values are computed, and how fast (rows per second on one core)
    recency_tau: float | None = None  # exp((t - t_last) / (tau * n)) sample weights; None: unweighted


FAMILIES: tuple[Family, ...] = (
    Family(
        "logreg",
        "logistic regression on one-hot categories and transformed, scaled numbers",
        "exact linear SHAP, coef * (x - background mean), on the one-hot design matrix; equal to "
        "shap.LinearExplainer with an independent masker (vectorised: about a million rows per second)",
        recency_tau=0.1,
    ),
    Family(
        "hgb",
        "HistGradientBoosting, 300 iterations of 15 leaves, l2 10, on the same design matrix",
        "shap.TreeExplainer (exact, path-dependent) on the one-hot design matrix, in log-odds "
        "(about 1,000 rows per second)",
    ),
    Family(
        "mlp",
        "Keras MLP 64-32 with dropout and L2, 12 epochs",
        "shap.DeepExplainer (DeepLIFT rescale, additive) against the background sample, in logits "
        "(about 300 rows per second)",
    ),
)
NAMES: tuple[str, ...] = tuple(f.name for f in FAMILIES)
BY_NAME = {f.name: f for f in FAMILIES}
