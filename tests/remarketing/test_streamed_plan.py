"""The plan of a file ranked out of memory (remarketing.streamed_plan) is the plan made in memory
(contacts.assign_drawn, through contact_file.ranking), row for row and bit for bit."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from remarketing import contacts, experiments
from remarketing.contact_file import ranking
from remarketing.errors import RemarketingError
from remarketing.streamed_plan import arm_codes, plan_file, sort_key


def scored(n: int, seed: int = 3, arms: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = pd.Series([f"C{i:05d}" for i in range(n)])
    frame = pd.DataFrame({"customer_id": ids, "probability": rng.beta(1, 8, n)})
    frame["arm"] = experiments.arm_of(ids, "exp-1", 0.3) if arms else "champion"
    return frame


def in_memory(frame: pd.DataFrame, policy: contacts.Policy) -> tuple[pd.DataFrame, np.ndarray]:
    draws = contacts.uniform(frame["customer_id"], policy.seed, policy.key)
    ranked = ranking(frame["probability"].to_numpy(), draws, arm_codes(frame["arm"]), policy)
    return ranked.plan, ranked.line


def streamed(
    frame: pd.DataFrame, policy: contacts.Policy, folder: Path, bounds: list[int], bucket_rows: int
) -> tuple[pd.DataFrame, np.ndarray]:
    chunks = [frame.iloc[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    plan = plan_file(lambda: iter(chunks), len(frame), policy, folder, bucket_rows=bucket_rows)
    parts = [plan.of_rows(a, b) for a, b in zip(bounds, bounds[1:], strict=False)]
    return pd.concat([p for p, _ in parts], ignore_index=True), np.concatenate([line for _, line in parts])


POLICIES = {
    "budget": contacts.Policy(budget=300, holdout_share=0.1, explore_share=0.05, key="k"),
    "by value": contacts.Policy(budget=2_000, call_cost=2.0, conversion_value=10.0, holdout_share=0.2),
    "budget over the file": contacts.Policy(budget=10_000, holdout_share=0.05, explore_share=0.5),
    "no budget": contacts.Policy(budget=0, explore_share=0.1),
}


@pytest.mark.parametrize("arms", [False, True], ids=["one arm", "experiment"])
@pytest.mark.parametrize("name", list(POLICIES))
def test_the_streamed_plan_is_the_plan_made_in_memory(tmp_path, name, arms):
    frame = scored(3_001, arms=arms)
    frame.loc[100:400, "probability"] = 0.125  # a block of ties, ranked by position
    frame.loc[7, "probability"] = -0.0  # equal to 0.0
    frame.loc[8, "probability"] = 0.0
    frame.loc[9:12, "probability"] = np.nan  # last, by position
    policy = POLICIES[name]
    expected_plan, expected_line = in_memory(frame, policy)
    # uneven chunks; buckets of ~50 rows, so ties and chunks straddle buckets and blocks
    plan, line = streamed(frame, policy, tmp_path, [0, 1, 700, 2_950, 3_001], bucket_rows=50)
    pd.testing.assert_frame_equal(plan, expected_plan.reset_index(drop=True), check_exact=True)
    assert (line == expected_line).all()
    assert plan["group"].isin(["holdout"]).any() or policy.budget == 0


def test_one_bucket_and_one_chunk_give_the_same_plan(tmp_path):
    frame = scored(500)
    policy = POLICIES["budget"]
    plan, line = streamed(frame, policy, tmp_path, [0, 500], bucket_rows=10_000)
    expected_plan, expected_line = in_memory(frame, policy)
    pd.testing.assert_frame_equal(plan, expected_plan.reset_index(drop=True), check_exact=True)
    assert (line == expected_line).all()


def test_the_numbers_are_gone_once_ranked_and_the_ranks_are_bounded_by_the_buckets(tmp_path):
    frame = scored(1_000)
    plan = plan_file(lambda: iter([frame]), 1_000, POLICIES["budget"], tmp_path, bucket_rows=100)
    assert not list(tmp_path.glob("numbers-*"))
    assert 1 < len(list(tmp_path.glob("ranks-*"))) <= 10
    assert len(plan) == 1_000


def test_a_file_that_changed_between_its_readings_is_refused(tmp_path):
    frame = scored(100)
    readings = iter([[frame], [frame, frame]])
    with pytest.raises(RemarketingError, match="changed while it was ranked"):
        plan_file(lambda: iter(next(readings)), 100, POLICIES["budget"], tmp_path)
    with pytest.raises(RemarketingError, match="not the 99"):
        plan_file(lambda: iter([frame]), 99, POLICIES["budget"], tmp_path)


def test_rows_outside_the_file_are_refused(tmp_path):
    plan = plan_file(lambda: iter([scored(10)]), 10, POLICIES["budget"], tmp_path)
    with pytest.raises(RemarketingError, match="outside the 10 ranked"):
        plan.of_rows(5, 11)


def test_the_sort_key_orders_scores_as_argsort_of_their_negatives():
    p = np.array([0.5, -0.0, 0.0, np.nan, 1.0, -1.0, 1e-300, np.inf, -np.inf, 0.5, np.nan])
    order = np.lexsort((np.arange(len(p)), sort_key(p)))
    assert (order == np.argsort(-p, kind="stable")).all()


def test_strata_sizes_from_the_count_equal_the_deciles_of_the_ranks():
    for selected in (0, 1, 9, 10, 11, 99, 1_234):
        ranks = np.arange(1, selected + 1)
        counted = np.bincount(contacts.deciles_of(ranks), minlength=contacts.DECILES + 1)[1:]
        assert (contacts.stratum_sizes(selected) == counted).all()
