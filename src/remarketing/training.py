"""The training pipeline's steps (declared in ``remarketing.flow``):

    validate > split (the backtest plan) > train-<family> (backtests, then a fit on every row)
    > evaluate (choose the family on the backtests, gate it) > explain > register

Each is a plain function on typed hand-offs (``remarketing.step``); the adapter that runs it records the
step and applies what it returns. benchmarks/training_pipeline.py runs the same steps in one process.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from remarketing.backtest import FamilyBacktest, Plan
from remarketing.datasets import DatasetSpec
from remarketing.errors import PreconditionFailed, RemarketingError, StorageError
from remarketing.gate import Evaluation
from remarketing.ports import CHALLENGER, CHAMPION, ExperimentLog, Registry, Tracker
from remarketing.settings import Settings
from remarketing.step import Folder, RecordChange, StepContext, StepResult
from remarketing.storage import Storage, join, sha256_bytes

# Heavy libraries are imported inside the steps that need them: every pipeline task is a fresh process,
# and importing scikit-learn, matplotlib, pandera and TensorFlow for every step costs seconds per task.

BACKTEST_PARQUET = "backtest.parquet"  # each bundle's out-of-time backtest scores (its metadata has the rest)

# The settings that change what a training run produces; with the file's sha256, the spec and the code's
# version they make its fingerprint: the same fingerprint again is the same model, not a new version.
TRAINING_SETTINGS = (
    "backtest_periods",
    "backtest_period_share",
    "selection_metric",
    "floor_roc_auc",
    "floor_lift_at_10pct",
    "promotion_margin",
    "shap_background_rows",
    "seed",
    "budget",
    "budget_share",  # the backtests' budget (lift and precision at it)
)
FINGERPRINT_TAG = "training_fingerprint"


def training_fingerprint(s: Settings, spec: DatasetSpec, source_sha256: str | None) -> str:
    """sha256 of what a training run's model depends on: the data, the spec, the training settings and
    the package version (an editable install keeps its version while its code changes: bump it, or
    change a setting, to retrain the same file)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        code = version("remarketing")
    except PackageNotFoundError:
        code = "unknown"
    what = {
        "data": source_sha256,
        "spec": spec.model_dump(mode="json"),
        "settings": {k: getattr(s, k) for k in TRAINING_SETTINGS},
        "code": code,
    }
    return sha256_bytes(json.dumps(what, sort_keys=True, default=str).encode())


def _same_training(registry: Registry, name: str, fingerprint: str) -> Any:
    """The registered version a run with this fingerprint already produced, if any."""
    versions = registry.versions(name)
    return next((v for v in versions if v.tags.get(FINGERPRINT_TAG) == fingerprint), None)


def read_backtest(model_dir: str | Path) -> FamilyBacktest:
    """A candidate's (or a bundle's) backtest: per-period results and out-of-time predictions."""
    from remarketing import bundle

    directory = Path(model_dir)
    return FamilyBacktest.from_dict(
        bundle.read_metadata(directory)["backtest"], pd.read_parquet(directory / BACKTEST_PARQUET)
    )


# --- steps ---------------------------------------------------------------------------------------


def validate(ctx: StepContext, *, source_uri: str) -> StepResult:
    """Read the campaign file (the generation that started the run), check it against the spec."""
    from remarketing.validation import Purpose
    from remarketing.validation import validate as check

    generation = ctx.run.source.generation if source_uri.startswith("gs://") else None
    data = ctx.storage.read_bytes(source_uri, generation=generation)
    checked = check(data, ctx.spec, Purpose.TRAINING, source=source_uri)
    return StepResult(
        outputs={"rows": checked.frame},
        record=RecordChange(
            warnings=checked.warnings, source={"sha256": sha256_bytes(data), "size": len(data)}
        ),
        metrics={"rows": len(checked.frame)},
    )


def split(ctx: StepContext, *, rows: pd.DataFrame) -> StepResult:
    """Split the history by time into the backtest periods; fail clearly when it is too short."""
    from remarketing import backtest

    s = ctx.settings
    labels = rows[ctx.spec.target.column].to_numpy()
    plan = backtest.plan(len(labels), periods=s.backtest_periods, period_share=s.backtest_period_share)
    backtest.check_outcomes(plan, labels)
    return StepResult(outputs={"plan": plan})


def train(ctx: StepContext, *, rows: pd.DataFrame, plan: Plan, candidate: Folder) -> StepResult:
    """Backtest one family over the plan's periods, then fit it on every labelled row (the most recent
    rows are the ones most like next week) and calibrate it as the backtests were: on the last period's
    out-of-time scores. Saves the bundle with its backtest into ``candidate``."""
    from remarketing import backtest, bundle
    from remarketing.drift import backtest_drift, reference_profile
    from remarketing.models import fit_family

    s, spec, family = ctx.settings, ctx.spec, str(ctx.family)
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
        # aggregates only: no category or value of its own held by fewer than min_category_rows rows
        "training_profile": reference_profile(rows, spec.feature_names, min_rows=s.min_category_rows),
        "backtest_drift": backtest_drift(
            rows,
            spec.feature_names,
            [(p.start, p.end) for p in plan.scored],
            min_rows=s.min_category_rows,
        ),
    }
    bundle.save(model, candidate.path, metadata)
    result.predictions.to_parquet(candidate.path / BACKTEST_PARQUET, index=False)
    means = result.summary()["mean"]
    return StepResult(metrics={f"backtest_mean_{k}": v for k, v in means.items()})


