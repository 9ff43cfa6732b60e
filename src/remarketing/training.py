"""The training pipeline's steps as plain functions on paths and addresses.

    validate > split (the backtest plan) > train-<family> (backtests, then a fit on every row)
    > evaluate (choose the family on the backtests, gate it) > explain > register

Each KFP component calls exactly one of these (benchmarks/training_pipeline.py also chains them in one
process to measure the pipeline's overhead). Every step is recorded in the run record.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from remarketing.datasets import DatasetSpec, load_spec
from remarketing.errors import PreconditionFailed, RemarketingError, StorageError
from remarketing.ports import CHALLENGER, CHAMPION, ExperimentLog, Registry, Tracker
from remarketing.runs import step_context
from remarketing.settings import Settings
from remarketing.storage import Storage, join, sha256_bytes

# Each step imports what it needs inside its body: every pipeline task is a fresh process, and
# importing scikit-learn, matplotlib, pandera and MLflow for every step costs seconds per task.

BACKTEST_PARQUET = "backtest.parquet"  # each bundle's out-of-time backtest scores (its metadata has the rest)


def _write_json(path: str | Path, payload: Any) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=2, default=float))


def _read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def _read_plan(path: str | Path):
    from remarketing.backtest import Plan

    return Plan.from_dict(_read_json(path))


def read_backtest(model_dir: str | Path):
    """A candidate's (or a bundle's) backtest: per-period results and out-of-time predictions."""
    from remarketing import bundle
    from remarketing.backtest import FamilyBacktest

    directory = Path(model_dir)
    return FamilyBacktest.from_dict(
        bundle.read_metadata(directory)["backtest"], pd.read_parquet(directory / BACKTEST_PARQUET)
    )


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


def plan_backtests(
    settings: Settings | dict, run_id: str, dataset: str, rows_path: str, plan_path: str
) -> dict:
    """Split the history by time into the backtest periods; fail clearly when it is too short."""
    from remarketing import backtest

    s, _, store = step_context(settings)
    with store.step(run_id, "split"):
        spec = load_spec(dataset)
        labels = pd.read_parquet(rows_path, columns=[spec.target.column])[spec.target.column].to_numpy()
        plan = backtest.plan(len(labels), periods=s.backtest_periods, period_share=s.backtest_period_share)
        backtest.check_outcomes(plan, labels)
        _write_json(plan_path, plan.as_dict())
    return plan.as_dict()


def train_candidate(
    settings: Settings | dict,
    run_id: str,
    dataset: str,
    family: str,
    rows_path: str,
    plan_path: str,
    model_dir: str,
) -> dict:
    """Backtest one family over the plan's periods, then fit it on every labelled row (the most recent
    rows are the ones most like next week) and calibrate it as the backtests were: on the last period's
    out-of-time scores. Saves the bundle with its backtest; returns the backtest's mean metrics."""
    from remarketing import backtest, bundle
    from remarketing.drift import reference_profile
    from remarketing.models import fit_family

    s, _, store = step_context(settings)
    with store.step(run_id, f"train-{family}"):
        spec = load_spec(dataset)
        rows, plan = pd.read_parquet(rows_path), _read_plan(plan_path)
        common = {"seed": s.seed, "background_rows": s.shap_background_rows}
        result = backtest.run_family(family, spec, rows, plan, budget_for=s.budget_for, **common)
        started = time.perf_counter()
        model = fit_family(family, spec, rows, **common)
        model.calibration = result.final_calibration
        last = plan.scored[-1]
        metadata = {
            "fitted_on": {"rows": len(rows), "first_row": 1, "last_row": len(rows)},
            "calibrated_on": {
                "method": "Platt scaling on out-of-time scores of the most recent period (the model fitted "
                "on every row before it), as in every backtest period",
                "rows": [last.start + 1, last.end],
            },
            "backtest": result.as_dict(),
            "fit_seconds": time.perf_counter() - started,
            "training_profile": reference_profile(rows, spec.feature_names),
        }
        directory = bundle.save(model, Path(model_dir), metadata)
        result.predictions.to_parquet(directory / BACKTEST_PARQUET, index=False)
    return result.summary()["mean"]


