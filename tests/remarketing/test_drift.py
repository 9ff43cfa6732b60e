"""Drift per feature (PSI) and the file's reading of it; aggregates only (no category or value held by
fewer than ``min_rows`` rows is named)."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from remarketing.drift import OTHER, DriftCounter, backtest_drift, overview, reference_profile


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
        "min_rows": 10,
        "suppressed": "no category was held by fewer than 10 training rows (none counted as 'other'); a "
        "numeric value is shown on its own only when at least 10 training rows hold it",
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


# --- aggregates only ---------------------------------------------------------------------------------------
RARE = ["astronaut", "lighthouse-keeper"]  # 3 and 4 of the training rows: fewer than 10 each


def _with_rare_jobs(rng: np.random.Generator, n: int, rare: dict[str, int]) -> pd.DataFrame:
    jobs = rng.choice(["blue-collar", "admin.", "technician"], n - sum(rare.values()), p=[0.5, 0.3, 0.2])
    jobs = np.concatenate([jobs, *[[job] * k for job, k in rare.items()]])
    frame = _bank_like(rng, n, 0.2)
    frame["job"] = rng.permutation(jobs)
    return frame


def _named(document: object) -> list[str]:
    text = json.dumps(document, default=str)
    return [job for job in RARE if job in text]


def test_no_category_held_by_fewer_than_min_rows_is_named_in_the_profile_or_the_summary():
    rng = np.random.default_rng(5)
    training = _with_rare_jobs(rng, 2_000, {"astronaut": 3, "lighthouse-keeper": 4})
    profile = reference_profile(training, list(training.columns), min_rows=10)
    assert _named(profile) == []
    job = profile["job"]
    assert set(job["shares"]) == {"blue-collar", "admin.", "technician", OTHER}
    assert job["shares"][OTHER] == pytest.approx(7 / 2_000)
    assert job["other"] == {"label": "other (fewer than 10 each)", "categories": 2}
    # this week: more astronauts than in the training rows (still a handful)
    week = _with_rare_jobs(rng, 1_000, {"astronaut": 9})
    counter = DriftCounter(profile)
    counter.add(week)
    summary = counter.summary()
    reading = overview(summary)
    assert _named(summary) == [] and _named(reading) == []
    assert summary["job"]["other_share"] == pytest.approx(9 / 1_000)
    assert summary["job"]["other_label"] == "other (fewer than 10 each)"
    assert reading["suppressed"].startswith(
        "categories held by fewer than 10 training rows are counted together as 'other (fewer than 10 "
        "each)' (2 in job)"
    )
    # with a threshold of 1 (nothing suppressed) the same profile names them: the check above can fail
    assert _named(reference_profile(training, ["job"], min_rows=1)) == RARE


def test_psi_compares_the_same_folded_buckets_on_both_sides():
    rng = np.random.default_rng(6)
    training = _with_rare_jobs(rng, 2_000, {"astronaut": 3, "lighthouse-keeper": 4})
    profile = reference_profile(training, ["job"], min_rows=10)
    # the rare ones swapped for one never seen, in the same number: the same buckets, the same shares
    week = training.copy()
    week.loc[week["job"].isin(RARE), "job"] = "cosmonaut"
    counter = DriftCounter(profile)
    counter.add(week)
    assert counter.summary()["job"]["psi"] == 0.0
    # and PSI by hand over the folded buckets of a week that moved
    moved = _with_rare_jobs(rng, 1_000, {"astronaut": 30})
    counter = DriftCounter(profile)
    counter.add(moved)
    folded = moved["job"].where(moved["job"].isin(["blue-collar", "admin.", "technician"]), OTHER)
    actual = folded.value_counts(normalize=True)
    expected = pd.Series(profile["job"]["shares"])
    by_hand = sum(
        (actual.get(k, 0) - expected[k]) * np.log((actual.get(k, 0) + 1e-4) / (expected[k] + 1e-4))
        for k in expected.index
    )
    assert counter.summary()["job"]["psi"] == pytest.approx(by_hand, abs=1e-4)


def test_numeric_values_and_bins_each_hold_at_least_min_rows_training_rows():
    rng = np.random.default_rng(7)
    # 120 rows: 99 is 6% of them (a point by share alone) but only 7 rows; 0 is held by 40
    values = np.concatenate([[0] * 40, [99] * 7, rng.integers(1, 60, 73)])
    training = pd.DataFrame({"children": rng.permutation(values).astype(float)})
    ref = reference_profile(training, ["children"], min_rows=10)["children"]
    assert ref["points"] == [0.0] and ref["min_rows"] == 10
    held = np.round(np.asarray(ref["shares"]) * len(training)).astype(int)
    assert held.sum() == len(training) and all(k == 0 or k >= 10 for k in held), held
    assert len(ref["edges"]) >= 2  # still binned, only coarser
    loose = reference_profile(training, ["children"], min_rows=1)["children"]
    assert loose["points"] == [0.0, 99.0]  # the guard above is what keeps 99 out


def test_a_common_values_share_held_by_a_handful_of_this_file_is_not_shown():
    rng = np.random.default_rng(8)
    profile = reference_profile(_bank_like(rng, 5_000, 0.02), ["pdays", "previous", "age"], min_rows=10)
    week = _bank_like(rng, 1_000, 1.0)  # everyone contacted before: pdays=-1 held by no one now
    week.loc[:2, ["pdays", "previous"]] = [-1, 0]  # ... but three
    counter = DriftCounter(profile)
    counter.add(week)
    summary = counter.summary()
    common = summary["pdays"]["common_value"]
    assert common["share"] is None and common["suppressed"] == "held by fewer than 10 of this file"
    reading = overview(summary)
    assert "pdays=-1" not in reading["message"] and "now" in reading["message"]  # the means instead
    assert "the share of pdays, previous's most common value is not shown" in reading["suppressed"]
