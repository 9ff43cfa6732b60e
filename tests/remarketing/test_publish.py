"""What publish writes, from its pure parts: the ranked contact list, formula escaping, the manifest."""

import numpy as np
import pandas as pd
import pytest

from remarketing import contacts, experiments
from remarketing.contact_file import (
    PREDICTION_COLUMNS,
    SCORED_COLUMNS,
    RankedCsv,
    contact_list,
    escape_cells,
    rows_of,
    write_csv,
)
from remarketing.datasets import load_spec
from remarketing.errors import RemarketingError
from remarketing.ports import ModelRef
from remarketing.publish import _manifest
from remarketing.runs import RunRecord, Source
from remarketing.streamed_plan import plan_file

SPEC = load_spec("bank-marketing")


def customers(n: int = 200, arms: np.ndarray | None = None) -> pd.DataFrame:
    """Scored customers as the score step leaves them: each with its arm and the version that scored it."""
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {"customer_id": [f"C{i:04d}" for i in range(n)], "probability": rng.uniform(0, 1, n)}
    )
    frame["arm"] = "champion" if arms is None else arms
    frame["model_version"] = np.where(frame["arm"] == "champion", "7", "9")
    for k in (1, 2, 3):
        frame[f"reason_{k}_field"] = ["contact", "pdays", "age"][k - 1]
        frame[f"reason_{k}_value"] = ["unknown", "12", "58"][k - 1]
        frame[f"reason_{k}_contribution"] = rng.normal(0, 1, n)
    return frame


def test_the_contact_list_is_ranked_best_first_with_groups_and_worded_reasons():
    scored = customers()
    ranked, plan = contact_list(SPEC, scored, contacts.Policy(budget=40))
    assert list(ranked.columns) == PREDICTION_COLUMNS
    assert ranked["rank"].tolist() == list(range(1, 201)) and ranked["probability"].is_monotonic_decreasing
    assert ranked["decile"].head(20).eq(1).all() and ranked["decile"].tail(20).eq(10).all()
    assert ranked["group"].head(40).isin(["targeted", "holdout"]).all()
    assert (ranked["contact"] == ranked["group"].isin(["targeted", "explore"])).all()
    assert ranked["reason_1"].str.startswith("no contact channel on file (").all()
    assert ranked["reason_2"].str.startswith("contacted in the last 30 days (").all()
    assert set(ranked["model_version"]) == {"7"} and set(ranked["arm"]) == {"champion"}
    assert (plan.index == scored.index).all()  # the groups in the customers' own order


def test_in_an_experiment_each_arm_picks_its_own_contacts_at_the_same_budget_share():
    ids = pd.Series([f"C{i:04d}" for i in range(1000)])
    arms = experiments.arm_of(ids, "exp-1", 0.3)
    scored = customers(1000, arms)
    ranked, plan = contact_list(SPEC, scored, contacts.Policy(budget=100, holdout_share=0.1))
    sizes = ranked["arm"].value_counts()
    assert 250 < sizes["challenger"] < 350  # about the share asked, by the hash of the id
    for arm, version in (("champion", "7"), ("challenger", "9")):
        mine = ranked[ranked["arm"] == arm]
        assert set(mine["model_version"]) == {version}
        assert sorted(mine["rank"]) == list(range(1, len(mine) + 1))  # ranked within the arm
        selected = mine["group"].isin(["targeted", "holdout"]).sum()
        assert abs(selected - 100 * len(mine) / 1000) <= 0.5  # the budget share of its arm
        # each arm's own best customers are the ones it selects
        best = mine.nsmallest(selected, "rank")
        assert best["group"].isin(["targeted", "holdout"]).all()
    assert ranked["group"].isin(["targeted", "holdout"]).sum() == 100  # the budget, shared
    assert (plan.index == scored.index).all()


