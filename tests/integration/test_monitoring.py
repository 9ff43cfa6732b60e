"""The loop's first half on the real stack, through the CLI: a scored week's outcomes measured by the
monitoring pipeline (kfp.local), and the labelled rows added to the history once."""

from __future__ import annotations

import io
import json

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from remarketing.monitoring import history_root, history_versions
from remarketing.storage import Storage
from tests.conftest import MODEL
from tests.integration.helpers import run_cli

pytestmark = pytest.mark.integration
# The policy pinned off: a retraining the default gate might promote would change the champion that later
# tests score with (the retraining tests set their own).
NO_RETRAIN = {"REMARKETING_RETRAIN_FLOOR_LIFT": "0", "REMARKETING_RETRAIN_WHEN_OUTSIDE_INTERVAL": "false"}


def quiet(stack) -> dict[str, str]:
    return {**stack.to_env(), **NO_RETRAIN}


@pytest.fixture(scope="module")
def week(trained, stack, bank_bytes, tmp_path_factory):
    """A scored week (the target kept in the file: scoring ignores it) and its true outcomes."""
    frame = pd.read_csv(io.BytesIO(bank_bytes), sep=";")
    later = frame.iloc[int(len(frame) * 0.8) :: 25].copy()
    later.insert(0, "customer_id", [f"C{i:06d}" for i in later.index])
    folder = tmp_path_factory.mktemp("week")
    path = folder / "week.csv"
    later.to_csv(path, sep=";", index=False)
    scored = run_cli("score", str(path), "--budget", "100", env=stack.to_env())
    assert scored.code == 0, scored.stderr
    outcomes = folder / "outcomes.csv"  # all but the customers the later tests send (reserved)
    later.drop(later.index[reserved(len(later))])[["customer_id", "y"]].to_csv(outcomes, sep=";", index=False)
    return scored.json, later, outcomes, folder


def reserved(n: int) -> np.ndarray:
    """The positions whose outcomes only the later tests send (a customer's outcome counts once)."""
    return np.r_[30:75, 100:140, n - 60 : n]


def sent(outcomes) -> pd.DataFrame:
    return pd.read_csv(outcomes, sep=";", dtype={"customer_id": str})


def test_outcomes_are_measured_against_the_promise(week, stack):
    scored, _, outcomes, _ = week
    later = sent(outcomes)
    before = history_versions(Storage(stack), history_root(stack, "bank-marketing"))
    result = run_cli("outcomes", str(outcomes), "--run", scored["run_id"], env=quiet(stack))
    assert result.code == 0, result.stderr
    out = result.json
    assert out["kind"] == "monitoring" and out["scoring_run"] == scored["run_id"]
    assert out["model_version"] == scored["model_version"] and out["outcomes"] == len(later)
    storage = Storage(stack)
    performance = json.loads(storage.read_text(out["performance_uri"]))
    predictions = pd.read_csv(
        io.BytesIO(httpx.get(scored["predictions_url"]).content), dtype={"customer_id": str}
    )
    joined = predictions.merge(later[["customer_id", "y"]], on="customer_id")
    labels = (joined["y"] == "yes").astype(int)
    assert performance["roc_auc"] == pytest.approx(roc_auc_score(labels, joined["probability"]), abs=1e-9)
    targeted, holdout = (labels[joined["group"] == g] for g in ("targeted", "holdout"))
    assert performance["incremental"]["difference"] == pytest.approx(
        targeted.mean() - holdout.mean(), abs=1e-12
    )
    assert performance["promise"]["expected_conversion_rate"] == pytest.approx(
        scored["expected_conversion_rate"]
    )
    assert out["performance_uri"].endswith(
        f"/output/{scored['run_id']}/monitoring/{out['run_id']}/performance.json"
    )
    report = storage.read_text(out["performance_uri"].replace(".json", ".md"))
    assert report.startswith(f"# Outcomes of scoring run {scored['run_id']} ({MODEL} v")
    # the history: one version more, from the champion's training file to these labelled rows
    versions = history_versions(storage, history_root(stack, "bank-marketing"))
    assert len(versions) == len(before) + 1 and out["history_version"] == versions[-1]["version"]
    parts = versions[-1]["parts"]
    assert parts[0]["from"] == {"training_file": True} and parts[-1]["rows"] == len(later)
    assert parts[-1]["from"] == {"outcomes_sha256": out["source"]["sha256"], "scoring_run": scored["run_id"]}
    rows = pd.read_csv(io.StringIO(storage.read_text(parts[-1]["uri"])), sep=";")
    # each customer by pseudonym (no raw id in the history), the one the deployment's key gives
    from remarketing.personal_data import pseudonyms

    named = pseudonyms(stack)
    assert set(rows["customer_id"]) == {named.of(str(i)) for i in later["customer_id"]}
    assert set(rows["y"]) <= {"yes", "no"}


