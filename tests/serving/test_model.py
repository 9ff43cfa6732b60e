"""The predictor in-process, through KServe's own FastAPI app: V1 predict and explain, V2 infer, and every
malformed request answered 400 (naming the row and the column where there is one), never 500."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logit

from .conftest import MODEL, SPEC, build_bundle, v2_inputs

PREDICT = f"/v1/models/{MODEL}:predict"
EXPLAIN = f"/v1/models/{MODEL}:explain"
INFER = f"/v2/models/{MODEL}/infer"


def test_model_is_ready_under_its_dataset_name(kserve_app):
    response = kserve_app.get(f"/v1/models/{MODEL}")
    assert response.status_code == 200 and response.json() == {"name": MODEL, "ready": True}


def test_v1_predict_returns_the_models_probabilities(kserve_app, records, test_frame):
    response = kserve_app.post(PREDICT, json={"instances": records})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    expected = kserve_app.model.model.predict_proba(test_frame)
    np.testing.assert_allclose(predictions, expected, rtol=0, atol=1e-12)
    assert all(0 < p < 1 for p in predictions)


def test_v2_infer_one_input_per_column(kserve_app, records, test_frame):
    response = kserve_app.post(INFER, json={"inputs": v2_inputs(records)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body["id"], str) and body["id"]  # generated when the request has none
    assert body["model_name"] == MODEL and body["model_version"] == "1"
    (output,) = body["outputs"]
    assert output["name"] == "probability" and output["datatype"] == "FP64"
    assert output["shape"] == [len(records)]
    np.testing.assert_allclose(output["data"], kserve_app.model.model.predict_proba(test_frame), atol=1e-12)


def test_v2_keeps_the_request_id_and_accepts_n_by_1_shapes(kserve_app, records):
    inputs = v2_inputs(records[:3])
    for tensor in inputs:
        tensor["shape"] = [3, 1]
        tensor["data"] = [[v] for v in tensor["data"]]
    inputs[0]["datatype"] = "FP64"
    response = kserve_app.post(INFER, json={"id": "chunk-7", "inputs": inputs})
    assert response.status_code == 200, response.text
    assert response.json()["id"] == "chunk-7"
    assert len(response.json()["outputs"][0]["data"]) == 3


def test_v1_explain_is_additive_with_three_reasons(kserve_app, records):
    response = kserve_app.post(EXPLAIN, json={"instances": records[:5]})
    assert response.status_code == 200, response.text
    explanations = response.json()["explanations"]
    assert len(explanations) == 5
    for item in explanations:
        assert set(item) == {"probability", "base_value", "contributions", "reasons"}
        assert list(item["contributions"]) == SPEC.feature_names
        total = sum(item["contributions"].values()) + item["base_value"]
        assert total == pytest.approx(logit(item["probability"]), abs=1e-6)
        assert 1 <= len(item["reasons"]) <= 3
        assert all(set(r) == {"field", "value", "contribution"} for r in item["reasons"])
        assert all(
            item["contributions"][r["field"]] == pytest.approx(r["contribution"]) for r in item["reasons"]
        )
        sizes = [abs(r["contribution"]) for r in item["reasons"]]
        assert sizes == sorted(sizes, reverse=True)


def _bad(records, row, **changes):
    rows = [dict(r) for r in records[:3]]
    for key, value in changes.items():
        if value is ...:
            del rows[row][key]
        else:
            rows[row][key] = value
    return {"instances": rows}


V1_ROW_ERRORS = {
    "missing column": (lambda r: _bad(r, 1, age=...), "row 1, column 'age'"),
    "text in a numeric column": (lambda r: _bad(r, 2, balance="lots"), "row 2, column 'balance'"),
    "null": (lambda r: _bad(r, 0, job=None), "row 0, column 'job'"),
    "empty string": (lambda r: _bad(r, 1, pdays=""), "row 1, column 'pdays'"),
    "not finite": (lambda r: _bad(r, 0, campaign="inf"), "row 0, column 'campaign'"),
    "a list in a cell": (lambda r: _bad(r, 2, age=[1, 2]), "row 2, column 'age'"),
    "a row that is not an object": (lambda r: {"instances": [r[0], 42]}, "row 1"),
    "empty instances": (lambda r: {"instances": []}, "non-empty"),
}


@pytest.mark.parametrize("case", list(V1_ROW_ERRORS))
def test_v1_malformed_rows_are_400_naming_row_and_column(kserve_app, records, case):
    make, expected = V1_ROW_ERRORS[case]
    for path in (PREDICT, EXPLAIN):
        response = kserve_app.post(path, json=make(records))
        assert response.status_code == 400, response.text
        assert expected in response.json()["error"]


@pytest.mark.parametrize(
    "content, content_type",
    [
        (b'[{"age": 30}]', "application/json"),  # a list, not {"instances": ...}
        (b'"hello"', "application/json"),
        (b'{"rows": []}', "application/json"),  # no instances key
        (b'{"instances": {"age": 30}}', "application/json"),  # instances not a list
        (b"{not json", "application/json"),
        (b"age,job\n30,admin.", "text/csv"),
        (b"", "application/json"),
    ],
)
def test_v1_malformed_bodies_are_400(kserve_app, content, content_type):
    for path in (PREDICT, EXPLAIN):
        response = kserve_app.post(path, content=content, headers={"Content-Type": content_type})
        assert response.status_code == 400, (path, response.text)
        assert response.json()["error"]


def _v2_text_in_numeric(r):
    inputs = v2_inputs(r[:3])
    inputs[0]["data"][2] = "old"
    return inputs


def _v2_null(r):
    inputs = v2_inputs(r[:3])
    inputs[1]["data"][1] = None
    return inputs


def _v2_length(r):
    inputs = v2_inputs(r[:3])
    inputs[3]["data"] = inputs[3]["data"][:2]
    inputs[3]["shape"] = [2]
    return inputs


def _v2_shape(r):
    inputs = v2_inputs(r[:3])
    inputs[5]["shape"] = [4]
    return inputs


def _v2_matrix(r):
    inputs = v2_inputs(r[:2])
    inputs[0]["shape"] = [1, 2]
    return inputs


V2_ERRORS = {
    "text in a numeric input": (_v2_text_in_numeric, "input 'age': row 2"),
    "null": (_v2_null, "row 1, column 'job'"),
    "missing input": (lambda r: v2_inputs(r[:3])[1:], "column 'age' is missing"),
    "inputs of different lengths": (_v2_length, "'education'"),
    "shape and data disagree": (_v2_shape, "input 'balance'"),
    "not one value per row": (_v2_matrix, "column 'age' must hold one value per row"),
    "an input twice": (lambda r: v2_inputs(r[:3]) + v2_inputs(r[:3])[:1], "input 'age' is given twice"),
    "no inputs": (lambda r: [], "no inputs"),
}


@pytest.mark.parametrize("case", list(V2_ERRORS))
def test_v2_malformed_requests_are_400(kserve_app, records, case):
    make, expected = V2_ERRORS[case]
    response = kserve_app.post(INFER, json={"inputs": make(records)})
    assert response.status_code == 400, response.text
    assert expected in response.json()["error"]


def test_v2_bodies_outside_the_protocol_are_client_errors(kserve_app):
    # KServe validates the V2 schema itself (FastAPI answers 422); never a 500.
    for content in (b'{"inputs": "x"}', b"[1, 2]", b"{not json"):
        response = kserve_app.post(INFER, content=content, headers={"Content-Type": "application/json"})
        assert 400 <= response.status_code < 500, response.text


def test_an_unknown_model_is_404(kserve_app, records):
    response = kserve_app.post("/v1/models/nope:predict", json={"instances": records[:1]})
    assert response.status_code == 404


@pytest.mark.parametrize("family", ["hgb", "mlp"])
def test_tree_and_neural_models_explain_through_the_server(kserve_app, splits, records, tmp_path, family):
    from serving.model import RemarketingModel

    model = RemarketingModel(family, str(build_bundle(family, splits, tmp_path / family)), version="1")
    model.load()
    kserve_app.server.register_model(model)
    response = kserve_app.post(f"/v1/models/{family}:explain", json={"instances": records[:4]})
    assert response.status_code == 200, response.text
    explanations = response.json()["explanations"]
    predictions = kserve_app.post(f"/v1/models/{family}:predict", json={"instances": records[:4]})
    assert [e["probability"] for e in explanations] == predictions.json()["predictions"]
    for item in explanations:
        total = sum(item["contributions"].values()) + item["base_value"]
        assert total == pytest.approx(logit(item["probability"]), abs=1e-3)
        assert item["reasons"]
