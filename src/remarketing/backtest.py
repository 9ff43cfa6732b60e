"""Rolling-origin backtests: how each model family would have done on the history's later periods.

The history is in the spec's time order. Its last ``periods`` slices of ``period_share`` of the rows are
the scored periods; the slice before them is a warm-up. For each slice, the family is fitted on every row
before it and scores it, so every figure is out of time. Calibration is prequential, exactly as the
deployed model is calibrated: the model fitted before a period is Platt-scaled on the previous slice's
out-of-sample scores (by the model fitted before that slice). The warm-up slice exists only to calibrate
the first scored period; the deployed model is calibrated on the last scored period's out-of-sample
scores, so the backtests' calibration errors measure the deployed procedure.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from remarketing.datasets import DatasetSpec
from remarketing.errors import DataValidationError
from remarketing.evaluation import HEADLINE, LOWER_IS_BETTER, campaign_metrics
from remarketing.models import FAMILIES, fit_family, platt

MIN_TRAIN_ROWS = 500  # rows before the warm-up slice: the first fit
MIN_PERIOD_ROWS = 100  # rows in each slice
MIN_OUTCOMES = 5  # converted and not converted customers in each slice, for ranking metrics


@dataclass(frozen=True)
class Period:
    index: int  # 0 is the warm-up; 1..K are scored
    start: int  # first row (position in the time-ordered history)
    end: int  # one past the last row

    @property
    def rows(self) -> int:
        return self.end - self.start

    def label(self) -> str:
        return f"rows {self.start + 1:,}-{self.end:,}"


@dataclass(frozen=True)
class Plan:
    rows: int
    periods: list[Period]  # the warm-up first, then the scored periods, oldest first
    period_share: float

    @property
    def scored(self) -> list[Period]:
        return self.periods[1:]

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "period_share": self.period_share,
            "periods": [asdict(p) for p in self.periods],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        return cls(data["rows"], [Period(**p) for p in data["periods"]], data["period_share"])


def plan(rows: int, *, periods: int, period_share: float) -> Plan:
    """The slices of a history of ``rows`` rows; a clear error when the history is too short."""
    size = int(rows * period_share)
    first = rows - (periods + 1) * size
    needed = max(
        math.ceil(MIN_PERIOD_ROWS / period_share),
        math.ceil(MIN_TRAIN_ROWS / (1 - (periods + 1) * period_share)),
    )
    if size < MIN_PERIOD_ROWS or first < MIN_TRAIN_ROWS:
        raise DataValidationError(
            [
                f"the history has {rows:,} rows, too few for {periods} backtest periods: each period is "
                f"{period_share:.0%} of the rows and needs at least {MIN_PERIOD_ROWS} of them, and the "
                f"first fit needs {MIN_TRAIN_ROWS} rows before the warm-up period, so this needs at least "
                f"{needed:,} rows: give a longer history, or fewer periods (REMARKETING_BACKTEST_PERIODS)"
            ]
        )
    starts = [
        first + i * size for i in range(periods + 1)
    ]  # equal periods; the remainder goes to the first fit
    ends = [*starts[1:], rows]
    return Plan(
        rows, [Period(i, s, e) for i, (s, e) in enumerate(zip(starts, ends, strict=True))], period_share
    )


def check_outcomes(the_plan: Plan, labels: np.ndarray) -> None:
    """Every slice needs both outcomes, or its ranking cannot be measured, and so do the rows before the
    warm-up, or the first fit cannot learn."""
    problems = []
    first = the_plan.periods[0].start
    if len(np.unique(labels[:first])) < 2:
        problems.append(
            f"the rows before the first backtest period (rows 1-{first:,}) all have the same outcome: "
            "the first fit needs both; give a longer history or fewer periods"
        )
    for p in the_plan.periods:
        positives = int(labels[p.start : p.end].sum())
        negatives = p.rows - positives
        if min(positives, negatives) < MIN_OUTCOMES:
            name = "the warm-up period" if p.index == 0 else f"backtest period {p.index}"
            problems.append(
                f"{name} ({p.label()}) has {positives} converted and {negatives} other customers; each "
                f"period needs at least {MIN_OUTCOMES} of both: give a longer history or fewer periods"
            )
    if problems:
        raise DataValidationError(problems)


@dataclass
class PeriodResult:
    index: int
    start: int
    end: int
    train_rows: int  # fitted on rows 1..train_rows (every row before the period)
    calibration: tuple[float, float]  # fitted on the previous slice's out-of-sample scores
    metrics: dict[str, float]


@dataclass
class FamilyBacktest:
    family: str
    periods: list[PeriodResult]
    predictions: pd.DataFrame  # period, probability (calibrated, out of time), label: the scored periods
    final_calibration: tuple[float, float]  # for the model fitted on every row
    seconds: float = 0.0

    def values(self, metric: str) -> list[float]:
        return [p.metrics[metric] for p in self.periods]

    def summary(self) -> dict[str, dict[str, float]]:
        return summarise([p.metrics for p in self.periods])

    def as_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "periods": [asdict(p) for p in self.periods],
            "summary": self.summary(),
            "final_calibration": list(self.final_calibration),
            "seconds": self.seconds,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], predictions: pd.DataFrame) -> FamilyBacktest:
        periods = [PeriodResult(**{**p, "calibration": tuple(p["calibration"])}) for p in data["periods"]]
        a, b = data["final_calibration"]
        return cls(data["family"], periods, predictions, (a, b), data.get("seconds", 0.0))


def summarise(per_period: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """The mean and the worst of each metric over the periods."""
    metrics = [m for m in per_period[0] if m not in ("rows", "budget")]
    mean = {m: float(np.mean([p[m] for p in per_period])) for m in metrics}
    worst = {
        m: float((max if m in LOWER_IS_BETTER else min)(p[m] for p in per_period))
        for m in metrics
        if m != "base_rate"
    }
    return {"mean": mean, "worst": worst}


def run_family(
    family: str,
    spec: DatasetSpec,
    rows: pd.DataFrame,
    the_plan: Plan,
    *,
    budget_for: Callable[[int], int],
    seed: int,
    background_rows: int,
) -> FamilyBacktest:
    """Fit ``family`` before each slice, score the slice, calibrate prequentially, measure."""
    started = time.perf_counter()
    labels = rows[spec.target.column].to_numpy()
    margins = []
    for p in the_plan.periods:
        model = fit_family(family, spec, rows.iloc[: p.start], seed=seed, background_rows=background_rows)
        margins.append(model.margin(rows.iloc[p.start : p.end]))
    results, frames = [], []
    for p in the_plan.scored:
        previous = the_plan.periods[p.index - 1]
        a, b = platt(margins[p.index - 1], labels[previous.start : previous.end])
        probability = expit(a * margins[p.index] + b)
        y = labels[p.start : p.end]
        metrics = campaign_metrics(y, probability, budget=budget_for(p.rows))
        results.append(PeriodResult(p.index, p.start, p.end, p.start, (a, b), metrics))
        frames.append(pd.DataFrame({"period": p.index, "probability": probability, "label": y}))
    last = the_plan.scored[-1]
    final = platt(margins[last.index], labels[last.start : last.end])
    predictions = pd.concat(frames, ignore_index=True)
    return FamilyBacktest(family, results, predictions, final, time.perf_counter() - started)


# --- choosing a family ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Choice:
    family: str
    metric: str
    means: dict[str, float]
    reason: str


def choose(backtests: dict[str, FamilyBacktest], metric: str) -> Choice:
    """The family with the best mean ``metric`` over the periods, unless a simpler family is within one
    standard error of it (the one-standard-error rule, on the paired per-period differences): with a
    handful of periods, a lead smaller than that is noise, and the simpler model is the safer bet."""
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    order = [f for f in FAMILIES if f in backtests] + [f for f in backtests if f not in FAMILIES]
    means = {f: float(np.mean(backtests[f].values(metric))) for f in order}
    best = max(order, key=lambda f: sign * means[f])
    for family in order:
        if family == best:
            return Choice(
                best, metric, means, f"{best} has the best mean backtest {metric} ({means[best]:.4f})"
            )
        gaps = sign * (
            np.asarray(backtests[best].values(metric)) - np.asarray(backtests[family].values(metric))
        )
        se = float(np.std(gaps, ddof=1) / np.sqrt(len(gaps))) if len(gaps) > 1 else 0.0
        if gaps.mean() <= se:
            return Choice(
                family,
                metric,
                means,
                f"{family} ({means[family]:.4f} mean backtest {metric}) is within one standard error "
                f"({se:.4f}) of the best, {best} ({means[best]:.4f}): the simpler family is chosen",
            )
    raise AssertionError("unreachable: the best family is in the order")


def headline(summary: dict[str, dict[str, float]]) -> dict[str, float]:
    """The run record's metrics: the mean of each headline metric, and its worst period."""
    out = {m: summary["mean"][m] for m in HEADLINE}
    out.update({f"worst_{m}": summary["worst"][m] for m in HEADLINE})
    out["base_rate"] = summary["mean"]["base_rate"]
    return out
