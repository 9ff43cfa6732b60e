"""The scoring pipeline on kfp.local through the CLI: real emulator, MLflow, model-server process, API."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import httpx
import pandas as pd
import psutil
import pytest

from observability.push import groups
from remarketing.contact_file import PREDICTION_COLUMNS
from remarketing.datasets import load_spec
from remarketing.processes import ProcessRegistry, free_port
from remarketing.runs import RunStore
from remarketing.storage import Storage
from serving.deployer import server_name
from tests.conftest import MODEL
from tests.integration.helpers import run_cli
from tests.observability.promql import wait_until
from tracking.registry import CHAMPION, MlflowRegistry

pytestmark = pytest.mark.integration
FIELDS = load_spec("bank-marketing").feature_names


def weekly_frame(bank_bytes: bytes, step: int = 20) -> pd.DataFrame:
    """Later customers the sample model never saw: every ``step``-th row of the last 20%, with ids."""
    frame = pd.read_csv(io.BytesIO(bank_bytes), sep=";")
    later = frame.iloc[int(len(frame) * 0.8) :: step].copy()
    later.insert(0, "customer_id", [f"C{i:06d}" for i in later.index])
    return later


def write(frame: pd.DataFrame, path) -> str:
    frame.to_csv(path, sep=";", index=False)
    return str(path)


def outputs(settings, run_id: str) -> dict:
    storage = Storage(settings)
    base = f"gs://{settings.artifacts_bucket}/output/{run_id}"
    return {uri.rsplit("/", 1)[1]: uri for uri in storage.list(base + "/")}


@pytest.fixture(scope="module")
def messy(trained, stack, bank_bytes, tmp_path_factory):
    """One usable but messy weekly file: the target still in it, an extra column, an unseen category,
    text in a numeric column, and ids a spreadsheet would run as formulas."""
    frame = weekly_frame(bank_bytes).astype({"age": object})
    frame["loyalty_card"] = "gold"  # extra column
    frame.iloc[0, frame.columns.get_loc("job")] = "astronaut"  # unseen category
    frame.iloc[1, frame.columns.get_loc("age")] = "forty"  # text in a numeric column: rejected
    frame.iloc[2, frame.columns.get_loc("customer_id")] = '=HYPERLINK("http://x")'
    frame.iloc[3, frame.columns.get_loc("customer_id")] = "@SUM(A1)"
    path = write(frame, tmp_path_factory.mktemp("weekly") / "weekly-messy.csv")
    result = run_cli("score", path, "--budget", "50", env=stack.to_env())
    assert result.code == 0, result.stderr
    return result, frame


def test_every_valid_customer_is_scored_ranked_and_explained(messy, stack):
    result, frame = messy
    out = result.json
    assert out["status"] == "success" and out["rows_scored"] == len(frame) - 1 and out["rows_rejected"] == 1
    assert out["model_version"] == MlflowRegistry(stack.tracking_uri).by_alias(MODEL, CHAMPION).version
    assert 0 < out["base_rate"] < out["expected_conversion_rate"] < 1
    scored = pd.read_csv(io.BytesIO(httpx.get(out["predictions_url"]).content), dtype={"customer_id": str})
    assert list(scored.columns) == PREDICTION_COLUMNS
    assert scored["rank"].tolist() == list(range(1, len(scored) + 1))  # the contact list comes first
    assert scored["probability"].is_monotonic_decreasing
    selected = scored["group"].isin(["targeted", "holdout"])
    assert selected.sum() == 50 and selected.head(50).all()  # the top 50 would be called
    assert scored["contact"].sum() <= 50 and set(scored["group"]) <= {
        "targeted",
        "holdout",
        "explore",
        "not_selected",
    }
    assert (scored["contact"] == scored["group"].isin(["targeted", "explore"])).all()
    assert scored["group_probability"].between(0, 1).all()
    assert set(scored["decile"]) == set(range(1, 11))
    assert scored["reason_1"].str.match(r"^.+ \((raises|lowers)\)$").all()  # the spec's words
    assert set(scored["reason_1_field"]) <= set(FIELDS) and (scored["reason_1_value"].astype(str) != "").all()


def test_contributions_and_manifest_are_published_beside_it(messy, stack):
    out = messy[0].json
    files = outputs(stack, out["run_id"])
    assert set(files) == {"predictions.csv", "rejects.csv", "contributions.parquet", "manifest.json"}
    storage = Storage(stack)
    contributions = pd.read_parquet(io.BytesIO(storage.read_bytes(files["contributions.parquet"])))
    assert len(contributions) == out["rows_scored"]
    assert {"customer_id", "base_value", *(f"shap_{f}" for f in FIELDS)} <= set(contributions.columns)
    manifest = json.loads(storage.read_text(files["manifest.json"]))
    assert manifest["counts"] == {
        "rows_read": out["rows_scored"] + 1,
        "rows_scored": out["rows_scored"],
        "rows_rejected": 1,
    }
    contact_list = manifest["contact_list"]
    assert contact_list["budget"] == 50 and contact_list["calls"] == out["contacted"] <= 50
    assert contact_list["groups"]["targeted"] + contact_list["groups"]["holdout"] == 50
    assert contact_list["seed"] == stack.seed and contact_list["holdout_share"] == 0.05
    assert manifest["model"]["version"] == out["model_version"]
    assert manifest["model"]["fitted_on"]["rows"] > 4000  # the deployed model learned from every labelled row
    interval = manifest["interval"]
    assert (
        interval["low"] < manifest["expected_conversion_rate"] < interval["high"] and interval["level"] == 0.8
    )
    assert len(interval["errors"]) == stack.backtest_periods
    shift = manifest["prior_shift"]
    assert isinstance(shift["detected"], bool) and shift["psi_against_latest_period"] >= 0
    assert manifest["source"]["sha256"] and manifest["model"]["uri"].startswith(
        f"gs://{stack.artifacts_bucket}/"
    )
    assert set(manifest["drift"]) == set(FIELDS)
    assert all(d["level"] in {"stable", "moderate", "major"} for d in manifest["drift"].values())
    assert manifest["expected_conversion_rate"] == pytest.approx(out["expected_conversion_rate"])


def test_a_list_chosen_by_value_calls_only_customers_worth_it(trained, stack, bank_bytes, tmp_path):
    path = write(weekly_frame(bank_bytes, step=40), tmp_path / "weekly-value.csv")
    result = run_cli(
        "score", path, "--budget", "200", "--call-cost", "3", "--conversion-value", "10", env=stack.to_env()
    )
    assert result.code == 0, result.stderr
    out = result.json
    assert out["break_even_probability"] == pytest.approx(0.3)
    scored = pd.read_csv(io.BytesIO(httpx.get(out["predictions_url"]).content), dtype={"customer_id": str})
    selected = scored[scored["group"].isin(["targeted", "holdout"])]
    assert (selected["probability"] > 0.3).all() and len(selected) <= 200
    called = scored[scored["contact"]]
    assert out["expected_profit"] == pytest.approx((called["probability"] * 10 - 3).sum(), rel=1e-4)
    assert "expected profit" in result.stderr and "break-even probability 30.0%" in result.stderr


def test_customers_unlike_the_training_rows_get_a_drift_banner(trained, stack, bank_bytes, tmp_path):
    """Every customer contacted before (``pdays``, ``previous``: sentinel-heavy columns whose deciles are one
    value) and older: the file's drift is major, and the run says what moved and what it means."""
    frame = weekly_frame(bank_bytes, step=40)
    frame["pdays"], frame["previous"], frame["age"] = 150, 3, frame["age"] + 25
    result = run_cli("score", write(frame, tmp_path / "weekly-drifted.csv"), env=stack.to_env())
    assert result.code == 0, result.stderr
    out = result.json
    assert out["drift_level"] == "major" and {"pdays", "previous", "age"} <= set(out["drifted_features"])
    assert "age" in out["drift_beyond_backtests"]  # 25 years older than ever in the history
    banner = next(w for w in out["warnings"] if w.startswith("major drift"))
    assert "pdays=-1 in" in banner and "expected figures" in banner
    assert "moved further than in any backtest period" in banner
    assert banner in result.stderr
    manifest = json.loads(Storage(stack).read_text(outputs(stack, out["run_id"])["manifest.json"]))
    assert manifest["drift"]["pdays"]["level"] == "major" and manifest["drift_overview"]["level"] == "major"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--call-cost", "-1", "--conversion-value", "10"], "call_cost must be 0 or more"),
        (["--call-cost", "1", "--conversion-value", "0"], "conversion_value must be above 0"),
        (["--call-cost", "nan", "--conversion-value", "10"], "call_cost must be a finite number"),
        (["--call-cost", "2"], "give both call_cost and conversion_value"),
        (["--holdout-share", "0.6"], "holdout_share must be between 0 and 0.5"),
        (["--budget", "0"], "budget must be at least 1 customer"),
        (["--model-version", "999"], f"model_version 999: {MODEL} has no version 999; its versions are 1"),
    ],
)
def test_wrong_contact_parameters_are_usage_errors_and_launch_nothing(
    args, message, stack, trained, bank_bytes, tmp_path
):
    path = write(weekly_frame(bank_bytes, step=400), tmp_path / "weekly.csv")
    before = set(Storage(stack).list(f"gs://{stack.landing_bucket}/weekly/"))
    result = run_cli("score", path, *args, env=stack.to_env())
    assert result.code == 2 and message in result.stderr
    assert set(Storage(stack).list(f"gs://{stack.landing_bucket}/weekly/")) == before


