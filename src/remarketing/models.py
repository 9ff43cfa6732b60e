"""Candidate model families and the model object every other part uses.

A :class:`CampaignModel` holds preprocessing and estimator together, takes raw customer rows, and returns
calibrated probabilities and per-field SHAP contributions. Each family states how its SHAP values are
computed and how fast (``EXPLAINERS``), so batch scoring can explain every customer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from remarketing.datasets import DatasetSpec
from remarketing.features import build_preprocessor, field_matrix, output_fields

# How each family is explained; the speeds are measured by benchmarks/ (rows per second, one core).
EXPLAINERS = {
    "logreg": "exact linear SHAP, coef * (x - background mean), on the one-hot/quantile design matrix "
    "(vectorised; about a million rows per second)",
    "hgb": "shap.TreeExplainer (path-dependent, exact for trees) on the ordinal matrix, in log-odds "
    "(about 1,500 rows per second)",
    "mlp": "shap.GradientExplainer (expected gradients) against the background sample, in logits "
    "(about 2,000 rows per second)",
}


@dataclass(frozen=True)
class Explanation:
    contributions: pd.DataFrame  # one column per raw field, in calibrated log-odds
    base_value: float  # calibrated log-odds of the background; contributions sum to logit(p) - base


def _threads() -> int:
    return int(os.environ.get("REMARKETING_THREADS", "2"))


# --- families --------------------------------------------------------------------------------------
def _fit_logreg(X, y, Xv, yv, spec: DatasetSpec, seed: int) -> LogisticRegression:
    return LogisticRegression(C=0.05, max_iter=2000).fit(X, y)


def _fit_hgb(X, y, Xv, yv, spec: DatasetSpec, seed: int) -> HistGradientBoostingClassifier:
    model = HistGradientBoostingClassifier(
        learning_rate=0.05,
        max_iter=300,
        max_leaf_nodes=15,
        min_samples_leaf=200,
        l2_regularization=1.0,
        categorical_features=_ordinal_mask(spec),
        early_stopping=False,
        random_state=seed,
    )
    return model.fit(X, y)


def _ordinal_mask(spec: DatasetSpec) -> list[bool]:
    """Which columns of the ordinal design matrix are category codes (one column per field, spec order)."""
    mask: list[bool] = []
    for feature in spec.features.values():
        if feature.type == "category":
            mask.append(True)
        else:
            mask.extend([False, False] if feature.sentinel is not None else [False])
    return mask


def _fit_mlp(X, y, Xv, yv, spec: DatasetSpec, seed: int) -> Any:
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input(shape=(X.shape[1],)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(1),  # logits: the margin SHAP explains
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.AUC(name="auc", from_logits=True)],
    )
    stop = keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=4, restore_best_weights=True)
    model.fit(
        X.astype("float32"),
        np.asarray(y, dtype="float32"),
        validation_data=(Xv.astype("float32"), np.asarray(yv, dtype="float32")),
        epochs=40,
        batch_size=512,
        callbacks=[stop],
        verbose=0,
    )
    return model


FIT = {"logreg": _fit_logreg, "hgb": _fit_hgb, "mlp": _fit_mlp}
ENCODING = {"logreg": "onehot", "hgb": "ordinal", "mlp": "onehot"}
FAMILIES = list(FIT)


def _margin(family: str, estimator: Any, X: np.ndarray) -> np.ndarray:
    if family == "mlp":
        return np.asarray(estimator(X.astype("float32"), training=False)).reshape(-1).astype("float64")
    return np.asarray(estimator.decision_function(X), dtype="float64")


# --- the model -------------------------------------------------------------------------------------
@dataclass
class CampaignModel:
    family: str
    dataset: str
    features: list[str]
    numeric: list[str]
    preprocessor: Any
    estimator: Any
    background: pd.DataFrame  # raw training rows that SHAP values are relative to
    calibration: tuple[float, float] = (1.0, 0.0)  # calibrated logit = a * margin + b
    _explainer: Any = field(default=None, repr=False, compare=False)

    def prepare(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Raw rows as the model needs them: its fields only, numbers as floats, categories as text."""
        missing = [c for c in self.features if c not in rows.columns]
        if missing:
            raise ValueError(f"missing columns: {', '.join(missing)}")
        frame = rows[self.features].copy()
        for column in self.numeric:
            try:
                frame[column] = pd.to_numeric(frame[column], errors="raise").astype("float64")
            except (ValueError, TypeError) as exc:
                raise ValueError(f"column {column!r} must be numeric: {exc}") from exc
        for column in set(self.features) - set(self.numeric):
            frame[column] = frame[column].astype(str).str.strip()
        return frame

    def design(self, rows: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.preprocessor.transform(self.prepare(rows)), dtype="float64")

    def margin(self, rows: pd.DataFrame) -> np.ndarray:
        """Uncalibrated log-odds."""
        return _margin(self.family, self.estimator, self.design(rows))

    def predict_proba(self, rows: pd.DataFrame) -> np.ndarray:
        a, b = self.calibration
        return expit(a * self.margin(rows) + b)

    def explain(self, rows: pd.DataFrame) -> Explanation:
        X = self.design(rows)
        phi, base = self._shap(X)
        a, b = self.calibration
        fields = output_fields(self.preprocessor)
        folded = (a * phi) @ field_matrix(fields, self.features)
        return Explanation(pd.DataFrame(folded, columns=self.features, index=rows.index), float(a * base + b))

    def _shap(self, X: np.ndarray) -> tuple[np.ndarray, float]:
        if self.family == "logreg":
            coef = self.estimator.coef_.reshape(-1)
            mean = self.design(self.background).mean(axis=0)
            return (X - mean) * coef, float(self.estimator.intercept_[0] + mean @ coef)
        if self._explainer is None:
            self._explainer = self._build_explainer()
        if self.family == "hgb":
            values = self._explainer.shap_values(X, check_additivity=False)
            return np.asarray(values).reshape(X.shape), float(np.ravel(self._explainer.expected_value)[0])
        values = self._explainer.shap_values(X.astype("float32"))
        phi = np.asarray(values, dtype="float64").reshape(X.shape)
        base = float(_margin(self.family, self.estimator, self.design(self.background)).mean())
        return phi, base

    def _build_explainer(self) -> Any:
        import shap

        if self.family == "hgb":
            return shap.TreeExplainer(self.estimator)
        background = self.design(self.background).astype("float32")
        return shap.GradientExplainer(self.estimator, background)


