"""``launch()``: the one entry point that starts a run for an object generation in the landing bucket.

Called by the Cloud Functions and the CLI alike, each with the launcher of its mode (the pipelines
adapter's local queue or Kubeflow client: :class:`remarketing.ports.Launcher`). It creates
``runs/<run_id>.json`` create-only; a caller that loses the race gets the existing run back and launches
nothing. A launch that cannot reach what runs pipelines (:class:`Unavailable`) leaves the run queued
for the next caller (the trigger's redelivery) instead of failing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from remarketing.errors import RemarketingError, Unavailable
from remarketing.parameters import PARAMETERS
from remarketing.ports import Launcher
from remarketing.runs import RunRecord, RunStore, Source, kind_of, now, run_id_for
from remarketing.settings import Settings
from remarketing.storage import Storage

# Object metadata keys that carry per-upload parameters (an outcomes file: the scoring run it belongs to).
PARAM_KEYS = (*PARAMETERS, "scoring_run", "launched_because", "history_version")


@dataclass(frozen=True)
class Launched:
    record: RunRecord
    created: bool  # False: the run already existed (a redelivered event or a second caller)


def launch(
    bucket: str,
    name: str,
    generation: int | str,
    *,
    settings: Settings,
    launcher: Launcher,
    dataset: str | None = None,
    params: dict[str, Any] | None = None,
    storage: Storage | None = None,
) -> Launched:
    kind = kind_of(name)
    if kind is None:
        raise RemarketingError(
            f"gs://{bucket}/{name} is not under input/, weekly/ or outcomes/: nothing to launch"
        )
    storage = storage or Storage(settings)
    uri = f"gs://{bucket}/{name}"
    info = storage.stat(uri, generation=int(generation))  # this upload's metadata, not a later one's
    metadata = info.metadata
    run_params = {k: metadata[k] for k in PARAM_KEYS if metadata.get(k) not in (None, "")}
    run_params.update({k: v for k, v in (params or {}).items() if v is not None})
    record = RunRecord(
        run_id=run_id_for(bucket, name, generation),
        kind=kind,
        dataset=dataset or metadata.get("dataset") or settings.default_dataset,
        source=Source(uri=uri, generation=int(generation), size=info.size, filename=metadata.get("filename")),
        params=run_params,
        pipeline_run={"claimed": now()},
    )
    store = RunStore(storage, settings.artifacts_root)
    record, created = store.create(record)
    if not created and _interrupted(record):
        # The caller that created it died before submitting (the trigger then redelivers): claim it.
        created = _claim(store, record.run_id)
        record = store.get(record.run_id)
    if created:
        try:
            run = launcher.submit(record, settings)
        except Unavailable as exc:
            # What runs pipelines is out of reach: a failed record would answer the trigger's redelivery
            # "already launched" for good. The run stays queued, its claim given back, and the caller
            # raises, so the trigger delivers the event again and that delivery launches it.
            reason = str(exc)
            store.update(record.run_id, lambda r: _release(r, reason))
            raise
        except Exception as exc:
            store.fail(record.run_id, f"the pipeline could not be launched: {exc}", step="launch")
            raise
        record = store.update(record.run_id, lambda r: r.pipeline_run.update(run))
    return Launched(record, created)


CLAIM_AFTER_SECONDS = 60.0


def _release(record: RunRecord, reason: str) -> None:
    record.pipeline_run = {"released": now(), "not_launched": reason}


def _interrupted(record: RunRecord) -> bool:
    """Claimed by a caller that never submitted it (a submission records its runner), or given back by
    one that could not reach what runs pipelines."""
    claimed = record.pipeline_run.get("claimed")
    if record.status != "queued" or "runner" in record.pipeline_run:
        return False
    if "released" in record.pipeline_run:
        return True
    if not claimed:
        return False
    return (datetime.now(UTC) - datetime.fromisoformat(claimed)).total_seconds() > CLAIM_AFTER_SECONDS


def _claim(store: RunStore, run_id: str) -> bool:
    """Take over a stale claim, unless another caller did first (compare-and-swap on the record)."""
    claimed = False

    def claim(r: RunRecord) -> None:
        nonlocal claimed
        claimed = _interrupted(r)
        if claimed:
            r.pipeline_run = {"claimed": now()}

    store.update(run_id, claim)
    return claimed
