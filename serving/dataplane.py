"""KServe's data plane with V2 bodies read and written as numpy columns (:mod:`remarketing.tensors`).

KServe 0.21 turns every tensor into a Python list on the way in and out (a Python object per value, and a
Python loop per value for JSON outputs); here a binary tensor is read with ``np.frombuffer`` and written
with ``tobytes``, and a body that does not add up (declared sizes against the bytes, shape against the
values, an unknown datatype) is an HTTP 400 naming the tensor. A pure-JSON body is still parsed by
FastAPI's pydantic models first (and a pure-JSON reply validated by them): large requests should use the
binary form, as the scoring pipeline does. Everything else (routing, readiness, latency metrics, V1) is
KServe's own.
"""

from __future__ import annotations

from typing import Any

import orjson
from kserve.errors import InvalidInput
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.rest.v2_datamodels import InferenceRequest

from remarketing import tensors


class ColumnarDataPlane(DataPlane):
    def decode_inference_request(self, body: bytes | InferenceRequest, headers: dict, model_name: str) -> Any:
        try:
            if isinstance(body, bytes):
                length = headers.get(tensors.HEADER)
                return tensors.read_request(body, int(length) if length is not None else None)
            # A JSON body FastAPI has already parsed: back to bytes once, read like any other.
            return tensors.read_request(orjson.dumps(body.model_dump(exclude_none=True)))
        except (tensors.TensorError, ValueError, TypeError, OverflowError) as exc:
            raise InvalidInput(str(exc)) from exc

    def encode(self, model_name, response, headers, req_attributes: dict) -> tuple[Any, dict[str, str]]:
        if isinstance(response, tensors.Body):
            body, json_length = tensors.write_response(response)
            if json_length is None:
                return orjson.loads(body), {}
            return body, {tensors.HEADER: str(json_length)}
        return super().encode(model_name, response, headers, req_attributes)
