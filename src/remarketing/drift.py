"""Per-feature drift of a scored file against the training rows: population stability index (PSI).

Aggregates only: the training rows' profile (stored in the model bundle's metadata, so in MLflow) and each
scored file's summary (in its manifest and the monitoring reports) never name a category, nor a numeric
value of its own, held by fewer than ``min_rows`` rows (``REMARKETING_MIN_CATEGORY_ROWS``): such categories
are one bucket, ``other (fewer than N each)``, the bucket unseen values fall into too, so PSI compares the
same buckets on both sides; a numeric value is a bin of its own only when at least that many rows hold it,
and the bins between the deciles are merged until each holds at least that many. The threshold travels in
the profile (``min_rows`` of each feature), so a scoring run suppresses as its model's training did.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

EPSILON = 1e-4
OTHER = "__other__"  # the bucket of the categories held by fewer than min_rows training rows, and unseen ones
MIN_ROWS = 10  # the default of Settings.min_category_rows


POINT_SHARE = 0.05  # a value held by at least this share of rows is a bin of its own (a sentinel, a count)
MAX_POINTS = 10


def other_label(min_rows: int) -> str:
    """How the folded bucket is named where it is shown."""
    return f"other (fewer than {min_rows} each)"


def _numeric_profile(values: pd.Series, min_rows: int) -> dict[str, Any]:
    """Values holding many rows (``pdays = -1``, ``previous = 0``, a small count) are bins of their own;
    the rest is cut at its deciles. Deciles of the whole column would collapse to one edge on such a column
    and measure nothing (PSI 0 whatever happens). A value is a bin of its own only when ``min_rows`` rows
    hold it, and the deciles' bins are merged until each holds at least ``min_rows`` rows."""
    counts = values.value_counts()
    common = counts[(counts / len(values) >= POINT_SHARE) & (counts >= min_rows)]
    points = np.sort(common.index.to_numpy(dtype=float)[:MAX_POINTS])
    rest = values[~values.isin(points)].to_numpy(dtype=float)
    edges = np.unique(np.quantile(rest, np.linspace(0.1, 0.9, 9))) if len(rest) else np.array([])
    edges = _without_small_bins(rest, edges, min_rows)
    return {
        "type": "numeric",
        "points": points.tolist(),
        "edges": edges.tolist(),
        "shares": (_bin_counts(points, edges, values) / len(values)).tolist(),
        "mean": float(values.mean()),
        "min_rows": min_rows,
    }


def _without_small_bins(rest: np.ndarray, edges: np.ndarray, min_rows: int) -> np.ndarray:
    """``edges`` less those between a bin holding 1 to ``min_rows - 1`` of ``rest`` and its smaller
    neighbour, until no bin is that small (or one bin is left). An empty bin stays: it names no one, and a
    value outside the training range still falls into it and shows as drift."""
    kept = list(edges)
    while kept:
        counts = np.bincount(np.searchsorted(kept, rest, side="right"), minlength=len(kept) + 1)
        small = np.flatnonzero((counts > 0) & (counts < min_rows))
        if not len(small):
            break
        i = int(small[np.argmin(counts[small])])
        if i == 0:
            drop = 0
        elif i == len(kept):
            drop = i - 1
        else:
            drop = i - 1 if counts[i - 1] <= counts[i + 1] else i
        del kept[drop]
    return np.asarray(kept, dtype=float)


def _category_profile(values: pd.Series, min_rows: int) -> dict[str, Any]:
    """Each category's share of the rows, those held by fewer than ``min_rows`` rows together as one."""
    counts = values.value_counts()
    rare = counts[counts < min_rows]
    shares = {k: float(v) / len(values) for k, v in counts[counts >= min_rows].items()}
    profile: dict[str, Any] = {"type": "category", "shares": shares, "min_rows": min_rows}
    if len(rare):
        shares[OTHER] = float(rare.sum()) / len(values)
        profile["other"] = {"label": other_label(min_rows), "categories": len(rare)}
    return profile


