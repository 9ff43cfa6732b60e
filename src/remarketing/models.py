"""Candidate model families and the model object every other part uses.

A :class:`CampaignModel` holds preprocessing and estimator together, takes raw customer rows, and returns
calibrated probabilities and per-field SHAP contributions. Each family states how its SHAP values are
computed and how fast (``remarketing.families``), so batch scoring can explain every customer.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from remarketing import families
from remarketing.datasets import DatasetSpec
from remarketing.errors import InvalidColumn, InvalidRow
from remarketing.features import FastDesign, build_preprocessor, field_matrix, output_fields

_SHAP_LOCK = threading.Lock()


@dataclass(frozen=True)
class Explanation:
    contributions: pd.DataFrame  # one column per raw field, in calibrated log-odds
    base_value: float  # calibrated log-odds of the background; contributions sum to logit(p) - base


# --- families (declared in remarketing.families; fitted here) ---------------------------------------------
MLP_EPOCHS = 12


def recency_weights(n: int, tau: float | None) -> np.ndarray | None:
    """exp((t - t_last) / (tau * n)): the latest rows weigh 1, rows a tau-fraction older weigh 1/e."""
    if not tau:
        return None
    t = np.arange(n, dtype="float64")
    return np.exp((t - (n - 1)) / (tau * n))


def _fit_logreg(X, y, w, seed: int) -> LogisticRegression:
    return LogisticRegression(C=1.0, max_iter=3000).fit(X, y, sample_weight=w)


def _fit_hgb(X, y, w, seed: int) -> HistGradientBoostingClassifier:
    model = HistGradientBoostingClassifier(
        learning_rate=0.03,
        max_iter=300,
        max_leaf_nodes=15,
        l2_regularization=10.0,
        min_samples_leaf=50,
        early_stopping=False,
        random_state=seed,
    )
    return model.fit(X, y, sample_weight=w)


def _fit_mlp(X, y, w, seed: int) -> Any:
    import keras

    keras.utils.set_random_seed(seed)
    l2 = keras.regularizers.L2(1e-4)
    model = keras.Sequential(
        [
            keras.Input(shape=(X.shape[1],)),
            keras.layers.Dense(64, activation="relu", kernel_regularizer=l2),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(32, activation="relu", kernel_regularizer=l2),
            keras.layers.Dense(1),  # logits: the margin SHAP explains
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.BinaryCrossentropy(from_logits=True)
    )
    model.fit(
        X.astype("float32"),
        np.asarray(y, "float32"),
        epochs=MLP_EPOCHS,
        batch_size=512,
        verbose=0,
        sample_weight=w,
    )
    return model


FIT = {"logreg": _fit_logreg, "hgb": _fit_hgb, "mlp": _fit_mlp}
if tuple(FIT) != families.NAMES:  # a family declared without its fit, or the other way round
    raise RuntimeError(f"remarketing.families declares {families.NAMES}, models fits {tuple(FIT)}")
FAMILIES = list(families.NAMES)  # simplest first
EXPLAINERS = {f.name: f.explainer for f in families.FAMILIES}


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
    _fast_design: Any = field(default=None, repr=False, compare=False)
    _background_mean: Any = field(default=None, repr=False, compare=False)  # the logistic SHAP's reference

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

    def rows_from_records(self, records: list[dict[str, Any]]) -> pd.DataFrame:
        """Customer rows given by column name (a request body) as a frame for ``predict_proba``; the first
        unusable cell raises :class:`InvalidRow` naming its row and column. Extra keys are ignored."""
        if not isinstance(records, list) or not records:
            raise InvalidRow(0, "*", "expected a non-empty list of rows given by column name")
        numeric = set(self.numeric)
        columns: dict[str, list[Any]] = {name: [] for name in self.features}
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                raise InvalidRow(i, "*", f"expected an object of column: value, got {type(record).__name__}")
            for name in self.features:
                if name not in record or record[name] is None or record[name] == "":
                    raise InvalidRow(i, name, "missing value")
                value = record[name]
                if name in numeric:
                    if isinstance(value, bool):  # JSON true/false is not a quantity
                        raise InvalidRow(i, name, f"{value!r} is not a number")
                    try:
                        value = float(value)
                    except (TypeError, ValueError):
                        raise InvalidRow(i, name, f"{value!r} is not a number") from None
                    if not np.isfinite(value):
                        raise InvalidRow(i, name, f"{value!r} is not a finite number")
                else:
                    value = str(value).strip()
                columns[name].append(value)
        return pd.DataFrame(columns)

    def rows_from_columns(self, columns: dict[str, np.ndarray]) -> pd.DataFrame:
        """Customer rows given as one array per column (a V2 request) as a frame for ``predict_proba``,
        checked column by column without a Python object per row; the first unusable cell raises
        :class:`InvalidRow` naming its row and column. Extra columns are ignored."""
        missing = [name for name in self.features if name not in columns]
        if missing:
            raise InvalidColumn(missing[0], f"is missing (missing: {', '.join(missing)})")
        columns = {name: _one_per_row(name, columns[name]) for name in self.features}
        lengths = {name: len(columns[name]) for name in self.features}
        n = lengths[self.features[0]]
        if n == 0:
            raise InvalidColumn(self.features[0], "is empty: expected at least one row")
        for name, length in lengths.items():
            if length != n:
                raise InvalidColumn(name, f"has {length} values, {self.features[0]!r} has {n}")
        numeric = set(self.numeric)
        frame: dict[str, Any] = {}
        for name in self.features:
            values = np.asarray(columns[name])
            if name in numeric:
                frame[name] = _numeric_column(name, values)
            else:
                frame[name] = _text_column(name, values)
        return pd.DataFrame(frame)

    def design(self, rows: pd.DataFrame, *, prepared: bool = False) -> np.ndarray:
        """The estimator's input. ``prepared``: the rows are already as :meth:`prepare` leaves them (a
        server's, from :meth:`rows_from_columns` or :meth:`rows_from_records`), so they are not again."""
        if self._fast_design is None:
            self._fast_design = FastDesign(self.preprocessor)
        return self._fast_design(rows if prepared else self.prepare(rows))

    def margin(self, rows: pd.DataFrame, *, prepared: bool = False) -> np.ndarray:
        """Uncalibrated log-odds."""
        return _margin(self.family, self.estimator, self.design(rows, prepared=prepared))

    def predict_proba(self, rows: pd.DataFrame, *, prepared: bool = False) -> np.ndarray:
        a, b = self.calibration
        return expit(a * self.margin(rows, prepared=prepared) + b)

    def explain(self, rows: pd.DataFrame) -> Explanation:
        return self._explanation(self.design(rows), rows.index)

    def scores(self, rows: pd.DataFrame, *, prepared: bool = False) -> tuple[np.ndarray, Explanation]:
        """:meth:`predict_proba` and :meth:`explain` of the same rows from one design matrix (what a model
        server answers for each batch: the matrix is most of a linear model's cost)."""
        X = self.design(rows, prepared=prepared)
        a, b = self.calibration
        return expit(a * _margin(self.family, self.estimator, X) + b), self._explanation(X, rows.index)

    def _explanation(self, X: np.ndarray, index: pd.Index) -> Explanation:
        phi, base = self._shap(X)
        a, b = self.calibration
        fields = output_fields(self.preprocessor)
        folded = (a * phi) @ field_matrix(fields, self.features)
        return Explanation(pd.DataFrame(folded, columns=self.features, index=index), float(a * base + b))

    def _shap(self, X: np.ndarray) -> tuple[np.ndarray, float]:
        if self.family == "logreg":
            coef = self.estimator.coef_.reshape(-1)
            if self._background_mean is None:  # the background is fixed: its design once, not per batch
                self._background_mean = self.design(self.background).mean(axis=0)
            mean = self._background_mean
            return (X - mean) * coef, float(self.estimator.intercept_[0] + mean @ coef)
        # shap's DeepExplainer swaps TensorFlow's global gradient registry while it runs, so concurrent
        # calls (a model server's request threads) corrupt each other: one SHAP call at a time.
        with _SHAP_LOCK:
            if self._explainer is None:
                self._explainer = self._build_explainer()
            if self.family == "hgb":
                values = self._explainer.shap_values(X, check_additivity=False)
            else:
                values = self._explainer.shap_values(X.astype("float32"), check_additivity=False)
            base = float(np.ravel(self._explainer.expected_value)[0])
        return np.asarray(values, dtype="float64").reshape(X.shape), base

    def _build_explainer(self) -> Any:
        import shap

        if self.family == "hgb":
            return shap.TreeExplainer(self.estimator)
        return shap.DeepExplainer(self.estimator, self.design(self.background).astype("float32"))