def test_the_target_is_ignored_and_extra_columns_too_and_both_are_said(messy):
    warnings = messy[0].json["warnings"]
    assert any("'y' (the target) ignored" in w for w in warnings)
    assert any("unknown column dropped: 'loyalty_card'" in w for w in warnings)


def test_unseen_categories_are_scored_and_counted_in_the_manifest(messy, stack):
    out = messy[0].json
    manifest = json.loads(Storage(stack).read_text(outputs(stack, out["run_id"])["manifest.json"]))
    assert manifest["unseen_categories"] == {"job": 1}
    scored = pd.read_csv(io.BytesIO(httpx.get(out["predictions_url"]).content), dtype={"customer_id": str})
    assert messy[1]["customer_id"].iloc[0] in set(scored["customer_id"])


def test_text_in_a_numeric_column_rejects_the_row(messy, stack):
    out = messy[0].json
    rejects = pd.read_csv(io.BytesIO(Storage(stack).read_bytes(outputs(stack, out["run_id"])["rejects.csv"])))
    assert rejects.to_dict("records") == [
        {"row": 3, "column": "age", "value": "forty", "reason": "is not a number"}
    ]


def test_formula_like_cells_are_escaped_in_the_downloaded_file(messy):
    text = httpx.get(messy[0].json["predictions_url"]).text
    assert "'=HYPERLINK" in text and "'@SUM(A1)" in text
    assert "\n=HYPERLINK" not in text and "\n@SUM" not in text


