"""The training pipeline on kfp.local, driven through the CLI, against the real emulator and MLflow."""

from __future__ import annotations

import getpass
import json

import pandas as pd
import pytest

from remarketing.runs import RunStore
from remarketing.storage import Storage
from tests.conftest import MODEL
from tests.integration.helpers import run_cli
from tracking.registry import CHALLENGER, CHAMPION, MlflowRegistry

pytestmark = pytest.mark.integration


def test_training_registers_a_champion_with_its_bundle(trained, stack, tmp_path):
    result, _ = trained
    assert result.code == 0, result.stderr
    out = result.json
    assert out["status"] == "success" and out["promoted"] is True
    assert set(out["metrics"]) >= {
        "roc_auc",
        "pr_auc",
        "precision_at_10pct",
        "lift_at_10pct",
        "worst_roc_auc",
    }
    assert 0.5 < out["metrics"]["roc_auc"] < 0.9  # the mean over the backtests; above 0.9 would mean a leak
    periods = out["metrics"]["backtest_periods"]
    assert [p["period"] for p in periods] == [1, 2, 3, 4]
    assert periods[-1]["last_row"] == out["metrics"]["fitted_on_rows"] == 4522  # all labelled rows
    assert all(p["first_row"] > 1 and 0 < p["roc_auc"] < 1 for p in periods)
    assert out["tracking_uri"] == stack.tracking_uri
    assert out["model_uri"] == f"gs://{stack.artifacts_bucket}/model-output/{MODEL}/{out['model_version']}"

    registry = MlflowRegistry(stack.tracking_uri)
    champion = registry.by_alias(MODEL, CHAMPION)
    assert (
        champion is not None
        and champion.version == out["model_version"]
        and champion.source == out["model_uri"]
    )

    files = {uri.rsplit(out["model_uri"] + "/", 1)[1] for uri in Storage(stack).list(out["model_uri"] + "/")}
    assert {"MLmodel", "metadata.json", "background.parquet", "data/model/preprocessor.joblib"} <= files
    assert "backtest.parquet" in files  # the out-of-time scores scoring's interval is made from
    metadata = json.loads(Storage(stack).read_text(out["model_uri"] + "/metadata.json"))
    assert metadata["fitted_on"] == {"rows": 4522, "first_row": 1, "last_row": 4522}
    assert metadata["calibrated_on"]["rows"] == [periods[-1]["first_row"], periods[-1]["last_row"]]
    assert [p["train_rows"] for p in metadata["backtest"]["periods"]] == [p["first_row"] - 1 for p in periods]


def test_the_run_record_tells_every_step_and_every_dropped_column(trained, stack):
    result, _ = trained
    record = RunStore(Storage(stack), stack.artifacts_root).get(result.json["run_id"])
    names = [s.name for s in record.steps]
    assert names[:2] == ["validate", "split"] and names[5:] == ["evaluate", "explain", "register"]
    assert sorted(names[2:5]) == ["train-hgb", "train-logreg", "train-mlp"]  # candidates in any order
    assert all(s.status == "success" for s in record.steps)
    assert any("'duration' dropped: leaks the outcome" in w for w in record.warnings)
    assert any("unknown column dropped: 'shoe_size'" in w for w in record.warnings)
    assert record.source.sha256 and record.mlflow_run_id


def test_the_champion_loads_as_users_load_it(trained, stack, monkeypatch, bank_bytes):
    import mlflow

    # What a user sets (README) to reach the local stack: the emulator and the tracking server.
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", stack.storage_emulator_host)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", stack.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    rows = pd.read_csv(pd.io.common.BytesIO(bank_bytes), sep=";").drop(columns="y").tail(50)
    probabilities = model.predict(rows)
    assert len(probabilities) == 50 and probabilities.between(0, 1).all()
    assert probabilities.nunique() > 10