def test_a_file_written_chunk_by_chunk_equals_the_list_made_in_memory(tmp_path):
    """Publish ranks the numbers, then writes rows by buckets of lines: the same bytes as the whole list."""
    ids = pd.Series([f"C{i:04d}" for i in range(600)])
    scored = customers(600, experiments.arm_of(ids, "exp-1", 0.4))
    scored.loc[3, "customer_id"] = "=HYPERLINK(1)"  # escaped in both
    scored.loc[10:19, "probability"] = 0.5  # ties: ranked by position, then the arms interleaved
    bounds = [0, 70, 200, 599, 600]  # uneven chunks, the last of one row
    chunks = [scored.iloc[a:b][SCORED_COLUMNS] for a, b in zip(bounds, bounds[1:], strict=False)]
    # a text column all empty in one chunk, which Arrow would type as numbers: in the first and a later one
    chunks[0] = chunks[0].assign(reason_2_value=np.nan)
    chunks[1] = chunks[1].assign(reason_3_value=np.nan)
    whole = pd.concat(chunks)
    policy = contacts.Policy(budget=90, holdout_share=0.1, explore_share=0.05, key="sha")

    write_streamed(chunks, policy, tmp_path, bucket_rows=17)
    in_memory, _ = contact_list(SPEC, whole, policy)
    write_csv(in_memory, tmp_path / "whole.csv")

    streamed = (tmp_path / "streamed.csv").read_bytes()
    assert streamed == (tmp_path / "whole.csv").read_bytes()
    back = pd.read_csv(tmp_path / "streamed.csv", dtype={"customer_id": str})
    assert len(back) == 600 and back["customer_id"].is_unique and "'=HYPERLINK(1)" in set(back["customer_id"])
    assert (back["rank"].diff().dropna() >= 0).all()  # best first, rank by rank
    assert {p.name for p in tmp_path.iterdir()} == {"streamed.csv", "whole.csv"}  # no spill left


def write_streamed(chunks: list[pd.DataFrame], policy: contacts.Policy, folder, **sizes) -> RankedCsv:
    """As publish writes predictions.csv: the plan ranked out of memory, then each chunk's rows."""
    rows = sum(len(c) for c in chunks)
    plan = plan_file(lambda: iter(chunks), rows, policy, folder, **sizes)
    csv, start = RankedCsv(folder, rows, **sizes), 0
    for chunk in chunks:
        chunk_plan, lines = plan.of_rows(start, start + len(chunk))
        csv.add(rows_of(SPEC, chunk, chunk_plan), lines)
        start += len(chunk)
    plan.close()
    csv.write(folder / "streamed.csv")
    return csv


def test_rows_beyond_those_ranked_are_refused(tmp_path):
    chunk = customers(50)[SCORED_COLUMNS]
    plan = plan_file(lambda: iter([chunk]), 50, contacts.Policy(budget=5), tmp_path)
    csv = RankedCsv(tmp_path, 50)
    rows = rows_of(SPEC, chunk, plan.of_rows(0, 50)[0])
    csv.add(rows, plan.of_rows(0, 50)[1])
    with pytest.raises(RemarketingError, match="more rows than when it was ranked"):
        csv.add(rows, plan.of_rows(0, 50)[1])
    short = RankedCsv(tmp_path, 60)
    short.add(rows, plan.of_rows(0, 50)[1])
    with pytest.raises(RemarketingError, match="fewer rows than when it was ranked"):
        short.write(tmp_path / "p.csv")


def test_text_a_spreadsheet_would_run_is_escaped_and_numbers_are_not():
    frame = pd.DataFrame(
        {"customer_id": ["=1+1", "+31 6", "-x", "@SUM(A1)", "C1"], "probability": [-0.5, 0.1, 0.2, 0.3, 0.4]}
    )
    frame["contact"] = [True, False, True, False, True]
    frame["rank"] = range(1, 6)
    escaped = escape_cells(frame).to_pandas()
    assert escaped["customer_id"].tolist() == ["'=1+1", "'+31 6", "'-x", "'@SUM(A1)", "C1"]
    assert escaped["probability"].tolist() == frame["probability"].tolist()
    assert escaped["contact"].tolist() == ["True", "False", "True", "False", "True"]
    assert frame["customer_id"].iloc[0] == "=1+1"  # the input is not changed


