"""Rolling-origin backtests: the period plan, out-of-time fits, prequential calibration, the choice."""

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from remarketing import backtest
from remarketing.backtest import FamilyBacktest, PeriodResult, choose, plan, summarise
from remarketing.datasets import load_spec
from remarketing.errors import DataValidationError
from remarketing.models import fit_family, platt
from remarketing.validation import Purpose, validate

SPEC = load_spec("bank-marketing")


@pytest.fixture(scope="module")
def history(bank_sample):
    return validate(bank_sample, SPEC, Purpose.TRAINING).frame


def test_the_plan_ends_at_the_latest_row_with_equal_periods_after_a_warm_up():
    p = plan(10_000, periods=4, period_share=0.1)
    assert [(x.index, x.start, x.end) for x in p.periods] == [
        (0, 5000, 6000),
        (1, 6000, 7000),
        (2, 7000, 8000),
        (3, 8000, 9000),
        (4, 9000, 10000),
    ]
    assert [x.index for x in p.scored] == [1, 2, 3, 4]
    assert plan(10_007, periods=3, period_share=0.1).periods[-1].end == 10_007  # the remainder goes last
    assert backtest.Plan.from_dict(p.as_dict()) == p


def test_a_history_too_short_says_how_many_rows_each_origin_needs():
    with pytest.raises(DataValidationError) as failure:
        plan(800, periods=4, period_share=0.1)
    message = str(failure.value)
    assert "the history has 800 rows, too few for 4 backtest periods" in message
    assert "needs at least 100 of them" in message and "first fit needs 500 rows" in message
    assert "at least 1,000 rows" in message and "REMARKETING_BACKTEST_PERIODS" in message
    plan(1_000, periods=4, period_share=0.1)  # exactly enough


def test_a_period_without_both_outcomes_is_named():
    labels = np.zeros(2_000)
    labels[:1_500:10] = 1  # positives only before the last period
    with pytest.raises(DataValidationError, match=r"backtest period 4 \(rows 1,801-2,000\) has 0 converted"):
        backtest.check_outcomes(plan(2_000, periods=4, period_share=0.1), labels)


def test_each_period_is_scored_by_a_fit_on_every_row_before_it(history):
    the_plan = plan(len(history), periods=3, period_share=0.1)
    result = backtest.run_family(
        "logreg", SPEC, history, the_plan, budget_for=lambda n: n // 10, seed=1, background_rows=20
    )
    assert [(p.index, p.train_rows) for p in result.periods] == [(p.index, p.start) for p in the_plan.scored]
    assert list(result.predictions.groupby("period").size()) == [p.rows for p in the_plan.scored]

    # Period 2 is scored by the model fitted on rows [0, start), calibrated on period 1's out-of-time
    # scores by the model fitted before period 1: the same procedure the deployed model gets.
    labels = history["y"].to_numpy()
    one, two = the_plan.periods[1], the_plan.periods[2]
    before_one = fit_family("logreg", SPEC, history.iloc[: one.start], seed=1, background_rows=20)
    before_two = fit_family("logreg", SPEC, history.iloc[: two.start], seed=1, background_rows=20)
    a, b = platt(before_one.margin(history.iloc[one.start : one.end]), labels[one.start : one.end])
    assert result.periods[1].calibration == pytest.approx((a, b))
    scored = result.predictions[result.predictions["period"] == two.index]["probability"].to_numpy()
    np.testing.assert_allclose(scored, expit(a * before_two.margin(history.iloc[two.start : two.end]) + b))
    assert result.periods[1].metrics["budget"] == two.rows // 10

    last = the_plan.scored[-1]
    before_last = fit_family("logreg", SPEC, history.iloc[: last.start], seed=1, background_rows=20)
    expected = platt(before_last.margin(history.iloc[last.start : last.end]), labels[last.start : last.end])
    assert result.final_calibration == pytest.approx(expected)


