"""The monitoring pipeline's measurements, checked against independent computations."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from remarketing.datasets import load_spec
from remarketing.errors import DataValidationError
from remarketing.monitoring import (
    calibration_by_decile,
    calibration_error,
    incremental,
    performance,
    read_outcomes,
    realized_lift,
    report,
)

SPEC = load_spec("bank-marketing")


def test_outcomes_are_read_as_ids_and_labels():
    frame = read_outcomes(b'"customer_id";"y"\nC1;"yes"\nC2;"no"\n', SPEC, "o.csv")
    assert frame.to_dict("list") == {"customer_id": ["C1", "C2"], "label": [1, 0]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b"customer_id;y\n", "header but no outcome rows"),
        (b"customer_id;outcome\nC1;yes\n", "missing column: 'y'"),
        (b"customer_id;y\nC1;maybe\nC2;yes\n", "1 outcomes are not one of ['no', 'yes']: line 2 ('maybe')"),
        (b"customer_id;y\nC1;yes\nC1;no\nC2;no\n", "1 ids appear more than once: C1"),
    ],
)
def test_a_bad_outcomes_file_names_what_is_wrong(data, message):
    with pytest.raises(DataValidationError) as bad:
        read_outcomes(data, SPEC, "o.csv")
    assert message in str(bad.value)


def _week(seed: int = 0, n: int = 2_000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 5, n)
    groups = rng.choice(["targeted", "holdout", "none", "explore"], n, p=[0.3, 0.05, 0.64, 0.01])
    called = np.isin(groups, ["targeted", "explore"])
    label = (rng.random(n) < np.where(called, p * 1.5, p)).astype(int)  # calling adds conversions
    return pd.DataFrame({"probability": p, "group": groups, "contact": called, "label": label})


def test_the_realized_figures_equal_independent_computations():
    week = _week()
    manifest = {
        "expected_conversion_rate": 0.4,
        "interval": {"low": 0.3, "high": 0.5},
        "contact_list": {"asked": {"call_cost": 2.0, "conversion_value": 10.0}},
    }
    got = performance(week, manifest)
    assert got["roc_auc"] == pytest.approx(roc_auc_score(week["label"], week["probability"]), abs=1e-9)
    assert got["pr_auc"] == pytest.approx(
        average_precision_score(week["label"], week["probability"]), abs=1e-9
    )
    targeted = week.loc[week["group"] == "targeted", "label"]
    holdout = week.loc[week["group"] == "holdout", "label"]
    by_hand = targeted.mean() - holdout.mean()
    assert got["incremental"]["difference"] == pytest.approx(by_hand, abs=1e-12)
    assert got["incremental"]["incremental_conversions"] == pytest.approx(by_hand * len(targeted))
    assert got["promise"]["actual_conversion_rate"] == pytest.approx(targeted.mean())
    assert got["promise"]["inside"] == (0.3 <= targeted.mean() <= 0.5)
    called = week[week["contact"]]
    assert got["realized_profit"] == pytest.approx(10 * called["label"].sum() - 2 * len(called))


def wilson(k: int, n: int, z: float) -> tuple[float, float]:
    p = k / n
    centre, half = (p + z * z / (2 * n)), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def test_the_incremental_interval_is_newcombes_from_the_wilson_intervals():
    z = 1.6448536  # 90%
    for k1, n1, k0, n0 in [(30, 100, 10, 100), (3, 40, 0, 6), (0, 20, 0, 5)]:
        targeted, holdout = pd.Series([1] * k1 + [0] * (n1 - k1)), pd.Series([1] * k0 + [0] * (n0 - k0))
        got = incremental(targeted, holdout, level=0.9)
        (l1, u1), (l0, u0) = wilson(k1, n1, z), wilson(k0, n0, z)
        p1, p0 = k1 / n1, k0 / n0
        assert got["difference"] == pytest.approx(p1 - p0)
        assert got["low"] == pytest.approx(p1 - p0 - np.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2), abs=1e-6)
        assert got["high"] == pytest.approx(p1 - p0 + np.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2), abs=1e-6)
        assert got["low"] < got["high"]  # never collapses, even at rates of 0 (Wald's would: 0 to 0)
    assert incremental(targeted, pd.Series([], dtype=int))["difference"] is None  # no holdout: no claim


def test_calibration_is_by_decile_of_the_score():
    week = _week(1, 1_000)
    deciles = calibration_by_decile(week)
    assert [d["decile"] for d in deciles] == list(range(1, 11))
    assert sum(d["customers"] for d in deciles) == 1_000
    top = week.nlargest(100, "probability")
    assert deciles[0]["expected"] == pytest.approx(top["probability"].mean())
    assert deciles[0]["actual"] == pytest.approx(top["label"].mean())
    # the error Prometheus gets: the gap of each decile, weighted by its customers
    gaps = [abs(d["expected"] - d["actual"]) * d["customers"] for d in deciles]
    assert calibration_error(deciles) == pytest.approx(sum(gaps) / 1_000)
    assert calibration_error([]) is None


def test_the_realized_lift_is_against_those_called_at_random_when_there_are_enough():
    figures = {
        "conversion_rate": 0.10,
        "promise": {"actual_conversion_rate": 0.30},
        "groups": {"explore": {"outcomes": 30, "conversion_rate": 0.12}},
    }
    assert realized_lift(figures) == (pytest.approx(2.5), "the rate of those called at random")
    figures["groups"]["explore"]["outcomes"] = 29
    assert realized_lift(figures) == (pytest.approx(3.0), "the week's rate")
    assert realized_lift({**figures, "promise": {"actual_conversion_rate": None}}) is None


def test_the_policy_retrains_on_evidence_and_drift_only_when_asked():
    from remarketing.retraining import reasons
    from remarketing.settings import Settings

    week = {
        "outcomes": 500,
        "conversion_rate": 0.2,
        "promise": {"actual_conversion_rate": 0.22, "interval": [0.3, 0.5], "inside": False},
        "drift": {"beyond_backtests": ["pdays"]},
    }
    said = reasons(week, Settings(retrain_floor_lift=1.2))
    assert said == [
        "the targeted converted at 1.10 times the week's rate, below the floor 1.2",
        "the targeted converted at 22.0%, outside the promised 30.0%-50.0%",
    ]
    assert (
        reasons(week, Settings(retrain_on_drift=True))[-1]
        == "pdays drifted further than in any backtest period"
    )
    assert reasons({**week, "outcomes": 50}, Settings()) == []  # too few outcomes decide nothing
    fine = {**week, "promise": {"actual_conversion_rate": 0.4, "interval": [0.3, 0.5], "inside": True}}
    assert reasons(fine, Settings()) == []


def test_the_weeks_report_says_what_was_suppressed_and_names_no_rare_category():
    """performance.json and performance.md carry the scoring run's drift reading: aggregates only."""
    import json

    from remarketing.drift import DriftCounter, overview, reference_profile

    rng = np.random.default_rng(9)
    jobs = ["blue-collar"] * 600 + ["admin."] * 394 + ["astronaut"] * 6
    training = pd.DataFrame({"job": rng.permutation(jobs), "age": rng.normal(41, 10, 1_000).round()})
    counter = DriftCounter(reference_profile(training, ["job", "age"], min_rows=10))
    counter.add(pd.DataFrame({"job": ["astronaut"] * 5 + ["admin."] * 95, "age": [80.0] * 100}))
    manifest = {"drift_overview": overview(counter.summary())}
    figures = performance(_week(), manifest)
    text = report("scoring-x", "remarketing-bank-marketing v1", figures)
    assert "astronaut" not in text and "astronaut" not in json.dumps(figures, default=float)
    assert "- Drift of the week's customers from the training rows: major: major drift" in text
    assert (
        "- Aggregates only: categories held by fewer than 10 training rows are counted together as "
        "'other (fewer than 10 each)' (1 in job)" in text
    )
