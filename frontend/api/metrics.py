"""Prometheus metrics of the API (prometheus-client), one registry per app so tests can build many."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from remarketing import uploads
from remarketing.errors import (
    Conflict,
    DataValidationError,
    NotFoundError,
    ParameterError,
    PreconditionFailed,
    SpecError,
    StorageError,
    Unavailable,
)

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Why an upload was refused, as a bounded label (most specific class first).
REJECTIONS: list[tuple[type[Exception], str]] = [
    (uploads.PayloadTooLarge, "too_large"),
    (uploads.UnsupportedFile, "not_csv"),
    (DataValidationError, "invalid_file"),
    (ParameterError, "bad_parameters"),
    (SpecError, "unknown_dataset"),
    (NotFoundError, "not_found"),
    (PreconditionFailed, "conflict"),
    (Conflict, "conflict"),
    (Unavailable, "unavailable"),
    (StorageError, "storage_error"),
]
UPLOAD_KINDS = ("weekly", "outcomes")
DOWNLOADS = ("served", "incomplete", "refused", "gone")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "remarketing_api_requests",
            "HTTP requests by route template and status code",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "remarketing_api_request_duration_seconds",
            "HTTP request duration by route template",
            ["method", "route"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.uploads = Counter(
            "remarketing_api_uploads",
            "Uploads by kind, outcome and the reason of a refusal",
            ["kind", "outcome", "reason"],
            registry=self.registry,
        )
        self.upload_bytes = Counter(
            "remarketing_api_upload_bytes", "Bytes of accepted uploads", registry=self.registry
        )
        self.downloads = Counter(
            "remarketing_api_predictions_downloads",
            "Predictions links followed, by outcome (refused: expired or changed; gone: file replaced)",
            ["outcome"],
            registry=self.registry,
        )
        for kind in UPLOAD_KINDS:  # every series at zero, so rates exist before the first upload
            self.uploads.labels(kind, "accepted", "none")
            for reason in {r for _, r in REJECTIONS} | {"other"}:
                self.uploads.labels(kind, "rejected", reason)
        for outcome in DOWNLOADS:
            self.downloads.labels(outcome)

    def accepted(self, kind: str, size: int) -> None:
        self.uploads.labels(kind, "accepted", "none").inc()
        self.upload_bytes.inc(size)

    def rejected(self, kind: str, exc: Exception) -> None:
        reason = next((label for cls, label in REJECTIONS if isinstance(exc, cls)), "other")
        self.uploads.labels(kind, "rejected", reason).inc()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method=method, route=route, status=str(status)).inc()
        self.latency.labels(method=method, route=route).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
