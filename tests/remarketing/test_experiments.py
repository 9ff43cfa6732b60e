"""The experiment's pure parts: arms by a keyed hash, the budget shared between them, the planned sample
and the test, each checked against the textbook formula (not against statsmodels itself)."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from remarketing import decisions, experiments
from remarketing.experiments import Experiment


def experiment(**kwargs) -> Experiment:
    base = {"experiment_id": "exp-1", "dataset": "bank-marketing", "model_name": "m", "champion": "1"}
    return Experiment(**{**base, "challenger": "2", "share": 0.5, **kwargs})


def test_a_customer_keeps_the_arm_whatever_the_order_and_the_share_is_respected():
    ids = pd.Series([f"C{i:06d}" for i in range(20_000)])
    arms = experiments.arm_of(ids, "exp-1", 0.3)
    assert set(arms) == {"champion", "challenger"}
    assert abs((arms == "challenger").mean() - 0.3) < 0.015
    shuffled = ids.sample(frac=1, random_state=1)
    again = pd.Series(experiments.arm_of(shuffled, "exp-1", 0.3), index=shuffled.index)
    assert (again.sort_index().to_numpy() == arms).all()
    other = experiments.arm_of(ids, "exp-2", 0.3)
    assert (other != arms).mean() > 0.3  # another experiment draws afresh


def test_the_budget_is_shared_in_proportion_and_adds_up():
    assert experiments.split_budget(100, {"champion": 700, "challenger": 300}) == {
        "champion": 70,
        "challenger": 30,
    }
    parts = experiments.split_budget(101, {"champion": 333, "challenger": 667})
    assert sum(parts.values()) == 101 and parts["challenger"] == 67


def test_the_planned_sample_is_the_textbook_one_for_equal_arms_at_the_final_boundary():
    p0, lift, alpha, power = 0.05, 1.2, 0.05, 0.8
    h = 2 * math.asin(math.sqrt(p0 * lift)) - 2 * math.asin(math.sqrt(p0))  # Cohen's h
    # var(h) = 1/n1 + 1/n2; sized for the final boundary z at alpha / 2 (weekly looks stay under alpha)
    textbook = 2 * ((norm.ppf(1 - alpha / 2) + norm.ppf(power)) / h) ** 2
    planned = experiments.plan_sample(experiment(min_lift=lift), p0)
    assert planned == {"challenger": math.ceil(textbook), "champion": math.ceil(textbook)}
    # a smaller arm for the challenger needs more of the champion's customers, not fewer in all
    uneven = experiments.plan_sample(experiment(min_lift=lift, share=0.25), p0)
    assert uneven["champion"] == pytest.approx(3 * uneven["challenger"], abs=3)


def test_the_look_is_the_pooled_two_proportion_z_test():
    e = experiment(planned={"challenger": 4000, "champion": 4000})
    e.weeks = {
        "w1": {
            "champion": {"customers": 2000, "calls": 200, "conversions": 90},
            "challenger": {"customers": 2000, "calls": 200, "conversions": 120},
        }
    }
    look = experiments.look(e)
    p1, p0, pooled = 120 / 2000, 90 / 2000, 210 / 4000
    z = (p1 - p0) / math.sqrt(pooled * (1 - pooled) * (2 / 2000))
    assert look["z"] == pytest.approx(z) and look["p_value"] == pytest.approx(1 - norm.cdf(z))
    assert look["information"] == 0.5
    assert look["boundary"] == pytest.approx(norm.ppf(0.975) / math.sqrt(0.5))  # O'Brien-Fleming shaped
    assert 0 < look["power"] < 1


def test_no_outcomes_yet_is_no_evidence():
    look = experiments.look(experiment())
    assert look["z"] is None and look["boundary"] is None


def test_arm_counts_count_conversions_through_a_call_per_customer():
    joined = pd.DataFrame(
        {
            "arm": ["champion"] * 4 + ["challenger"] * 4,
            "contact": [True, True, False, False, True, False, False, False],
            "label": [1, 0, 1, 0, 1, 1, 1, 0],
        }
    )
    counts = experiments.arm_counts(joined)
    # an uncalled customer who converted anyway is not the arm's doing
    assert counts["champion"] == {"customers": 4.0, "calls": 2.0, "conversions": 1.0}
    assert counts["challenger"] == {"customers": 4.0, "calls": 1.0, "conversions": 1.0}
    assert np.isclose(sum(c["customers"] for c in counts.values()), len(joined))


def test_weekly_looks_keep_false_promotions_under_the_significance():
    """Both arms alike (no true lift): over 8 weekly looks the boundary is crossed in at most alpha of
    the experiments (simulated; z_alpha / sqrt(t) would cross in about 7%)."""
    rng = np.random.default_rng(3)
    crossed, runs = 0, 2000
    for _ in range(runs):
        e = experiment(planned={"challenger": 8000, "champion": 8000})
        for week in range(8):
            conversions = rng.binomial(1000, 0.03, size=2)
            e.weeks[f"w{week}"] = {
                "champion": {"customers": 1000, "calls": 100, "conversions": float(conversions[0])},
                "challenger": {"customers": 1000, "calls": 100, "conversions": float(conversions[1])},
            }
            look = experiments.look(e)
            if look["z"] >= look["boundary"]:
                crossed += 1
                break
    assert crossed / runs <= 0.05


# --- the record, on local storage (the same generation semantics as GCS) ------------------------------
def stored(tmp_path, experiment_id="exp-a", running_marker=True):
    import json

    from remarketing.settings import Settings
    from remarketing.storage import Storage

    storage, root = Storage(Settings(state_dir=tmp_path)), str(tmp_path / "artifacts")
    e = experiment(experiment_id=experiment_id, started="2026-12-01T00:00:00+00:00")
    storage.write_text(f"{root}/experiments/bank-marketing/{experiment_id}.json", json.dumps(e.as_dict()))
    if running_marker:
        marker = json.dumps({"experiment_id": experiment_id})
        storage.write_text(f"{root}/experiments/bank-marketing/running.json", marker)
    return storage, root, e


def test_an_ended_experiment_is_never_changed_by_a_late_look(tmp_path):
    storage, root, e = stored(tmp_path)
    stopped = experiments.stop(storage, root, "bank-marketing", by="test")
    assert stopped.status == "stopped" and experiments.running(storage, root, "bank-marketing") is None
    counts = {arm: {"customers": 10.0, "calls": 1.0, "conversions": 1.0} for arm in experiments.ARMS}
    with pytest.raises(experiments.NotRunning, match="has already ended"):  # before any registry call
        experiments.judge(storage, root, None, e, week="scoring-1:abc", counts=counts)
    after = experiments.get(storage, root, "bank-marketing", "exp-a")
    assert after.status == "stopped" and after.weeks == {}
    with pytest.raises(experiments.Conflict, match="no bank-marketing experiment is running"):
        experiments.stop(storage, root, "bank-marketing", by="test")
    (decision,) = decisions.listed(storage, root, "bank-marketing")
    assert decision["action"] == "experiment-stopped"


def test_closing_an_experiment_leaves_another_ones_marker(tmp_path):
    import json

    storage, root, a = stored(tmp_path, "exp-a", running_marker=False)
    stored(tmp_path, "exp-b")  # b is the one running
    experiments._close(storage, root, a, experiments.ENDED, {"said": "late"})
    marker = json.loads(storage.read_text(f"{root}/experiments/bank-marketing/running.json"))
    assert marker == {"experiment_id": "exp-b"}
    assert experiments.running(storage, root, "bank-marketing").experiment_id == "exp-b"


def test_a_marker_without_its_record_is_no_experiment(tmp_path):
    storage, root, _ = stored(tmp_path)
    storage.delete(f"{root}/experiments/bank-marketing/exp-a.json")  # a start interrupted
    assert experiments.running(storage, root, "bank-marketing") is None
    assert not storage.exists(f"{root}/experiments/bank-marketing/running.json")
