"""The columnar V2 path through KServe's own app: metadata a generic client can build a request from, the
explanation as one tensor per output in JSON and in the binary extension (equal to the model in-process to
1e-9), and bodies that do not add up answered 400 naming the input."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest

from remarketing import tensors
from remarketing.reasons import reason_columns

from .conftest import MODEL, SPEC

INFER = f"/v2/models/{MODEL}/infer"
CONTRIBUTIONS = [f"contribution_{name}" for name in SPEC.feature_names]
REASONS = [f"reason_{k}_{part}" for k in (1, 2, 3) for part in ("field", "value", "contribution")]


def columns(frame, metadata):
    """One array per input, typed as the model's metadata says."""
    types = {i["name"]: i["datatype"] for i in metadata["inputs"]}
    return {
        name: frame[name].to_numpy(dtype="float64" if kind == "FP64" else object)
        for name, kind in types.items()
    }


@pytest.fixture(scope="module")
def metadata(kserve_app):
    response = kserve_app.get(f"/v2/models/{MODEL}")
    assert response.status_code == 200, response.text
    return response.json()


def test_metadata_lists_every_input_and_output(metadata):
    assert [i["name"] for i in metadata["inputs"]] == SPEC.feature_names
    kinds = {i["name"]: i["datatype"] for i in metadata["inputs"]}
    assert kinds["age"] == "FP64" and kinds["job"] == "BYTES"
    assert all(i["shape"] == [-1] for i in metadata["inputs"])
    outputs = {o["name"]: o["datatype"] for o in metadata["outputs"]}
    assert outputs["probability"] == "FP64" and outputs["base_value"] == "FP64"
    assert set(CONTRIBUTIONS + REASONS) <= set(outputs)
    assert outputs["reason_1_field"] == "BYTES"


def expected(kserve_app, frame):
    model = kserve_app.model.model
    rows = frame[SPEC.feature_names]
    explanation = model.explain(rows)
    out = {"probability": model.predict_proba(rows)}
    out.update({f"contribution_{c}": explanation.contributions[c].to_numpy() for c in SPEC.feature_names})
    out.update(reason_columns(explanation.contributions, rows))
    return out, explanation.base_value


def assert_equal_to_in_process(kserve_app, frame, got):
    want, base = expected(kserve_app, frame)
    np.testing.assert_allclose(got["base_value"], [base], rtol=0, atol=1e-9)
    for name, values in want.items():
        if values.dtype == object:
            assert got[name].tolist() == values.tolist(), name
        else:
            np.testing.assert_allclose(got[name], values, rtol=0, atol=1e-9, err_msg=name)


