"""The training pipeline's steps as plain functions on paths and addresses.

Each KFP component calls exactly one of these (benchmarks/training_pipeline.py also chains them in one
process to measure the pipeline's overhead). Every step is recorded in the run record.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from remarketing.datasets import load_spec
from remarketing.errors import PreconditionFailed, RemarketingError, StorageError
from remarketing.runs import step_context
from remarketing.settings import Settings
from remarketing.storage import Storage, join, sha256_bytes

# Each step imports what it needs inside its body: every pipeline task is a fresh process, and
# importing scikit-learn, matplotlib, pandera and MLflow for every step costs seconds per task.

# --- helpers -------------------------------------------------------------------------------------


def _write_json(path: str | Path, payload: Any) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=2, default=float))


def _read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


# --- steps ---------------------------------------------------------------------------------------


def validate_source(
    settings: Settings | dict, run_id: str, source_uri: str, dataset: str, out_path: str
) -> dict:
    """Read the campaign file, check it against the spec, write the typed rows (parquet)."""
    from remarketing.validation import Purpose, validate

    s, storage, store = step_context(settings)
    with store.step(run_id, "validate"):
        spec = load_spec(dataset)
        generation = store.get(run_id).source.generation if source_uri.startswith("gs://") else None
        data = storage.read_bytes(source_uri, generation=generation)
        checked = validate(data, spec, Purpose.TRAINING, source=source_uri)
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        checked.frame.to_parquet(out_path, index=False)
        digest = sha256_bytes(data)

        def note(r):
            r.warnings.extend(w for w in checked.warnings if w not in r.warnings)
            r.source.sha256, r.source.size = digest, len(data)

        store.update(run_id, note)
    return {"rows": len(checked.frame), "sha256": digest, "warnings": checked.warnings}


def split_rows(
    settings: Settings | dict,
    run_id: str,
    dataset: str,
    rows_path: str,
    train_path: str,
    validation_path: str,
    test_path: str,
) -> dict:
    from remarketing.split import time_split

    _, _, store = step_context(settings)
    with store.step(run_id, "split"):
        splits = time_split(pd.read_parquet(rows_path), load_spec(dataset))
        for frame, path in (
            (splits.train, train_path),
            (splits.validation, validation_path),
            (splits.test, test_path),
        ):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(path, index=False)
    return splits.sizes()


def train_candidate(
    settings: Settings | dict,
    run_id: str,
    dataset: str,
    family: str,
    train_path: str,
    validation_path: str,
    model_dir: str,
) -> dict:
    """Fit one family on the training slice and measure it on validation; then refit it on train +
    validation (the most recent labelled rows matter most under drift), calibrate it on the validation
    slice, and save it as a bundle. Returns the validation metrics."""
    from remarketing import bundle, evaluation
    from remarketing.drift import reference_profile
    from remarketing.models import calibrate, fit_family

    s, _, store = step_context(settings)
    with store.step(run_id, f"train-{family}"):
        spec = load_spec(dataset)
        train, validation = pd.read_parquet(train_path), pd.read_parquet(validation_path)
        labels = validation[spec.target.column].to_numpy()
        started = time.perf_counter()
        common = {"seed": s.seed, "background_rows": s.shap_background_rows}
        probe = fit_family(family, spec, train, validation=validation, **common)
        metrics = evaluation.campaign_metrics(
            labels, probe.model.predict_proba(validation), budget=s.budget_for(len(validation))
        )
        both = pd.concat([train, validation], ignore_index=True)
        final = fit_family(family, spec, both, epochs=probe.epochs, **common).model
        calibrate(final, validation, labels)
        bundle.save(
            final,
            Path(model_dir),
            {
                "validation_metrics": metrics,
                "fit_seconds": time.perf_counter() - started,
                "epochs": probe.epochs,
                "rows": {"train": len(train), "validation": len(validation)},
                "training_profile": reference_profile(both, spec.feature_names),
            },
        )
    return metrics


def evaluate_and_gate(
    settings: Settings | dict,
    run_id: str,
    dataset: str,
    candidate_dirs: dict[str, str],
    test_path: str,
    chosen_dir: str,
    report_path: str,
) -> dict:
    """Choose by the validation metric named in settings, score the chosen one on test, re-score the
    champion on the same rows, and decide promotion."""
    from remarketing import bundle, evaluation
    from remarketing.gate import Floors, decide
    from remarketing.models import calibrate
    from remarketing.registry import CHAMPION, Registry

    s, storage, store = step_context(settings)
    with store.step(run_id, "evaluate"):
        spec = load_spec(dataset)
        validation = {
            f: bundle.read_metadata(Path(d))["validation_metrics"] for f, d in candidate_dirs.items()
        }
        family = max(validation, key=lambda f: validation[f][s.selection_metric])
        model = bundle.load(Path(candidate_dirs[family]))
        test = pd.read_parquet(test_path)
        labels = test[spec.target.column].to_numpy()
        budget = s.budget_for(len(test))
        test_metrics = evaluation.campaign_metrics(labels, model.predict_proba(test), budget=budget)

        registry = Registry(s.tracking_uri)
        name = s.model_name(dataset)
        champion = registry.by_alias(name, CHAMPION)
        champion_metrics = None
        if champion is not None:
            with tempfile.TemporaryDirectory() as tmp:
                old = bundle.load(storage.download_dir(champion.source, Path(tmp) / "champion"))
                champion_metrics = evaluation.campaign_metrics(labels, old.predict_proba(test), budget=budget)
        decision = decide(
            test_metrics,
            champion_metrics,
            floors=Floors(roc_auc=s.floor_roc_auc, lift_at_10pct=s.floor_lift_at_10pct),
            margin=s.promotion_margin,
        )
        # The gate has decided on ranking metrics; now calibrate on the most recent labelled slice, so the
        # expected conversion rates that scoring reports follow the latest prior (ranks do not change).
        chosen = bundle.copy_tree(Path(candidate_dirs[family]), Path(chosen_dir))
        calibrate(model, test, labels)
        metadata = bundle.read_metadata(chosen)
        metadata["calibration"] = list(model.calibration)
        metadata["calibrated_on"] = {
            "slice": "test (the most recent labelled rows)",
            "rows": len(test),
            "base_rate": float(labels.mean()),
        }
        bundle.write_metadata(chosen, metadata)
        report = {
            "family": family,
            "selection_metric": s.selection_metric,
            "validation": validation,
            "test": test_metrics,
            "champion": {"version": champion.version, "test": champion_metrics} if champion else None,
            "promote": decision.promote,
            "reasons": decision.reasons,
        }
        _write_json(report_path, report)
    return report


def explain_model(
    settings: Settings | dict, run_id: str, dataset: str, model_dir: str, test_path: str, out_dir: str
) -> dict:
    """Global SHAP importance and the summary plot, on (up to 2,000 of) the test rows."""
    from remarketing import bundle, plots

    s, _, store = step_context(settings)
    with store.step(run_id, "explain"):
        model = bundle.load(Path(model_dir))
        rows = pd.read_parquet(test_path)
        rows = rows.sample(min(2000, len(rows)), random_state=s.seed) if len(rows) > 2000 else rows
        explanation = model.explain(rows)
        importance = explanation.contributions.abs().mean().sort_values(ascending=False)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        plots.shap_summary(explanation.contributions, rows).savefig(out / "shap_summary.png")
        plots.importance(importance).savefig(out / "shap_importance.png")
        payload = {
            "base_value": explanation.base_value,
            "importance": importance.to_dict(),
            "rows": len(rows),
        }
        _write_json(out / "shap_importance.json", payload)
    return payload


def register_model(
    settings: Settings | dict,
    run_id: str,
    dataset: str,
    model_dir: str,
    report_path: str,
    explain_dir: str,
    test_path: str,
) -> dict:
    """Write the bundle to ``model-output/<name>/<version>/``, log the MLflow run with its plots, register
    the version and set its alias; then close the run record."""
    import mlflow
    from remarketing import bundle, plots
    from remarketing.registry import CHALLENGER, Registry

    s, storage, store = step_context(settings)
    with store.step(run_id, "register"):
        spec = load_spec(dataset)
        report = _read_json(report_path)
        record = store.get(run_id)
        name = s.model_name(dataset)
        model = bundle.load(Path(model_dir))
        test = pd.read_parquet(test_path)
        labels = test[spec.target.column].to_numpy()
        probabilities = model.predict_proba(test)

        mlflow.set_tracking_uri(s.tracking_uri)
        mlflow.set_experiment(name)
        with mlflow.start_run(run_name=run_id) as mlflow_run:
            mlflow.set_tags(
                {
                    "run_id": run_id,
                    "dataset": dataset,
                    "family": report["family"],
                    "promoted": str(report["promote"]).lower(),
                }
            )
            mlflow.log_params(
                {
                    "family": report["family"],
                    "selection_metric": report["selection_metric"],
                    "source": record.source.uri,
                    "source_sha256": record.source.sha256,
                    "features": ",".join(spec.feature_names),
                    "never_use": ",".join(spec.never_use),
                    "calibration": json.dumps(list(model.calibration)),
                }
            )
            for family, metrics in report["validation"].items():
                mlflow.log_metrics({f"validation_{family}_{k}": v for k, v in metrics.items()})
            mlflow.log_metrics({f"test_{k}": v for k, v in report["test"].items()})
            if report["champion"]:
                mlflow.log_metrics({f"champion_test_{k}": v for k, v in report["champion"]["test"].items()})
            for figure, filename in (
                (plots.roc, "roc.png"),
                (plots.precision_recall, "pr.png"),
                (plots.lift, "lift.png"),
                (plots.calibration, "calibration.png"),
            ):
                mlflow.log_figure(figure(labels, probabilities), f"plots/{filename}")
            for path in Path(explain_dir).iterdir():
                mlflow.log_artifact(str(path), "shap")
            mlflow.log_dict(report, "evaluation.json")
            mlflow_run_id = mlflow_run.info.run_id

        metadata = {
            **bundle.read_metadata(Path(model_dir)),
            "model_name": name,
            "spec": spec.model_dump(),
            "training_data": {
                "uri": record.source.uri,
                "sha256": record.source.sha256,
                "generation": record.source.generation,
            },
            "validation_metrics": report["validation"][report["family"]],
            "test_metrics": report["test"],
            "gate": {"promote": report["promote"], "reasons": report["reasons"]},
            "run_id": run_id,
            "mlflow_run_id": mlflow_run_id,
        }
        registry = Registry(s.tracking_uri)
        with _registration_lock(storage, s, name, run_id):
            version = registry.latest_version_number(name) + 1
            uri = s.bundle_uri(name, version)
            metadata["version"] = str(version)
            bundle.write_metadata(Path(model_dir), metadata)
            bundle.add_pyfunc_flavour(Path(model_dir))
            storage.upload_dir(Path(model_dir), uri, create_only=True)  # never over an existing version
            info = registry.register(
                name,
                uri,
                run_id=mlflow_run_id,
                tags={
                    "family": report["family"],
                    "test_roc_auc": f"{report['test']['roc_auc']:.6f}",
                    "run_id": run_id,
                },
            )
            if info.version != str(version):
                raise RemarketingError(
                    f"MLflow numbered the model {info.version}, expected {version}: "
                    "another process registered at the same time; re-run the training"
                )
        if report["promote"]:
            registry.promote(name, info.version)
        else:
            registry.set_alias(name, CHALLENGER, info.version)
        metrics = {
            k: report["test"][k]
            for k in (
                "roc_auc",
                "pr_auc",
                "precision_at_10pct",
                "lift_at_10pct",
                "precision_at_20pct",
                "lift_at_20pct",
                "brier",
                "conversion_at_budget",
                "base_rate",
            )
        }
        reasons = [f"not promoted: {r}" for r in report["reasons"]] if not report["promote"] else []
    store.finish(
        run_id,
        warnings=reasons,
        model_name=name,
        model_version=info.version,
        metrics={**metrics, "family": report["family"], "promoted": report["promote"]},
        mlflow_run_id=mlflow_run_id,
    )
    return {"model_uri": uri, "version": info.version, "promoted": report["promote"]}


class _registration_lock:
    """Serialise registrations of one model name: MLflow numbers versions, and the bundle's folder must
    carry the same number. The lock is a create-only object; one older than ``stale`` seconds is from a
    dead run and is broken (only by the holder of that exact generation, so two waiters cannot both)."""

    def __init__(self, storage: Storage, s: Settings, name: str, owner: str, *, stale: float = 180):
        self.storage, self.owner, self.stale = storage, owner, stale
        self.uri = join(s.artifacts_root, "model-output", name, ".register-lock")
        self.generation: int | None = None

    def __enter__(self) -> None:
        deadline = time.monotonic() + self.stale + 60  # always long enough to outlive a stale lock
        while True:
            try:
                self.generation = self.storage.write_text(
                    self.uri, json.dumps({"owner": self.owner, "at": time.time()}), if_generation_match=0
                )
                return
            except PreconditionFailed:
                pass
            try:
                data, generation = self.storage.read_with_generation(self.uri)
            except StorageError:
                continue  # released in between: try again at once
            held = json.loads(data)
            if time.time() - held["at"] > self.stale:
                self.storage.delete(self.uri, if_generation_match=generation)
                continue
            if time.monotonic() > deadline:
                raise RemarketingError(f"{held['owner']} is registering {self.uri}; try again later")
            time.sleep(1)

    def __exit__(self, *exc: object) -> None:
        self.storage.delete(self.uri, if_generation_match=self.generation)  # only our own lock
