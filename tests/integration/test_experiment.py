"""Champion against challenger on the real stack, through the CLI: an experiment splits a scored week
between two versions, the week's outcomes feed the test in the monitoring pipeline, and the decision
(promotion or end) is taken, recorded with its evidence and reflected in the registry.

Run on Thera Bank so the bank-marketing champion other tests score with never changes."""

from __future__ import annotations

import io
import json
import math

import httpx
import pandas as pd
import pytest
from scipy.stats import norm

from remarketing import decisions, experiments
from remarketing.storage import Storage
from tests.integration.helpers import run_cli
from tracking.registry import MlflowRegistry

pytestmark = pytest.mark.integration
DATASET, MODEL = "thera-bank", "remarketing-thera-bank"
QUIET = {"REMARKETING_RETRAIN_FLOOR_LIFT": "0", "REMARKETING_RETRAIN_WHEN_OUTSIDE_INTERVAL": "false"}


@pytest.fixture(scope="module")
def two_versions(thera_trained, stack, thera_bytes, tmp_path_factory):
    """A second Thera Bank version (trained on the first 60% of the file): champion and challenger."""
    frame = pd.read_csv(io.BytesIO(thera_bytes))
    path = tmp_path_factory.mktemp("thera-early") / "thera-early.csv"
    frame.head(int(len(frame) * 0.6)).to_csv(path, index=False)
    result = run_cli("train", str(path), "--dataset", DATASET, env=stack.to_env())
    assert result.code == 0, result.stderr
    registry = MlflowRegistry(stack.tracking_uri)
    champion = registry.by_alias(MODEL, "champion").version
    versions = {thera_trained.json["model_version"], result.json["model_version"]}
    assert len(versions) == 2 and champion in versions
    yield champion, (versions - {champion}).pop(), frame
    storage = Storage(stack)
    if experiments.running(storage, stack.artifacts_root, DATASET):
        experiments.stop(storage, stack.artifacts_root, DATASET, by="test teardown")


def start(stack, *args: str):
    return run_cli("experiment", "start", "--dataset", DATASET, *args, env=stack.to_env())


def test_an_experiment_is_refused_with_the_reason(two_versions, stack):
    champion, challenger, _ = two_versions
    cases = [
        (["--challenger", champion], f"v{champion} is the champion"),
        (["--challenger", "999"], "has no version 999"),
        (["--challenger", challenger, "--share", "1.5"], "share must be between 0 and 1"),
        (["--challenger", challenger, "--share", "0"], "share must be between 0 and 1"),
    ]
    for args, said in cases:
        refused = start(stack, *args)
        assert refused.code == 1 and said in refused.json["error"]["message"], (args, refused.stderr)
    assert experiments.running(Storage(stack), stack.artifacts_root, DATASET) is None


