"""The promise of a contact list: backtest calibration errors, the conformal interval, prior shift."""

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit

from remarketing.expectation import ScoreBands, backtest_errors, rate_interval, score_shift


def _period(index: int, probability: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"period": index, "probability": probability, "label": labels})


def test_each_periods_error_is_the_log_odds_of_actual_over_expected_at_the_same_share():
    p = np.linspace(0.9, 0.01, 100)
    labels = np.zeros(100)
    labels[:5] = 1  # 5 of the top 10 convert; they were expected at mean(p[:10])
    errors = backtest_errors(_period(1, p, labels), share=0.1)
    actual = (5 + 0.5) / (10 + 1)
    assert errors == pytest.approx([logit(actual) - logit(p[:10].mean())])


def test_the_interval_takes_the_conformal_rank_of_the_errors_and_the_binomial_noise():
    errors = [0.2, -0.5, 0.1, 0.3]  # K = 4: ceil(5 * 0.8) = 4, the largest |error|
    interval = rate_interval(0.3, 100_000, errors)
    assert interval.level == 0.8
    assert logit(interval.high) - logit(0.3) == pytest.approx(
        0.5, abs=0.01
    )  # the noise of 100,000 calls is tiny
    assert logit(0.3) - logit(interval.low) == pytest.approx(0.5, abs=0.01)
    few = rate_interval(0.3, 20, errors)
    assert few.low < interval.low and few.high > interval.high  # 20 calls are noisier
    three = rate_interval(0.3, 100_000, [0.2, -0.4, 0.1])  # too few for 80%: the largest, at 3/4
    assert three.level == 0.75 and logit(three.high) - logit(0.3) == pytest.approx(0.4, abs=0.01)
    assert interval.contains(0.3) and not interval.contains(0.5)


def test_the_interval_holds_about_as_often_as_it_says_on_exchangeable_periods():
    """Periods whose calibration drifts at random: the next period's rate falls in the interval made
    from the previous four at least 80% of the time."""
    rng = np.random.default_rng(0)
    hits, trials = 0, 400
    for _ in range(trials):
        shifts = rng.normal(0, 0.5, 5)  # each period's true log-odds offset from the calibration
        frames = []
        for j, shift in enumerate(shifts[:4]):
            p = rng.uniform(0.05, 0.6, 2_000)
            frames.append(_period(j + 1, p, rng.random(2_000) < expit(logit(p) + shift)))
        errors = backtest_errors(pd.concat(frames), share=0.1)
        p = rng.uniform(0.05, 0.6, 2_000)
        top = np.sort(p)[-200:]
        actual = (rng.random(200) < expit(logit(top) + shifts[4])).mean()
        hits += rate_interval(float(top.mean()), 200, errors).contains(actual)
    assert hits / trials >= 0.78


def test_a_file_whose_scores_moved_more_than_any_backtest_period_did_is_a_prior_shift():
    rng = np.random.default_rng(1)
    reference = pd.concat([_period(j, rng.beta(1, 12, 3_000), np.zeros(3_000)) for j in (1, 2, 3)])
    same = score_shift(reference, ScoreBands.of(rng.beta(1, 12, 5_000)))
    assert not same["detected"] and "message" not in same
    moved = score_shift(reference, ScoreBands.of(rng.beta(3, 6, 5_000)))
    assert moved["detected"]
    assert moved["psi_against_latest_period"] > moved["largest_psi_between_backtest_periods"]
    assert moved["mean_probability"] > moved["backtest_mean_probability"]["max"]
    assert moved["message"].startswith("prior shift: this file's scores (mean 33")


def test_a_move_no_larger_than_the_backtests_saw_is_no_prior_shift():
    rng = np.random.default_rng(4)
    drifting = pd.concat(
        [_period(j, rng.beta(1 + j, 12, 3_000), np.zeros(3_000)) for j in (1, 2, 3, 4)]  # each moves up
    )
    # half a step further than the last moves
    nudged = score_shift(drifting, ScoreBands.of(rng.beta(5.5, 12, 5_000)))
    assert not nudged["detected"]


def test_differences_too_small_to_change_a_decision_are_no_shift():
    """A near-perfect model's scores sit near 0 and 1; another fit moves them by fractions of a percent."""
    rng = np.random.default_rng(2)
    periods = [
        _period(j, np.r_[rng.uniform(0, 0.004, 2_700), rng.uniform(0.97, 1.0, 300)], np.zeros(3_000))
        for j in (1, 2)
    ]
    refit = np.r_[rng.uniform(0, 0.001, 4_500), rng.uniform(0.99, 1.0, 500)]
    assert not score_shift(pd.concat(periods), ScoreBands.of(refit))["detected"]


def test_scores_counted_chunk_by_chunk_are_the_scores_counted_at_once():
    scores = np.random.default_rng(6).beta(1, 6, 10_001)
    chunked = ScoreBands()
    for part in np.array_split(scores, 7):
        chunked.add(part)
    whole = ScoreBands.of(scores)
    assert (chunked.counts == whole.counts).all() and chunked.counts.sum() == 10_001
    assert chunked.mean == pytest.approx(scores.mean(), rel=1e-12)