def test_the_same_outcomes_again_grow_the_history_once(week, stack):
    scored, _, outcomes, _ = week
    first = run_cli("outcomes", str(outcomes), "--run", scored["run_id"], env=quiet(stack))
    assert first.code == 0, first.stderr  # (already measured if the test above ran: the same either way)
    before = history_versions(Storage(stack), history_root(stack, "bank-marketing"))
    again = run_cli("outcomes", str(outcomes), "--run", scored["run_id"], env=quiet(stack))
    assert again.code == 0, again.stderr
    said = f"already in history version {first.json['history_version']}: nothing added"
    assert any(said in w for w in again.json["warnings"])
    assert again.json["history_rows_added"] == 0 and again.json["retrain"] is False
    assert history_versions(Storage(stack), history_root(stack, "bank-marketing")) == before
    # each run measured its own week, side by side
    assert again.json["performance_uri"] != first.json["performance_uri"]
    assert again.json["performance_uri"].endswith(f"/monitoring/{again.json['run_id']}/performance.json")


def test_the_scoring_run_is_found_by_the_ids_and_a_customers_outcome_counts_once(week, stack):
    scored, later, outcomes, folder = week
    first = run_cli("outcomes", str(outcomes), "--run", scored["run_id"], env=quiet(stack))
    assert first.code == 0, first.stderr  # (already measured if an earlier test ran: the same either way)
    some = folder / "some-outcomes.csv"  # another file, of customers whose outcomes are in already
    later[["customer_id", "y"]].head(30).to_csv(some, sep=";", index=False)
    result = run_cli("outcomes", str(some), env=quiet(stack))
    assert result.code == 0, result.stderr
    assert result.json["scoring_run"] == scored["run_id"]
    assert any(
        f"outcomes of scoring run {scored['run_id']} (found by the ids)" in w for w in result.json["warnings"]
    )
    assert result.json["history_rows_added"] == 0
    assert any(
        "30 customers' outcomes of this week were added by an earlier file" in w
        for w in result.json["warnings"]
    )


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("unknown ids", "2 ids were never scored by run"),
        ("duplicate ids", "1 ids appear more than once"),
        ("target outside the spec", "are not one of ['no', 'yes']"),
        ("missing target", "missing column: 'y'"),
        ("empty", "the file is empty"),
        ("no such run", "no run 'scoring-0000000000000000'"),
    ],
)
def test_bad_outcomes_fail_clearly_and_add_nothing(case, expected, week, stack):
    scored, later, _, folder = week
    frame = later[["customer_id", "y"]].head(20).copy()
    run = scored["run_id"]
    if case == "unknown ids":
        frame.iloc[:2, 0] = ["X1", "X2"]
    elif case == "duplicate ids":
        frame.iloc[1, 0] = frame.iloc[0, 0]
    elif case == "target outside the spec":
        frame.iloc[0, 1] = "maybe"
    elif case == "missing target":
        frame = frame.drop(columns="y")
    elif case == "no such run":
        run = "scoring-0000000000000000"
    path = folder / f"bad-{case.replace(' ', '-')}.csv"
    path.write_text("" if case == "empty" else frame.to_csv(sep=";", index=False))
    before = history_versions(Storage(stack), history_root(stack, "bank-marketing"))
    result = run_cli("outcomes", str(path), "--run", run, env=quiet(stack))
    assert result.code == 1 and result.json["status"] == "failed"
    assert result.json["error"]["step"] == "validate" and expected in result.json["error"]["message"]
    assert history_versions(Storage(stack), history_root(stack, "bank-marketing")) == before


