"""Retraining when it pays: the monitoring pipeline's last step.

After a week's outcomes are measured and added to the history, the policy in settings decides whether the
evidence calls for a new model: the targeted's realized lift below ``retrain_floor_lift``, their conversion
outside the promised interval (``retrain_when_outside_interval``), or, only when ``retrain_on_drift``
says so, features that drifted further than in any backtest period. Too few outcomes
(``retrain_min_outcomes``) decide nothing. When it retrains, the latest history version becomes one
training file under ``input/`` (its object metadata says why), launched like any other file there: by
the storage trigger's function (the bridge locally), or by the CLI that ran the outcomes. Its run id is
known at once (derived from the object); the training run records the reasons in its parameters, and
the gate still decides promotion.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pandas as pd

from remarketing.errors import NotFoundError, PreconditionFailed
from remarketing.monitoring import history_root, history_versions, realized_lift
from remarketing.ports import CHAMPION, Registry
from remarketing.runs import run_id_for
from remarketing.step import RecordChange, StepContext, StepResult
from remarketing.storage import Storage, join, split_gs
from remarketing.validation import csv_options, decode


def reasons(figures: dict[str, Any], settings: Any) -> list[str]:
    """Why the evidence calls for retraining (empty: it does not), each reason in words."""
    out: list[str] = []
    if (figures.get("outcomes") or 0) < settings.retrain_min_outcomes:
        return out
    if figures.get("arms"):  # two models' customers against the champion's promise: the experiment judges
        return out
    floor, realized = settings.retrain_floor_lift, realized_lift(figures)
    if floor is not None and realized is not None:
        lift, against = realized
        if lift < floor:
            out.append(f"the targeted converted at {lift:.2f} times {against}, below the floor {floor:g}")
    promise = figures.get("promise") or {}
    if settings.retrain_when_outside_interval and promise.get("inside") is False:
        low, high = promise["interval"]
        out.append(
            f"the targeted converted at {promise['actual_conversion_rate']:.1%}, outside the promised "
            f"{low:.1%}-{high:.1%}"
        )
    beyond = (figures.get("drift") or {}).get("beyond_backtests") or []
    if settings.retrain_on_drift and beyond:
        out.append(f"{', '.join(beyond)} drifted further than in any backtest period")
    return out


def training_file(storage: Storage, spec: Any, version: dict[str, Any]) -> str:
    """The history version as one training file in time order (the parts as listed), in the spec's
    format, with the spec's features and target (ids and other columns left out)."""
    columns = [*spec.feature_names, spec.target.column]
    frames = []
    for part in version["parts"]:
        raw = pd.read_csv(io.StringIO(decode(storage.read_bytes(part["uri"]), spec)), **csv_options(spec))
        frames.append(raw[[c for c in columns if c in raw.columns]])
    return pd.concat(frames, ignore_index=True)[columns].to_csv(sep=spec.separator, index=False)


def decide(ctx: StepContext, *, scoring: dict[str, Any]) -> StepResult:  # noqa: ARG001 - its hand-off orders it
    """Read this run's measured week, apply the policy, and put the latest history version into ``input/``
    as a training file when it says so. Outcomes that added nothing to the history were decided on then."""
    storage, settings = ctx.storage, ctx.settings
    if not ctx.run.metrics.get("history_rows_added"):
        said = "no retraining: these outcomes added nothing to the history (the decision was made then)"
        return StepResult(record=RecordChange(warnings=[said], metrics={"retrain": False}, finish=True))
    figures = json.loads(storage.read_text(ctx.run.metrics["performance_uri"]))
    why = reasons(figures, settings)
    if not why:
        said = "no retraining: the week is within the policy"
        least = settings.retrain_min_outcomes
        if (figures.get("outcomes") or 0) < least:
            said = f"no retraining: {figures.get('outcomes')} outcomes, fewer than the {least} it takes"
        elif figures.get("arms"):
            said = "no retraining: the week was scored in an experiment, which judges it"
        return StepResult(record=RecordChange(warnings=[said], metrics={"retrain": False}, finish=True))
    versions = history_versions(storage, history_root(settings, ctx.dataset))
    launched = put_history(storage, settings, ctx.spec, ctx.dataset, versions[-1], why)
    said = (
        f"retraining on history version {versions[-1]['version']} (run {launched['training_run']}): "
        + "; ".join(why)
    )
    if launched["already"]:
        version, run = versions[-1]["version"], launched["training_run"]
        said = f"history version {version} went to training already (run {run})"
    return StepResult(
        record=RecordChange(
            warnings=[said],
            metrics={
                "retrain": True,
                "retrain_reasons": why,
                "training_run": launched["training_run"],
                "training_object": {"uri": launched["uri"], "generation": launched["generation"]},
            },
            finish=True,
        )
    )


def put_history(
    storage: Storage, settings: Any, spec: Any, dataset: str, version: dict[str, Any], why: list[str]
) -> dict[str, Any]:
    """The history version as a training file under ``input/`` (its metadata says why), which the storage
    trigger launches; the training run's id is known at once (derived from the object). One file per
    version, written create-only: a version put there already (by the policy, a scheduled turn, a retried
    call) is not trained on again, and its run is the answer (``already``)."""
    name = f"input/history-{dataset}-v{version['version']}.csv"
    uri = f"gs://{settings.landing_bucket}/{name}"
    bucket, _ = split_gs(uri)
    try:
        generation = storage.write_text(
            uri,
            training_file(storage, spec, version),
            content_type="text/csv",
            metadata={
                "dataset": dataset,
                "filename": f"history v{version['version']}",
                "launched_because": "; ".join(why),
                "history_version": str(version["version"]),
            },
            if_generation_match=0,
        )
        already = False
    except PreconditionFailed:
        generation, already = storage.stat(uri).generation, True
    run = run_id_for(bucket, name, generation)
    return {"uri": uri, "generation": generation, "training_run": run, "already": already}


def trained_on(storage: Storage, registry: Registry, name: str, version: int) -> Any:
    """The newest model version trained on history ``version`` (from each bundle's metadata), if any."""
    for info in registry.versions(name)[:20]:  # newest first; older ones predate this history version
        try:
            meta = json.loads(storage.read_text(join(info.source, "metadata.json")))
        except NotFoundError:
            continue
        if str((meta.get("training_data") or {}).get("history_version")) == str(version):
            return info
    return None


def on_schedule(
    storage: Storage, settings: Any, spec: Any, dataset: str, registry: Registry, *, by: str
) -> dict[str, Any]:
    """The schedule's turn (Cloud Scheduler, the local scheduler, or ``remarketing retrain``): retrain on the
    latest history version when no model was trained on it yet; otherwise say why not."""
    versions = history_versions(storage, history_root(settings, dataset))
    if not versions:
        return {"retrain": False, "said": f"no {dataset} history yet: outcomes grow it"}
    latest = versions[-1]["version"]
    name = settings.model_name(dataset)
    done = trained_on(storage, registry, name, latest)
    if done is not None:
        role = "the champion" if CHAMPION in done.aliases else "not promoted: the gate decided"
        return {"retrain": False, "said": f"v{done.version} was trained on history version {latest} ({role})"}
    why = [f"{by}: no model was trained on history version {latest} yet"]
    put = put_history(storage, settings, spec, dataset, versions[-1], why)
    said = (
        why[0]
        if not put["already"]
        else f"history version {latest} is training already (run {put['training_run']})"
    )
    return {"retrain": True, "said": said, **put}