def _bin_counts(points: np.ndarray, edges: np.ndarray, values: pd.Series) -> np.ndarray:
    """Counts per bin: one per point, then ``len(edges) + 1`` bins for the other values."""
    array = values.to_numpy(dtype=float)
    at_point = np.isin(array, points)
    point_counts = np.array([np.count_nonzero(array == p) for p in points], dtype=int)
    rest = np.bincount(np.searchsorted(edges, array[~at_point], side="right"), minlength=len(edges) + 1)
    return np.concatenate([point_counts, rest])


def reference_profile(rows: pd.DataFrame, features: list[str], *, min_rows: int = MIN_ROWS) -> dict[str, Any]:
    """Numeric features: bins (see :func:`_numeric_profile`) and the share of rows in each; categories:
    shares, those held by fewer than ``min_rows`` rows as one (:func:`_category_profile`)."""
    out: dict[str, Any] = {}
    for column in features:
        values = rows[column]
        if pd.api.types.is_numeric_dtype(values):
            out[column] = _numeric_profile(values, min_rows)
        else:
            out[column] = _category_profile(values, min_rows)
    return out


def backtest_drift(
    rows: pd.DataFrame, features: list[str], periods: list[tuple[int, int]], *, min_rows: int = MIN_ROWS
) -> dict[str, float]:
    """Per feature, the largest PSI of a backtest period's rows against every row before it: how far the
    customers moved in the history whose misses the expected figures' interval is made from (with the
    buckets a scoring run's drift is measured in)."""
    largest: dict[str, float] = {}
    for start, end in periods:
        counter = DriftCounter(reference_profile(rows.iloc[:start], features, min_rows=min_rows))
        counter.add(rows.iloc[start:end])
        for column, found in counter.summary().items():
            if found.get("psi") is not None:
                largest[column] = max(largest.get(column, 0.0), found["psi"])
    return largest


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
                # a profile from before points were kept has none: its bins are the edges' alone
                points, edges = np.asarray(ref.get("points", []), dtype=float), np.asarray(ref["edges"])
                bins = _bin_counts(points, edges, values)
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
            min_rows = int(ref.get("min_rows", 1))  # a profile from before suppression: none
            if ref["type"] == "numeric":
                expected = np.asarray(ref["shares"])
                counts = np.asarray(self.counts[column])
                actual = counts / self.rows
                extra = {"training_mean": ref["mean"], "mean": self.sums[column] / self.rows}
                points = ref.get("points", [])
                if points:  # the most common value's share, then and now (the sentinel, usually)
                    top = int(np.argmax(expected[: len(points)]))
                    held = int(counts[top])
                    extra["common_value"] = {
                        "value": points[top],
                        "training_share": float(expected[top]),
                        # how many of this file hold it, unless that is a handful of customers
                        "share": float(actual[top]) if not 0 < held < min_rows else None,
                    }
                    if extra["common_value"]["share"] is None:
                        extra["common_value"]["suppressed"] = f"held by fewer than {min_rows} of this file"
            else:
                keys = sorted(set(ref["shares"]) | set(self.counts[column]) | {OTHER})
                expected = np.asarray([ref["shares"].get(k, 0.0) for k in keys])
                actual = np.asarray([self.counts[column].get(k, 0) for k in keys]) / self.rows
                # one bucket: the categories the training rows held fewer than min_rows times, and unseen ones
                extra = {"other_share": float(self.counts[column].get(OTHER, 0) / self.rows)}
                if "other" in ref:
                    extra["other_label"] = other_label(min_rows)
                    extra["folded_categories"] = int(ref["other"]["categories"])
            psi = float(np.sum((actual - expected) * np.log((actual + EPSILON) / (expected + EPSILON))))
            out[column] = {"psi": round(psi, 4), "level": level(psi), **extra}
            if "min_rows" in ref:
                out[column]["min_rows"] = min_rows
        return out


def level(psi: float) -> str:
    """The usual reading of PSI: below 0.1 stable, up to 0.25 moderate, above that a major shift."""
    return "stable" if psi < 0.1 else "moderate" if psi < 0.25 else "major"


