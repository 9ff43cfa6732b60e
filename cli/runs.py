"""What the CLI does with a run: put a file in the landing bucket and launch it, follow it to its end, and
report how it ended."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from cli.output import contact_line, emit, err, fail, start_message
from remarketing.errors import NotFoundError, RemarketingError
from remarketing.settings import Settings


def put_and_launch(
    settings: Settings, source: str, prefix: str, *, launch_now: bool = True, **launch_args: Any
):
    """Upload SOURCE (or take a gs:// object) and call ``launch()``; with ``launch_now=False`` only upload
    and return the run id the trigger will create (the functions launch it through the bridge)."""
    from local_stack.services import ensure_stack
    from pipelines.launchers import launcher_for
    from remarketing.launch import launch
    from remarketing.runs import run_id_for
    from remarketing.storage import Storage, split_gs

    if source.startswith("gs://"):
        bucket, name = split_gs(source)
        if bucket != settings.landing_bucket or not name.startswith(prefix):
            raise click.BadParameter(
                f"a gs:// SOURCE must be in gs://{settings.landing_bucket}/{prefix}", param_hint="SOURCE"
            )
    elif not Path(source).is_file():  # before starting any service
        raise click.BadParameter(f"{source} is not a file", param_hint="SOURCE")
    try:
        ensure_stack(settings, on_start=start_message)
        storage = Storage(settings)
        version = (launch_args.get("params") or {}).get("model_version")
        if version:  # one that does not exist would only fail the run later (as the API checks too)
            from remarketing.errors import ParameterError
            from remarketing.uploads import check_version
            from tracking.registry import MlflowRegistry

            model = settings.model_name(launch_args.get("dataset") or settings.default_dataset)
            try:
                check_version(MlflowRegistry(settings.tracking_uri), model, str(version))
            except ParameterError as exc:  # a usage error, like every other wrong parameter (exit 2)
                raise click.UsageError("; ".join(exc.problems)) from None
        if source.startswith("gs://"):
            generation = storage.stat(source).generation
        else:
            from remarketing.uploads import put

            path = Path(source)
            dataset = launch_args.get("dataset") or settings.default_dataset
            params = launch_args.get("params") or {}
            bucket = settings.landing_bucket
            name, generation = put(
                storage, settings, path.read_bytes(), path.name, dataset=dataset, params=params, prefix=prefix
            )
            err.print(f"uploaded {source} to gs://{bucket}/{name} (generation {generation})")
        if not launch_now:
            return run_id_for(bucket, name, generation)
        launcher = launcher_for(settings)
        launched = launch(bucket, name, generation, settings=settings, launcher=launcher, **launch_args)
    except (RemarketingError, OSError) as exc:
        fail(str(exc))
    note = "launched" if launched.created else "already launched (same object generation)"
    err.print(f"run [bold]{launched.record.run_id}[/bold] {note}")
    return launched.record.run_id


def wait(settings: Settings, run_id: str, *, appear_within: float = 0):
    """Poll the run record, printing each step as it starts and ends. A record that does not exist yet
    is awaited for ``appear_within`` seconds (a trigger launches it). A dead local pipeline process or a
    failed KFP run is reconciled into the record."""
    from pipelines.launchers import reconcile
    from remarketing.runs import RunStore
    from remarketing.storage import Storage

    store = RunStore(Storage(settings), settings.artifacts_root)
    seen: dict[str, str] = {}
    started = time.monotonic()
    checks = 0
    with err.status("waiting for the trigger to launch the run ...") as spinner:
        while True:
            try:
                record = store.get(run_id)
            except NotFoundError:  # not yet created (storage that is down is not this: it is raised)
                if time.monotonic() - started > appear_within:
                    fail(
                        f"run {run_id} was not launched within {appear_within:.0f} s: is the event bridge "
                        f"running (remarketing status)? its log: {settings.state_dir / 'logs' / 'bridge.log'}"
                    )
                time.sleep(0.25)
                continue
            for step in record.steps:
                if seen.get(step.name) != step.status:
                    seen[step.name] = step.status
                    colour = {"success": "green", "failed": "red"}.get(step.status, "cyan")
                    elapsed = time.monotonic() - started
                    err.print(f"  [{colour}]{step.status:>8}[/{colour}]  {step.name}  ({elapsed:5.1f}s)")
            if record.finished:
                return record
            running = ", ".join(s.name for s in record.steps if s.status == "running")
            spinner.update(f"{record.status}: {running or 'waiting for a slot'}")
            checks += 1
            if checks % 10 == 0:
                record = reconcile(settings, store, record)
                if record.finished:
                    return record
            time.sleep(0.5)


def launch_training_object(settings: Settings, uri: str, generation: int, dataset: str) -> None:
    """Launch the training run of an object the monitoring pipeline put into input/ (idempotent: the
    bridge, when it runs, may have launched it already)."""
    from pipelines.launchers import launcher_for
    from remarketing.launch import launch
    from remarketing.storage import split_gs

    bucket, name = split_gs(uri)
    launched = launch(
        bucket, name, generation, settings=settings, launcher=launcher_for(settings), dataset=dataset
    )
    err.print(f"  retraining: run {launched.record.run_id} launched on {name}", markup=False, highlight=False)


def record_of(settings: Settings, run_id: str):
    from remarketing.runs import RunStore
    from remarketing.storage import Storage

    return RunStore(Storage(settings), settings.artifacts_root).get(run_id)


def run_summary(settings: Settings, record) -> dict[str, Any]:
    """The record's summary and what the run came to (runs.outcome: the API's ``details`` too)."""
    from remarketing.runs import outcome, summary

    return {**summary(record), "tracking_uri": settings.tracking_uri, **outcome(settings, record)}


def finish(settings: Settings, record) -> None:
    payload = report(settings, record)
    emit(payload)
    sys.exit(0 if record.status == "success" else 1)


def report(settings: Settings, record) -> dict[str, Any]:
    """Say how the run ended on stderr; return its summary (the JSON line)."""
    payload = run_summary(settings, record)
    m = record.metrics
    if record.status == "failed":
        err.print(f"[red]run {record.run_id} failed[/red] at {record.error.step if record.error else '?'}:")
        err.print(record.error.message if record.error else "unknown error", markup=False, highlight=False)
        return payload
    if record.kind == "scoring":
        err.print(
            f"[green]run {record.run_id} succeeded[/green]: {m.get('rows_scored')} customers scored with "
            f"{record.model_name} v{record.model_version}, {m.get('rows_rejected', 0)} rejected"
        )
        err.print(f"  {contact_line(m)}", markup=False, highlight=False)
        experiment = m.get("experiment")
        if experiment:
            arms = "; ".join(
                f"{arm} v{a['version']}: {a['customers']:,} customers, {a['calls']:,} calls"
                for arm, a in experiment["arms"].items()
            )
            err.print(f"  experiment {experiment['experiment_id']}: {arms}", markup=False, highlight=False)
        where = f"  predictions: {payload['predictions_url'] or payload.get('predictions_url_error')}"
    elif record.kind == "monitoring":
        promise = (
            f"{m.get('realized_conversion_rate_targeted') or 0:.1%} converted among the targeted against "
            f"{m.get('expected_conversion_rate_targeted') or 0:.1%} expected"
        )
        err.print(
            f"[green]run {record.run_id} succeeded[/green]: {m.get('outcomes', 0):,} outcomes of scoring run "
            f"{m.get('scoring_run')} ({record.model_name} v{record.model_version}): {promise}"
        )
        incremental = m.get("incremental_conversion_rate")
        err.print(
            f"  realized ROC-AUC {m.get('realized_roc_auc') or float('nan'):.3f}; against the holdout "
            + (f"{incremental * 100:+.1f} points" if incremental is not None else "-"),
            markup=False,
            highlight=False,
        )
        where = f"  performance: {m.get('performance_uri')}"
    elif m.get("already_registered"):
        err.print(
            f"[green]run {record.run_id} succeeded[/green]: nothing new to register, this is "
            f"{record.model_name} v{record.model_version} again"
        )
        where = f"  model: {payload.get('model_uri')}   MLflow: {settings.tracking_uri}"
    else:
        verdict = (
            "promoted to champion" if payload.get("promoted") else "registered as challenger (not promoted)"
        )
        err.print(
            f"[green]run {record.run_id} succeeded[/green]: {record.model_name} v{record.model_version} "
            f"({m.get('family')}) {verdict}"
        )
        periods = m.get("backtest_periods") or []
        err.print(
            f"  backtests over {len(periods)} later periods, mean (worst): "
            f"ROC-AUC {m.get('roc_auc', 0):.3f} ({m.get('worst_roc_auc', 0):.3f}), "
            f"precision@10% {m.get('precision_at_10pct', 0):.3f} "
            f"({m.get('worst_precision_at_10pct', 0):.3f}), "
            f"lift@10% {m.get('lift_at_10pct', 0):.2f} ({m.get('worst_lift_at_10pct', 0):.2f}), "
            f"calibration error {m.get('calibration_error', 0):.3f}"
        )
        err.print(f"  deployed model fitted on all {m.get('fitted_on_rows', 0):,} labelled rows")
        where = f"  model: {payload.get('model_uri')}   MLflow: {settings.tracking_uri}"
    for warning in record.warnings:
        if warning == m.get("drift_message"):  # the banner: what moved, and what it means for the figures
            style = "bold red" if m.get("drift_beyond_backtests") else "bold yellow"
            err.print(f"  [{style}]{escape(warning)}[/{style}]", highlight=False)
        else:
            err.print(f"  [yellow]warning:[/yellow] {escape(warning)}", highlight=False)
    err.print(where, markup=False, highlight=False)
    return payload