def test_json_explain_equals_the_model_in_process(kserve_app, metadata, test_frame):
    wanted = ["probability", "base_value", *CONTRIBUTIONS, *REASONS]
    body, length = tensors.write_request(columns(test_frame, metadata), outputs=wanted, request_id="j1")
    assert length is None  # all JSON
    response = kserve_app.post(INFER, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert tensors.HEADER not in response.headers
    answer = response.json()
    assert answer["id"] == "j1" and answer["model_version"] == "1"
    assert [o["name"] for o in answer["outputs"]] == wanted
    got = tensors.read_response(response.content).tensors
    assert_equal_to_in_process(kserve_app, test_frame, got)


def test_binary_explain_equals_the_model_in_process(kserve_app, metadata, test_frame):
    inputs = columns(test_frame, metadata)
    wanted = ["probability", "base_value", *CONTRIBUTIONS, *REASONS]
    body, length = tensors.write_request(
        inputs, outputs=wanted, binary_inputs=set(inputs), binary_outputs=set(wanted)
    )
    response = kserve_app.post(
        INFER,
        content=body,
        headers={"Content-Type": "application/octet-stream", tensors.HEADER: str(length)},
    )
    assert response.status_code == 200, response.text
    json_length = int(response.headers[tensors.HEADER])
    header = orjson.loads(response.content[:json_length])
    assert all("binary_data_size" in o["parameters"] for o in header["outputs"])
    answer = tensors.read_response(response.content, json_length)
    assert answer.model_version == "1"
    assert_equal_to_in_process(kserve_app, test_frame, answer.tensors)


def test_probability_alone_when_no_output_is_asked(kserve_app, metadata, test_frame):
    body, length = tensors.write_request(columns(test_frame, metadata), binary_inputs={"age", "job"})
    response = kserve_app.post(
        INFER, content=body, headers={"Content-Type": "application/octet-stream", tensors.HEADER: str(length)}
    )
    assert response.status_code == 200, response.text
    (output,) = response.json()["outputs"]
    assert output["name"] == "probability"
    np.testing.assert_allclose(output["data"], kserve_app.model.model.predict_proba(test_frame), atol=1e-12)


def _binary_request(metadata, frame, **change):
    """A binary body with the age tensor's declared size or the body itself altered."""
    inputs = columns(frame.head(3), metadata)
    body, length = tensors.write_request(inputs, binary_inputs={"age"})
    header = orjson.loads(body[:length])
    age = next(e for e in header["inputs"] if e["name"] == "age")
    raw = body[length:]
    if "size" in change:
        age["parameters"]["binary_data_size"] = change["size"]
    if "datatype" in change:
        age["datatype"] = change["datatype"]
    head = orjson.dumps(header)
    return head + raw + change.get("extra", b""), len(head)


BAD_BINARY = {
    "declared size shorter than the values": ({"size": 16}, "input 'age': binary_data_size is 16 bytes"),
    "declared size past the body": ({"size": 40}, "input 'age': binary_data_size says 40 bytes"),
    "bytes after the tensors": ({"extra": b"\0" * 8}, "8 bytes after the tensors"),
    "unknown datatype": ({"datatype": "FLOAT64"}, "input 'age': unknown datatype 'FLOAT64'"),
    "a datatype of another size": ({"datatype": "FP32"}, "input 'age': binary_data_size is 24 bytes"),
}


@pytest.mark.parametrize("case", list(BAD_BINARY))
def test_binary_bodies_that_do_not_add_up_are_400_naming_the_input(kserve_app, metadata, test_frame, case):
    change, expected_error = BAD_BINARY[case]
    body, length = _binary_request(metadata, test_frame, **change)
    response = kserve_app.post(
        INFER, content=body, headers={"Content-Type": "application/octet-stream", tensors.HEADER: str(length)}
    )
    assert response.status_code == 400, response.text
    assert expected_error in response.json()["error"]


def test_a_header_length_past_the_body_is_400(kserve_app, metadata, test_frame):
    body, length = tensors.write_request(columns(test_frame, metadata), binary_inputs={"age"})
    response = kserve_app.post(
        INFER, content=body, headers={"Content-Type": "application/octet-stream", tensors.HEADER: "99999999"}
    )
    assert response.status_code == 400 and tensors.HEADER in response.json()["error"]


def test_an_unknown_output_is_400_listing_the_outputs(kserve_app, metadata, test_frame):
    body, _ = tensors.write_request(columns(test_frame, metadata), outputs=["probability", "shap_age"])
    response = kserve_app.post(INFER, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "unknown output 'shap_age'" in response.json()["error"]
    assert "contribution_age" in response.json()["error"]


def test_the_kserve_byte_encoding_matches_ours():
    from kserve.protocol.infer_type import serialize_byte_tensor

    values = np.array(["admin.", "", "técnico", "=1+1"], dtype=object)
    assert tensors.encode_bytes(values) == serialize_byte_tensor(values).item()


@pytest.mark.parametrize(
    "entry, expected_error",
    [
        ({"datatype": "UINT8", "data": [1, 300, 2]}, "input 'age': row 1: 300 is not of datatype UINT8"),
        (
            {"datatype": "INT64", "data": [1, 2**64, 2]},
            "input 'age': row 1: 1.8446744073709552e+19 is not of datatype INT64",
        ),
        ({"datatype": "INT64", "data": [30, 30.7, 2]}, "30.7 is not a whole INT64 value"),
        ({"datatype": "FP64", "data": [1, 2, 3], "parameters": 5}, "'parameters' must be an object"),
    ],
)
def test_values_a_datatype_cannot_hold_are_400_in_binary_bodies_too(
    kserve_app, metadata, test_frame, entry, expected_error
):
    """The same JSON header sent as a binary-extension body (which FastAPI does not validate)."""
    inputs = columns(test_frame.head(3), metadata)
    body, length = tensors.write_request(inputs, binary_inputs={"job"})
    header = orjson.loads(body[:length])
    age = next(e for e in header["inputs"] if e["name"] == "age")
    age.update(entry)
    head = json.dumps(header).encode()  # json: orjson refuses integers past 64 bits
    response = kserve_app.post(
        INFER,
        content=head + body[length:],
        headers={"Content-Type": "application/octet-stream", tensors.HEADER: str(len(head))},
    )
    assert response.status_code == 400, response.text
    assert expected_error in response.json()["error"]