def evaluate(
    ctx: StepContext, *, candidate: dict[str, Folder], chosen: Folder, registry: Registry
) -> StepResult:
    """Choose the family on the backtests (the metric named in settings), compare it with the champion's
    own backtests, and decide promotion; the chosen bundle is copied into ``chosen``."""
    from remarketing import backtest, bundle
    from remarketing.gate import Floors, decide

    s = ctx.settings
    results = {family: read_backtest(folder.path) for family, folder in candidate.items()}
    choice = backtest.choose(results, s.selection_metric)
    summary = results[choice.family].summary()
    champion, champion_summary, note = _champion_backtest(ctx, registry)
    decision = decide(
        summary["mean"],
        champion_summary["mean"] if champion_summary else None,
        floors=Floors(roc_auc=s.floor_roc_auc, lift_at_10pct=s.floor_lift_at_10pct),
        margin=s.promotion_margin,
        champion_note=note,
    )
    bundle.copy_tree(candidate[choice.family].path, chosen.path)
    report = Evaluation(
        family=choice.family,
        selection_metric=s.selection_metric,
        choice=choice.reason,
        backtests={f: r.as_dict() for f, r in results.items()},
        summary=summary,
        champion={"version": champion, "summary": champion_summary}
        if champion and champion_summary
        else None,
        promote=decision.promote,
        reasons=decision.reasons,
    )
    metrics = {f"backtest_mean_{k}": v for k, v in summary["mean"].items()}
    return StepResult(outputs={"report": report}, metrics=metrics)


def _champion_backtest(ctx: StepContext, registry: Registry) -> tuple[str | None, dict | None, str]:
    """The champion's version and its own backtest summary, from its bundle's metadata."""
    champion = registry.by_alias(ctx.settings.model_name(ctx.dataset), CHAMPION)
    if champion is None:
        return None, None, ""
    try:
        metadata = json.loads(ctx.storage.read_text(join(champion.source, "metadata.json")))
    except StorageError:
        metadata = {}
    summary = (metadata.get("backtest") or {}).get("summary")
    if summary is None:
        note = f"the champion v{champion.version} has no backtests to compare with: the floors decide"
        return champion.version, None, note
    return champion.version, summary, ""


def explain(ctx: StepContext, *, chosen: Folder, rows: pd.DataFrame, plan: Plan, shap: Folder) -> StepResult:
    """Global SHAP importance and the summary plot, on (up to 2,000 of) the most recent period's rows."""
    from remarketing import bundle, plots

    model = bundle.load(chosen.path)
    last = plan.scored[-1]
    recent = rows.iloc[last.start : last.end]
    if len(recent) > 2000:
        recent = recent.sample(2000, random_state=ctx.settings.seed)
    explanation = model.explain(recent)
    importance = explanation.contributions.abs().mean().sort_values(ascending=False)
    plots.shap_summary(explanation.contributions, recent).savefig(shap.path / "shap_summary.png")
    plots.importance(importance).savefig(shap.path / "shap_importance.png")
    payload = {
        "base_value": explanation.base_value,
        "importance": importance.to_dict(),
        "rows": len(recent),
        "explained": f"{len(recent)} customers of the most recent period ({last.start + 1:,}-{last.end:,})",
    }
    (shap.path / "shap_importance.json").write_text(json.dumps(payload, indent=2, default=float))
    return StepResult()


