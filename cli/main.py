"""``remarketing``: train, models, pipelines compile/upload, up/down/status.

Progress and logs go to stderr; the last line of stdout is one JSON object. Exit 0 when the run
succeeded (also when the model was not promoted: the JSON says so), 1 when it failed, 2 for a usage error.
Built on click (commands, usage errors) and rich (progress on stderr).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from cli.access import audit, cli_principal, identities, keys
from cli.experiment import experiment
from cli.output import demo_truth, emit, err, fail, or_fail, start_message
from cli.runs import (
    finish,
    launch_training_object,
    put_and_launch,
    record_of,
    report,
    run_summary,
    wait,
)
from cli.smoke import smoke
from remarketing.errors import NotFoundError, RemarketingError
from remarketing.settings import Settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def main(ctx: click.Context) -> None:
    """Remarketing: pick which customers to call in the next term-deposit campaign."""
    ctx.obj = Settings()


# --- train -----------------------------------------------------------------------------------------
@main.command()
@click.argument("source")
@click.option("--dataset", default=None, help="Dataset spec name (default: REMARKETING_DEFAULT_DATASET).")
@click.option("--no-wait", is_flag=True, help="Return once the run is launched.")
@click.pass_obj
def train(settings: Settings, source: str, dataset: str | None, no_wait: bool) -> None:
    """Put SOURCE (a local CSV, or a gs:// object in input/) into input/ and run the training pipeline."""
    _check_dataset(dataset)
    run_id = put_and_launch(settings, source, "input/", dataset=dataset)
    if no_wait:
        emit(run_summary(settings, record_of(settings, run_id)))
        return
    finish(settings, wait(settings, run_id))


def _check_dataset(dataset: str | None) -> None:
    from remarketing import datasets

    if dataset is not None and dataset not in datasets.available():
        raise click.BadParameter(
            f"unknown dataset {dataset!r}; known: {', '.join(datasets.available())}", param_hint="--dataset"
        )


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
    run_id = put_and_launch(settings, source, "weekly/", dataset=dataset, params=params)
    if no_wait:
        emit(run_summary(settings, record_of(settings, run_id)))
        return
    finish(settings, wait(settings, run_id))


# --- outcomes ----------------------------------------------------------------------------------------
@main.command()
@click.argument("source")
@click.option("--run", "scoring_run", default=None, help="The scoring run these outcomes belong to.")
@click.option("--dataset", default=None, help="Dataset spec name (default: the scoring run's, or settings).")
@click.option("--no-wait", is_flag=True, help="Return once the run is launched.")
@click.pass_obj
def outcomes(
    settings: Settings, source: str, scoring_run: str | None, dataset: str | None, no_wait: bool
) -> None:
    """Put SOURCE (a campaign's outcomes: the id column and the target, e.g. customer_id;y) into outcomes/
    and run the monitoring pipeline: the week measured against its scoring run's promise
    (output/<scoring run>/performance.json) and the labelled rows added to the dataset's history. Without
    --run, the scoring run is found by the ids."""
    _check_dataset(dataset)
    if scoring_run and dataset is None:
        try:
            dataset = record_of(settings, scoring_run).dataset
        except NotFoundError:  # the monitoring run says so at validate (storage down is raised as it is)
            dataset = None
    params = {"scoring_run": scoring_run} if scoring_run else {}
    run_id = put_and_launch(settings, source, "outcomes/", dataset=dataset, params=params)
    if no_wait:
        emit(run_summary(settings, record_of(settings, run_id)))
        return
    record = wait(settings, run_id)
    target = record.metrics.get("training_object")
    if record.status == "success" and target:  # the policy retrains: launch it as the trigger would
        launch_training_object(settings, target["uri"], int(target["generation"]), record.dataset)
    finish(settings, record)


# --- retrain ---------------------------------------------------------------------------------------
@main.command()
@click.option("--dataset", default=None, help="Dataset spec name (default: REMARKETING_DEFAULT_DATASET).")
@click.option("--no-wait", is_flag=True, help="Return once the run is launched.")
@click.pass_obj
def retrain(settings: Settings, dataset: str | None, no_wait: bool) -> None:
    """What the schedule does (REMARKETING_RETRAIN_SCHEDULE): train on the latest history version when no
    model was trained on it yet (the gate still decides promotion); otherwise say why not."""
    from remarketing.datasets import load_spec
    from remarketing.retraining import on_schedule
    from remarketing.storage import Storage

    registry, _ = _registry(settings, dataset)
    ds = dataset or settings.default_dataset
    result = or_fail(
        lambda: on_schedule(Storage(settings), settings, load_spec(ds), ds, registry, by="asked by hand")
    )
    err.print(result["said"], markup=False, highlight=False)
    if not result["retrain"]:
        emit({"status": "success", **result})
        return
    launch_training_object(settings, result["uri"], int(result["generation"]), ds)
    if no_wait:
        emit({"status": "success", **result})
        return
    finish(settings, wait(settings, result["training_run"]))


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
    """The whole chain on bank-full: train on the first 80% of the campaign history, score the last 20% as a
    weekly file (outcome removed, customer ids added), compare expected with actual conversion, and send
    the held-back outcomes into outcomes/ for the monitoring pipeline."""
    import httpx

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
        ensure_stack(settings, ALL, on_start=start_message)
    except RemarketingError as exc:
        fail(str(exc))
    files = prepare(data_path, settings.state_dir.resolve() / "demo")
    history = f"{files.history.name} ({files.history_rows} rows, the first 80%)"
    err.print(f"[bold]1/3 training[/bold]: {history} into input/")
    run_id = put_and_launch(
        settings, str(files.history), "input/", launch_now=False, dataset="bank-marketing"
    )
    trained = report(settings, wait(settings, run_id, appear_within=60))
    if trained["status"] != "success":
        emit({"status": "failed", "training": trained})
        sys.exit(1)
    err.print(
        f"[bold]2/3 scoring[/bold]: {files.weekly.name} ({files.weekly_rows} customers, the last 20%, "
        "no outcome, with ids) into weekly/"
    )
    run_id = put_and_launch(
        settings,
        str(files.weekly),
        "weekly/",
        launch_now=False,
        dataset="bank-marketing",
        params={"budget": budget},
    )
    scored = report(settings, wait(settings, run_id, appear_within=60))
    out = {"status": scored["status"], "training": trained, "scoring": scored}
    if scored["status"] == "success":
        # through the link it prints, as the bank would download the list (the API's /download)
        if not scored.get("predictions_url"):
            fail(f"the run published no predictions URL: {scored.get('predictions_url_error')}")
        try:
            response = httpx.get(scored["predictions_url"], timeout=60)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            fail(f"the predictions URL did not serve the scored file: {exc}")
        actual = actual_outcomes(response.content, files.labels)
        out["actual"] = actual
        for line in demo_truth(scored, actual):
            err.print(line, markup=False, highlight=False)
        err.print(
            f"predictions URL (expires in {settings.predictions_url_ttl_seconds // 60} min): "
            f"{scored['predictions_url']}",
            markup=False,
            highlight=False,
        )
        # The bank reports how the calls went: the monitoring pipeline measures the week, as every week.
        err.print(f"[bold]3/3 outcomes[/bold]: {files.labels.name} (the campaign's outcomes) into outcomes/")
        run_id = put_and_launch(
            settings,
            str(files.labels),
            "outcomes/",
            launch_now=False,
            dataset="bank-marketing",
            params={"scoring_run": scored["run_id"]},
        )
        out["monitoring"] = report(settings, wait(settings, run_id, appear_within=60))
        err.print(
            f"look at: UI http://127.0.0.1:{settings.ui_port} | MLflow {settings.tracking_uri} | "
            f"API http://127.0.0.1:{settings.api_port}/docs | Prometheus {settings.prometheus_url} | "
            f"manifest {scored['manifest_uri']}",
            markup=False,
            highlight=False,
        )
    emit(out)
    sys.exit(0 if scored["status"] == "success" else 1)


# --- models ----------------------------------------------------------------------------------------
@main.group()
def models() -> None:
    """List model versions, promote one, or roll the champion back."""


def _registry(settings: Settings, dataset: str | None):
    from local_stack.services import ensure_stack
    from tracking.registry import MlflowRegistry

    _check_dataset(dataset)
    try:
        ensure_stack(settings, on_start=start_message)
    except RemarketingError as exc:
        fail(str(exc))
    return MlflowRegistry(settings.tracking_uri), settings.model_name(dataset or settings.default_dataset)


dataset_option = click.option("--dataset", default=None, help="Dataset spec name.")


@models.command("list")
@dataset_option
@click.pass_obj
def models_list(settings: Settings, dataset: str | None) -> None:
    """Every version with its aliases and mean backtest ROC-AUC."""
    registry, name = _registry(settings, dataset)
    versions = [v.as_dict() for v in or_fail(lambda: registry.versions(name))]
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
    before = or_fail(lambda: registry.by_alias(name, "champion"))
    info = or_fail(lambda: registry.promote(name, version))
    _record(settings, dataset, "promoted", info.version, before)
    err.print(f"{name} v{info.version} is the champion")
    emit({"status": "success", "model_name": name, "champion": info.version})


@models.command()
@dataset_option
@click.pass_obj
def rollback(settings: Settings, dataset: str | None) -> None:
    """Point the champion back at the version it replaced."""
    registry, name = _registry(settings, dataset)
    before = or_fail(lambda: registry.by_alias(name, "champion"))
    info = or_fail(lambda: registry.rollback(name))
    _record(settings, dataset, "rolled-back", info.version, before)
    err.print(f"{name}: champion rolled back to v{info.version}")
    emit({"status": "success", "model_name": name, "champion": info.version})


def _record(settings: Settings, dataset: str | None, action: str, version: str, before: Any) -> None:
    """A change made by hand, in the record of decisions (remarketing decisions, the Model page)."""
    from remarketing import decisions
    from remarketing.storage import Storage

    previous = None if before is None else before.version
    if previous == version:
        return
    decisions.record(
        Storage(settings),
        settings.artifacts_root,
        dataset or settings.default_dataset,
        action=action,
        version=version,
        previous=previous,
        by=cli_principal(),
        evidence={"reason": f"{action} by hand from v{previous}"},
    )


main.add_command(experiment)
main.add_command(keys)
main.add_command(identities)
main.add_command(audit)
main.add_command(smoke)


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


@pipelines.command("upload")
@click.option("--image", default=None, help="Components base image (default: REMARKETING_COMPONENTS_IMAGE).")
@click.option("--host", default=None, help="Kubeflow Pipelines address (default: REMARKETING_KFP_HOST).")
@click.option("--token", envvar="KFP_TOKEN", default=None, help="A bearer token for KFP (or $KFP_TOKEN).")
@click.pass_obj
def pipelines_upload(settings: Settings, image: str | None, host: str | None, token: str | None) -> None:
    """Compile each pipeline with the components image and upload it to Kubeflow Pipelines as the version
    the launches of that image run (one already there is kept)."""
    from pipelines.versions import upload_all

    done = upload_all(host or settings.kfp_host, token, image or settings.components_image)
    for result in done:
        err.print(f"{'uploaded' if result['uploaded'] else 'already there'}: {result['version']}")
    emit({"status": "success", "versions": done})


# --- local stack -----------------------------------------------------------------------------------
@main.command()
@click.pass_obj
def up(settings: Settings) -> None:
    """Start every local service that is not running: storage emulator, MLflow, API, the two Cloud
    Functions and the event bridge (files dropped into the landing bucket then launch runs)."""
    from local_stack import services
    from remarketing.secrets import api_key

    try:
        services.ensure_stack(settings, services.ALL, on_start=start_message)
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