def test_the_url_alone_downloads_and_stops_working_when_changed(messy):
    url = messy[0].json["predictions_url"]
    assert httpx.get(url).status_code == 200
    tampered = url.replace("predictions.csv", "manifest.json")
    assert httpx.get(tampered).status_code == 403
    later = url.replace("expires=", "expires=9")
    assert httpx.get(later).status_code == 403


def test_an_expired_url_is_refused(messy, stack):
    from remarketing.secrets import url_signing_key
    from remarketing.urls import _signature

    url = httpx.URL(messy[0].json["predictions_url"])
    q = dict(url.params)
    q["expires"] = str(int(time.time()) - 1)
    q["signature"] = _signature(url_signing_key(stack), q["uri"], int(q["generation"]), int(q["expires"]))
    response = httpx.get(url.copy_with(params=q))
    assert response.status_code == 403 and "expired" in response.text


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing columns", "missing 2 columns: 'age', 'poutcome'"),
        ("duplicate ids", "appears more than once"),
        ("empty file", "the file is empty"),
    ],
)
def test_unusable_files_fail_clearly_and_stay_in_weekly(case, expected, trained, stack, bank_bytes, tmp_path):
    frame = weekly_frame(bank_bytes, step=200)
    path = tmp_path / "weekly.csv"
    if case == "missing columns":
        write(frame.drop(columns=["age", "poutcome"]), path)
    elif case == "duplicate ids":
        write(frame.assign(customer_id="C1"), path)
    else:
        path.write_bytes(b"")
    result = run_cli("score", str(path), env=stack.to_env())
    assert result.code == 1 and expected in result.json["error"]["message"]
    assert result.json["error"]["step"] == "validate" and result.json["predictions_url"] is None
    assert Storage(stack).read_bytes(result.json["source"]["uri"]) == path.read_bytes()  # the upload stays
    assert outputs(stack, result.json["run_id"]) == {}  # nothing published