def overview(features: dict[str, Any], backtests: dict[str, float] | None = None) -> dict[str, Any]:
    """The file's drift in one reading: its level (the worst feature's), the features that moved most,
    which of them moved further than in any backtest period (``backtests``: the largest PSI per feature
    there), and, when some moved a lot, what that means for the figures shown beside it."""
    measured = {c: f for c, f in features.items() if f.get("psi") is not None}
    by_psi = sorted(measured, key=lambda c: measured[c]["psi"], reverse=True)
    major = [c for c in by_psi if measured[c]["level"] == "major"]
    moderate = [c for c in by_psi if measured[c]["level"] == "moderate"]
    known = bool(backtests)  # a model trained before backtest drift was recorded has none
    beyond = [c for c in major if known and measured[c]["psi"] > (backtests or {}).get(c, 0.0)]
    out: dict[str, Any] = {
        "level": "major" if major else "moderate" if moderate else "stable",
        "major": major,
        "moderate": moderate,
        "beyond_backtests": beyond,
        "backtests_known": known,
        "features_measured": len(measured),
    }
    thresholds = {int(f["min_rows"]) for f in features.values() if "min_rows" in f}
    if thresholds:  # a profile from before suppression says nothing of it
        out["min_rows"] = max(thresholds)
        out["suppressed"] = suppression(features, out["min_rows"])
    if not major:
        return out
    shown = "; ".join(_moved(c, measured[c]) for c in major[:3])
    more = f"; and {len(major) - 3} more" if len(major) > 3 else ""
    head = (
        f"major drift: {len(major)} of {len(measured)} features moved since the model's training rows "
        f"({shown}{more})"
    )
    if known and not beyond:
        out["message"] = (
            f"{head}, but none further than in the training history's own backtest periods, whose misses "
            "the interval is made from: the expected figures allow for moves of this size"
        )
    else:
        which = "" if not known else f"; {', '.join(beyond)} moved further than in any backtest period"
        out["message"] = (
            f"{head}{which}. The ranking and the expected figures were measured on customers like the "
            "training rows: they may not hold for this file. Compare them with the first outcomes, and "
            "retrain on recent campaigns if they fall short"
        )
    return out


def suppression(features: dict[str, Any], min_rows: int) -> str:
    """What the profile and this summary leave out, in words (the reports say it beside the figures)."""
    folded = {c: f["folded_categories"] for c, f in features.items() if f.get("folded_categories")}
    hidden = [c for c, f in features.items() if (f.get("common_value") or {}).get("suppressed")]
    if folded:
        which = ", ".join(f"{n} in {c}" for c, n in folded.items())
        text = (
            f"categories held by fewer than {min_rows} training rows are counted together as "
            f"'{other_label(min_rows)}' ({which})"
        )
    else:
        text = f"no category was held by fewer than {min_rows} training rows (none counted as 'other')"
    text += f"; a numeric value is shown on its own only when at least {min_rows} training rows hold it"
    if hidden:
        text += (
            f"; the share of {', '.join(hidden)}'s most common value is not shown: fewer than {min_rows} "
            "customers of this file hold it"
        )
    return text


def _moved(column: str, feature: dict[str, Any]) -> str:
    text = f"{column} PSI {feature['psi']:.2f}"
    common = feature.get("common_value")
    if common and common["share"] is not None and abs(common["share"] - common["training_share"]) >= 0.05:
        value = f"{common['value']:g}"
        text += f", {column}={value} in {common['training_share']:.0%} then, {common['share']:.0%} now"
    elif "mean" in feature:
        text += f", mean {feature['training_mean']:.3g} then, {feature['mean']:.3g} now"
    elif feature.get("other_share"):
        label = feature.get("other_label")
        text += f", {feature['other_share']:.0%} " + (f"in '{label}' or unseen" if label else "unseen values")
    elif feature.get("unseen_share"):  # a summary written before the other bucket
        text += f", {feature['unseen_share']:.0%} unseen values"
    return text