def evaluate_and_gate(
    settings: Settings | dict,
    run_id: str,
    dataset: str,
    candidate_dirs: dict[str, str],
    chosen_dir: str,
    report_path: str,
    *,
    registry: Registry,
) -> dict:
    """Choose the family on the backtests (the metric named in settings), compare it with the champion's
    own backtests, and decide promotion."""
    from remarketing import backtest, bundle
    from remarketing.gate import Floors, decide

    s, storage, store = step_context(settings)
    with store.step(run_id, "evaluate"):
        results = {family: read_backtest(d) for family, d in candidate_dirs.items()}
        choice = backtest.choose(results, s.selection_metric)
        summary = results[choice.family].summary()
        champion, champion_summary, note = _champion_backtest(s, storage, registry, dataset)
        decision = decide(
            summary["mean"],
            champion_summary["mean"] if champion_summary else None,
            floors=Floors(roc_auc=s.floor_roc_auc, lift_at_10pct=s.floor_lift_at_10pct),
            margin=s.promotion_margin,
            champion_note=note,
        )
        bundle.copy_tree(Path(candidate_dirs[choice.family]), Path(chosen_dir))
        report = {
            "family": choice.family,
            "selection_metric": s.selection_metric,
            "choice": choice.reason,
            "backtests": {f: r.as_dict() for f, r in results.items()},
            "summary": summary,
            "champion": (
                {"version": champion, "summary": champion_summary} if champion and champion_summary else None
            ),
            "promote": decision.promote,
            "reasons": decision.reasons,
        }
        _write_json(report_path, report)
    return report


def _champion_backtest(
    s: Settings, storage: Storage, registry: Registry, dataset: str
) -> tuple[str | None, dict | None, str]:
    """The champion's version and its own backtest summary, from its bundle's metadata."""
    champion = registry.by_alias(s.model_name(dataset), CHAMPION)
    if champion is None:
        return None, None, ""
    try:
        metadata = json.loads(storage.read_text(join(champion.source, "metadata.json")))
    except StorageError:
        metadata = {}
    summary = (metadata.get("backtest") or {}).get("summary")
    if summary is None:
        note = f"the champion v{champion.version} has no backtests to compare with: the floors decide"
        return champion.version, None, note
    return champion.version, summary, ""


def explain_model(
    settings: Settings | dict,
    run_id: str,
    dataset: str,
    model_dir: str,
    rows_path: str,
    plan_path: str,
    out_dir: str,
) -> dict:
    """Global SHAP importance and the summary plot, on (up to 2,000 of) the most recent period's rows."""
    from remarketing import bundle, plots

    s, _, store = step_context(settings)
    with store.step(run_id, "explain"):
        model = bundle.load(Path(model_dir))
        last = _read_plan(plan_path).scored[-1]
        rows = pd.read_parquet(rows_path).iloc[last.start : last.end]
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
            "explained": f"{len(rows)} customers of the most recent period ({last.start + 1:,}-{last.end:,})",
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
    *,
    registry: Registry,
    tracker: Tracker,
) -> dict:
    """Write the bundle to ``model-output/<name>/<version>/``, log the experiment run with its backtests
    and plots, register the version and set its alias; then close the run record."""
    from remarketing import backtest, bundle

    s, storage, store = step_context(settings)
    with store.step(run_id, "register"):
        spec = load_spec(dataset)
        report = _read_json(report_path)
        record = store.get(run_id)
        name = s.model_name(dataset)
        entry = _experiment_log(s, name, run_id, spec, record, report, Path(model_dir), Path(explain_dir))
        mlflow_run_id = tracker.log(entry)
        metadata = {
            **bundle.read_metadata(Path(model_dir)),
            "model_name": name,
            "spec": spec.model_dump(),
            "training_data": {
                "uri": record.source.uri,
                "sha256": record.source.sha256,
                "generation": record.source.generation,
            },
            "selection": {"metric": report["selection_metric"], "reason": report["choice"]},
            "gate": {"promote": report["promote"], "reasons": report["reasons"]},
            "run_id": run_id,
            "mlflow_run_id": mlflow_run_id,
        }
        headline = backtest.headline(report["summary"])
        version = _register_version(
            s, storage, registry, tracker, name, run_id, Path(model_dir), metadata, report, headline
        )
        if report["promote"]:
            registry.promote(name, version)
        else:
            registry.set_alias(name, CHALLENGER, version)
        reasons = [f"not promoted: {r}" for r in report["reasons"]] if not report["promote"] else []
        chosen = report["backtests"][report["family"]]
    store.finish(
        run_id,
        warnings=reasons,
        model_name=name,
        model_version=version,
        metrics={
            **headline,
            "family": report["family"],
            "promoted": report["promote"],
            "fitted_on_rows": metadata["fitted_on"]["rows"],
            "backtest_periods": [
                {"period": p["index"], "first_row": p["start"] + 1, "last_row": p["end"], **p["metrics"]}
                for p in chosen["periods"]
            ],
        },
        mlflow_run_id=mlflow_run_id,
    )
    return {"model_uri": s.bundle_uri(name, version), "version": version, "promoted": report["promote"]}