def test_mlflow_run_has_metrics_and_plots(trained, stack):
    from mlflow import MlflowClient

    client = MlflowClient(stack.tracking_uri)
    run = client.get_run(trained[0].json["mlflow_run_id"])
    assert run.data.metrics["backtest_mean_roc_auc"] == pytest.approx(trained[0].json["metrics"]["roc_auc"])
    history = client.get_metric_history(run.info.run_id, "backtest_logreg_roc_auc")
    assert [m.step for m in history] == [1, 2, 3, 4]  # one point per period, per family
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    shap = {a.path for a in client.list_artifacts(run.info.run_id, "shap")}
    assert plots == {f"plots/{n}.png" for n in ("roc", "pr", "lift", "calibration", "backtest")}
    assert {a.path for a in client.list_artifacts(run.info.run_id, "backtest")} == {"backtest/periods.json"}
    assert {"shap/shap_summary.png", "shap/shap_importance.json"} <= shap


def test_a_model_below_the_floors_becomes_challenger_and_the_champion_stays(trained, stack):
    before = MlflowRegistry(stack.tracking_uri).by_alias(MODEL, CHAMPION)
    result = run_cli("train", str(trained[1]), env={**stack.to_env(), "REMARKETING_FLOOR_ROC_AUC": "0.99"})
    assert result.code == 0 and result.json["promoted"] is False
    assert any("below the floor 0.9900" in w for w in result.json["warnings"])
    registry = MlflowRegistry(stack.tracking_uri)
    assert registry.by_alias(MODEL, CHAMPION).version == before.version
    assert registry.by_alias(MODEL, CHALLENGER).version == result.json["model_version"]


def test_the_same_file_with_the_same_configuration_is_the_version_it_already_is(trained, stack):
    registry = MlflowRegistry(stack.tracking_uri)
    versions = [v.version for v in registry.versions(MODEL)]
    champion = registry.by_alias(MODEL, CHAMPION).version
    again = run_cli("train", str(trained[1]), env=stack.to_env())
    assert again.code == 0 and again.json["status"] == "success", again.stderr
    first = trained[0].json["model_version"]
    assert again.json["model_version"] == first and again.json["promoted"] is False
    assert any(
        f"already {MODEL} version {first}" in w and "no new version" in w for w in again.json["warnings"]
    )
    assert [v.version for v in registry.versions(MODEL)] == versions
    assert registry.by_alias(MODEL, CHAMPION).version == champion


def test_promote_and_rollback_move_the_alias_and_keep_every_version(trained, stack):
    registry = MlflowRegistry(stack.tracking_uri)
    versions_before = [v.version for v in registry.versions(MODEL)]
    champion = registry.by_alias(MODEL, CHAMPION).version
    challenger = registry.by_alias(MODEL, CHALLENGER).version
    promoted = run_cli("models", "promote", challenger, env=stack.to_env())
    assert promoted.code == 0 and promoted.json["champion"] == challenger
    rolled = run_cli("models", "rollback", env=stack.to_env())
    assert rolled.code == 0 and rolled.json["champion"] == champion
    listed = run_cli("models", "list", env=stack.to_env())
    assert [v["version"] for v in listed.json["versions"]] == versions_before
    # both changes by hand are in the record of decisions, newest first
    from remarketing import decisions
    from remarketing.audit import AuditLog
    from remarketing.storage import Storage

    by = f"cli:{getpass.getuser()}"
    recorded = decisions.listed(Storage(stack), stack.artifacts_root, "bank-marketing")[:2]
    assert [(d["action"], d["version"], d["previous"], d["by"]) for d in recorded] == [
        ("rolled-back", champion, challenger, by),
        ("promoted", challenger, champion, by),
    ]
    # ... and in the audit trail, by the same principal, the chain whole
    audit = AuditLog(Storage(stack), stack.artifacts_root)
    trail = [(r["action"], r["what"]["version"]) for r in audit.show(who=by, limit=2)]
    assert trail == [("rolled-back", champion), ("promoted", challenger)]
    assert audit.verify().ok