def test_the_csv_has_a_plain_header_quoted_text_and_rounded_numbers(tmp_path):
    frame = pd.DataFrame(
        {
            "customer_id": ["C1", "=2", None],
            "probability": [0.123456789, 1.0, 2e-7],
            "rank": [1, 2, 3],
            "contact": [True, False, True],
            "reason_1": ["average yearly balance 2,971 EUR (raises)", 'say "hi"', ""],
        }
    )
    path = tmp_path / "p.csv"
    write_csv(frame, path)
    text = path.read_text()
    assert text.startswith("customer_id,probability,rank,contact,reason_1\n")
    back = pd.read_csv(path, dtype={"customer_id": str}, keep_default_na=False)
    assert back["customer_id"].tolist() == ["C1", "'=2", ""]  # a missing cell stays empty
    assert back["probability"].tolist() == [0.123457, 1.0, 0.0]
    assert back["contact"].tolist() == [True, False, True]
    assert back["reason_1"].tolist() == frame["reason_1"].tolist()


def test_the_manifest_says_what_was_asked_decided_and_promised():
    record = RunRecord(
        run_id="scoring-1",
        kind="scoring",
        dataset="bank-marketing",
        source=Source(uri="gs://landing/weekly/w.csv", generation=3, sha256="abc"),
        params={"budget": "40", "model_version": "7"},
        warnings=["column 'y' (the target) ignored"],
        metrics={"rows_read": 201, "rows_rejected": 1, "unseen_categories": {"job": 2}},
    )
    scored = customers()
    policy = contacts.Policy(budget=40, key="abc")
    ranked, plan = contact_list(SPEC, scored, policy)
    outlook = {
        **contacts.summary(contacts.Totals.of(plan, scored["probability"].to_numpy(), policy), policy),
        "interval": {"low": 0.5},
        "prior_shift": None,
        "drift": {"level": "stable", "major": [], "moderate": [], "features_measured": 13},
    }
    meta = {
        "family": "logreg",
        "training_data": {"sha256": "h"},
        "fitted_on": {"rows": 36168},
        "calibration": [1.0, 0.0],
    }
    manifest = _manifest(
        "scoring-1",
        "bank-marketing",
        record,
        ModelRef("remarketing-bank-marketing", "7", "gs://a/m/7"),
        meta,
        outlook,
        policy,
        ["prior shift: ..."],
        "gs://a/output/scoring-1",
    )
    assert manifest["model"] == {
        "name": "remarketing-bank-marketing",
        "version": "7",
        "uri": "gs://a/m/7",
        "family": "logreg",
        "trained_on": {"sha256": "h"},
        "fitted_on": {"rows": 36168},
    }
    assert manifest["counts"] == {"rows_read": 201, "rows_scored": 200, "rows_rejected": 1}
    assert manifest["contact_list"]["asked"] == {"budget": "40", "model_version": "7"}
    assert manifest["contact_list"]["rule"] == "the top of the ranking, up to the budget"
    assert (
        manifest["contact_list"]["groups"]["targeted"] + manifest["contact_list"]["groups"]["holdout"] == 40
    )
    assert manifest["contact_list"]["seed"] == 42 and manifest["interval"] == {"low": 0.5}
    assert manifest["warnings"] == ["column 'y' (the target) ignored", "prior shift: ..."]
    assert manifest["unseen_categories"] == {"job": 2}
    assert manifest["drift_overview"]["level"] == "stable" and "drift" not in manifest["contact_list"]
    assert manifest["files"]["predictions.csv"] == "gs://a/output/scoring-1/predictions.csv"
    assert manifest["expected_conversion_rate"] == pytest.approx(outlook["expected_conversion_rate"])