def fit_candidate(
    family: str, spec: DatasetSpec, train: pd.DataFrame, validation: pd.DataFrame, *, seed: int, background_rows: int
) -> CampaignModel:
    """Fit one family on the training slice (the validation slice only steers early stopping)."""
    if family not in FIT:
        raise ValueError(f"unknown model family {family!r}; known: {', '.join(FIT)}")
    target = spec.target.column
    preprocessor = build_preprocessor(spec, encoding=ENCODING[family])
    X = preprocessor.fit_transform(train[spec.feature_names])
    Xv = preprocessor.transform(validation[spec.feature_names])
    estimator = FIT[family](X, train[target].to_numpy(), Xv, validation[target].to_numpy(), spec, seed)
    background = train[spec.feature_names].sample(min(background_rows, len(train)), random_state=seed)
    return CampaignModel(
        family=family,
        dataset=spec.name,
        features=spec.feature_names,
        numeric=spec.numeric,
        preprocessor=preprocessor,
        estimator=estimator,
        background=background.reset_index(drop=True),
    )


def calibrate(model: CampaignModel, rows: pd.DataFrame, labels: np.ndarray) -> CampaignModel:
    """Platt scaling on a recent labelled slice, so probabilities follow the recent prior (ranks unchanged)."""
    m = model.margin(rows).reshape(-1, 1)
    platt = LogisticRegression(C=1e6, max_iter=1000).fit(m, labels)
    a = float(platt.coef_[0, 0])
    if a <= 0:  # a model that ranks backwards on the slice: keep its order, move only the level
        a = 1.0
        b = float(logit(np.clip(labels.mean(), 1e-6, 1 - 1e-6)) - logit(np.clip(expit(m).mean(), 1e-6, 1 - 1e-6)))
    else:
        b = float(platt.intercept_[0])
    model.calibration = (a, b)
    return model