def _one_per_row(name: str, values: Any) -> np.ndarray:
    """A column as a 1-D array: shape ``[n]``, or ``[n, 1]`` as some clients send it."""
    values = np.asarray(values)
    if values.ndim == 2 and values.shape[1] == 1:
        return values[:, 0]
    if values.ndim != 1:
        raise InvalidColumn(
            name, f"must hold one value per row (shape [n] or [n, 1]), not {list(values.shape)}"
        )
    return values


def _text_column(name: str, values: np.ndarray) -> np.ndarray:
    """A category column as stripped text; a missing or blank cell raises :class:`InvalidRow`."""
    if pd.api.types.infer_dtype(values, skipna=True) == "string":
        # only text (and missing cells): each distinct value stripped once, where a category column has a
        # handful of them. Other values (numbers, bytes) are spelled one by one: factorize would merge
        # 1, 1.0 and True into one spelling.
        codes, distinct = pd.factorize(values)  # None, NaN, pd.NA: code -1
        text = np.array([v.strip() for v in distinct] + [""], dtype=object)[codes]  # -1: the "" at the end
        missing = text == ""
    else:
        cells = pd.Series(values, dtype=object)
        text = cells.astype(str).str.strip().to_numpy(dtype=object)
        missing = cells.isna().to_numpy() | (text == "")
    empty = np.flatnonzero(missing)
    if len(empty):
        raise InvalidRow(int(empty[0]), name, "missing value")
    return text


