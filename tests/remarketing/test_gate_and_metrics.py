import numpy as np
import pytest

from remarketing.evaluation import campaign_metrics
from remarketing.gate import Floors, decide

FLOORS = Floors(roc_auc=0.65, lift_at_10pct=1.5)


def m(roc=0.72, pr=0.5, lift=2.0):
    return {"roc_auc": roc, "pr_auc": pr, "lift_at_10pct": lift}


def test_first_model_clearing_the_floors_becomes_champion():
    assert decide(m(), None, floors=FLOORS, margin=0.005).promote


def test_below_a_floor_is_not_promoted_and_says_why():
    decision = decide(m(roc=0.6, lift=1.2), None, floors=FLOORS, margin=0.005)
    assert not decision.promote
    assert decision.reasons == [
        "mean backtest roc_auc 0.6000 is below the floor 0.6500",
        "mean backtest lift_at_10pct 1.2000 is below the floor 1.5000",
    ]


def test_worse_than_the_champion_by_more_than_the_margin_is_not_promoted():
    assert decide(m(roc=0.716), m(roc=0.72), floors=FLOORS, margin=0.005).promote  # within the margin
    decision = decide(m(roc=0.71), m(roc=0.72), floors=FLOORS, margin=0.005)
    assert not decision.promote and "worse than the champion's 0.7200" in decision.reasons[0]


def test_campaign_metrics_on_a_known_ranking():
    labels = np.array([1, 1, 0, 1, 0, 0, 0, 0, 0, 0] * 10)
    scores = np.linspace(1, 0, 100)  # rows in order of score
    out = campaign_metrics(labels, scores, budget=10)
    assert out["base_rate"] == pytest.approx(0.3)
    assert out["precision_at_10pct"] == pytest.approx(0.3)  # the top 10 rows hold 3 positives
    assert out["lift_at_10pct"] == pytest.approx(1.0)
    assert out["precision_at_budget"] == pytest.approx(0.3) and out["budget"] == 10
    assert out["lift_at_budget"] == pytest.approx(1.0)
    perfect = campaign_metrics(labels, labels + 0.0, budget=30)
    assert (
        perfect["roc_auc"] == 1.0
        and perfect["precision_at_20pct"] == 1.0
        and perfect["precision_at_budget"] == 1.0
    )


def test_calibration_error_is_the_mean_gap_over_equal_size_score_groups():
    from remarketing.evaluation import calibration_error

    probabilities = np.repeat([0.1, 0.5], 50)
    labels = np.concatenate([np.r_[np.ones(10), np.zeros(40)], np.r_[np.ones(25), np.zeros(25)]])
    assert calibration_error(labels, probabilities, bins=2) == pytest.approx(0.05)  # gaps 0.1 and 0.0
    assert calibration_error(labels, labels.astype(float), bins=2) == 0.0


def test_a_champion_without_backtests_leaves_the_decision_to_the_floors():
    note = "the champion v1 has no backtests to compare with: the floors decide"
    decision = decide(m(), None, floors=FLOORS, margin=0.005, champion_note=note)
    assert decision.promote and decision.reasons == [note]


def test_metrics_need_both_outcomes():
    with pytest.raises(ValueError, match="both outcomes"):
        campaign_metrics(np.zeros(10), np.linspace(0, 1, 10), budget=3)
