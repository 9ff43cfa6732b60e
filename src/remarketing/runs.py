"""Run records (``runs/<run_id>.json`` in the artifacts bucket): what the CLI, API and UI read.

A run is started by one object generation in the landing bucket; its id is derived from bucket, name
and generation, so a redelivered event or a second caller computes the same id. The record is created
create-only: whoever loses the race gets the existing run back. Updates are compare-and-swap on the
object's generation, so concurrent steps never lose each other's writes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from remarketing.errors import NotFoundError, PreconditionFailed, RemarketingError, StorageError
from remarketing.storage import Storage, join

log = logging.getLogger(__name__)
Kind = Literal["training", "scoring", "monitoring"]
Status = Literal["queued", "running", "success", "failed"]
PREFIX_KIND: dict[str, Kind] = {"input/": "training", "weekly/": "scoring", "outcomes/": "monitoring"}
# A monitoring run's figures in its record's ``metrics`` (performance.json has the rest).
MONITORING_METRICS = (
    "scoring_run",
    "outcomes",
    "realized_roc_auc",
    "realized_pr_auc",
    "realized_conversion_rate_targeted",
    "expected_conversion_rate_targeted",
    "promise_inside",
    "incremental_conversion_rate",
    "realized_profit",
    "realized_lift",
    "calibration_error",
    "performance_uri",
    "history_version",
    "history_rows_added",
    "retrain",
    "retrain_reasons",
    "training_run",
    "experiment_id",
    "experiment_status",
)


# A finished scoring run's figures in its record's ``metrics``: what the CLI's JSON line and the API's
# ``details`` carry (None where a run has none: no interval without a backtest, no profit without a value).
SCORING_METRICS = (
    "rows_read",
    "rows_scored",
    "rows_rejected",
    "contacted",
    "targeted",
    "holdout",
    "explore",
    "expected_conversions",
    "expected_conversion_rate",
    "expected_conversion_rate_low",
    "expected_conversion_rate_high",
    "interval_level",
    "base_rate",
    "prior_shift",
    "drift_level",
    "drifted_features",
    "drift_beyond_backtests",
    "drift_message",  # the banner (also among the warnings)
    "expected_profit",
    "break_even_probability",
    "call_cost",
    "conversion_value",
    "experiment",  # in an experiment: each arm's version, customers, calls and expected conversions
)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def kind_of(name: str) -> Kind | None:
    """The kind of run an object in the landing bucket starts, from its folder (None: not ours)."""
    for prefix, kind in PREFIX_KIND.items():
        if name.startswith(prefix):
            return kind
    return None


def run_id_for(bucket: str, name: str, generation: int | str) -> str:
    """The one shared derivation: ``<kind>-<16 hex of sha256(bucket/name#generation)>``."""
    kind = kind_of(name) or "run"
    digest = hashlib.sha256(f"{bucket}/{name}#{int(generation)}".encode()).hexdigest()[:16]
    return f"{kind}-{digest}"


class Source(BaseModel):
    uri: str
    generation: int
    sha256: str | None = None
    size: int | None = None
    filename: str | None = None  # the name the person gave (the object name is sanitised and stamped)


class Step(BaseModel):
    name: str
    status: Status = "queued"
    started: str | None = None
    finished: str | None = None
    shards: int | None = None  # a sharded step: how many shards mark it, and how many have finished
    shards_done: int = 0


class RunError(BaseModel):
    message: str
    step: str | None = None


class RunRecord(BaseModel):
    run_id: str
    kind: Kind
    dataset: str
    source: Source
    status: Status = "queued"
    steps: list[Step] = Field(default_factory=list)
    error: RunError | None = None
    warnings: list[str] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)
    model_name: str | None = None
    model_version: str | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    predictions_uri: str | None = None
    manifest_uri: str | None = None
    mlflow_run_id: str | None = None
    pipeline_run: dict[str, Any] = Field(default_factory=dict)
    created: str = Field(default_factory=now)
    updated: str = Field(default_factory=now)

    @property
    def finished(self) -> bool:
        return self.status in ("success", "failed")

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        step = Step(name=name)
        self.steps.append(step)
        return step


Changes = list[Callable[[RunRecord], None]]  # what a step's body asks to apply with its success


