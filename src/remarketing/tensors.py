"""Open Inference Protocol (KServe V2) tensors as numpy columns: the REST body in JSON or with the binary
tensor extension, in both directions, for the model server and the scoring step alike.

A body is a JSON header, optionally followed by the raw bytes of the tensors whose ``parameters`` carry a
``binary_data_size``; the ``Inference-Header-Content-Length`` header gives the JSON header's length.
Numbers travel as little-endian arrays (read with ``np.frombuffer``, no copy), ``BYTES`` as a 4-byte
length before each element. Anything that does not add up raises :class:`TensorError` naming the tensor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

HEADER = "inference-header-content-length"
DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype("bool"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
BYTES = "BYTES"
DATATYPES = (*DTYPES, BYTES)


class TensorError(ValueError):
    """A tensor that cannot be read; the message names it (the model server answers HTTP 400)."""


@dataclass
class Body:
    """One request or response: tensors by name (1-D numpy arrays; ``BYTES`` as an object array of str)."""

    tensors: dict[str, np.ndarray]
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    outputs: list[str] | None = None  # a request's requested outputs (None: the model's default)
    binary_outputs: set[str] = field(default_factory=set)  # a request's outputs wanted as binary
    model_name: str = ""
    model_version: str | None = None


def datatype_of(values: np.ndarray) -> str:
    if values.dtype.kind in "OUS":
        return BYTES
    for name, dtype in DTYPES.items():
        if values.dtype == dtype or values.dtype == dtype.newbyteorder("="):
            return name
    raise TensorError(f"no Open Inference Protocol datatype for numpy {values.dtype}")


# --- BYTES ----------------------------------------------------------------------------------------------


def encode_bytes(values: np.ndarray) -> bytes:
    """Each element as its UTF-8 bytes after a little-endian 4-byte length, vectorised: Arrow lays the
    strings out as one data buffer and offsets, and numpy interleaves the lengths."""
    import pyarrow as pa

    strings = pa.array(np.asarray(values, dtype=object), type=pa.string())
    n = len(strings)
    offsets = np.frombuffer(strings.buffers()[1], dtype="<i4")[strings.offset : strings.offset + n + 1]
    data_buffer = strings.buffers()[2]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    data = data[offsets[0] : offsets[-1]]
    lengths = np.diff(offsets).astype("<u4")
    out = np.empty(4 * n + len(data), dtype=np.uint8)
    starts = (offsets[:-1] - offsets[0]) + 4 * np.arange(n)
    out[starts[:, None] + np.arange(4)] = lengths.view(np.uint8).reshape(n, 4)
    out[np.arange(len(data)) + 4 * np.repeat(np.arange(1, n + 1), lengths)] = data
    return out.tobytes()


def decode_bytes(raw: memoryview | bytes, count: int, name: str) -> np.ndarray:
    """``count`` length-prefixed elements as an object array of str (a sequential scan: each length says
    where the next element starts)."""
    buffer = bytes(raw)
    values: list[str] = []
    offset, end = 0, len(buffer)
    unpack = int.from_bytes
    try:
        for _ in range(count):
            if offset + 4 > end:
                raise TensorError(f"{name}: its bytes end after {len(values)} of {count} elements")
            length = unpack(buffer[offset : offset + 4], "little")
            offset += 4
            if offset + length > end:
                raise TensorError(f"{name}: element {len(values)} runs past the tensor's bytes")
            values.append(buffer[offset : offset + length].decode("utf-8"))
            offset += length
    except UnicodeDecodeError as exc:
        raise TensorError(f"{name}: element {len(values)} is not UTF-8 ({exc.reason})") from None
    if offset != end:
        raise TensorError(f"{name}: {end - offset} bytes are left after its {count} elements")
    return np.asarray(values, dtype=object)


# --- reading ----------------------------------------------------------------------------------------------


def _count(name: str, shape: Any) -> int:
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise TensorError(f"{name}: shape must be a list of sizes, got {shape!r}")
    return int(np.prod(shape)) if shape else 1


def _json_values(name: str, datatype: str, data: Any, count: int) -> np.ndarray:
    if not isinstance(data, list):
        raise TensorError(f"{name}: 'data' must be a list of values")
    if data and isinstance(data[0], list):  # nested rows ([[v], [v]] for shape [n, 1])
        data = [v for row in data for v in (row if isinstance(row, list) else [row])]
    if len(data) != count:
        raise TensorError(f"{name}: its shape holds {count} values but {len(data)} were sent")
    if datatype == BYTES:
        values = np.asarray(data, dtype=object)
        if not all(type(v) is str for v in data):
            # numbers become their text; null stays None for the model to name as a missing value
            values = np.asarray(
                [v if v is None or isinstance(v, str) else str(v) for v in data], dtype=object
            )
        return values
    dtype = DTYPES[datatype]
    try:
        values = np.asarray(data, dtype=dtype)
    except (TypeError, ValueError, OverflowError):
        row = next((i for i, v in enumerate(data) if not _fits(v, dtype)), 0)
        raise TensorError(f"{name}: row {row}: {data[row]!r} is not of datatype {datatype}") from None
    if dtype.kind in "iu":  # numpy would cut 30.7 to 30, and wrap floats out of range, without a word
        info = np.iinfo(dtype)
        cut = next(
            (
                i
                for i, v in enumerate(data)
                if isinstance(v, float) and not (v.is_integer() and info.min <= v <= info.max)
            ),
            None,
        )
        if cut is not None:
            raise TensorError(f"{name}: row {cut}: {data[cut]!r} is not a whole {datatype} value")
    return values


def _fits(value: Any, dtype: np.dtype) -> bool:
    """Whether one JSON value can be an element of ``dtype`` (a number, in its range)."""
    if not isinstance(value, int | float) or (isinstance(value, bool) and dtype.kind != "b"):
        return False
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        whole = isinstance(value, int) or value.is_integer()
        return bool(whole and info.min <= value <= info.max)
    return True


def _parameters(entry: dict[str, Any], label: str) -> dict[str, Any]:
    parameters = entry.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise TensorError(f"{label}: 'parameters' must be an object, got {parameters!r}")
    return parameters


def _binary_values(name: str, datatype: str, raw: memoryview, count: int) -> np.ndarray:
    if datatype == BYTES:
        return decode_bytes(raw, count, name)
    dtype = DTYPES[datatype]
    if len(raw) != count * dtype.itemsize:
        raise TensorError(
            f"{name}: binary_data_size is {len(raw)} bytes, but {count} {datatype} values take "
            f"{count * dtype.itemsize}"
        )
    return np.frombuffer(raw, dtype=dtype)


def _tensors(entries: Any, raw: memoryview, kind: str) -> dict[str, np.ndarray]:
    if not isinstance(entries, list):
        raise TensorError(f"'{kind}s' must be a list of tensors")
    tensors: dict[str, np.ndarray] = {}
    offset = 0
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise TensorError(f"every {kind} needs a 'name'")
        name = entry["name"]
        label = f"{kind} {name!r}"
        if name in tensors:
            raise TensorError(f"{kind} {name!r} is given twice")
        datatype = entry.get("datatype")
        if datatype not in DATATYPES:
            raise TensorError(f"{label}: unknown datatype {datatype!r}; one of {', '.join(DATATYPES)}")
        shape = entry.get("shape")
        count = _count(label, shape)
        size = _parameters(entry, label).get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or size < 0:
                raise TensorError(f"{label}: binary_data_size must be a byte count, got {size!r}")
            if offset + size > len(raw):
                raise TensorError(
                    f"{label}: binary_data_size says {size} bytes, but only {len(raw) - offset} "
                    "are left in the body"
                )
            values = _binary_values(label, datatype, raw[offset : offset + size], count)
            offset += size
        elif "data" in entry:
            values = _json_values(label, datatype, entry["data"], count)
        else:
            raise TensorError(f"{label} has neither 'data' nor a binary_data_size")
        tensors[name] = values.reshape(shape)
    if offset != len(raw):
        raise TensorError(
            f"the body has {len(raw) - offset} bytes after the tensors that binary_data_size declares"
        )
    return tensors


def _header(body: bytes, json_length: int | None) -> tuple[dict[str, Any], memoryview]:
    view = memoryview(body)
    if json_length is not None and not 0 < json_length <= len(body):
        raise TensorError(f"{HEADER} is {json_length}, but the body has {len(body)} bytes")
    head = view[:json_length] if json_length is not None else view
    try:
        header = orjson.loads(head)
    except orjson.JSONDecodeError as exc:
        raise TensorError(f"the JSON header is not valid JSON: {exc}") from None
    if not isinstance(header, dict):
        raise TensorError("the JSON header must be an object")
    return header, view[json_length:] if json_length is not None else memoryview(b"")


def read_request(body: bytes, json_length: int | None = None) -> Body:
    """A V2 infer request (JSON, or JSON plus binary tensors when ``json_length`` is given)."""
    header, raw = _header(body, json_length)
    if not header.get("inputs"):
        raise TensorError("no inputs: expected 'inputs', one tensor per column")
    tensors = _tensors(header["inputs"], raw, "input")
    parameters = _parameters(header, "the request")
    outputs, binary = None, set()
    if header.get("outputs") is not None:
        outputs = []
        for entry in header["outputs"]:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise TensorError("every requested output needs a 'name'")
            outputs.append(entry["name"])
            wanted = _parameters(entry, f"output {entry['name']!r}").get("binary_data")
            if wanted if wanted is not None else parameters.get("binary_data_output", False):
                binary.add(entry["name"])
    elif parameters.get("binary_data_output"):
        binary = {"*"}
    request_id = header.get("id")
    return Body(tensors, str(request_id) if request_id is not None else None, parameters, outputs, binary)


def read_response(body: bytes, json_length: int | None = None) -> Body:
    header, raw = _header(body, json_length)
    tensors = _tensors(header.get("outputs", []), raw, "output")
    return Body(
        tensors,
        header.get("id"),
        header.get("parameters") or {},
        model_name=header.get("model_name", ""),
        model_version=header.get("model_version"),
    )


# --- writing ----------------------------------------------------------------------------------------------


def _entries(tensors: dict[str, np.ndarray], binary: set[str]) -> tuple[list[dict[str, Any]], list[bytes]]:
    entries, chunks = [], []
    for name, values in tensors.items():
        values = np.asarray(values)
        datatype = datatype_of(values)
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(values.shape)}
        if name in binary or "*" in binary:
            flat = values.reshape(-1)
            raw = encode_bytes(flat) if datatype == BYTES else flat.astype(DTYPES[datatype]).tobytes()
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            flat = values.reshape(-1)
            # orjson writes numeric arrays itself; str elements go as a list (made in C by tolist)
            entry["data"] = flat.tolist() if datatype == BYTES else np.ascontiguousarray(flat)
        entries.append(entry)
    return entries, chunks


def _dump(header: dict[str, Any], chunks: list[bytes]) -> tuple[bytes, int | None]:
    text = orjson.dumps(header, option=orjson.OPT_SERIALIZE_NUMPY)
    if not chunks:
        return text, None
    return b"".join([text, *chunks]), len(text)


def write_request(
    inputs: dict[str, np.ndarray],
    *,
    outputs: list[str] | None = None,
    binary_inputs: set[str] | None = None,
    binary_outputs: set[str] | None = None,
    request_id: str | None = None,
) -> tuple[bytes, int | None]:
    """The body and, when some tensor is binary, the JSON header's length (send it as ``HEADER``)."""
    entries, chunks = _entries(inputs, binary_inputs or set())
    header: dict[str, Any] = {"inputs": entries}
    if request_id:
        header["id"] = request_id
    if outputs is not None:
        wanted = binary_outputs or set()
        header["outputs"] = [
            {"name": name, "parameters": {"binary_data": name in wanted}} for name in outputs
        ]
    return _dump(header, chunks)


def write_response(response: Body) -> tuple[bytes, int | None]:
    entries, chunks = _entries(response.tensors, response.binary_outputs)
    header: dict[str, Any] = {
        "id": response.id,
        "model_name": response.model_name,
        "model_version": response.model_version,
        "outputs": entries,
    }
    if response.parameters:
        header["parameters"] = response.parameters
    return _dump(header, chunks)
