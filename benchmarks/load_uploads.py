"""Load: N concurrent uploads of small weekly files through the API of a running stack
(``remarketing up``: emulator, MLflow, API, functions and the event bridge, with a champion trained).
Every upload must become exactly one run that finishes through the bounded local queue: none lost,
none duplicated. Records the API's latency for ``GET /runs/{id}`` while this goes on (p50/p95/p99).

    .venv/bin/remarketing up && .venv/bin/python benchmarks/load_uploads.py [--uploads 50] [--rows 40]

The API address and key come from the same settings as the stack (``REMARKETING_*``), or --api/--key.
The result goes to benchmarks/results/load_uploads.json.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import example, record  # noqa: E402
from remarketing.examples import BANK_FULL  # noqa: E402

FINISHED = {"success", "failed"}


def weekly_files(data: Path, n: int, rows: int) -> list[bytes]:
    """``n`` different small weekly files: disjoint slices of the last 20% of bank-full, with ids."""
    frame = pd.read_csv(data, sep=";")
    later = frame.iloc[int(len(frame) * 0.8) :].copy()
    later.insert(0, "customer_id", [f"C{i:06d}" for i in later.index])
    files = []
    for i in range(n):
        part = later.iloc[(i * rows) % max(1, len(later) - rows) :][:rows]
        buffer = io.StringIO()
        part.to_csv(buffer, sep=";", index=False)
        files.append(buffer.getvalue().encode())
    return files


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


async def upload_all(client: httpx.AsyncClient, files: list[bytes]) -> list[tuple[int, dict, float]]:
    async def one(i: int, data: bytes) -> tuple[int, dict, float]:
        started = time.perf_counter()
        r = await client.post(
            "/uploads", files={"file": (f"load-{i:03d}.csv", data, "text/csv")}, data={"budget": "5"}
        )
        return r.status_code, r.json(), time.perf_counter() - started

    return list(await asyncio.gather(*(one(i, d) for i, d in enumerate(files))))


async def follow(
    client: httpx.AsyncClient, run_ids: list[str], timeout: float, interval: float
) -> tuple[dict[str, dict], list[float], int, int]:
    """Poll every run until it finishes; every GET's latency; the most runs seen running at once."""
    latencies: list[float] = []
    last: dict[str, dict] = {}
    errors = 0
    peak_running = 0
    deadline = time.monotonic() + timeout

    async def get(run_id: str) -> None:
        nonlocal errors
        started = time.perf_counter()
        try:
            r = await client.get(f"/runs/{run_id}")
        except httpx.TransportError:  # a keep-alive connection the server closed: counted, polled again
            errors += 1
            return
        latencies.append(time.perf_counter() - started)
        if r.status_code == 200:
            last[run_id] = r.json()
        else:
            errors += 1

    while time.monotonic() < deadline:
        pending = [i for i in run_ids if last.get(i, {}).get("status") not in FINISHED]
        if not pending:
            break
        await asyncio.gather(*(get(i) for i in pending))
        peak_running = max(peak_running, sum(1 for v in last.values() if v.get("status") == "running"))
        await asyncio.sleep(interval)
    return last, latencies, errors, peak_running


async def main_async(args: argparse.Namespace) -> dict:
    from remarketing.secrets import api_key
    from remarketing.settings import Settings
    from remarketing.storage import Storage

    settings = Settings()
    api = args.api or f"http://127.0.0.1:{settings.api_port}"
    key = args.key or api_key(settings)
    files = weekly_files(args.data, args.uploads, args.rows)
    limits = httpx.Limits(max_connections=args.uploads + 10, max_keepalive_connections=args.uploads + 10)
    async with httpx.AsyncClient(
        base_url=api, headers={"X-API-Key": key}, timeout=120, limits=limits
    ) as client:
        (await client.get("/healthz")).raise_for_status()
        started = time.perf_counter()
        answers = await upload_all(client, files)
        upload_wall = time.perf_counter() - started
        accepted = [body for status, body, _ in answers if status == 202]
        refused = [(status, body) for status, body, _ in answers if status != 202]
        run_ids = [a["run_id"] for a in accepted]
        last, latencies, errors, peak = await follow(client, run_ids, args.timeout, args.interval)
        all_done = time.perf_counter() - started

    # None lost, none duplicated: exactly one run record per uploaded object, read from storage itself.
    storage = Storage(settings)
    objects = {a["object"] for a in accepted}
    records_per_object: Counter[str] = Counter()
    for uri in storage.list(f"{settings.artifacts_root}/runs/"):
        if uri.endswith(".json"):
            source = json.loads(storage.read_bytes(uri)).get("source", {}).get("uri")
            if source in objects:
                records_per_object[source] += 1
    statuses = Counter(v.get("status", "missing") for v in (last.get(i, {}) for i in run_ids))
    figures = {
        "uploads": args.uploads,
        "rows_per_file": args.rows,
        "accepted": len(accepted),
        "refused": [{"status": s, "body": b} for s, b in refused],
        "distinct_run_ids": len(set(run_ids)),
        "distinct_objects": len(objects),
        "objects_with_exactly_one_run": sum(1 for o in objects if records_per_object[o] == 1),
        "objects_with_no_run": sum(1 for o in objects if records_per_object[o] == 0),
        "objects_with_several_runs": sum(1 for o in objects if records_per_object[o] > 1),
        "final_status": dict(statuses),
        "failed_errors": sorted(
            {
                (v.get("error") or {}).get("message", "")[:200]
                for v in last.values()
                if v.get("status") == "failed"
            }
        ),
        "peak_running_seen": peak,
        "pipeline_concurrency": settings.pipeline_concurrency,
        "upload_wall_seconds": round(upload_wall, 2),
        "upload_p50_ms": round(1000 * statistics.median(t for *_, t in answers), 1),
        "upload_p99_ms": round(1000 * percentile([t for *_, t in answers], 99), 1),
        "all_finished_seconds": round(all_done, 1),
        "get_run_requests": len(latencies),
        "get_run_errors": errors,
        "get_run_p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
        "get_run_p95_ms": round(1000 * percentile(latencies, 95), 1) if latencies else None,
        "get_run_p99_ms": round(1000 * percentile(latencies, 99), 1) if latencies else None,
        "get_run_max_ms": round(1000 * max(latencies), 1) if latencies else None,
    }
    figures["ok"] = (
        figures["accepted"] == args.uploads
        and figures["distinct_run_ids"] == args.uploads
        and figures["objects_with_exactly_one_run"] == args.uploads
        and sum(statuses[s] for s in FINISHED) == args.uploads
        and peak <= settings.pipeline_concurrency
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--uploads", type=int, default=50)
    parser.add_argument("--rows", type=int, default=40, help="customers per weekly file")
    parser.add_argument("--data", type=Path, default=example(BANK_FULL))
    parser.add_argument("--api", default="", help="API address (default: the settings' api_port)")
    parser.add_argument("--key", default="", help="API key (default: the stack's)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for every run")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between polling rounds")
    args = parser.parse_args()
    figures = asyncio.run(main_async(args))
    path = record("load_uploads", figures)
    print(f"recorded in {path}", file=sys.stderr)  # noqa: T201
    sys.exit(0 if figures["ok"] else 1)


if __name__ == "__main__":
    main()
