"""The Open Inference Protocol codec (remarketing.tensors): JSON and binary bodies round-trip as numpy
columns, and every body that does not add up is refused naming the tensor."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from remarketing import tensors
from remarketing.tensors import TensorError, read_request, read_response, write_request

COLUMNS = {
    "age": np.array([30.0, 41.5, 58.0]),
    "calls": np.array([1, 0, 7], dtype="int64"),
    "job": np.array(["admin.", "", "técnico ✓"], dtype=object),
}


@pytest.mark.parametrize("binary", [set(), {"age"}, {"age", "calls", "job"}])
def test_a_request_round_trips_in_json_and_binary(binary):
    body, length = write_request(COLUMNS, outputs=["probability"], binary_inputs=binary, request_id="r1")
    assert (length is None) == (not binary)
    request = read_request(body, length)
    assert request.id == "r1" and request.outputs == ["probability"] and request.binary_outputs == set()
    assert set(request.tensors) == set(COLUMNS)
    for name, values in COLUMNS.items():
        assert request.tensors[name].tolist() == values.tolist()
    assert request.tensors["calls"].dtype == np.dtype("int64")


def test_binary_outputs_are_asked_per_output_or_for_all():
    body, length = write_request(COLUMNS, outputs=["p", "q"], binary_outputs={"q"})
    assert read_request(body, length).binary_outputs == {"q"}
    header = {"inputs": orjson.loads(body)["inputs"], "parameters": {"binary_data_output": True}}
    assert read_request(orjson.dumps(header)).binary_outputs == {"*"}


def test_a_response_round_trips_with_binary_and_json_outputs():
    response = tensors.Body(
        {"probability": np.array([0.25, 0.5]), "reason_1_field": np.array(["age", ""], dtype=object)},
        id="r2",
        binary_outputs={"probability"},
        model_name="m",
        model_version="3",
    )
    body, length = tensors.write_response(response)
    assert length is not None
    header = orjson.loads(body[:length])
    assert header["outputs"][0]["parameters"] == {"binary_data_size": 16}
    assert header["outputs"][1]["data"] == ["age", ""]
    back = read_response(body, length)
    assert back.model_version == "3" and back.id == "r2"
    assert back.tensors["probability"].tolist() == [0.25, 0.5]
    assert back.tensors["reason_1_field"].tolist() == ["age", ""]


def test_bytes_are_length_prefixed_utf8():
    values = np.array(["a", "", "é"], dtype=object)
    raw = tensors.encode_bytes(values)
    assert raw == b"\x01\x00\x00\x00a" + b"\x00\x00\x00\x00" + b"\x02\x00\x00\x00\xc3\xa9"
    assert tensors.decode_bytes(raw, 3, "input 'job'").tolist() == ["a", "", "é"]


def test_n_by_1_shapes_keep_their_shape():
    header = {"inputs": [{"name": "age", "datatype": "FP64", "shape": [2, 1], "data": [[1.0], [2.0]]}]}
    assert read_request(orjson.dumps(header)).tensors["age"].shape == (2, 1)


def _binary(datatype: str, shape: list[int], size: int, payload: bytes) -> tuple[bytes, int]:
    entry = {"name": "age", "datatype": datatype, "shape": shape, "parameters": {"binary_data_size": size}}
    head = orjson.dumps({"inputs": [entry]})
    return head + payload, len(head)


BAD = {
    "unknown datatype": (
        lambda: (
            orjson.dumps({"inputs": [{"name": "age", "datatype": "FLOAT", "shape": [1], "data": [1]}]}),
            None,
        ),
        "input 'age': unknown datatype 'FLOAT'",
    ),
    "declared size past the end": (lambda: _binary("FP64", [2], 16, b"\0" * 8), "only 8 are left"),
    "size is not count times itemsize": (lambda: _binary("FP64", [2], 8, b"\0" * 8), "2 FP64 values take 16"),
    "bytes left over": (
        lambda: (lambda b, n: (b + b"\0\0", n))(*_binary("FP64", [1], 8, b"\0" * 8)),
        "2 bytes after the tensors",
    ),
    "bytes element runs past": (lambda: _binary("BYTES", [1], 5, b"\x09\0\0\0a"), "runs past"),
    "bytes not utf-8": (lambda: _binary("BYTES", [1], 5, b"\x01\0\0\0\xff"), "not UTF-8"),
    "bytes fewer than the shape": (lambda: _binary("BYTES", [2], 5, b"\x01\0\0\0a"), "after 1 of 2"),
    "shape and data disagree": (
        lambda: (
            orjson.dumps({"inputs": [{"name": "age", "datatype": "FP64", "shape": [3], "data": [1, 2]}]}),
            None,
        ),
        "input 'age': its shape holds 3 values but 2 were sent",
    ),
    "text in a number tensor": (
        lambda: (
            orjson.dumps({"inputs": [{"name": "age", "datatype": "FP64", "shape": [2], "data": [1, "x"]}]}),
            None,
        ),
        "input 'age': row 1: 'x'",
    ),
    "header length past the body": (lambda: (b'{"inputs": []}', 99), "the body has 14 bytes"),
    "a fraction in an integer tensor": (
        lambda: (
            orjson.dumps(
                {"inputs": [{"name": "age", "datatype": "INT64", "shape": [2], "data": [30, 30.7]}]}
            ),
            None,
        ),
        "input 'age': row 1: 30.7 is not a whole INT64 value",
    ),
    "an integer out of range": (
        lambda: (
            orjson.dumps({"inputs": [{"name": "age", "datatype": "UINT8", "shape": [2], "data": [1, 300]}]}),
            None,
        ),
        "input 'age': row 1: 300 is not of datatype UINT8",
    ),
    "parameters that are not an object": (
        lambda: (
            orjson.dumps(
                {"inputs": [{"name": "age", "datatype": "FP64", "shape": [1], "data": [1], "parameters": 5}]}
            ),
            None,
        ),
        "input 'age': 'parameters' must be an object",
    ),
    "request parameters that are not an object": (
        lambda: (
            orjson.dumps(
                {"inputs": [{"name": "age", "datatype": "FP64", "shape": [1], "data": [1]}], "parameters": 5}
            ),
            None,
        ),
        "the request: 'parameters' must be an object",
    ),
    "no inputs": (lambda: (b'{"inputs": []}', None), "no inputs"),
    "not json": (lambda: (b"{nope", None), "not valid JSON"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_body_that_does_not_add_up_is_refused_naming_the_tensor(case):
    make, expected = BAD[case]
    with pytest.raises(TensorError) as caught:
        read_request(*make())
    assert expected in str(caught.value)
