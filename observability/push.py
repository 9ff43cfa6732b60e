"""A pipeline run's figures on the Pushgateway, rendered from its run record (the one source of truth), one
group per run (grouping key ``run_id``), deleted once the run has ended and the retention has passed.

The step adapter pushes when a step starts and ends; :func:`sweep` (the bridge locally, every few seconds)
re-renders runs whose pushed status is behind their record (a pipeline process killed, then reconciled as
failed) and deletes the groups of runs that ended ``pipeline_metrics_retention_seconds`` ago. A Pushgateway
that does not answer costs a warning, never a run."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Gauge, delete_from_gateway, push_to_gateway

from remarketing.errors import NotFoundError
from remarketing.runs import RunRecord, RunStore
from remarketing.settings import Settings
from remarketing.storage import Storage

log = logging.getLogger("remarketing.observability")
JOB = "remarketing-pipeline"
STATUSES = ("queued", "running", "success", "failed")
TIMEOUT = 2.0


def _seconds(stamp: str | None) -> float | None:
    return datetime.fromisoformat(stamp).timestamp() if stamp else None


def render(record: RunRecord) -> CollectorRegistry:
    """The run's series (docs/observability.md, "Pipelines")."""
    registry = CollectorRegistry()
    base = {"kind": record.kind, "dataset": record.dataset}

    def gauge(name: str, help_: str, extra: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, help_, [*base, *extra], registry=registry)

    status = gauge("remarketing_pipeline_run_status", "The run's status now (1)", ("status",))
    for value in STATUSES:
        status.labels(**base, status=value).set(1 if record.status == value else 0)
    started, updated = _seconds(record.created), _seconds(record.updated)
    gauge("remarketing_pipeline_run_started_timestamp_seconds", "When the run was created").labels(
        **base
    ).set(started or 0)
    gauge("remarketing_pipeline_run_updated_timestamp_seconds", "The run's last change").labels(**base).set(
        updated or 0
    )
    gauge("remarketing_pipeline_run_duration_seconds", "From creation to the last change").labels(**base).set(
        (updated or 0) - (started or 0)
    )
    durations = gauge("remarketing_pipeline_step_duration_seconds", "A step's wall time", ("step",))
    step_status = gauge("remarketing_pipeline_step_status", "How a step ended (1)", ("step", "status"))
    for step in record.steps:
        begun, ended = _seconds(step.started), _seconds(step.finished)
        if begun is not None and ended is not None:
            durations.labels(**base, step=step.name).set(ended - begun)
        if step.status in ("success", "failed"):
            step_status.labels(**base, step=step.name, status=step.status).set(1)
    _figures(record, gauge, base)
    return registry


def _figures(record: RunRecord, gauge: Any, base: dict[str, str]) -> None:
    metrics = record.metrics
    if record.kind == "scoring":
        rows = gauge("remarketing_pipeline_rows", "Rows of a scoring run", ("stage",))
        for stage in ("read", "scored", "rejected"):
            if metrics.get(f"rows_{stage}") is not None:
                rows.labels(**base, stage=stage).set(float(metrics[f"rows_{stage}"]))
        psi = gauge("remarketing_pipeline_feature_psi", "A feature's drift against training", ("feature",))
        for feature, value in (metrics.get("feature_psi") or {}).items():
            psi.labels(**base, feature=feature).set(float(value))
        if metrics.get("expected_conversion_rate") is not None:
            gauge(
                "remarketing_pipeline_expected_conversion_rate",
                "What the contacted are expected to convert at",
            ).labels(**base).set(float(metrics["expected_conversion_rate"]))
    if record.kind == "monitoring":
        for key, help_ in (
            ("realized_lift", "The targeted's realized conversion over the reference's"),
            ("calibration_error", "Mean absolute gap of expected and actual conversion by score decile"),
        ):
            if metrics.get(key) is not None:
                gauge(f"remarketing_monitoring_{key}", help_).labels(**base).set(float(metrics[key]))


def push(settings: Settings, record: RunRecord) -> bool:
    """Replace the run's group with what its record says now. False (and a warning) when it could not."""
    if not settings.pushgateway_url:
        return False
    try:
        push_to_gateway(
            settings.pushgateway_url,
            job=JOB,
            grouping_key={"run_id": record.run_id},
            registry=render(record),
            timeout=TIMEOUT,
        )
        return True
    except OSError as exc:  # urllib's URLError and refused connections
        log.warning(
            "the Pushgateway at %s is down: run %s's figures not pushed (%s)",
            settings.pushgateway_url,
            record.run_id,
            exc,
        )
        return False


def groups(settings: Settings) -> dict[str, dict[str, Any]]:
    """The pushed pipeline runs: run_id -> {"status": pushed status, "pushed": unix time of the last push}."""
    response = httpx.get(f"{settings.pushgateway_url}/api/v1/metrics", timeout=TIMEOUT)
    response.raise_for_status()
    out: dict[str, dict[str, Any]] = {}
    for group in response.json().get("data", []):
        labels = group.get("labels", {})
        if labels.get("job") != JOB or "run_id" not in labels:
            continue
        pushed = group.get("push_time_seconds", {}).get("metrics", [{}])[0].get("value")
        series = group.get("remarketing_pipeline_run_status", {}).get("metrics", [])
        status = next((m["labels"]["status"] for m in series if float(m.get("value", 0)) == 1), None)
        out[labels["run_id"]] = {"status": status, "pushed": float(pushed or 0)}
    return out


def sweep(
    settings: Settings, record_of: Callable[[str], RunRecord | None], *, now: float | None = None
) -> list[str]:
    """Bring each pushed run in line with its record (``record_of(run_id)``; None: no such run any more);
    delete the groups of runs ended more than the retention ago, and of runs that no longer exist. The run
    ids deleted."""
    if not settings.pushgateway_url:
        return []
    try:
        pushed = groups(settings)
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("the Pushgateway at %s is down: runs not swept (%s)", settings.pushgateway_url, exc)
        return []
    now = time.time() if now is None else now
    deleted = []
    for run_id, group in pushed.items():
        record = record_of(run_id)
        if record is not None and group["status"] != record.status:
            push(settings, record)  # e.g. reconciled as failed after its process died
            continue
        ended = record is None or record.finished
        last = _seconds(record.updated) if record is not None else None
        age = now - (group["pushed"] if last is None else last)
        if ended and age >= settings.pipeline_metrics_retention_seconds:
            try:
                delete_from_gateway(
                    settings.pushgateway_url, job=JOB, grouping_key={"run_id": run_id}, timeout=TIMEOUT
                )
            except OSError as exc:  # gone mid-sweep: the next sweep deletes it
                log.warning(
                    "the Pushgateway at %s is down: %s not deleted (%s)",
                    settings.pushgateway_url,
                    run_id,
                    exc,
                )
                break
            deleted.append(run_id)
    return deleted


def records_in(storage: Storage, settings: Settings) -> Callable[[str], RunRecord | None]:
    """``record_of`` for :func:`sweep`: the run store's record, None for a run that does not exist."""
    store = RunStore(storage, settings.artifacts_root)

    def record_of(run_id: str) -> RunRecord | None:
        try:
            return store.get(run_id)
        except NotFoundError:
            return None

    return record_of


def main() -> None:
    """``python -m observability.push``: one sweep with the settings from ``REMARKETING_*`` (in the cloud a
    CronJob runs it; locally the bridge does)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings()
    deleted = sweep(settings, records_in(Storage(settings), settings))
    log.info("swept the Pushgateway at %s: %d ended runs deleted", settings.pushgateway_url, len(deleted))


if __name__ == "__main__":
    main()