def _numeric_column(name: str, values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "b":
        raise InvalidRow(0, name, "true/false is not a number")
    if values.dtype.kind in "iuf":
        numbers = values.astype("float64")
    else:
        cells = pd.Series(values, dtype=object)
        missing = np.flatnonzero((cells.isna() | (cells.astype(str).str.strip() == "")).to_numpy())
        if len(missing):
            raise InvalidRow(int(missing[0]), name, "missing value")
        numbers = pd.to_numeric(cells, errors="coerce").to_numpy(dtype="float64")
        bad = np.flatnonzero(np.isnan(numbers))
        if len(bad):
            raise InvalidRow(int(bad[0]), name, f"{values[bad[0]]!r} is not a number")
    bad = np.flatnonzero(np.isnan(numbers))
    if len(bad):
        raise InvalidRow(int(bad[0]), name, "missing value")
    bad = np.flatnonzero(~np.isfinite(numbers))
    if len(bad):
        cell = values[bad[0]]
        shown = cell.item() if isinstance(cell, np.generic) else cell
        raise InvalidRow(int(bad[0]), name, f"{shown!r} is not a finite number")
    return numbers


def fit_family(
    family: str, spec: DatasetSpec, rows: pd.DataFrame, *, seed: int, background_rows: int
) -> CampaignModel:
    """Fit one family on ``rows`` (time-ordered: recency weights follow the row order), uncalibrated."""
    if family not in FIT:
        raise ValueError(f"unknown model family {family!r}; known: {', '.join(FIT)}")
    preprocessor = build_preprocessor(spec, encoding="onehot")
    X = preprocessor.fit_transform(rows[spec.feature_names])
    weights = recency_weights(len(rows), families.BY_NAME[family].recency_tau)
    estimator = FIT[family](X, rows[spec.target.column].to_numpy(), weights, seed)
    background = rows[spec.feature_names].sample(min(background_rows, len(rows)), random_state=seed)
    return CampaignModel(
        family=family,
        dataset=spec.name,
        features=spec.feature_names,
        numeric=spec.numeric,
        preprocessor=preprocessor,
        estimator=estimator,
        background=background.reset_index(drop=True),
    )


def platt(margins: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Platt scaling: ``(a, b)`` so that ``expit(a * margin + b)`` is calibrated on these rows. Margins
    that rank backwards here keep their order (a = 1) and only move to the rows' level."""
    m = np.asarray(margins, dtype="float64").reshape(-1, 1)
    labels = np.asarray(labels)
    fitted = LogisticRegression(C=1e6, max_iter=1000).fit(m, labels)
    a = float(fitted.coef_[0, 0])
    if a > 0:
        return a, float(fitted.intercept_[0])
    rate = np.clip(labels.mean(), 1e-6, 1 - 1e-6)
    return 1.0, float(logit(rate) - logit(np.clip(expit(m).mean(), 1e-6, 1 - 1e-6)))