def test_a_registry_that_is_down_is_named_as_down_not_as_no_champion(trained, stack, bank_bytes, tmp_path):
    """A champion exists; the registry's address answers nothing (MLflow stopped, or a wrong address)."""
    dead = f"http://127.0.0.1:{free_port()}"
    path = write(weekly_frame(bank_bytes, step=200), tmp_path / "weekly.csv")
    result = run_cli("score", path, env={**stack.to_env(), "REMARKETING_TRACKING_URI": dead})
    assert result.code == 1
    error = result.json["error"]
    assert error["step"] == "deploy"  # resolving the champion, before any server is started
    assert error["message"].startswith(f"the model registry (MLflow) at {dead} is unavailable")
    assert "no champion" not in error["message"] and "\n" not in error["message"]  # one sentence
    assert Storage(stack).read_bytes(result.json["source"]["uri"]) == Path(path).read_bytes()


def test_no_champion_yet_is_a_clear_error(trained, stack, bank_bytes, tmp_path):
    registry = MlflowRegistry(stack.tracking_uri)
    champion = registry.by_alias(MODEL, CHAMPION).version
    registry.client.delete_registered_model_alias(MODEL, CHAMPION)
    try:
        path = write(weekly_frame(bank_bytes, step=200), tmp_path / "weekly.csv")
        result = run_cli("score", path, env=stack.to_env())
    finally:
        registry.set_alias(MODEL, CHAMPION, champion)
    assert result.code == 1 and result.json["error"]["step"] == "deploy"
    assert "has no champion yet: train one first" in result.json["error"]["message"]


def test_a_model_server_killed_mid_run_is_redeployed_and_the_run_finishes(
    trained, stack, bank_bytes, tmp_path
):
    frame = pd.concat([weekly_frame(bank_bytes, step=1)] * 3, ignore_index=True)  # ~27,000 rows
    frame["customer_id"] = [f"K{i:06d}" for i in range(len(frame))]
    path = write(frame, tmp_path / "weekly-big.csv")
    launched = run_cli("score", path, "--no-wait", env=stack.to_env())
    run_id = launched.json["run_id"]
    store = RunStore(Storage(stack), stack.artifacts_root)
    registry = ProcessRegistry(stack.state_dir)
    killed = None
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not store.get(run_id).finished:
        current = store.get(run_id)
        steps = {s.name: s.status for s in current.steps}
        if killed is None and steps.get("score") == "running":
            # the server of the version this run scores with (other tests leave other versions' servers)
            server = registry.get(server_name(MODEL, current.model_version))
            psutil.Process(server.pid).kill()
            killed = server.pid
        time.sleep(0.05)
    record = store.get(run_id)
    assert killed is not None, "the score step finished before the server could be killed"
    # the shard redeploys the server and retries the chunk (a shard out of retries: tests/serving)
    assert record.status == "success", record.error
    assert any("redeployed and scoring resumed" in w for w in record.warnings)
    assert record.metrics["rows_scored"] == len(frame)
    # what Prometheus is told says the same, never a run still running
    wait_until(
        "the pushed status equal to the record's",
        lambda: (groups(stack).get(run_id) or {}).get("status") == "success",
    )


def test_shards_score_their_share_in_parallel_and_the_list_is_the_unsharded_one(
    trained, stack, bank_bytes, tmp_path
):
    """kfp.local runs the score step's ParallelFor: three shards over small chunks give the very list
    one shard gives (ranks, groups, reasons), and the record shows one score step that all three marked."""
    frame = weekly_frame(bank_bytes, step=4)
    runs = {}
    for shards in (1, 3):
        path = write(frame, tmp_path / f"weekly-{shards}-shards.csv")
        env = {
            **stack.to_env(),
            "REMARKETING_SCORING_SHARDS": str(shards),
            "REMARKETING_SCORING_CHUNK_ROWS": "500",
        }
        result = run_cli("score", path, env=env)
        assert result.code == 0 and result.json["status"] == "success", result.stderr
        runs[shards] = result.json
    record = RunStore(Storage(stack), stack.artifacts_root).get(runs[3]["run_id"])
    step = record.step("score")
    assert (step.status, step.shards, step.shards_done) == ("success", 3, 3)
    lists = {
        n: pd.read_csv(io.BytesIO(httpx.get(out["predictions_url"]).content), dtype={"customer_id": str})
        for n, out in runs.items()
    }
    assert len(lists[3]) == len(frame) and len(frame) > 3 * 500  # every shard had chunks
    pd.testing.assert_frame_equal(lists[3], lists[1])
