"""What a contact list promises, and how far to trust it.

The expected conversion rate of the called customers is the mean of their calibrated probabilities. Its
interval comes from the backtests: in each backtest period, the same share of customers at the top of
that period's out-of-time scores was "called", and the gap between their expected and their actual
conversion rate, in log-odds, is one calibration error. With K periods, the interval is the split-conformal
one: the ``ceil((K + 1) * level)``-th smallest absolute error (the largest when K is small, then the
level is ``K / (K + 1)``), widened by the binomial noise of this list's own number of calls (conservative:
the backtest errors hold their own binomial noise already). It is symmetric on purpose, so the promise
itself is always inside it: a drift that always ran one way in the past is not assumed to continue. It
assumes the next move is like the backtests'; when this file's scores moved further than any backtest
period's did (a prior shift), :func:`score_shift` says so.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

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


# Scalars only, so the standard library's functions: publish then does not pay scipy.stats' import
# (about 0.4 s of a small file's run).
def _logit(rate: float) -> float:
    rate = min(max(rate, EDGE), 1 - EDGE)
    return math.log(rate / (1 - rate))


def _expit(x: float) -> float:
    if x >= 0:
        return 1 / (1 + math.exp(-x))
    e = math.exp(x)
    return e / (1 + e)


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
    z = NormalDist().inv_cdf(0.5 + covered / 2)
    noise = z / math.sqrt(max(calls, 1) * max(expected * (1 - expected), EDGE))
    half = math.hypot(spread, noise)
    centre = _logit(expected)
    return Interval(
        expected=expected,
        low=_expit(centre - half),
        high=_expit(centre + half),
        level=covered,
        errors=[round(e, 4) for e in errors],
    )


@dataclass
class ScoreBands:
    """Scores counted in :data:`SCORE_BANDS`, with their sum: a file's, added up chunk by chunk."""

    counts: np.ndarray = field(default_factory=lambda: np.zeros(len(SCORE_BANDS) + 1, dtype="int64"))
    total: float = 0.0

    def add(self, scores: np.ndarray) -> None:
        band = np.searchsorted(np.asarray(SCORE_BANDS), scores, side="right")
        self.counts += np.bincount(band, minlength=len(SCORE_BANDS) + 1)
        self.total += float(np.sum(scores))

    @classmethod
    def of(cls, scores: np.ndarray) -> ScoreBands:
        bands = cls()
        bands.add(np.asarray(scores, dtype="float64"))
        return bands

    @property
    def mean(self) -> float:
        return self.total / max(int(self.counts.sum()), 1)


def psi(reference: ScoreBands, scores: ScoreBands) -> float:
    """Population stability index of ``scores`` against ``reference`` over fixed probability bands:
    differences within a band, such as 0.1% against 0.2%, do not change a decision."""
    expected, actual = reference.counts, scores.counts
    e, a = expected / max(expected.sum(), 1), actual / max(actual.sum(), 1)
    return float(np.sum((a - e) * np.log((a + EDGE) / (e + EDGE))))


def score_shift(backtest: pd.DataFrame, scores: ScoreBands) -> dict[str, Any]:
    """Whether this file's scores moved from the latest backtest period's further than any backtest
    period's moved from the one before it. The interval is made from how the promise carried across
    those moves; a larger one (a prior shift the backtests never saw) is when it may not hold."""
    periods = [ScoreBands.of(g["probability"].to_numpy()) for _, g in backtest.groupby("period", sort=True)]
    moves = [psi(before, after) for before, after in zip(periods, periods[1:], strict=False)]
    moved = psi(periods[-1], scores)
    largest = max(moves, default=0.0)
    means = [p.mean for p in periods]
    out: dict[str, Any] = {
        "psi_against_latest_period": round(moved, 4),
        "largest_psi_between_backtest_periods": round(largest, 4),
        "bands": list(SCORE_BANDS),
        "mean_probability": scores.mean,
        "backtest_mean_probability": {"min": min(means), "max": max(means)},
        "detected": moved > largest and psi_level(moved) != "stable",
    }
    if out["detected"]:
        out["message"] = (
            f"prior shift: this file's scores (mean {out['mean_probability']:.1%}) moved further from "
            f"the latest backtest period's (mean {means[-1]:.1%}; PSI {moved:.2f}) than any backtest "
            f"period moved from the one before (PSI at most {largest:.2f}): the expected figures and "
            "their interval, made from those periods, may not hold"
        )
    return out
