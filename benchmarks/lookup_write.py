"""The lookup table's write and read in one process: a run of a million customers written by publish's
writer (``remarketing.customer_lookup.LookupWriter``), then ``CustomerLookup.latest`` of random ids.

    .venv/bin/python benchmarks/lookup_write.py [--customers 1000000] [--runs 2] [--orders file shuffled]

The rows are ``lookup.py``'s (bank-full's customers repeated, with the columns publish gives them), built
before the clock starts. Each run is timed in three parts: encoding the chunks' rows (the writer's
``_rows_of``), inserting them (the rest of ``add``), and the commit with its WAL checkpoint (leaving the
``with``). The second run writes the same customers again under a new run id, as next week's run would,
into the file that holds the first. Each order is a file of its own: ``file`` hands the customers over in
id order (as ``lookup.py`` does), ``shuffled`` in a random one (a weekly file not sorted by id).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._common import record  # noqa: E402
from benchmarks.lookup import chunks  # noqa: E402

READS = 20_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--orders", nargs="+", choices=("file", "shuffled"), default=["file", "shuffled"])
    parser.add_argument("--no-record", action="store_true", help="print the figures only")
    args = parser.parse_args()

    figures = {
        "customers": args.customers,
        **{order: measure(args.customers, args.runs, order) for order in args.orders},
        "note": "in one process, no HTTP; rows built before the clock starts (lookup.py's chunks); "
        "the second run writes the same customers into the file holding the first",
    }
    print(figures)
    if not args.no_record:
        record("lookup_write", figures)


def measure(customers: int, runs: int, order: str) -> dict:
    from remarketing.customer_lookup import CustomerLookup, LookupWriter

    rng = np.random.default_rng(7)
    frames = list(chunks(customers, rng))
    if order == "shuffled":
        ids = np.array([f"C{i:08d}" for i in rng.permutation(customers)], dtype=object)
        for frame, start in zip(frames, np.cumsum([0, *(len(f) for f in frames)]), strict=False):
            frame["customer_id"] = ids[start : start + len(frame)]

    encode = 0.0
    original = LookupWriter._rows_of

    def timed_rows_of(self, chunk):  # noqa: ANN001, ANN202
        nonlocal encode
        started = time.perf_counter()
        rows = original(self, chunk)
        encode += time.perf_counter() - started
        return rows

    LookupWriter._rows_of = timed_rows_of  # type: ignore[method-assign]
    written = []
    try:
        with tempfile.TemporaryDirectory() as state:
            path = Path(state) / "customers.sqlite"
            for run in range(runs):
                encode, adding = 0.0, 0.0
                writer = LookupWriter(
                    path,
                    dataset="bank-marketing",
                    run_id=f"run-{run}",
                    scored_at=f"2026-12-0{run + 1}T09:00:00+00:00",
                    model_version="3",
                )
                with writer:
                    for frame in frames:
                        started = time.perf_counter()
                        writer.add(frame)
                        adding += time.perf_counter() - started
                    leaving = time.perf_counter()
                commit = time.perf_counter() - leaving
                size = sum(p.stat().st_size for p in path.parent.iterdir())
                written.append(
                    {
                        "encode_s": round(encode, 2),
                        "insert_s": round(adding - encode, 2),
                        "commit_and_checkpoint_s": round(commit, 2),
                        "total_s": round(adding + commit, 2),
                        "file_mb": round(size / 2**20),
                    }
                )
                print(f"{order}, run {run}: {written[-1]}", flush=True)
            with sqlite3.connect(path) as conn:
                detail_bytes = conn.execute("SELECT avg(length(detail)) FROM scores").fetchone()[0]
            latencies, detail = reads(CustomerLookup(path), customers, rng)
    finally:
        LookupWriter._rows_of = original  # type: ignore[method-assign]
    ms = np.array(latencies)
    return {
        "detail_columns": len(detail),
        "detail_bytes_per_row": round(detail_bytes, 1),
        "runs": written,
        "latest_ms": {
            "p50": round(float(np.percentile(ms, 50)), 3),
            "p99": round(float(np.percentile(ms, 99)), 3),
            "max": round(float(ms.max()), 3),
        },
    }


def reads(lookup, customers: int, rng: np.random.Generator) -> tuple[list[float], dict]:  # noqa: ANN001
    """``latest`` of random ids, the first 100 not counted."""
    latencies = []
    with lookup:
        for i in range(READS + 100):
            customer = f"C{int(rng.integers(customers)):08d}"
            started = time.perf_counter()
            found = lookup.latest("bank-marketing", customer)
            elapsed = time.perf_counter() - started
            assert found is not None and found["customer_id"] == customer, customer
            if i >= 100:
                latencies.append(elapsed * 1000)
    return latencies, found["detail"]


if __name__ == "__main__":
    main()
