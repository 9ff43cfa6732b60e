"""Where a launched run executes (the core's ``Launcher`` port): a local background process on
``kfp.local``, or Kubeflow Pipelines."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from remarketing import flow
from remarketing.ports import Launcher
from remarketing.processes import ProcessRegistry
from remarketing.runs import RunRecord, RunStore
from remarketing.settings import Settings
from remarketing.storage import Storage


def process_name(run_id: str) -> str:
    return f"pipeline-{run_id}"


class LocalLauncher:
    """A background process per run (``python -m pipelines.local_runner RUN_ID``), registered with the
    local stack. The processes queue for a bounded number of slots (``pipeline_concurrency``)."""

    def submit(self, record: RunRecord, settings: Settings) -> dict[str, Any]:
        registry = ProcessRegistry(settings.state_dir)
        entry = registry.start(
            process_name(record.run_id),
            [sys.executable, "-m", "pipelines.local_runner", record.run_id],
            kind="pipeline",
            env={**settings.to_env(), "OMP_WAIT_POLICY": "PASSIVE"},
        )
        return {"runner": "kfp.local", "pid": entry.pid, "log": entry.log}


class KfpLauncher:
    """Standalone Kubeflow Pipelines: the pipeline version the release uploaded for the components image
    in settings (:mod:`pipelines.versions`), run with the record's parameters. Nothing is compiled here."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client

    def client(self, settings: Settings) -> Any:
        if self._client is None:
            import kfp

            self._client = kfp.Client(host=settings.kfp_host)
        return self._client

    def submit(self, record: RunRecord, settings: Settings) -> dict[str, Any]:
        from pipelines.versions import version_ids

        client = self.client(settings)
        pipeline_id, version_id = version_ids(
            client, record.kind, settings.components_image, settings.kfp_host
        )
        experiment = client.create_experiment(name=f"remarketing-{record.kind}")
        run = client.run_pipeline(
            experiment_id=experiment.experiment_id,
            job_name=record.run_id,
            params=run_arguments(record, settings),
            pipeline_id=pipeline_id,
            version_id=version_id,
        )
        run_id = getattr(run, "run_id", None)
        return {
            "runner": "kfp",
            "kfp_run_id": run_id,
            "ui": f"{settings.kfp_host.rstrip('/')}/#/runs/details/{run_id}",
        }


def run_arguments(record: RunRecord, settings: Settings) -> dict[str, Any]:
    """The pipeline's parameters for a run, the same on kfp.local and on Kubeflow."""
    arguments: dict[str, Any] = {
        "source_uri": record.source.uri,
        "dataset": record.dataset,
        "run_id": record.run_id,
        "settings": settings.for_pipeline(),
    }
    if flow.PIPELINES[record.kind].sharded:
        arguments[flow.SHARDS] = flow.shard_numbers(settings.scoring_shards)
    return arguments


def launcher_for(settings: Settings) -> Launcher:
    return LocalLauncher() if settings.mode == "local" else KfpLauncher()


# --- reconciliation: a run never stays `running` forever ----------------------------------------------
KFP_FAILED = {"FAILED", "ERROR", "CANCELED", "CANCELLED", "SKIPPED"}


def reconcile(
    settings: Settings, store: RunStore, record: RunRecord, *, kfp_client: Any | None = None
) -> RunRecord:
    """Bring an unfinished record in line with what runs it: a dead local process or a failed KFP run
    marks it failed with the reason. Called whenever a record is read for a person."""
    if record.finished or not record.pipeline_run:
        return record
    runner = record.pipeline_run.get("runner")
    if runner == "kfp.local":
        entry = ProcessRegistry(settings.state_dir).get(process_name(record.run_id))
        if entry is not None and entry.alive():
            return record
        time.sleep(0.5)  # a runner that just finished forgets its entry right after closing the record
        record = store.get(record.run_id)
        if record.finished:
            return record
        log = record.pipeline_run.get("log", "")
        tail = Path(log).read_text(errors="replace")[-600:] if log and Path(log).exists() else ""
        return store.fail(
            record.run_id,
            f"the pipeline process {record.pipeline_run.get('pid')} ended without "
            f"finishing the run; its log ({log}) ends:\n{tail}",
        )
    if runner == "kfp" and record.pipeline_run.get("kfp_run_id"):
        client = kfp_client or KfpLauncher().client(settings)
        run = client.get_run(record.pipeline_run["kfp_run_id"])
        state = str(getattr(run, "state", "") or "").upper()
        if state in KFP_FAILED:
            error = getattr(run, "error", None)
            detail = f": {getattr(error, 'message', error)}" if error else ""
            return store.fail(record.run_id, f"the Kubeflow run ended {state}{detail}")
    return record


def reconcile_local_runs(settings: Settings, storage: Storage) -> None:
    store = RunStore(storage, settings.artifacts_root)
    for record in store.list():
        if not record.finished and record.pipeline_run.get("runner") == "kfp.local":
            reconcile(settings, store, record)