class RunStore:
    """Run records under ``<artifacts_root>/runs/``."""

    def __init__(self, storage: Storage, artifacts_root: str) -> None:
        self.storage = storage
        self.root = join(artifacts_root, "runs")

    def uri(self, run_id: str) -> str:
        return join(self.root, f"{run_id}.json")

    def create(self, record: RunRecord) -> tuple[RunRecord, bool]:
        """Create the record unless it exists; ``(record, created)``. The loser gets the existing run."""
        try:
            self.storage.write_text(
                self.uri(record.run_id),
                record.model_dump_json(indent=2),
                if_generation_match=0,
                content_type="application/json",
            )
        except PreconditionFailed:
            return self.get(record.run_id), False
        return record, True

    def get(self, run_id: str) -> RunRecord:
        try:
            return RunRecord.model_validate_json(self.storage.read_bytes(self.uri(run_id)))
        except StorageError as exc:
            raise NotFoundError(f"no run {run_id!r}") from exc

    def update(self, run_id: str, change: Callable[[RunRecord], None], *, attempts: int = 20) -> RunRecord:
        """Apply ``change`` to the latest record and write it back only if nobody wrote in between."""
        for attempt in range(attempts):
            data, generation = self.storage.read_with_generation(self.uri(run_id))
            record = RunRecord.model_validate_json(data)
            change(record)
            record.updated = now()
            try:
                self.storage.write_text(
                    self.uri(run_id),
                    record.model_dump_json(indent=2),
                    if_generation_match=generation,
                    content_type="application/json",
                )
                return record
            except PreconditionFailed:
                time.sleep(0.02 * (attempt + 1))
        raise RemarketingError(f"run {run_id}: could not update the record after {attempts} attempts")

    def list(self) -> list[RunRecord]:
        """Every readable record, newest first. One that cannot be read (written by something else, or
        removed meanwhile) is left out and logged: it must not hide every other run."""
        records = []
        for uri in self.storage.list(self.root + "/"):
            if not uri.endswith(".json"):
                continue
            try:
                records.append(RunRecord.model_validate_json(self.storage.read_bytes(uri)))
            except (StorageError, ValueError) as exc:
                log.warning("skipped %s: not a readable run record (%s)", uri, str(exc).splitlines()[0])
        return sorted(records, key=lambda r: r.created, reverse=True)

    # --- steps ---------------------------------------------------------------------------------
    @contextmanager
    def step(self, run_id: str, name: str, shards: int = 1) -> Iterator[Changes]:
        """Mark ``name`` running, then success; on an error mark the step and the run failed with the
        error's message, and re-raise. Changes the body appends to the yielded list are applied in the
        same write as the success (so a reader never sees the step done without what it said), or as
        the failure when the body appended them before failing.

        With ``shards`` > 1 this is one of the shards of a sharded step: the step runs from the first
        shard's start and succeeds with the last shard's success; one failed shard fails it."""

        def start(r: RunRecord) -> None:
            step = r.step(name)
            if shards > 1 and step.shards == shards and step.status in ("running", "failed"):
                pass  # another shard started it
            else:
                step.status, step.started, step.finished = "running", now(), None
                step.shards, step.shards_done = (shards, 0) if shards > 1 else (None, 0)
            if r.status == "queued":  # never un-fail a run (parallel tasks may still be starting)
                r.status = "running"

        self.update(run_id, start)
        after: Changes = []
        try:
            yield after
        except BaseException as exc:
            # Our errors are written for people; anything else also says what kind of error it was.
            message = str(exc) if isinstance(exc, RemarketingError) else f"{type(exc).__name__}: {exc}"

            def fail(r: RunRecord) -> None:
                for change in after:  # what the step still said as it failed (RemarketingError.found)
                    change(r)
                step = r.step(name)
                step.status, step.finished = "failed", now()
                r.status = "failed"
                r.error = RunError(message=message, step=name)

            self.update(run_id, fail)
            raise
        else:

            def done(r: RunRecord) -> None:
                step = r.step(name)
                if step.shards:
                    step.shards_done += 1
                if step.status != "failed" and step.shards_done >= (step.shards or 0):
                    step.status, step.finished = "success", now()
                for change in after:
                    change(r)

            self.update(run_id, done)

    def finish(self, run_id: str, *, warnings: Sequence[str] = (), **fields: Any) -> RunRecord:
        """Close the run (one write, so a reader never sees it finished without its last warnings)."""

        def change(r: RunRecord) -> None:
            for key, value in fields.items():
                setattr(r, key, value)
            r.warnings.extend(warnings)
            if r.status != "failed":
                r.status = "success"

        return self.update(run_id, change)

    def fail(self, run_id: str, message: str, step: str | None = None) -> RunRecord:
        """Mark a run failed from outside its steps (a dead process, a launch error)."""

        def change(r: RunRecord) -> None:
            if r.finished:
                return
            r.status = "failed"
            r.error = RunError(message=message, step=step)
            for s in r.steps:
                if s.status == "running":
                    s.status, s.finished = "failed", now()

        return self.update(run_id, change)


def summary(record: RunRecord) -> dict[str, Any]:
    """The run record's summary: the CLI's last stdout line."""
    return json.loads(record.model_dump_json(exclude={"steps"}))


def outcome(
    settings: Any, record: RunRecord, *, storage: Storage | None = None, mint: bool = True
) -> dict[str, Any]:
    """What a run came to, in one shape for the CLI's JSON line and the API's ``details``: a scoring run's
    figures (:data:`SCORING_METRICS`) and the predictions URL minted now (a URL is never stored) or why there
    is none; a training run's promotion and model address."""
    out: dict[str, Any] = {"model_version": record.model_version}
    if record.kind == "scoring":
        out.update({key: record.metrics.get(key) for key in SCORING_METRICS})
        out["predictions_url"] = None
        if mint and record.status == "success" and record.predictions_uri:
            from remarketing.urls import mint as mint_url

            try:
                signed = mint_url(settings, record.predictions_uri, storage=storage)
                out["predictions_url"], out["predictions_url_expires"] = signed.url, signed.expires
            except RemarketingError as exc:  # the run stays a success; say why there is no link
                out["predictions_url_error"] = str(exc)
    elif record.kind == "monitoring":
        out.update({key: record.metrics.get(key) for key in MONITORING_METRICS})
    else:
        out["promoted"] = record.metrics.get("promoted")
        if record.model_name and record.model_version:
            out["model_uri"] = settings.bundle_uri(record.model_name, record.model_version)
    return out
