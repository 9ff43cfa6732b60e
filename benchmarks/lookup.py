"""Customer lookup latency: ``GET /customers/{id}`` on loopback with a million customers in the table.

    .venv/bin/python benchmarks/lookup.py [--customers 1000000] [--requests 2000]

The API process is the one ``remarketing up`` starts (uvicorn, one worker) with the storage emulator
beside it, so every lookup is also a record of the audit trail, as it ships (queued as the answer leaves,
written by the API's shipper: the figure says how long after the last answer the trail had every record).
The table is written with the publish step's writer (``remarketing.customer_lookup.LookupWriter``) from
bank-full's customers repeated to the size asked, each row with the columns publish gives it (worded
reasons, every contribution, the customer's values); the write time is a side figure of this synthetic
table (the publish step's own time is in batch_scoring). Requests are sequential (one analyst after
another), ids drawn at random, the first 100 not counted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._common import example, record  # noqa: E402
from remarketing.examples import BANK_FULL  # noqa: E402

WARMUP = 100
CHUNK = 50_000
RUN_ID = "scoring-benchmark"


def chunks(customers: int, rng: np.random.Generator):
    """bank-full's rows repeated, as publish hands them to the lookup writer."""
    from remarketing.datasets import load_spec

    spec = load_spec("bank-marketing")
    bank = pd.read_csv(example(BANK_FULL), sep=";")[spec.feature_names]
    for start in range(0, customers, CHUNK):
        n = min(CHUNK, customers - start)
        values = bank.sample(n, replace=True, random_state=int(rng.integers(1 << 31))).reset_index(drop=True)
        probability = rng.beta(1, 8, n)
        frame = pd.DataFrame(
            {
                "customer_id": [f"C{i:08d}" for i in range(start, start + n)],
                "probability": probability,
                "rank": np.arange(start + 1, start + n + 1),
                "decile": (np.arange(start, start + n) * 10 // customers) + 1,
                "contact": rng.random(n) < 0.1,
                "group": np.where(rng.random(n) < 0.1, "targeted", "not called"),
                "group_probability": probability,
                "model_version": "3",
                "arm": "champion",
                "base_value": -2.1,
            }
        )
        for k in (1, 2, 3):
            frame[f"reason_{k}"] = "the previous campaign succeeded"
            frame[f"reason_{k}_field"] = "poutcome"
            frame[f"reason_{k}_value"] = "success"
        for c in spec.feature_names:
            frame[f"shap_{c}"] = rng.normal(0, 0.3, n)
        yield pd.concat([frame, values.add_prefix("value_")], axis=1)


def succeeded(settings) -> None:  # noqa: ANN001
    """The run's record, as a success: the API shows a customer only from runs that succeeded."""
    from remarketing.runs import RunRecord, RunStore, Source
    from remarketing.storage import Storage

    RunStore(Storage(settings), settings.artifacts_root).create(
        RunRecord(
            run_id=RUN_ID,
            kind="scoring",
            dataset="bank-marketing",
            source=Source(uri=f"gs://{settings.landing_bucket}/weekly/benchmark.csv", generation=1),
            status="success",
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()

    from local_stack import services
    from remarketing import storage
    from remarketing.customer_lookup import LookupWriter
    from remarketing.secrets import api_key

    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as state:
        settings = services.private_settings(Path(state))
        started = time.perf_counter()
        with LookupWriter(
            settings.lookup_path,
            dataset="bank-marketing",
            run_id=RUN_ID,
            scored_at="2026-12-01T09:00:00+00:00",
            model_version="3",
        ) as writer:
            for chunk in chunks(args.customers, rng):
                writer.add(chunk)
        write_seconds = time.perf_counter() - started
        size_mb = sum(p.stat().st_size for p in settings.lookup_path.parent.iterdir()) / 2**20
        services.ensure_stack(settings, ("storage-emulator", "api"))
        try:
            succeeded(settings)
            base = f"http://127.0.0.1:{settings.api_port}"
            latencies = []
            with httpx.Client(base_url=base, headers={"X-API-Key": api_key(settings)}, timeout=30) as client:
                for i in range(WARMUP + args.requests):
                    customer = f"C{int(rng.integers(args.customers)):08d}"
                    sent = time.perf_counter()
                    answer = client.get(f"/customers/{customer}")
                    elapsed = time.perf_counter() - sent
                    if answer.status_code != 200 or answer.json()["customer_id"] != customer:
                        raise SystemExit(f"lookup of {customer} answered {answer.status_code}: {answer.text}")
                    if i >= WARMUP:
                        latencies.append(elapsed * 1000)
                missing = client.get("/customers/nobody")
                # every lookup is a record of the trail: how long after the last answer the shipper is done
                last = storage.join(
                    settings.artifacts_root, "audit", "records", f"{WARMUP + args.requests + 1:012d}.json"
                )
                answered = time.perf_counter()
                while not storage.Storage(settings).exists(last):
                    time.sleep(0.05)
                caught_up = time.perf_counter() - answered
                floor = []  # the API's own floor on this machine: a route with no work, no key, no audit
                for _ in range(WARMUP + args.requests // 2):
                    sent = time.perf_counter()
                    client.get("/healthz")
                    floor.append((time.perf_counter() - sent) * 1000)
            assert missing.status_code == 404, missing.text
        finally:
            services.down(settings)
    ms = np.array(latencies)
    record(
        "lookup",
        {
            "customers": args.customers,
            "requests": len(ms),
            "latency_ms": {
                "p50": round(float(np.percentile(ms, 50)), 2),
                "p90": round(float(np.percentile(ms, 90)), 2),
                "p99": round(float(np.percentile(ms, 99)), 2),
                "max": round(float(ms.max()), 2),
            },
            "aim_p99_ms": 20,
            "audit_trail_caught_up_seconds": round(caught_up, 2),
            "healthz_ms": {
                "p50": round(float(np.percentile(floor[WARMUP:], 50)), 2),
                "p99": round(float(np.percentile(floor[WARMUP:], 99)), 2),
            },
            "table": {"write_seconds": round(write_seconds, 1), "size_mb": round(size_mb)},
            "note": "GET /customers/{id} through the API process on loopback, each lookup appended to the "
            "audit trail (storage emulator); the table is synthetic (bank-full's rows repeated), its write "
            "time a side figure",
        },
    )


if __name__ == "__main__":
    main()
