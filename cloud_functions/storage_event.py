"""The three layers of a storage-triggered function: CloudEvent -> typed object -> ``launch()``.

Storage triggers fire for every object of the bucket, at least once: the function ignores what is not
its own (with a log line) and ``launch()`` turns a redelivery into the existing run.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator
from werkzeug.exceptions import BadRequest

from remarketing.errors import RemarketingError, Unavailable
from remarketing.settings import Settings

log = logging.getLogger("remarketing.functions")
FINALIZED = "google.cloud.storage.object.v1.finalized"


class StorageObject(BaseModel):
    """The data of a ``google.cloud.storage.object.v1.finalized`` event (the fields used here)."""

    bucket: str = Field(min_length=1)
    name: str = Field(min_length=1)
    generation: int = Field(gt=0)
    size: int = Field(ge=0)
    content_type: str | None = Field(default=None, alias="contentType")
    metadata: dict[str, str] = Field(default_factory=dict)

    @field_validator("metadata", mode="before")
    @classmethod
    def _no_metadata(cls, value: Any) -> Any:
        return value or {}


def parse(event: Any) -> StorageObject:
    """The typed object, or 400 naming what is wrong with the event."""
    if event["type"] != FINALIZED:
        raise BadRequest(f"unexpected event type {event['type']!r}: expected {FINALIZED}")
    data = event.data
    if not isinstance(data, dict):
        raise BadRequest("the event's data is not a JSON object describing a storage object")
    try:
        return StorageObject.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise BadRequest(f"the event's data is not a storage object: {problems}") from None


def ignored_because(obj: StorageObject, prefix: str) -> str | None:
    """Why ``obj`` is not this function's to launch, or None."""
    name = obj.name
    leaf = name.rsplit("/", 1)[-1]
    if not name.startswith(prefix):
        return f"not under {prefix}"
    if name.endswith("/"):
        return "a folder object"
    if leaf.startswith((".", "~$", "_")) or leaf.endswith((".tmp", ".part")) or "/_temporary/" in name:
        return "a temporary object"
    if not leaf.lower().endswith(".csv"):
        return "not a .csv file"
    if obj.size == 0:
        return "a zero-byte object"
    return None


def handle(
    event: Any, prefix: str, settings: Settings | None = None, *, function: str = ""
) -> dict[str, Any] | None:
    """Parse, filter, launch. Returns what was launched (or found), None when ignored. ``function``: the
    name its counts are kept under (docs/observability.md)."""
    from cloud_functions import metrics

    metrics.EVENTS.labels(function).inc()
    try:
        obj = parse(event)
    except BadRequest:
        metrics.IGNORED.labels(function, "malformed").inc()
        raise
    why = ignored_because(obj, prefix)
    if why:
        log.info("ignored gs://%s/%s#%s: %s", obj.bucket, obj.name, obj.generation, why)
        metrics.IGNORED.labels(function, metrics.reason_label(why)).inc()
        return None
    from pipelines.launchers import launcher_for
    from remarketing.launch import launch

    settings = settings or Settings()
    try:
        launched = launch(
            obj.bucket, obj.name, obj.generation, settings=settings, launcher=launcher_for(settings)
        )
    except Unavailable as exc:
        # Storage or Kubeflow Pipelines out of reach: the run stays queued (remarketing.launch), and the
        # error makes the trigger deliver the event again, which launches it.
        log.warning("not launched yet gs://%s/%s#%s: %s", obj.bucket, obj.name, obj.generation, exc)
        raise
    except RemarketingError as exc:
        # A generation that no longer exists (replaced before delivery) cannot be launched: say so and
        # acknowledge, so the trigger does not retry forever.
        log.warning("not launched gs://%s/%s#%s: %s", obj.bucket, obj.name, obj.generation, exc)
        metrics.IGNORED.labels(function, "not_launchable").inc()
        return None
    if launched.created:
        metrics.LAUNCHED.labels(function, launched.record.kind).inc()
    else:
        metrics.DEDUPLICATED.labels(function).inc()
    verb = "launched" if launched.created else "already launched"
    log.info(
        "%s run %s for gs://%s/%s#%s", verb, launched.record.run_id, obj.bucket, obj.name, obj.generation
    )
    return {"run_id": launched.record.run_id, "created": launched.created}
