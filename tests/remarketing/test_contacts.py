"""The contact list: the value rule, the stratified holdout, the explore group, determinism, parameters."""

import numpy as np
import pandas as pd
import pytest

from remarketing.contacts import Policy, Totals, assign, deciles_of, summary, uniform

N = 20_000


@pytest.fixture(scope="module")
def customers():
    rng = np.random.default_rng(7)
    return pd.Series([f"C{i:06d}" for i in range(N)]), rng.beta(1.2, 8, N)


def test_without_cost_and_value_the_top_of_the_ranking_up_to_the_budget_is_selected(customers):
    ids, p = customers
    plan = assign(ids, p, Policy(budget=2_000, holdout_share=0, explore_share=0))
    assert plan["selected"].sum() == 2_000 and set(plan.loc[plan["selected"], "rank"]) == set(range(1, 2_001))
    assert (plan["group"] == "targeted").sum() == 2_000 and plan["contact"].sum() == 2_000
    assert (plan.loc[plan["group"] == "targeted", "group_probability"] == 1.0).all()


def test_with_cost_and_value_only_customers_worth_a_call_are_selected(customers):
    ids, p = customers
    policy = Policy(budget=10_000, call_cost=5, conversion_value=20, holdout_share=0, explore_share=0)
    plan = assign(ids, p, policy)
    assert policy.break_even == 0.25
    assert plan["selected"].sum() == (p > 0.25).sum() < 10_000
    assert (p[plan["selected"]] > 0.25).all()
    out = summary(Totals.of(plan, p, policy), policy)
    assert out["expected_profit"] == pytest.approx(float((p[p > 0.25] * 20 - 5).sum()))
    assert out["break_even_probability"] == 0.25 and out["worth_calling"] == (p > 0.25).sum()
    capped = assign(
        ids, p, Policy(budget=100, call_cost=5, conversion_value=20, holdout_share=0, explore_share=0)
    )
    assert capped["selected"].sum() == 100 and set(capped.loc[capped["selected"], "rank"]) == set(
        range(1, 101)
    )


def test_the_holdout_is_the_asked_share_of_each_decile_of_the_selected(customers):
    ids, p = customers
    plan = assign(ids, p, Policy(budget=2_000, holdout_share=0.05, explore_share=0))
    selected = plan[plan["selected"]].copy()
    assert set(selected["decile"]) == {1}  # the whole list sits in the file's top decile...
    selected["stratum"] = deciles_of(selected["rank"].to_numpy())  # ...so it is stratified on its own scores
    by_stratum = selected.groupby("stratum")["group"].apply(lambda g: (g == "holdout").mean())
    assert list(by_stratum.index) == list(range(1, 11))
    assert by_stratum.to_numpy() == pytest.approx([0.05] * 10)
    held = selected[selected["group"] == "holdout"]
    assert len(held) == 100 and not held["contact"].any()
    assert held["group_probability"].to_numpy() == pytest.approx(0.05)
    assert selected.loc[selected["group"] == "targeted", "group_probability"].to_numpy() == pytest.approx(
        0.95
    )


def test_a_small_list_holds_out_the_rounded_share_and_says_so(customers):
    ids, p = customers
    plan = assign(ids, p, Policy(budget=30, holdout_share=0.05, explore_share=0))
    assert (plan["group"] == "holdout").sum() == 2  # round(1.5), spread by largest remainder
    out = summary(Totals.of(plan, p, Policy(budget=30)), Policy(budget=30))
    assert out["holdout_share_realised"] == pytest.approx(2 / 30) and out["holdout_share"] == 0.05


def test_explore_calls_are_random_among_the_others_and_never_exceed_the_budget(customers):
    ids, p = customers
    policy = Policy(budget=2_000, holdout_share=0.05, explore_share=0.01)
    plan = assign(ids, p, policy)
    counts = plan["group"].value_counts().to_dict()
    assert counts["holdout"] == 100 and counts["targeted"] == 1_900
    assert counts["explore"] == 100  # 1% of 18,000 others would be 180: capped by the 100 freed calls
    assert plan["contact"].sum() == 2_000
    explored = plan[plan["group"] == "explore"]
    assert (explored["rank"] > 2_000).all() and explored["decile"].nunique() > 3  # spread, not the top
    assert explored["group_probability"].to_numpy() == pytest.approx(100 / 18_000)
    short = assign(ids, p, Policy(budget=2_000, call_cost=1, conversion_value=2, holdout_share=0.05))
    # few are worth a call at a break-even of 50%: their holdout frees a call or two, and only those are
    # given to random calls (unprofitable customers never fill the unused budget)
    assert short["selected"].sum() == (p > 0.5).sum() < 1_000
    assert (short["group"] == "explore").sum() == (short["group"] == "holdout").sum()


def test_same_file_model_and_seed_give_the_same_groups_whatever_the_row_order(customers):
    ids, p = customers
    policy = Policy(budget=3_000)
    first = assign(ids, p, policy).assign(customer_id=ids)
    order = np.random.default_rng(3).permutation(N)
    shuffled = assign(ids.iloc[order].reset_index(drop=True), p[order], policy).assign(
        customer_id=ids.iloc[order].to_numpy()
    )
    merged = first.merge(shuffled, on="customer_id", suffixes=("", "_shuffled"))
    assert (merged["group"] == merged["group_shuffled"]).all()
    other_seed = assign(ids, p, Policy(budget=3_000, seed=43))
    assert (other_seed["group"] != first["group"]).any()
    next_week = assign(ids, p, Policy(budget=3_000, key="another file's sha256"))
    assert (next_week["group"] != first["group"]).any()  # each file draws afresh


def test_the_uniform_draw_is_a_keyed_hash_of_the_id():
    ids = pd.Series(["a", "b", "c"])
    u = uniform(ids, 42, "file")
    assert ((u >= 0) & (u < 1)).all() and np.array_equal(u, uniform(ids, 42, "file"))
    assert not np.array_equal(u, uniform(ids, 41, "file")) and not np.array_equal(
        u, uniform(ids, 42, "other")
    )
    assert uniform(pd.Series(["c", "a"]), 42, "file") == pytest.approx([u[2], u[0]])