def test_a_week_in_an_experiment_is_split_scored_judged_and_decided(two_versions, stack, tmp_path):
    champion, challenger, frame = two_versions
    # sized to decide on one week: a lift of 4 needs few customers; each week is a look at the data
    started = start(stack, "--challenger", challenger, "--share", "0.4", "--min-lift", "4")
    assert started.code == 0, started.stderr
    experiment_id = started.json["experiment"]["experiment_id"]
    second = start(stack, "--challenger", challenger)
    assert second.code == 1 and f"experiment {experiment_id}" in second.json["error"]["message"]

    week = frame.tail(1500)
    path = tmp_path / "thera-week.csv"
    week.drop(columns="Personal Loan").to_csv(path, index=False)
    scored = run_cli("score", str(path), "--dataset", DATASET, "--budget-share", "0.1", env=stack.to_env())
    assert scored.code == 0, scored.stderr
    predictions = pd.read_csv(
        io.BytesIO(httpx.get(scored.json["predictions_url"]).content), dtype={"customer_id": str}
    )
    # each customer in the arm its id hashes to, scored by that arm's version, ranked within its arm
    expected_arms = experiments.arm_of(predictions["customer_id"], experiment_id, 0.4)
    assert (predictions["arm"].to_numpy() == expected_arms).all()
    versions = predictions.groupby("arm")["model_version"].unique().to_dict()
    assert {a: list(map(str, v)) for a, v in versions.items()} == {
        "champion": [champion],
        "challenger": [challenger],
    }
    for arm, mine in predictions.groupby("arm"):
        assert sorted(mine["rank"]) == list(range(1, len(mine) + 1))
        selected = mine["group"].isin(["targeted", "holdout"]).sum()
        assert abs(selected - 150 * len(mine) / 1500) <= 0.5, arm  # the same budget share in each arm
    assert scored.json["experiment"]["arms"]["challenger"]["version"] == challenger

    outcomes = tmp_path / "thera-outcomes.csv"
    week[["ID", "Personal Loan"]].to_csv(outcomes, index=False)
    measured = run_cli(
        "outcomes", str(outcomes), "--run", scored.json["run_id"], env={**stack.to_env(), **QUIET}
    )
    assert measured.code == 0, measured.stderr
    assert measured.json["experiment_id"] == experiment_id

    # the experiment's counts are the week's, computed here from the list and the labels
    storage = Storage(stack)
    after = experiments.get(storage, stack.artifacts_root, DATASET, experiment_id)
    labels = week.set_index(week["ID"].astype(str))["Personal Loan"]
    predictions["label"] = predictions["customer_id"].map(labels)
    counts = {}
    for arm, mine in predictions.groupby("arm"):
        called = mine["contact"].astype(str).str.lower() == "true"
        counts[arm] = (len(mine), int(mine.loc[called, "label"].sum()))
    (key,) = after.weeks  # one outcomes file of one scored week
    assert key.startswith(f"{scored.json['run_id']}:")
    assert after.weeks[key]["challenger"]["customers"] == counts["challenger"][0]
    assert after.weeks[key]["champion"]["conversions"] == counts["champion"][1]
    (n1, c1), (n0, c0) = counts["challenger"], counts["champion"]
    pooled = (c1 + c0) / (n1 + n0)
    z = (c1 / n1 - c0 / n0) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    assert after.last["z"] == pytest.approx(z)
    assert after.planned is not None  # the champion arm had enough conversions to size the sample
    boundary = norm.ppf(0.975) / math.sqrt(after.last["information"])  # z at alpha / 2 at the end
    assert after.last["boundary"] == pytest.approx(boundary)

    # the decision follows the rule, and the registry and the record of decisions say the same
    registry = MlflowRegistry(stack.tracking_uri)
    now = registry.by_alias(MODEL, "champion").version
    recorded = decisions.listed(storage, stack.artifacts_root, DATASET)[0]
    if z >= boundary:
        assert after.status == "promoted" and now == challenger
        assert recorded["action"] == "promoted" and recorded["previous"] == champion
    elif z <= -boundary or after.last["information"] >= 1:
        assert after.status == "ended" and now == champion
        assert recorded["action"] == "experiment-ended"
    else:
        assert after.status == "running" and now == champion
    if after.status != "running":
        assert recorded["evidence"]["arms"]["challenger"]["customers"] == n1
        assert experiments.running(storage, stack.artifacts_root, DATASET) is None
        assert json.dumps(recorded["evidence"]["last_look"]["z"]) == json.dumps(after.last["z"])
    else:  # the next test starts its own
        experiments.stop(storage, stack.artifacts_root, DATASET, by="test")


def test_an_experiment_stops_by_hand_and_the_next_week_is_the_champions_alone(two_versions, stack, tmp_path):
    _, _, frame = two_versions
    registry = MlflowRegistry(stack.tracking_uri)
    champion = registry.by_alias(MODEL, "champion").version
    other = next(v.version for v in registry.versions(MODEL) if v.version != champion)
    started = start(stack, "--challenger", other)
    assert started.code == 0, started.stderr
    stopped = run_cli("experiment", "stop", "--dataset", DATASET, env=stack.to_env())
    assert stopped.code == 0 and stopped.json["experiment"]["status"] == "stopped"
    again = run_cli("experiment", "stop", "--dataset", DATASET, env=stack.to_env())
    assert again.code == 1 and "no thera-bank experiment is running" in again.json["error"]["message"]
    status = run_cli("experiment", "status", "--dataset", DATASET, env=stack.to_env())
    assert status.json["running"] is None
    assert status.json["decisions"][0]["action"] == "experiment-stopped"

    path = tmp_path / "thera-next.csv"
    frame.tail(200).drop(columns="Personal Loan").to_csv(path, index=False)
    scored = run_cli("score", str(path), "--dataset", DATASET, env=stack.to_env())
    assert scored.code == 0, scored.stderr
    assert scored.json["experiment"] is None and scored.json["model_version"] == champion