def _experiment_log(
    s: Settings,
    name: str,
    run_id: str,
    spec: DatasetSpec,
    record: Any,
    report: dict,
    model_dir: Path,
    explain_dir: Path,
) -> ExperimentLog:
    """What the experiment run records: parameters, every family's backtest (mean, worst and each period),
    the per-period table and chart, the chosen model's out-of-time plots and the SHAP artifacts."""
    from remarketing import plots

    chosen = read_backtest(model_dir)
    entry = ExperimentLog(
        experiment=name,
        run_name=run_id,
        tags={
            "run_id": run_id,
            "dataset": spec.name,
            "family": report["family"],
            "promoted": str(report["promote"]).lower(),
        },
        params={
            "family": report["family"],
            "selection_metric": report["selection_metric"],
            "backtest_periods": s.backtest_periods,
            "backtest_period_share": s.backtest_period_share,
            "source": record.source.uri,
            "source_sha256": record.source.sha256,
            "features": ",".join(spec.feature_names),
            "never_use": ",".join(spec.never_use),
            "calibration": json.dumps(list(chosen.final_calibration)),
        },
        folders={"shap": explain_dir},
        documents={"evaluation.json": report},
    )
    table = []
    for family, result in report["backtests"].items():
        for stat, values in result["summary"].items():
            entry.metrics.update({f"backtest_{stat}_{family}_{k}": v for k, v in values.items()})
        for p in result["periods"]:
            for k, v in p["metrics"].items():
                entry.series.setdefault(f"backtest_{family}_{k}", []).append((p["index"], v))
            table.append(
                {
                    "family": family,
                    "period": p["index"],
                    "rows": f"{p['start'] + 1}-{p['end']}",
                    **p["metrics"],
                }
            )
    for stat, values in report["summary"].items():
        entry.metrics.update({f"backtest_{stat}_{k}": v for k, v in values.items()})
    entry.tables["backtest/periods.json"] = pd.DataFrame(table)
    entry.figures["plots/backtest.png"] = plots.backtest(
        {f: r["periods"] for f, r in report["backtests"].items()}
    )
    labels, probabilities = (
        chosen.predictions["label"].to_numpy(),
        chosen.predictions["probability"].to_numpy(),
    )
    for figure, filename in (
        (plots.roc, "roc.png"),
        (plots.precision_recall, "pr.png"),
        (plots.lift, "lift.png"),
        (plots.calibration, "calibration.png"),
    ):
        entry.figures[f"plots/{filename}"] = figure(labels, probabilities)
    return entry


def _register_version(
    s: Settings,
    storage: Storage,
    registry: Registry,
    tracker: Tracker,
    name: str,
    run_id: str,
    model_dir: Path,
    metadata: dict,
    report: dict,
    headline: dict,
) -> str:
    """Upload the bundle under the next version number and register it, holding the lock so the folder
    and MLflow's number agree."""
    from remarketing import bundle

    with _registration_lock(storage, s, name, run_id):
        version = registry.latest_version_number(name) + 1
        uri = s.bundle_uri(name, version)
        bundle.write_metadata(model_dir, {**metadata, "version": str(version)})
        tracker.add_model_flavour(model_dir)
        storage.upload_dir(model_dir, uri, create_only=True)  # never over an existing version
        info = registry.register(
            name,
            uri,
            run_id=metadata["mlflow_run_id"],
            tags={
                "family": report["family"],
                "backtest_roc_auc": f"{headline['roc_auc']:.6f}",
                "run_id": run_id,
            },
        )
        if info.version != str(version):
            raise RemarketingError(
                f"MLflow numbered the model {info.version}, expected {version}: "
                "another process registered at the same time; re-run the training"
            )
    return info.version


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
