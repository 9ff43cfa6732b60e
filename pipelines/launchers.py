"""Where a launched run executes (the core's ``Launcher`` port): a local background process on
``kfp.local``, or Kubeflow Pipelines."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cloud_auth.tokens import access_token
from remarketing import flow
from remarketing.errors import RemarketingError, Unavailable
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
        """``kfp.Client`` with this identity's Google access token: GKE's DNS endpoint checks IAM
        (``container.clusters.connect``), then Kubernetes RBAC lets the account through the ml-pipeline
        service proxy (docs/deploy.md). A launcher serves one launch (a function's invocation), so each
        launch sends a token that is valid then."""
        if self._client is None:
            import kfp

            self._client = kfp.Client(host=settings.kfp_host, existing_token=access_token())
        return self._client

    def submit(self, record: RunRecord, settings: Settings) -> dict[str, Any]:
        from pipelines.versions import version_ids

        with reaching_kfp(settings.kfp_host):
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


def kfp_unavailable(host: str, reason: str) -> Unavailable:
    return Unavailable(
        "Kubeflow Pipelines",
        host,
        "a launch stays queued and the storage trigger retries it; if this lasts, check the cluster, and "
        "the caller's cluster-connect role and Kubernetes RBAC binding (docs/deploy.md)",
        reason=reason,
    )


# GKE's endpoint refusing this identity (401, 403: IAM and RBAC take minutes to apply) or KFP throttling or
# failing (429, 5xx) may pass; any other status is KFP refusing the request itself.
RETRYABLE_STATUS = {401, 403, 429}


def _retryable(status: int) -> bool:
    return status in RETRYABLE_STATUS or status >= 500


@contextmanager
def reaching_kfp(host: str) -> Iterator[None]:
    """The kfp client's failures as the core's errors: Kubeflow Pipelines out of reach is
    :class:`Unavailable` (worth retrying), a request it refused is a :class:`RemarketingError`."""
    import urllib3
    from kfp_server_api.exceptions import ApiException

    try:
        yield
    except ApiException as exc:
        status = exc.status or 0  # 0: the connection failed (TLS)
        if status and not _retryable(status):
            raise RemarketingError(
                f"Kubeflow Pipelines at {host} refused: HTTP {status} {exc.reason}"
            ) from exc
        raise kfp_unavailable(host, f"HTTP {status} {exc.reason}" if status else str(exc.reason)) from exc
    except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as exc:
        # refused or unresolvable (urllib3 gives up after its retries); kfp.Client's health check gives up
        # after five tries with TimeoutError
        raise kfp_unavailable(host, f"it did not answer: {type(exc).__name__}") from exc


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
# Kubeflow Pipelines v2's run states (kfp_server_api's V2beta1RuntimeState) that end a run; the others
# (RUNTIME_STATE_UNSPECIFIED, PENDING, RUNNING, PAUSED) leave it going. CANCELING ends it too: a canceled
# run never resumes. SUCCEEDED and SKIPPED (nothing ran: its work was cached) are not failures, but a run
# that ended with its record still open can no longer close it.
KFP_ENDED = {"SUCCEEDED", "SKIPPED", "FAILED", "CANCELING", "CANCELED"}


def kfp_run(settings: Settings, kfp_run_id: str) -> dict[str, Any]:
    """One run as KFP's REST API gives it (``state``, ``error``), read with httpx and this identity's
    access token: the API reconciles runs and ships without the kfp SDK, and a read needs one call."""
    import httpx

    host = settings.kfp_host
    url = f"{host.rstrip('/')}/apis/v2beta1/runs/{kfp_run_id}"
    try:
        response = httpx.get(url, headers={"Authorization": f"Bearer {access_token()}"}, timeout=10.0)
    except httpx.TransportError as exc:
        raise kfp_unavailable(host, f"it did not answer: {type(exc).__name__}") from exc
    if _retryable(response.status_code):
        raise kfp_unavailable(host, f"HTTP {response.status_code}")
    if response.status_code == 404:  # deleted, or the cluster (and its run history) was made anew
        return {
            "state": "FAILED",
            "error": {"message": f"Kubeflow Pipelines at {host} has no run {kfp_run_id}"},
        }
    if response.status_code >= 400:
        raise RemarketingError(
            f"Kubeflow Pipelines at {host} refused to show run {kfp_run_id}: HTTP {response.status_code}"
        )
    return dict(response.json())


def _ending(state: str, error: dict[str, Any] | None) -> str:
    """Why a record left open by a run that ended in ``state`` is closed as failed."""
    if state in ("CANCELING", "CANCELED"):
        return "the Kubeflow run was canceled"
    if state == "FAILED":
        detail = f": {error.get('message')}" if error and error.get("message") else ""
        return f"the Kubeflow run ended FAILED{detail}"
    return (
        f"the Kubeflow run ended {state} without closing its run record (a step could not write it): "
        "see the run's logs in the Kubeflow UI"
    )


def reconcile(settings: Settings, store: RunStore, record: RunRecord) -> RunRecord:
    """Bring an unfinished record in line with what runs it: a dead local process or a KFP run that ended
    without closing its record marks it failed with the reason. Called whenever a record is read for a
    person."""
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
        run = kfp_run(settings, record.pipeline_run["kfp_run_id"])
        state = str(run.get("state") or "").upper()
        if state in KFP_ENDED:
            record = store.get(record.run_id)  # its last step may have closed it since it was read
            if not record.finished:
                return store.fail(record.run_id, _ending(state, run.get("error")))
    return record


def reconcile_local_runs(settings: Settings, storage: Storage) -> None:
    store = RunStore(storage, settings.artifacts_root)
    for record in store.list():
        if not record.finished and record.pipeline_run.get("runner") == "kfp.local":
            reconcile(settings, store, record)
