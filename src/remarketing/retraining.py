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
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from remarketing.monitoring import history_root, history_versions
from remarketing.runs import run_id_for
from remarketing.step import RecordChange, StepContext, StepResult
from remarketing.storage import Storage, split_gs
from remarketing.validation import csv_options, decode

MIN_REFERENCE = 30  # outcomes of customers called at random it takes to measure the lift against them


def reasons(figures: dict[str, Any], settings: Any) -> list[str]:
    """Why the evidence calls for retraining (empty: it does not), each reason in words."""
    out: list[str] = []
    if (figures.get("outcomes") or 0) < settings.retrain_min_outcomes:
        return out
    targeted = figures.get("promise", {}).get("actual_conversion_rate")
    # Calling at random is what the explore group measures; with too few of them, the week's rate stands in.
    explore = (figures.get("groups") or {}).get("explore") or {}
    if (explore.get("outcomes") or 0) >= MIN_REFERENCE:
        base, against = explore["conversion_rate"], "the rate of those called at random"
    else:
        base, against = figures.get("conversion_rate"), "the week's rate"
    floor = settings.retrain_floor_lift
    if floor is not None and targeted is not None and base:
        lift = targeted / base
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
        return StepResult(record=RecordChange(warnings=[said], metrics={"retrain": False}, finish=True))
    versions = history_versions(storage, history_root(settings, ctx.dataset))
    latest = versions[-1]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    name = f"input/history-{ctx.dataset}-v{latest['version']}-{stamp}.csv"
    uri = f"gs://{settings.landing_bucket}/{name}"
    generation = storage.write_text(
        uri,
        training_file(storage, ctx.spec, latest),
        content_type="text/csv",
        metadata={
            "dataset": ctx.dataset,
            "filename": f"history v{latest['version']}",
            "launched_because": "; ".join(why),
            "history_version": str(latest["version"]),
        },
        if_generation_match=0,
    )
    bucket, _ = split_gs(uri)
    training = run_id_for(bucket, name, generation)
    said = f"retraining on history version {latest['version']} (run {training}): " + "; ".join(why)
    return StepResult(
        record=RecordChange(
            warnings=[said],
            metrics={
                "retrain": True,
                "retrain_reasons": why,
                "training_run": training,
                "training_object": {"uri": uri, "generation": generation},
            },
            finish=True,
        )
    )
