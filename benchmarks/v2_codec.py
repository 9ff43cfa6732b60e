"""The V2 (Open Inference Protocol) codec on a weekly file's shape: a million rows of the bank spec's 7
number and 9 text columns written and read as the score step sends them (numbers binary, text JSON) and
with every tensor binary or every tensor JSON; and the explanation's reply (probability, base value, a
contribution per field, three reasons) the same ways. Seconds for ``remarketing.tensors`` alone, no HTTP.

    .venv/bin/python benchmarks/v2_codec.py [--rows 1000000]

The figures choose the score step's encoding: numbers as binary tensors (a memory copy each way), text as
JSON (orjson in C), because reading binary text takes a Python loop per value (``decode_bytes``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import record  # noqa: E402
from remarketing import tensors  # noqa: E402
from remarketing.datasets import load_spec  # noqa: E402


def timed(fn):
    started = time.perf_counter()
    out = fn()
    return out, round(time.perf_counter() - started, 3)


def columns(rows: int) -> dict[str, np.ndarray]:
    spec = load_spec("bank-marketing")
    rng = np.random.default_rng(1)
    out = {}
    for name in spec.feature_names:
        if name in spec.numeric:
            out[name] = rng.integers(-1, 5000, rows).astype("float64")
        else:
            categories = spec.features[name].categories or ["unknown"]
            out[name] = np.asarray(categories, dtype=object)[rng.integers(0, len(categories), rows)]
    return out


def request_figures(inputs: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    numbers = {n for n, v in inputs.items() if v.dtype.kind == "f"}
    ways = {"numbers binary, text JSON (shipped)": numbers, "all binary": set(inputs), "all JSON": set()}
    out = {}
    for label, binary in ways.items():
        (body, length), write = timed(lambda b=binary: tensors.write_request(inputs, binary_inputs=b))
        _, read = timed(lambda b=body, n=length: tensors.read_request(b, n))
        out[label] = {"write_seconds": write, "read_seconds": read, "megabytes": round(len(body) / 2**20, 1)}
    return out


def response_figures(inputs: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    rows = len(next(iter(inputs.values())))
    rng = np.random.default_rng(2)
    names = list(inputs)
    outputs: dict[str, np.ndarray] = {"probability": rng.random(rows), "base_value": np.array([-1.9])}
    outputs.update({f"contribution_{n}": rng.normal(size=rows) for n in names})
    for k in (1, 2, 3):
        outputs[f"reason_{k}_field"] = np.asarray(names, dtype=object)[rng.integers(0, len(names), rows)]
        outputs[f"reason_{k}_value"] = inputs["job"]
        outputs[f"reason_{k}_contribution"] = rng.normal(size=rows)
    numbers = {n for n, v in outputs.items() if v.dtype.kind == "f"}
    ways = {"numbers binary, text JSON (shipped)": numbers, "all binary": set(outputs), "all JSON": set()}
    out = {}
    for label, binary in ways.items():
        body_of = tensors.Body(outputs, id="b", binary_outputs=binary, model_name="m", model_version="1")
        (body, length), write = timed(lambda b=body_of: tensors.write_response(b))
        _, read = timed(lambda b=body, n=length: tensors.read_response(b, n))
        out[label] = {"write_seconds": write, "read_seconds": read, "megabytes": round(len(body) / 2**20, 1)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    inputs = columns(args.rows)
    record(
        "v2_codec",
        {
            "rows": args.rows,
            "request": request_figures(inputs),
            "response": response_figures(inputs),
            "note": "remarketing.tensors alone, in one process (no HTTP, no model)",
        },
    )


if __name__ == "__main__":
    main()