def test_a_week_below_the_policy_retrains_on_the_history(week, stack):
    """The policy's floor raised out of reach: the monitoring run launches a training run on the latest
    history version, which says why it was launched; the gate still decides (its floors are raised too, so
    the champion stays for the other tests)."""
    from remarketing.runs import RunStore
    from tests.frontend.conftest import wait_finished

    scored, later, _, folder = week
    late = folder / "late-outcomes.csv"  # outcomes not sent before: they add to the history
    later[["customer_id", "y"]].tail(60).to_csv(late, sep=";", index=False)
    env = {
        **stack.to_env(),
        "REMARKETING_RETRAIN_FLOOR_LIFT": "1000",
        "REMARKETING_RETRAIN_MIN_OUTCOMES": "50",  # these 60 outcomes are enough to decide
        "REMARKETING_FLOOR_ROC_AUC": "0.99",
    }
    result = run_cli("outcomes", str(late), "--run", scored["run_id"], env=env)
    assert result.code == 0, result.stderr
    out = result.json
    assert out["retrain"] is True and "below the floor 1000" in out["retrain_reasons"][0]
    training = wait_finished(stack, out["training_run"], timeout=600)
    assert training.status == "success", training.error
    assert training.params["launched_because"] == "; ".join(out["retrain_reasons"])
    history = history_versions(Storage(stack), history_root(stack, "bank-marketing"))[-1]  # the latest
    assert training.params["history_version"] == str(history["version"])
    assert training.source.filename == f"history v{history['version']}"
    base = RunStore(Storage(stack), stack.artifacts_root).get(scored["run_id"])
    assert base.model_version != training.model_version
    labelled = sum(p["rows"] for p in history["parts"][1:])
    assert labelled >= len(sent(week[2])) + 60
    assert training.metrics["fitted_on_rows"] == 4522 + labelled  # the training file and every week
    assert training.metrics["promoted"] is False  # below the raised floor: a challenger


def test_a_week_within_the_policy_retrains_nothing(week, stack):
    scored, later, _, folder = week
    early = folder / "early-outcomes.csv"  # outcomes not sent before: measured, added, then decided on
    later[["customer_id", "y"]].iloc[30:75].to_csv(early, sep=";", index=False)
    env = {**quiet(stack), "REMARKETING_RETRAIN_MIN_OUTCOMES": "10"}  # enough to decide: within the policy
    result = run_cli("outcomes", str(early), "--run", scored["run_id"], env=env)
    assert result.code == 0, result.stderr
    assert result.json["history_rows_added"] == 45
    assert result.json["retrain"] is False and result.json["training_run"] is None
    assert "no retraining: the week is within the policy" in result.json["warnings"]


def test_the_schedules_turn_trains_each_history_version_once(week, stack):
    """`remarketing retrain` (what the scheduler runs): a history version no model was trained on is
    trained on, and the model says which version it is; the next turn does nothing and says why. The
    champion stays (the gate's floor is raised)."""
    from tests.frontend.conftest import wait_finished
    from tracking.registry import MlflowRegistry

    scored, later, _, folder = week
    fresh = folder / "fresh-outcomes.csv"  # outcomes no other test sends: a version of their own
    later[["customer_id", "y"]].iloc[100:140].to_csv(fresh, sep=";", index=False)
    measured = run_cli("outcomes", str(fresh), "--run", scored["run_id"], env=quiet(stack))
    assert measured.code == 0 and measured.json["history_rows_added"] == 40, measured.stderr
    latest = measured.json["history_version"]
    env = {**quiet(stack), "REMARKETING_FLOOR_ROC_AUC": "0.99"}  # the gate keeps the champion
    registry = MlflowRegistry(stack.tracking_uri)
    champion = registry.by_alias(MODEL, "champion").version

    turn = run_cli("retrain", "--dataset", "bank-marketing", "--no-wait", env=env)
    assert turn.code == 0 and turn.json["retrain"] is True, turn.stderr
    assert turn.json["said"] == f"asked by hand: no model was trained on history version {latest} yet"
    assert turn.json["uri"].endswith(f"/input/history-bank-marketing-v{latest}.csv")
    training = wait_finished(stack, turn.json["training_run"], timeout=600)
    assert training.status == "success", training.error
    assert training.params["launched_because"] == turn.json["said"]
    bundle = registry.get(MODEL, training.model_version).source
    assert json.loads(Storage(stack).read_text(f"{bundle}/metadata.json"))["training_data"][
        "history_version"
    ] == str(latest)

    again = run_cli("retrain", "--dataset", "bank-marketing", env=env)
    assert again.code == 0 and again.json["retrain"] is False
    assert again.json["said"] == (
        f"v{training.model_version} was trained on history version {latest} (not promoted: the gate decided)"
    )
    assert registry.by_alias(MODEL, "champion").version == champion
