"""What a contact list promises, and how far to trust it.

The expected conversion rate of the called customers is the mean of their calibrated probabilities. Its
interval comes from the backtests: in each backtest period, the same share of customers at the top of
that period's out-of-time scores was "called", and the gap between their expected and their actual
conversion rate, in log-odds, is one calibration error. With K periods, the interval is the split-conformal
one: the ``ceil((K + 1) * level)``-th smallest absolute error (the largest when K is small, then the
level is ``K / (K + 1)``), widened by the binomial noise of this list's own number of calls. It assumes
the next period is like the backtest periods; when this file's scores are far from theirs (a prior
shift), :func:`score_shift` says so.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from scipy.stats import norm

from remarketing.drift import level as psi_level

LEVEL = 0.8
EDGE = 1e-4  # rates are kept inside (EDGE, 1 - EDGE) before taking log-odds
SCORE_BANDS = (0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8)  # upper edges of the bands


@dataclass(frozen=True)
class Interval:
    expected: float
    low: float
    high: float
    level: float
    errors: list[float]  # each backtest period's calibration error at this share, in log-odds

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def contains(self, rate: float) -> bool:
        return self.low <= rate <= self.high


def _logit(rate: float) -> float:
    return float(logit(min(max(rate, EDGE), 1 - EDGE)))


def backtest_errors(backtest: pd.DataFrame, share: float) -> list[float]:
    """Per backtest period: log-odds of the actual over the expected conversion rate of the top
    ``share`` of its customers (``backtest``: ``period``, ``probability``, ``label``)."""
    errors = []
    for _, period in backtest.groupby("period", sort=True):
        n = max(1, round(share * len(period)))
        top = period.nlargest(n, "probability")
        actual = (top["label"].sum() + 0.5) / (n + 1)  # a half-count keeps 0 and 100% finite
        errors.append(_logit(float(actual)) - _logit(float(top["probability"].mean())))
    return errors


def rate_interval(expected: float, calls: int, errors: list[float], level: float = LEVEL) -> Interval:
    """The interval of the conversion rate of ``calls`` customers expected to convert at ``expected``."""
    k = len(errors)
    sizes = sorted(abs(e) for e in errors)
    rank = math.ceil((k + 1) * level)
    if rank <= k:
        spread, covered = sizes[rank - 1], level
    else:
        spread, covered = (sizes[-1] if sizes else 0.0), k / (k + 1)
    z = float(norm.ppf(0.5 + covered / 2))
    noise = z / math.sqrt(max(calls, 1) * max(expected * (1 - expected), EDGE))
    half = math.hypot(spread, noise)
    centre = _logit(expected)
    return Interval(
        expected=expected,
        low=float(expit(centre - half)),
        high=float(expit(centre + half)),
        level=covered,
        errors=[round(e, 4) for e in errors],
    )


def score_shift(backtest: pd.DataFrame, probabilities: np.ndarray) -> dict[str, Any]:
    """How far this file's scores are from the backtests' (population stability index over fixed
    probability bands: differences within a band, such as 0.1% against 0.2%, do not change a decision).
    A major shift means the prior has probably moved: the expected figures and their interval rest on
    periods unlike this one."""
    reference = backtest["probability"].to_numpy()
    edges = np.asarray(SCORE_BANDS)
    expected = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1)
    actual = np.bincount(np.searchsorted(edges, probabilities, side="right"), minlength=len(edges) + 1)
    e, a = expected / expected.sum(), actual / max(actual.sum(), 1)
    psi = float(np.sum((a - e) * np.log((a + EDGE) / (e + EDGE))))
    means = backtest.groupby("period")["probability"].mean()
    out = {
        "psi": round(psi, 4),
        "level": psi_level(psi),
        "bands": list(SCORE_BANDS),
        "mean_probability": float(np.mean(probabilities)),
        "backtest_mean_probability": {"min": float(means.min()), "max": float(means.max())},
        "detected": psi_level(psi) == "major",
    }
    if out["detected"]:
        out["message"] = (
            f"prior shift: this file's scores (mean {out['mean_probability']:.1%}) are far from the "
            f"backtests' (mean {means.min():.1%} to {means.max():.1%} per period; PSI {psi:.2f}): the "
            "expected figures and their interval rest on periods unlike this one"
        )
    return out
