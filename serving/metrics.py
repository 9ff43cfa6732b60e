"""What a model server did, by model version, on KServe's own ``/metrics`` (its global registry).

KServe exports only latency histograms (``request_predict_seconds`` ...); these say how many customers were
scored and explained, what the scores looked like, and which requests failed and why."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from kserve.errors import InvalidInput
from prometheus_client import Counter, Histogram

LABELS = ("model_name", "model_version")
SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))  # 0.05 .. 1.0

PREDICTIONS = Counter("remarketing_model_predictions", "Customers scored", LABELS)
EXPLANATIONS = Counter("remarketing_model_explanations", "Customers explained", LABELS)
SCORES = Histogram("remarketing_model_score", "Scores returned", LABELS, buckets=SCORE_BUCKETS)
ERRORS = Counter(
    "remarketing_model_request_errors",
    "Requests not answered with a score, by verb and cause (invalid_input: the request's fault)",
    (*LABELS, "verb", "cause"),
)


class ModelMetrics:
    """The series of one served model version (label values resolved once, not per request)."""

    def __init__(self, model_name: str, model_version: str | None) -> None:
        labels = {"model_name": model_name, "model_version": model_version or "unknown"}
        self.labels = labels
        self.predictions = PREDICTIONS.labels(**labels)
        self.explanations = EXPLANATIONS.labels(**labels)
        self.scores = SCORES.labels(**labels)
        for verb in ("predict", "explain"):  # present at zero, so rates exist before the first error
            for cause in ("invalid_input", "internal"):
                ERRORS.labels(**labels, verb=verb, cause=cause)

    def scored(self, probabilities: np.ndarray) -> None:
        self.predictions.inc(len(probabilities))
        observe_many(self.scores, probabilities)

    def explained(self, rows: int) -> None:
        self.explanations.inc(rows)

    @contextmanager
    def counting_errors(self, verb: str) -> Iterator[None]:
        try:
            yield
        except InvalidInput:
            ERRORS.labels(**self.labels, verb=verb, cause="invalid_input").inc()
            raise
        except Exception:
            ERRORS.labels(**self.labels, verb=verb, cause="internal").inc()
            raise


def observe_many(histogram: Histogram, values: np.ndarray) -> None:
    """``histogram.observe(v)`` for every value, with one update per bucket instead of per value (a 10k-row
    batch costs microseconds). It writes prometheus_client's per-bucket values as ``observe`` does (the
    first bucket whose bound holds the value); tests/serving checks it against ``observe`` for the pinned
    version."""
    values = values[np.isfinite(values)]  # a NaN score must not fail the request that returns it
    if not len(values):
        return
    bounds = np.asarray(histogram._upper_bounds)
    counts = np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(bounds))
    for bucket, count in zip(histogram._buckets, counts, strict=True):
        if count:
            bucket.inc(int(count))
    histogram._sum.inc(float(np.sum(values)))