def _bad_files(sample: bytes) -> dict[str, tuple[bytes, str]]:
    lines = sample.splitlines(keepends=True)
    header, rows = lines[0], lines[1:200]
    body = b"".join(rows)
    no_target_header = header.replace(b';"y"', b"")
    return {
        "empty": (b"", "the file is empty"),
        "header only": (header, "header but no data rows"),
        "wrong separator": ((header + body).replace(b";", b","), "wrong separator"),
        "missing target": (
            no_target_header + b"".join(r.rsplit(b";", 1)[0] + b"\n" for r in rows),
            "target column 'y' is missing",
        ),
        "target outside the spec": (
            header + body.replace(b'"no"\n', b'"maybe"\n', 3),
            "is not one of ['no', 'yes']",
        ),
        "non-UTF-8 bytes": (header + body.replace(b"management", b"gest\xe3o", 1), "not UTF-8"),
        "duplicate ids": (
            b'"customer_id";' + header + b"".join(b"%d;" % (i // 2) + r for i, r in enumerate(rows)),
            "appears more than once",
        ),
    }


@pytest.mark.parametrize("case", list(_bad_files(b'"age";"y"\n1;"no"\n')))
def test_bad_input_fails_clearly_and_loses_nothing(case, trained, stack, bank_sample, tmp_path):
    data, expected = _bad_files(bank_sample)[case]
    path = tmp_path / "bad.csv"
    path.write_bytes(data)
    registry = MlflowRegistry(stack.tracking_uri)
    versions = [v.version for v in registry.versions(MODEL)]
    champion = registry.by_alias(MODEL, CHAMPION).version

    result = run_cli("train", str(path), env=stack.to_env())

    assert result.code == 1
    assert result.json["status"] == "failed" and expected in result.json["error"]["message"]
    assert result.json["error"]["step"] == "validate"
    assert expected in result.stderr
    assert [v.version for v in registry.versions(MODEL)] == versions  # nothing registered
    assert registry.by_alias(MODEL, CHAMPION).version == champion
    landed = Storage(stack).read_bytes(result.json["source"]["uri"])
    assert landed == data and path.read_bytes() == data  # the input is untouched


def test_a_history_too_short_for_the_backtests_fails_at_split_and_registers_nothing(
    trained, stack, bank_sample, tmp_path
):
    path = tmp_path / "short.csv"
    path.write_bytes(b"".join(bank_sample.splitlines(keepends=True)[:801]))  # 800 rows
    versions = [v.version for v in MlflowRegistry(stack.tracking_uri).versions(MODEL)]
    result = run_cli("train", str(path), env=stack.to_env())
    assert result.code == 1 and result.json["error"]["step"] == "split"
    assert "the history has 800 rows, too few for 4 backtest periods" in result.json["error"]["message"]
    assert "at least 1,000 rows" in result.json["error"]["message"]
    assert [v.version for v in MlflowRegistry(stack.tracking_uri).versions(MODEL)] == versions


def test_thera_bank_trains_through_the_same_pipeline(thera_trained):
    result = thera_trained
    assert result.json["model_name"] == "remarketing-thera-bank" and result.json["metrics"]["roc_auc"] > 0.9
    assert any("'ZIP Code' dropped" in w for w in result.json["warnings"])


def test_the_registrys_rest_reads_agree_with_mlflows_client(trained, stack):
    """The scoring run's reads go to MLflow's REST API (no mlflow import); they must match its client."""
    from remarketing.errors import ModelNotFoundError

    rest = MlflowRegistry(stack.tracking_uri)
    client = rest.client  # MLflow's own, for the same reads
    champion = rest.by_alias(MODEL, CHAMPION)
    through_client = rest._info(client.get_model_version_by_alias(MODEL, CHAMPION))
    assert champion == through_client and champion.source and champion.tags
    assert rest.get(MODEL, champion.version) == rest._info(client.get_model_version(MODEL, champion.version))
    assert rest.by_alias(MODEL, "no-such-alias") is None
    with pytest.raises(ModelNotFoundError, match="has no version 999"):
        rest.get(MODEL, "999")


def test_a_scoring_runs_registry_reads_do_not_import_mlflow(trained, stack):
    """What the deploy task pays: in a fresh interpreter, reading the champion leaves mlflow unimported."""
    import subprocess
    import sys

    code = (
        "import sys; from tracking.registry import MlflowRegistry; "
        f"v = MlflowRegistry({stack.tracking_uri!r}).by_alias({MODEL!r}, 'champion'); "
        "print(v.version, 'mlflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    champion = MlflowRegistry(stack.tracking_uri).by_alias(MODEL, CHAMPION).version
    assert out.stdout.split() == [champion, "False"]
