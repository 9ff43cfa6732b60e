"""The model server's own series: customers scored and explained, their scores, and failed requests by
cause, per model version (read from prometheus_client's registry, which KServe serves on /metrics)."""

from __future__ import annotations

import numpy as np
from prometheus_client import REGISTRY, CollectorRegistry, Histogram

from serving.metrics import SCORE_BUCKETS, observe_many

from .conftest import MODEL

PREDICT = f"/v1/models/{MODEL}:predict"
EXPLAIN = f"/v1/models/{MODEL}:explain"
LABELS = {"model_name": MODEL, "model_version": "1"}


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {**LABELS, **labels}) or 0.0


def test_observe_many_writes_what_observe_writes_value_by_value():
    values = np.random.default_rng(7).random(1000)
    values[:3] = (0.0, 0.05, 1.0)  # on the bounds
    one, many = CollectorRegistry(), CollectorRegistry()
    by_one = Histogram("s", "", buckets=SCORE_BUCKETS, registry=one)
    for v in values:
        by_one.observe(float(v))
    observe_many(Histogram("s", "", buckets=SCORE_BUCKETS, registry=many), values)

    def written(registry: CollectorRegistry) -> dict[str, float]:
        return {f"{s.name}{s.labels}": s.value for m in registry.collect() for s in m.samples}

    expected, got = written(one), written(many)
    for key in (k for k in expected if "_bucket" in k or "_count" in k):
        assert got[key] == expected[key], key
    assert abs(got["s_sum{}"] - expected["s_sum{}"]) < 1e-9


def test_predictions_and_explanations_are_counted_with_their_scores(kserve_app, records):
    before = {
        "predicted": value("remarketing_model_predictions_total"),
        "explained": value("remarketing_model_explanations_total"),
        "scores": value("remarketing_model_score_count"),
    }
    assert kserve_app.post(PREDICT, json={"instances": records[:7]}).status_code == 200
    assert kserve_app.post(EXPLAIN, json={"instances": records[:2]}).status_code == 200
    # the batch path explains: its answers carry the scores, counted as predictions too
    assert value("remarketing_model_predictions_total") == before["predicted"] + 9
    assert value("remarketing_model_explanations_total") == before["explained"] + 2
    assert value("remarketing_model_score_count") == before["scores"] + 9
    assert value("remarketing_model_score_bucket", le="1.0") == value("remarketing_model_score_count")


def test_a_bad_request_is_an_invalid_input_error_and_scores_nothing(kserve_app, records):
    errors = "remarketing_model_request_errors_total"
    before = (
        value(errors, verb="predict", cause="invalid_input"),
        value("remarketing_model_predictions_total"),
    )
    rows = [dict(records[0], age="forty")]
    assert kserve_app.post(PREDICT, json={"instances": rows}).status_code == 400
    assert value(errors, verb="predict", cause="invalid_input") == before[0] + 1
    assert value("remarketing_model_predictions_total") == before[1]
    assert value(errors, verb="predict", cause="internal") == 0  # present, at zero


def test_kserve_serves_them_on_its_metrics_route(kserve_app, records):
    kserve_app.post(PREDICT, json={"instances": records[:1]})
    text = kserve_app.get("/metrics").text
    assert (
        'remarketing_model_predictions_total{model_name="remarketing-bank-marketing",model_version="1"}'
        in text
    )
    assert "request_predict_seconds_bucket" in text


def test_a_score_that_is_not_a_number_is_left_out_not_a_failed_request():
    histogram = Histogram("s", "", buckets=SCORE_BUCKETS, registry=CollectorRegistry())
    observe_many(histogram, np.asarray([0.2, np.nan, np.inf, 0.7]))
    counts = {s.name: s.value for m in histogram.collect() for s in m.samples if s.name == "s_count"}
    assert counts == {"s_count": 2.0}