def test_the_deployed_model_learns_from_every_labelled_row(history, tmp_path):
    """The train step refits the family on all rows (not only those before the last period) and gives it
    the calibration the backtest found for the latest period; its drift profile names no category fewer
    than ``min_category_rows`` of the rows hold (job 'unknown': 30 rows of this sample)."""
    import json

    from remarketing import bundle, training
    from remarketing.drift import OTHER
    from remarketing.flow import TRAINING
    from remarketing.runs import RunRecord, Source
    from remarketing.settings import Settings
    from remarketing.step import Folder, StepContext, StepSettings

    settings = Settings(min_category_rows=40)
    run = RunRecord(
        run_id="training-x", kind="training", dataset="bank-marketing", source=Source(uri="f", generation=1)
    )
    ctx = StepContext(
        StepSettings(settings, "train-logreg", TRAINING.step("train").settings), SPEC, run, None, "logreg"
    )
    the_plan = plan(len(history), periods=3, period_share=0.1)
    result = training.train(ctx, rows=history, plan=the_plan, candidate=Folder(tmp_path / "m"))

    deployed = bundle.load(tmp_path / "m")
    everything = fit_family(
        "logreg", SPEC, history, seed=settings.seed, background_rows=settings.shap_background_rows
    )
    np.testing.assert_allclose(deployed.estimator.coef_, everything.estimator.coef_)
    backtested = training.read_backtest(tmp_path / "m")
    assert deployed.calibration == pytest.approx(backtested.final_calibration)
    meta = bundle.read_metadata(tmp_path / "m")
    assert meta["fitted_on"] == {"rows": len(history), "first_row": 1, "last_row": len(history)}
    assert meta["calibrated_on"]["rows"] == [backtested.periods[-1].start + 1, backtested.periods[-1].end]
    assert [p["train_rows"] for p in meta["backtest"]["periods"]] == [p.start for p in backtested.periods]
    assert result.metrics["backtest_mean_roc_auc"] == pytest.approx(backtested.summary()["mean"]["roc_auc"])
    counts = history["job"].value_counts()
    rare = counts[counts < 40]
    assert list(rare.index) == ["unknown"]  # what this test is about
    job = meta["training_profile"]["job"]
    assert set(job["shares"]) == {*counts[counts >= 40].index, OTHER}
    assert job["shares"][OTHER] == pytest.approx(rare.sum() / len(history))
    assert job["other"] == {"label": "other (fewer than 40 each)", "categories": 1}
    assert "unknown" not in json.dumps(job)


def test_a_step_reading_a_setting_its_declaration_does_not_list_is_stopped():
    from remarketing.errors import RemarketingError
    from remarketing.settings import Settings
    from remarketing.step import StepSettings

    seen = StepSettings(Settings(), "split", ("backtest_periods",))
    assert seen.backtest_periods == 4 and seen.artifacts_bucket  # its own field, and where things are
    assert seen.model_name("bank-marketing") == "remarketing-bank-marketing"  # methods work as on Settings
    with pytest.raises(RemarketingError, match="step 'split' reads the setting 'seed'"):
        _ = seen.seed


def _result(family: str, values: list[float]) -> FamilyBacktest:
    periods = [
        PeriodResult(i + 1, 0, 1, 0, (1.0, 0.0), {"roc_auc": v, "brier": 0.1}) for i, v in enumerate(values)
    ]
    return FamilyBacktest(family, periods, pd.DataFrame(), (1.0, 0.0))


def test_the_best_mean_wins_when_its_lead_is_clear():
    chosen = choose(
        {"logreg": _result("logreg", [0.60, 0.62, 0.61]), "hgb": _result("hgb", [0.70, 0.71, 0.73])},
        "roc_auc",
    )
    assert chosen.family == "hgb" and "best mean backtest roc_auc" in chosen.reason


def test_a_simpler_family_within_one_standard_error_is_chosen():
    results = {
        "logreg": _result("logreg", [0.60, 0.55, 0.65]),
        "mlp": _result("mlp", [0.66, 0.50, 0.66]),  # a better mean (0.607 > 0.600) by less than its noise
    }
    chosen = choose(results, "roc_auc")
    assert chosen.family == "logreg" and "within one standard error" in chosen.reason
    assert chosen.means == pytest.approx({"logreg": 0.6, "mlp": 0.606667}, abs=1e-6)


def test_the_worst_period_is_the_lowest_score_or_the_highest_error():
    summary = summarise(
        [{"roc_auc": 0.7, "brier": 0.1, "base_rate": 0.1}, {"roc_auc": 0.5, "brier": 0.3, "base_rate": 0.3}]
    )
    assert summary["mean"] == pytest.approx({"roc_auc": 0.6, "brier": 0.2, "base_rate": 0.2})
    assert summary["worst"] == {"roc_auc": 0.5, "brier": 0.3}
