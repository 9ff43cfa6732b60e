"""Where a launched run executes: a local background process on ``kfp.local``, or Kubeflow Pipelines."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any, Protocol

from remarketing.local.processes import ProcessRegistry
from remarketing.runs import RunRecord
from remarketing.settings import Settings

PIPELINE_FILES = {"training": "training.yaml", "scoring": "scoring.yaml"}


class Launcher(Protocol):
    def submit(self, record: RunRecord, settings: Settings) -> dict[str, Any]:
        """Start the run's pipeline; return what identifies it (``pipeline_run`` in the record)."""
        ...


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
    """Standalone Kubeflow Pipelines: the compiled YAML, run with the record's parameters."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client

    def client(self, settings: Settings) -> Any:
        if self._client is None:
            import kfp

            self._client = kfp.Client(host=settings.kfp_host)
        return self._client

    def submit(self, record: RunRecord, settings: Settings) -> dict[str, Any]:
        from pipelines.compile import compile_one

        with tempfile.TemporaryDirectory() as tmp:
            package = compile_one(record.kind, Path(tmp), settings.components_image)
            run = self.client(settings).create_run_from_pipeline_package(
                str(package),
                arguments={
                    "source_uri": record.source.uri,
                    "dataset": record.dataset,
                    "run_id": record.run_id,
                    "settings": settings.for_pipeline(),
                },
                run_name=record.run_id,
                experiment_name=f"remarketing-{record.kind}",
            )
        run_id = getattr(run, "run_id", None)
        return {
            "runner": "kfp",
            "kfp_run_id": run_id,
            "ui": f"{settings.kfp_host.rstrip('/')}/#/runs/details/{run_id}",
        }


def launcher_for(settings: Settings) -> Launcher:
    return LocalLauncher() if settings.mode == "local" else KfpLauncher()
