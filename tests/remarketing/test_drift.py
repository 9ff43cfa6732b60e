"""Drift per feature (PSI) and the file's reading of it."""

import re

import numpy as np
import pandas as pd
import pytest

from remarketing.drift import DriftCounter, backtest_drift, overview, reference_profile


def _measure(reference: pd.DataFrame, current: pd.DataFrame, chunk: int = 700) -> dict:
    counter = DriftCounter(reference_profile(reference, list(reference.columns)))
    for start in range(0, len(current), chunk):
        counter.add(current.iloc[start : start + chunk])
    return counter.summary()


def _bank_like(rng: np.random.Generator, n: int, contacted_before: float) -> pd.DataFrame:
    """``pdays`` is -1 for customers never contacted before, else days since; ``previous`` counts the
    earlier contacts (0 for most): the shape of bank-full's columns."""
    before = rng.random(n) < contacted_before
    return pd.DataFrame(
        {
            "pdays": np.where(before, rng.integers(1, 400, n), -1),
            "previous": np.where(before, rng.integers(1, 8, n), 0),
            "age": rng.normal(41, 10, n).round(),
        }
    )


def test_sentinel_heavy_columns_show_a_move_of_their_sentinel_share():
    rng = np.random.default_rng(0)
    reference = _bank_like(rng, 20_000, contacted_before=0.02)
    moved = _bank_like(rng, 5_000, contacted_before=0.40)
    drift = _measure(reference, moved)
    # Deciles of these columns are all the sentinel; binned that way they showed PSI 0 whatever moved.
    assert drift["pdays"]["level"] == "major" and drift["previous"]["level"] == "major"
    assert drift["pdays"]["common_value"]["value"] == -1
    assert drift["pdays"]["common_value"]["training_share"] == pytest.approx(0.98, abs=0.01)
    assert drift["pdays"]["common_value"]["share"] == pytest.approx(0.60, abs=0.02)
    assert drift["age"]["level"] == "stable"


def test_a_file_like_the_training_rows_is_stable_on_every_column():
    rng = np.random.default_rng(1)
    drift = _measure(_bank_like(rng, 20_000, 0.2), _bank_like(rng, 5_000, 0.2))
    assert {d["level"] for d in drift.values()} == {"stable"}
    assert overview(drift) == {
        "level": "stable",
        "major": [],
        "moderate": [],
        "beyond_backtests": [],
        "backtests_known": False,
        "features_measured": 3,
    }


def test_the_rest_of_a_sentinel_column_is_binned_too():
    """Same sentinel share, but the contacted customers were contacted much longer ago."""
    rng = np.random.default_rng(2)
    reference = _bank_like(rng, 20_000, 0.3)
    later = reference.copy()
    later["pdays"] = np.where(later["pdays"] > 0, later["pdays"] + 300, -1)
    drift = _measure(reference, later)
    assert drift["pdays"]["level"] == "major"
    assert drift["pdays"]["common_value"]["share"] == pytest.approx(0.7, abs=0.02)


def test_a_profile_from_before_points_were_kept_still_measures():
    reference = {"age": {"type": "numeric", "edges": [30.0, 40.0, 50.0], "shares": [0.25] * 4, "mean": 40}}
    counter = DriftCounter(reference)
    counter.add(pd.DataFrame({"age": [20.0] * 90 + [60.0] * 10}))
    assert counter.summary()["age"]["level"] == "major"


def test_the_overview_names_what_moved_and_what_it_means():
    rng = np.random.default_rng(3)
    reference = _bank_like(rng, 20_000, 0.02)
    reading = overview(_measure(reference, _bank_like(rng, 5_000, 0.4)))
    assert reading["level"] == "major" and set(reading["major"]) == {"pdays", "previous"}
    message = reading["message"]
    assert message.startswith("major drift: 2 of 3 features moved")
    assert re.search(r"pdays PSI [\d.]+, pdays=-1 in 98% then, 6[01]% now", message)
    assert "expected figures" in message and "retrain" in message


def test_drift_no_larger_than_in_the_backtests_is_said_to_be_allowed_for():
    rng = np.random.default_rng(4)
    # A history whose customers moved as much between its own periods as this file moves from it.
    history = pd.concat(
        [_bank_like(rng, 8_000, 0.02), _bank_like(rng, 2_000, 0.4), _bank_like(rng, 2_000, 0.02)],
        ignore_index=True,
    )
    largest = backtest_drift(history, ["pdays", "previous", "age"], [(8_000, 10_000), (10_000, 12_000)])
    assert largest["pdays"] > 0.25 and largest["age"] < 0.1
    now = _measure(history, _bank_like(rng, 2_000, 0.3))
    within = overview(now, largest)
    assert within["major"] and within["beyond_backtests"] == []
    assert "none further than in the training history's own backtest periods" in within["message"]

    further = overview(now, {"pdays": 0.01, "previous": 0.01, "age": 0.01})
    assert set(further["beyond_backtests"]) == set(further["major"])
    assert "moved further than in any backtest period" in further["message"]