def register(
    ctx: StepContext,
    *,
    chosen: Folder,
    report: Evaluation,
    shap: Folder,
    registry: Registry,
    tracker: Tracker,
) -> StepResult:
    """Write the bundle to ``model-output/<name>/<version>/``, log the experiment run with its backtests
    and plots, register the version and set its alias; the run is then finished."""
    from remarketing import backtest, bundle

    s, spec, record = ctx.settings.whole, ctx.spec, ctx.run
    name = s.model_name(ctx.dataset)
    fingerprint = training_fingerprint(s, spec, record.source.sha256)
    same = _same_training(registry, name, fingerprint)
    if same is not None:
        return _already_registered(same, name)
    entry = _experiment_log(s, name, ctx.run_id, spec, record, report, chosen.path, shap.path)
    mlflow_run_id = tracker.log(entry)
    metadata = {
        **bundle.read_metadata(chosen.path),
        "model_name": name,
        "spec": spec.model_dump(),
        "training_data": {
            "uri": record.source.uri,
            "sha256": record.source.sha256,
            "generation": record.source.generation,
            # a retraining's: the history version it is and why it was launched
            "history_version": record.params.get("history_version"),
            "launched_because": record.params.get("launched_because"),
        },
        "selection": {"metric": report.selection_metric, "reason": report.choice},
        "gate": {"promote": report.promote, "reasons": report.reasons},
        "run_id": ctx.run_id,
        "mlflow_run_id": mlflow_run_id,
    }
    headline = backtest.headline(report.summary)
    version, created = _register_version(
        s,
        ctx.storage,
        registry,
        tracker,
        name,
        ctx.run_id,
        chosen.path,
        metadata,
        report,
        headline,
        fingerprint,
    )
    if not created:  # an identical run registered first, while this one trained
        return _already_registered(registry.get(name, version), name)
    warnings = [] if report.promote else [f"not promoted: {r}" for r in report.reasons]
    warnings += _set_alias(ctx, registry, name, version, report, headline)
    periods = report.backtests[report.family]["periods"]
    return StepResult(
        record=RecordChange(
            warnings=warnings,
            metrics={
                **headline,
                "family": report.family,
                "promoted": report.promote,
                "fitted_on_rows": metadata["fitted_on"]["rows"],
                "backtest_periods": [
                    {"period": p["index"], "first_row": p["start"] + 1, "last_row": p["end"], **p["metrics"]}
                    for p in periods
                ],
            },
            fields={"model_name": name, "model_version": version, "mlflow_run_id": mlflow_run_id},
            finish=True,
        ),
        metrics={"version": float(version)},
    )


def _set_alias(
    ctx: StepContext, registry: Registry, name: str, version: str, report: Evaluation, headline: dict
) -> list[str]:
    """The gate's verdict as an alias: promoted (recorded with the gate's evidence), or the challenger,
    unless a running experiment owns that alias."""
    from remarketing import decisions, experiments

    root = ctx.settings.artifacts_root
    if report.promote:
        previous = registry.by_alias(name, CHAMPION)
        registry.promote(name, version)
        decisions.record(
            ctx.storage,
            root,
            ctx.dataset,
            action="promoted",
            version=version,
            previous=None if previous is None else previous.version,
            by=f"training run {ctx.run_id} (the promotion gate)",
            evidence={"gate": report.reasons or ["cleared every floor"], "backtests": headline},
        )
        return []
    running = experiments.running(ctx.storage, root, ctx.dataset)
    if running is not None:
        return [
            f"v{version} is not the challenger: experiment {running.experiment_id} tests "
            f"v{running.challenger} (start another experiment once it ends)"
        ]
    registry.set_alias(name, CHALLENGER, version)
    return []


def _already_registered(same: Any, name: str) -> StepResult:
    """The run ends on the version it already is: no second identical version, no alias moved."""
    aliases = f" ({', '.join(same.aliases)})" if same.aliases else ""
    return StepResult(
        record=RecordChange(
            warnings=[
                f"this file with this training configuration is already {name} version "
                f"{same.version}{aliases}, from run {same.tags.get('run_id', '?')}: no new version was "
                "registered"
            ],
            metrics={"promoted": False, "already_registered": same.version},
            fields={"model_name": name, "model_version": same.version, "mlflow_run_id": same.run_id},
            finish=True,
        ),
        metrics={"version": float(same.version)},
    )


def _experiment_log(
    s: Settings,
    name: str,
    run_id: str,
    spec: DatasetSpec,
    record: Any,
    report: Evaluation,
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
            "family": report.family,
            "promoted": str(report.promote).lower(),
        },
        params={
            "family": report.family,
            "selection_metric": report.selection_metric,
            "backtest_periods": s.backtest_periods,
            "backtest_period_share": s.backtest_period_share,
            "source": record.source.uri,
            "source_sha256": record.source.sha256,
            "features": ",".join(spec.feature_names),
            "never_use": ",".join(spec.never_use),
            "calibration": json.dumps(list(chosen.final_calibration)),
        },
        folders={"shap": explain_dir},
        documents={"evaluation.json": report.as_dict()},
    )
    table = []
    for family, result in report.backtests.items():
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
    for stat, values in report.summary.items():
        entry.metrics.update({f"backtest_{stat}_{k}": v for k, v in values.items()})
    entry.tables["backtest/periods.json"] = pd.DataFrame(table)
    entry.figures["plots/backtest.png"] = plots.backtest(
        {f: r["periods"] for f, r in report.backtests.items()}
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
    report: Evaluation,
    headline: dict,
    fingerprint: str,
) -> tuple[str, bool]:
    """Upload the bundle under the next version number and register it, holding the lock so the folder
    and MLflow's number agree."""
    from remarketing import bundle

    with _registration_lock(storage, s, name, run_id):
        same = _same_training(registry, name, fingerprint)  # a twin run registered while this one trained
        if same is not None:
            return same.version, False
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
                "family": report.family,
                "backtest_roc_auc": f"{headline['roc_auc']:.6f}",
                "run_id": run_id,
                FINGERPRINT_TAG: fingerprint,
            },
        )
        if info.version != str(version):
            raise RemarketingError(
                f"MLflow numbered the model {info.version}, expected {version}: "
                "another process registered at the same time; re-run the training"
            )
    return info.version, True


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
