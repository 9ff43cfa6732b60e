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
from typing import Any

import click
from rich.console import Console

from remarketing.errors import RemarketingError
from remarketing.settings import Settings

err = Console(stderr=True)


def emit(payload: dict[str, Any]) -> None:
    """The one JSON line on stdout."""
    sys.stdout.write(json.dumps(payload, default=str) + "\n")
    sys.stdout.flush()


def fail(message: str, **extra: Any) -> None:
    err.print(f"[red]error:[/red] {message}")
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
    from remarketing import datasets

    dataset = dataset or settings.default_dataset
    if dataset not in datasets.available():
        raise click.BadParameter(
            f"unknown dataset {dataset!r}; known: {', '.join(datasets.available())}", param_hint="--dataset"
        )
    record = _put_and_launch(settings, source, "input/", dataset=dataset)
    if no_wait:
        emit(_run_summary(settings, record))
        return
    _finish(settings, _wait(settings, record.run_id))


def _put_and_launch(settings: Settings, source: str, prefix: str, **launch_args: Any):
    from pipelines.launch import launch
    from remarketing.local.services import ensure_stack
    from remarketing.storage import Storage, split_gs

    try:
        ensure_stack(settings, on_start=_start_message)
        storage = Storage(settings)
        if source.startswith("gs://"):
            bucket, name = split_gs(source)
            generation = storage.stat(source).generation
        else:
            path = Path(source)
            if not path.is_file():
                raise click.BadParameter(f"{source} is not a file", param_hint="SOURCE")
            bucket, name = settings.landing_bucket, prefix + path.name
            generation = storage.write_bytes(
                f"gs://{bucket}/{name}",
                path.read_bytes(),
                content_type="text/csv",
                metadata={k: str(v) for k, v in launch_args.items() if v is not None},
            )
            err.print(f"uploaded {source} to gs://{bucket}/{name} (generation {generation})")
        launched = launch(bucket, name, generation, settings=settings, **launch_args)
    except RemarketingError as exc:
        fail(str(exc))
    note = "launched" if launched.created else "already launched (same object generation)"
    err.print(f"run [bold]{launched.record.run_id}[/bold] {note}")
    return launched.record


def _wait(settings: Settings, run_id: str):
    """Poll the run record, printing each step as it starts and ends; watch the local process."""
    from pipelines.launchers import process_name
    from remarketing.local.processes import ProcessRegistry
    from remarketing.runs import RunStore
    from remarketing.storage import Storage

    store = RunStore(Storage(settings), settings.artifacts_root)
    registry = ProcessRegistry(settings.state_dir)
    seen: dict[str, str] = {}
    started = time.monotonic()
    with err.status("waiting for the pipeline ...") as spinner:
        while True:
            record = store.get(run_id)
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
            entry = registry.get(process_name(run_id))
            if settings.mode == "local" and entry is not None and not entry.alive():
                time.sleep(1)  # the runner forgets its entry on a clean exit; a dead one did not
                if not store.get(run_id).finished:
                    return store.fail(
                        run_id, f"the pipeline process {entry.pid} died without finishing; see {entry.log}"
                    )
            time.sleep(0.5)


def _run_summary(settings: Settings, record) -> dict[str, Any]:
    from remarketing.runs import summary

    out = summary(record)
    out["tracking_uri"] = settings.tracking_uri
    if record.kind == "training":
        out["promoted"] = record.metrics.get("promoted")
        if record.model_version:
            out["model_uri"] = (
                f"{settings.artifacts_root}/model-output/{record.model_name}/{record.model_version}"
            )
    return out


def _finish(settings: Settings, record) -> None:
    payload = _run_summary(settings, record)
    if record.status == "failed":
        err.print(f"[red]run {record.run_id} failed[/red] at {record.error.step if record.error else '?'}:")
        err.print(record.error.message if record.error else "unknown error", markup=False, highlight=False)
    else:
        m = record.metrics
        verdict = (
            "promoted to champion" if payload.get("promoted") else "registered as challenger (not promoted)"
        )
        err.print(
            f"[green]run {record.run_id} succeeded[/green]: {record.model_name} v{record.model_version} "
            f"({m.get('family')}) {verdict}"
        )
        err.print(
            f"  test ROC-AUC {m.get('roc_auc', 0):.3f}, PR-AUC {m.get('pr_auc', 0):.3f}, "
            f"precision@10% {m.get('precision_at_10pct', 0):.3f}, lift@10% {m.get('lift_at_10pct', 0):.2f}"
        )
        for warning in record.warnings:
            err.print(f"  [yellow]warning:[/yellow] {warning}", markup=True, highlight=False)
        err.print(f"  model: {payload.get('model_uri')}   MLflow: {settings.tracking_uri}")
    emit(payload)
    sys.exit(0 if record.status == "success" else 1)


# --- models ----------------------------------------------------------------------------------------
@main.group()
def models() -> None:
    """List model versions, promote one, or roll the champion back."""


def _registry(settings: Settings):
    from remarketing.local.services import ensure_stack
    from remarketing.registry import Registry

    ensure_stack(settings, on_start=_start_message)
    return Registry(settings.tracking_uri)


dataset_option = click.option("--dataset", default=None, help="Dataset spec name.")


@models.command("list")
@dataset_option
@click.pass_obj
def models_list(settings: Settings, dataset: str | None) -> None:
    """Every version with its aliases and test ROC-AUC."""
    name = settings.model_name(dataset or settings.default_dataset)
    versions = [v.as_dict() for v in _registry(settings).versions(name)]
    for v in versions:
        aliases = ",".join(v["aliases"]) or "-"
        err.print(
            f"  v{v['version']:<4} {aliases:<20} {v['family'] or '':<8} test ROC-AUC {v['test_roc_auc']}"
        )
    emit({"model_name": name, "versions": versions})


@models.command()
@click.argument("version")
@dataset_option
@click.pass_obj
def promote(settings: Settings, version: str, dataset: str | None) -> None:
    """Make VERSION the champion (it is never deleted; rollback goes back)."""
    name = settings.model_name(dataset or settings.default_dataset)
    try:
        info = _registry(settings).promote(name, version)
    except RemarketingError as exc:
        fail(str(exc))
    err.print(f"{name} v{info.version} is the champion")
    emit({"status": "success", "model_name": name, "champion": info.version})


@models.command()
@dataset_option
@click.pass_obj
def rollback(settings: Settings, dataset: str | None) -> None:
    """Point the champion back at the version it replaced."""
    name = settings.model_name(dataset or settings.default_dataset)
    try:
        info = _registry(settings).rollback(name)
    except RemarketingError as exc:
        fail(str(exc))
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
    """Start the local stack's services that are not running."""
    from remarketing.local import services

    try:
        services.ensure_stack(settings, on_start=_start_message)
    except RemarketingError as exc:
        fail(str(exc))
    state = services.status(settings)
    for name, service in state["services"].items():
        err.print(f"  {name:<18} {service['address']}  healthy={service['healthy']}")
    emit(state)


@main.command()
@click.pass_obj
def down(settings: Settings) -> None:
    """Stop every process the local stack started (by PID)."""
    from remarketing.local import services

    stopped = services.down(settings)
    err.print(f"stopped {len(stopped)} process(es): {', '.join(stopped) or '-'}")
    emit({"status": "success", "stopped": stopped})


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Only the JSON line.")
@click.pass_obj
def status(settings: Settings, as_json: bool) -> None:
    """Each service's address and health, the emulator host and both buckets."""
    from remarketing.local import services

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
