"""``remarketing``: train, models, pipelines compile, up/down/status.

Progress and logs go to stderr; the last line of stdout is one JSON object. Exit 0 when the run
succeeded (also when the model was not promoted: the JSON says so), 1 when it failed, 2 for a usage error.
Built on click (commands, usage errors) and rich (progress on stderr).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape

from remarketing.errors import RemarketingError
from remarketing.settings import Settings

# soft_wrap: lines are never broken, so an address copied from a log or a pipe is whole.
err = Console(stderr=True, soft_wrap=True)


def emit(payload: dict[str, Any]) -> None:
    """The one JSON line on stdout."""
    sys.stdout.write(json.dumps(payload, default=str) + "\n")
    sys.stdout.flush()


def fail(message: str, **extra: Any) -> NoReturn:
    err.print(f"[red]error:[/red] {escape(message)}")
    emit({"status": "failed", "error": {"message": message}, **extra})
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def main(ctx: click.Context) -> None:
    """Remarketing: pick which customers to call in the next term-deposit campaign."""
    ctx.obj = Settings()


def _start_message(name: str, address: str) -> None:
    err.print(f"starting {name} at {address} ...")


# --- train -----------------------------------------------------------------------------------------
@main.command()
@click.argument("source")
@click.option("--dataset", default=None, help="Dataset spec name (default: REMARKETING_DEFAULT_DATASET).")
@click.option("--no-wait", is_flag=True, help="Return once the run is launched.")
@click.pass_obj
def train(settings: Settings, source: str, dataset: str | None, no_wait: bool) -> None:
    """Put SOURCE (a local CSV, or a gs:// object in input/) into input/ and run the training pipeline."""
    _check_dataset(dataset)
    run_id = _put_and_launch(settings, source, "input/", dataset=dataset)
    if no_wait:
        emit(_run_summary(settings, _record(settings, run_id)))
        return
    _finish(settings, _wait(settings, run_id))


def _check_dataset(dataset: str | None) -> None:
    from remarketing import datasets

    if dataset is not None and dataset not in datasets.available():
        raise click.BadParameter(
            f"unknown dataset {dataset!r}; known: {', '.join(datasets.available())}", param_hint="--dataset"
        )


def upload_name(prefix: str, filename: str) -> str:
    """``weekly/customers-20261121T083012123456.csv``: unique per upload, readable, time-sortable."""
    from datetime import UTC, datetime

    stem, _, suffix = Path(filename).name.rpartition(".")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    return f"{prefix}{stem or suffix}-{stamp}.{suffix if stem else 'csv'}"


def _put_and_launch(
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
        ensure_stack(settings, on_start=_start_message)
        storage = Storage(settings)
        if source.startswith("gs://"):
            generation = storage.stat(source).generation
        else:
            path = Path(source)
            bucket, name = settings.landing_bucket, upload_name(prefix, path.name)
            dataset = launch_args.get("dataset") or settings.default_dataset
            metadata = {"dataset": dataset, **(launch_args.get("params") or {})}
            generation = storage.write_bytes(
                f"gs://{bucket}/{name}",
                path.read_bytes(),
                content_type="text/csv",
                metadata={k: str(v) for k, v in metadata.items() if v is not None},
                if_generation_match=0,  # every upload is its own object: an earlier one is never replaced
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


def _wait(settings: Settings, run_id: str, *, appear_within: float = 0):
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
            except RemarketingError:
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


def _record(settings: Settings, run_id: str):
    from remarketing.runs import RunStore
    from remarketing.storage import Storage

    return RunStore(Storage(settings), settings.artifacts_root).get(run_id)


def _run_summary(settings: Settings, record) -> dict[str, Any]:
    from remarketing.runs import summary

    out = summary(record)
    out["tracking_uri"] = settings.tracking_uri
    if record.kind == "scoring":
        from remarketing.runs import SCORING_METRICS

        for key in SCORING_METRICS:
            out[key] = record.metrics.get(key)
        out["predictions_url"] = None
        if record.status == "success" and record.predictions_uri:
            from remarketing.urls import mint

            try:
                signed = mint(settings, record.predictions_uri)
                out["predictions_url"], out["predictions_url_expires"] = signed.url, signed.expires
            except RemarketingError as exc:  # the run stays a success; say why there is no link
                out["predictions_url_error"] = str(exc)
    if record.kind == "training":
        out["promoted"] = record.metrics.get("promoted")
        if record.model_version:
            out["model_uri"] = settings.bundle_uri(record.model_name, record.model_version)
    return out


def contact_line(m: dict[str, Any]) -> str:
    """``call 1,000: 950 targeted (expected 73.9%, 80% interval 43.5-91.2%), 50 at random; 50 held out``."""
    rate, low, high = (
        m.get(k)
        for k in ("expected_conversion_rate", "expected_conversion_rate_low", "expected_conversion_rate_high")
    )
    expected = f"expected {rate:.1%}" if rate is not None else "expected -"
    if low is not None and high is not None:
        expected += f", {m.get('interval_level', 0):.0%} interval {low:.1%}-{high:.1%}"
    line = (
        f"call {m.get('contacted', 0):,}: {m.get('targeted', 0):,} targeted ({expected}; base rate "
        f"{m.get('base_rate', 0):.1%}), {m.get('explore', 0):,} at random; {m.get('holdout', 0):,} held out"
    )
    if m.get("expected_profit") is not None:
        line += (
            f"; expected profit {m['expected_profit']:,.0f} (break-even probability "
            f"{m['break_even_probability']:.1%})"
        )
    return line


def _finish(settings: Settings, record) -> None:
    payload = _report(settings, record)
    emit(payload)
    sys.exit(0 if record.status == "success" else 1)


def _report(settings: Settings, record) -> dict[str, Any]:
    """Say how the run ended on stderr; return its summary (the JSON line)."""
    payload = _run_summary(settings, record)
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
        where = f"  predictions: {payload['predictions_url'] or payload.get('predictions_url_error')}"
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
        err.print(f"  [yellow]warning:[/yellow] {escape(warning)}", highlight=False)
    err.print(where, markup=False, highlight=False)
    return payload


@main.command()
@click.argument("source")
@click.option("--dataset", default=None, help="Dataset spec name (default: REMARKETING_DEFAULT_DATASET).")
@click.option("--budget", type=int, default=None, help="How many customers to call (at most).")
@click.option("--budget-share", type=float, default=None, help="Or which share of the file to call.")
@click.option("--call-cost", type=float, default=None, help="What one call costs (with --conversion-value).")
@click.option(
    "--conversion-value",
    type=float,
    default=None,
    help="What one conversion is worth: only customers "
    "worth a call (probability x value > cost) are called, best first, up to the budget.",
)
@click.option(
    "--holdout-share", type=float, default=None, help="Share of the list held out, not called (0-0.5)."
)
@click.option(
    "--explore-share", type=float, default=None, help="Share of the others called at random (0-0.5)."
)
@click.option("--model-version", default=None, help="Score with this version instead of the champion.")
@click.option("--no-wait", is_flag=True, help="Return once the run is launched.")
@click.pass_obj
def score(
    settings: Settings,
    source: str,
    dataset: str | None,
    model_version: str | None,
    no_wait: bool,
    **asked: Any,
) -> None:
    """Put SOURCE (a weekly customer CSV) into weekly/ and run the scoring pipeline: every customer
    scored by the champion on KServe, with reasons, a contact list (with a holdout and a few random calls,
    so the effect can be measured) and a predictions URL."""
    from remarketing import parameters
    from remarketing.errors import ParameterError

    _check_dataset(dataset)
    try:
        params = parameters.parse({**asked, "model_version": model_version})
    except ParameterError as exc:
        raise click.UsageError("; ".join(exc.problems)) from None
    run_id = _put_and_launch(settings, source, "weekly/", dataset=dataset, params=params)
    if no_wait:
        emit(_run_summary(settings, _record(settings, run_id)))
        return
    _finish(settings, _wait(settings, run_id))


# --- demo --------------------------------------------------------------------------------------------
@main.command()
@click.option(
    "--data",
    "data_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="bank-full.csv (or .csv.gz); default: the one shipped in data/, or REMARKETING_DATA_DIR's",
)
@click.option("--budget", type=click.IntRange(min=1), default=1000, show_default=True)
@click.pass_obj
def demo(settings: Settings, data_path: Path | None, budget: int) -> None:
    """The whole chain on bank-full: train on the first 80% of the campaign history, then score the last
    20% as a weekly file (outcome removed, customer ids added) and compare expected with actual conversion."""
    from local_stack.services import ALL, ensure_stack
    from remarketing import examples
    from remarketing.demo import actual_outcomes, prepare

    data_path = data_path or examples.find(examples.BANK_FULL)
    if data_path is None:
        raise click.BadParameter(
            f"no {examples.BANK_FULL} (or .gz) under {examples.data_dir()}: point REMARKETING_DATA_DIR at a "
            "folder holding it, or give --data",
            param_hint="--data",
        )

    # The whole chain, as in the cloud: files dropped into the landing bucket are picked up by the
    # storage trigger (the event bridge) and the functions launch the pipelines.
    try:
        ensure_stack(settings, ALL, on_start=_start_message)
    except RemarketingError as exc:
        fail(str(exc))
    files = prepare(data_path, settings.state_dir.resolve() / "demo")
    history = f"{files.history.name} ({files.history_rows} rows, the first 80%)"
    err.print(f"[bold]1/2 training[/bold]: {history} into input/")
    run_id = _put_and_launch(
        settings, str(files.history), "input/", launch_now=False, dataset="bank-marketing"
    )
    trained = _report(settings, _wait(settings, run_id, appear_within=60))
    if trained["status"] != "success":
        emit({"status": "failed", "training": trained})
        sys.exit(1)
    err.print(
        f"[bold]2/2 scoring[/bold]: {files.weekly.name} ({files.weekly_rows} customers, the last 20%, "
        "no outcome, with ids) into weekly/"
    )
    run_id = _put_and_launch(
        settings,
        str(files.weekly),
        "weekly/",
        launch_now=False,
        dataset="bank-marketing",
        params={"budget": budget},
    )
    scored = _report(settings, _wait(settings, run_id, appear_within=60))
    out = {"status": scored["status"], "training": trained, "scoring": scored}
    if scored["status"] == "success":
        actual = actual_outcomes(settings, scored["predictions_uri"], files.labels)
        out["actual"] = actual
        for line in demo_truth(scored, actual):
            err.print(line, markup=False, highlight=False)
        err.print(
            f"predictions URL (expires in {settings.predictions_url_ttl_seconds // 60} min): "
            f"{scored['predictions_url']}",
            markup=False,
            highlight=False,
        )
        err.print(
            f"look at: UI http://127.0.0.1:{settings.ui_port} | MLflow {settings.tracking_uri} | "
            f"API http://127.0.0.1:{settings.api_port}/docs | manifest {scored['manifest_uri']}",
            markup=False,
            highlight=False,
        )
    emit(out)
    sys.exit(0 if scored["status"] == "success" else 1)


def demo_truth(scored: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """What the demo knows that a real week would not yet: this week's outcomes, against the promise."""
    if not actual["targeted"]:
        return ["", "this week's outcomes: no customer was targeted, so there is no promise to check"]
    low, high = scored.get("expected_conversion_rate_low"), scored.get("expected_conversion_rate_high")
    rate = actual["conversion_rate_targeted"]
    inside = low is not None and high is not None and low <= rate <= high
    interval = "no interval"
    if low is not None and high is not None:
        verdict = "inside" if inside else "OUTSIDE"
        interval = f"{scored.get('interval_level', 0):.0%} interval {low:.1%}-{high:.1%}: {verdict}"
    return [
        "",
        f"this week's outcomes: the {actual['targeted']:,} targeted converted at {rate:.1%} against "
        f"{actual['base_rate']:.1%} for all {actual['customers']:,} customers: lift {actual['lift']:.2f}",
        f"  ROC-AUC of the scores {actual['roc_auc']:.3f}, precision in the top 10% "
        f"{actual['precision_at_10pct']:.1%}",
        f"  expected {scored['expected_conversion_rate']:.1%} "
        f"({scored['expected_conversion_rate'] * actual['targeted']:,.0f} conversions), actual {rate:.1%} "
        f"({actual['conversions_targeted']:,}); {interval}",
    ]


# --- models ----------------------------------------------------------------------------------------
@main.group()
def models() -> None:
    """List model versions, promote one, or roll the champion back."""


def _registry(settings: Settings, dataset: str | None):
    from local_stack.services import ensure_stack
    from tracking.registry import MlflowRegistry

    _check_dataset(dataset)
    try:
        ensure_stack(settings, on_start=_start_message)
    except RemarketingError as exc:
        fail(str(exc))
    return MlflowRegistry(settings.tracking_uri), settings.model_name(dataset or settings.default_dataset)


def _registry_call(call):
    """Registry calls fail as the CLI's contract says: a clear message and a JSON line, exit 1."""
    try:
        return call()
    except RemarketingError as exc:
        fail(str(exc))


dataset_option = click.option("--dataset", default=None, help="Dataset spec name.")


@models.command("list")
@dataset_option
@click.pass_obj
def models_list(settings: Settings, dataset: str | None) -> None:
    """Every version with its aliases and mean backtest ROC-AUC."""
    registry, name = _registry(settings, dataset)
    versions = [v.as_dict() for v in _registry_call(lambda: registry.versions(name))]
    for v in versions:
        aliases = ",".join(v["aliases"]) or "-"
        err.print(
            f"  v{v['version']:<4} {aliases:<20} {v['family'] or '':<8} "
            f"mean backtest ROC-AUC {v['backtest_roc_auc']}"
        )
    emit({"status": "success", "model_name": name, "versions": versions})


@models.command()
@click.argument("version")
@dataset_option
@click.pass_obj
def promote(settings: Settings, version: str, dataset: str | None) -> None:
    """Make VERSION the champion (it is never deleted; rollback goes back)."""
    registry, name = _registry(settings, dataset)
    info = _registry_call(lambda: registry.promote(name, version))
    err.print(f"{name} v{info.version} is the champion")
    emit({"status": "success", "model_name": name, "champion": info.version})


@models.command()
@dataset_option
@click.pass_obj
def rollback(settings: Settings, dataset: str | None) -> None:
    """Point the champion back at the version it replaced."""
    registry, name = _registry(settings, dataset)
    info = _registry_call(lambda: registry.rollback(name))
    err.print(f"{name}: champion rolled back to v{info.version}")
    emit({"status": "success", "model_name": name, "champion": info.version})


# --- pipelines -------------------------------------------------------------------------------------
@main.group()
def pipelines() -> None:
    """Kubeflow pipeline definitions."""


@pipelines.command("compile")
@click.option(
    "--output-dir", type=click.Path(path_type=Path), default=Path("build/pipelines"), show_default=True
)
@click.option("--image", default=None, help="Components base image (default: REMARKETING_COMPONENTS_IMAGE).")
@click.pass_obj
def pipelines_compile(settings: Settings, output_dir: Path, image: str | None) -> None:
    """Write the IR YAML of each pipeline, as a real Kubeflow Pipelines accepts it."""
    from pipelines.compile import compile_all

    written = compile_all(output_dir, image or settings.components_image)
    for path in written:
        err.print(f"wrote {path}")
    emit({"status": "success", "pipelines": [str(p) for p in written]})


# --- local stack -----------------------------------------------------------------------------------
@main.command()
@click.pass_obj
def up(settings: Settings) -> None:
    """Start every local service that is not running: storage emulator, MLflow, API, the two Cloud
    Functions and the event bridge (files dropped into the landing bucket then launch runs)."""
    from local_stack import services
    from remarketing.secrets import api_key

    try:
        services.ensure_stack(settings, services.ALL, on_start=_start_message)
    except RemarketingError as exc:
        fail(str(exc))
    state = services.status(settings)
    for name, service in state["services"].items():
        err.print(f"  {name:<24} {service['address'] or '-':<24} healthy={service['healthy']}")
    err.print(
        f"  API key (X-API-Key or Authorization: Bearer): {api_key(settings)}", markup=False, highlight=False
    )
    emit(state)


@main.command()
@click.pass_obj
def down(settings: Settings) -> None:
    """Stop every process the local stack started (by PID)."""
    from local_stack import services

    stopped = services.down(settings)
    err.print(f"stopped {len(stopped)} process(es): {', '.join(stopped) or '-'}")
    emit({"status": "success", "stopped": stopped})


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Only the JSON line.")
@click.pass_obj
def status(settings: Settings, as_json: bool) -> None:
    """Each service's address and health, the emulator host and both buckets."""
    from local_stack import services

    state = services.status(settings)
    if not as_json:
        for name, service in state["services"].items():
            err.print(
                f"  {name:<18} {service['address']}  "
                f"running={service['running']} healthy={service['healthy']}"
            )
        err.print(f"  buckets: {state['landing_bucket']} {state['artifacts_bucket']}")
    emit(state)


if __name__ == "__main__":
    main()
