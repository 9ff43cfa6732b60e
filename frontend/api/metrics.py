"""Prometheus metrics of the API (prometheus-client), one registry per app so tests can build many."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


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
            "remarketing_api_uploads", "Uploads by outcome (HTTP status)", ["outcome"], registry=self.registry
        )
        self.upload_bytes = Counter(
            "remarketing_api_upload_bytes", "Bytes of accepted uploads", registry=self.registry
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method=method, route=route, status=str(status)).inc()
        self.latency.labels(method=method, route=route).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
