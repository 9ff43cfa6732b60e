"""What the metrics cost: the model server with its instrumentation and a real Prometheus scraping it every
second, against the same server with its metrics off (``REMARKETING_MODEL_METRICS=0``) and nobody scraping,
in one run, interleaved (off, on, off, on, ...) so that the shared machine's noise falls on both.

    .venv/bin/python benchmarks/observability.py [--rows 60000] [--rounds 3] [--rate 20] [--seconds 15]

- batch: ``--rows`` customers (bank-full resampled) through the scoring pipeline's own client
  (``scoring.score_chunk`` with ``HttpScorer``: V2 infer in batches, 4 at a time), as the score step sends
  them; seconds per round.
- online: one customer per V2 request, open loop at ``--rate`` per second (``online_serving.open_loop``);
  p50 and p99 per round.

Aims (issue 13): scraping adds under 2% to batch scoring time and under 1 ms to an online p99. Scraping every
second is 5 times the stack's default (``scrape_interval_seconds`` 5).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._common import example, free_port, record  # noqa: E402
from benchmarks.online_serving import NAME, build_model, open_loop, v2_body, wait_ready  # noqa: E402
from remarketing.examples import BANK_FULL  # noqa: E402


def start_server(bundle_dir: Path, port: int, log, *, metrics: bool) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "serving",
        "--model-uri",
        str(bundle_dir),
        "--model-name",
        NAME,
        "--model-version",
        "1",
    ]
    command += ["--http-port", str(port), "--host", "127.0.0.1", "--workers", "1"]
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "REMARKETING_MODEL_METRICS": "1" if metrics else "0"}
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)


def start_prometheus(target_port: int, folder: Path, log) -> tuple[subprocess.Popen, str]:
    program = shutil.which("prometheus")
    if program is None:
        raise SystemExit("prometheus is not installed: run `make system-packages`")
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "prometheus.yml"
    job = {"job_name": "model-server", "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}]}
    # JSON is YAML
    config.write_text(json.dumps({"global": {"scrape_interval": "1s"}, "scrape_configs": [job]}))
    command = [
        program,
        f"--config.file={config}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT), f"http://127.0.0.1:{port}"


def scraped(prometheus: str, timeout: float = 30) -> None:
    """Wait until Prometheus has scraped the server (so the "on" rounds are really scraped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = httpx.get(f"{prometheus}/api/v1/query", params={"query": "up == 1"}, timeout=2).json()
            if result["data"]["result"]:
                return
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"Prometheus at {prometheus} never scraped the model server")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def batch_rows(data: Path, rows: int) -> pd.DataFrame:
    from remarketing.datasets import load_spec
    from remarketing.validation import Purpose, validate

    spec = load_spec("bank-marketing")
    frame = validate(data.read_bytes(), spec, Purpose.TRAINING).frame
    sample = frame.sample(n=rows, replace=True, random_state=3).reset_index(drop=True)
    sample[spec.id_column] = [f"B{i:07d}" for i in range(len(sample))]
    return sample


def one_round(base: str, frame: pd.DataFrame, bodies: list[dict], rate: float, seconds: float) -> dict:
    from remarketing.datasets import load_spec
    from remarketing.ports import Endpoint
    from remarketing.scoring import HttpScorer, score_chunk

    scorer = HttpScorer(Endpoint(base, NAME, "1"))
    try:
        started = time.perf_counter()
        score_chunk(scorer, frame, load_spec("bank-marketing"), 4)
        batch_seconds = time.perf_counter() - started
    finally:
        scorer.close()
    online = asyncio.run(open_loop(f"{base}/v2/models/{NAME}/infer", bodies, rate, int(rate * seconds)))
    return {"batch_seconds": round(batch_seconds, 2), "online": online}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", type=Path, default=example(BANK_FULL))
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()

    from remarketing.datasets import load_spec

    numeric = set(load_spec("bank-marketing").numeric)
    frame = batch_rows(args.data, args.rows)
    rounds: dict[str, list[dict]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory(prefix="observability-") as tmp:
        workdir = Path(tmp)
        bundle_dir, _, rows = build_model(args.data, workdir)
        bodies = [v2_body([r], numeric, mlserver=False) for r in rows]
        for i in range(args.rounds):
            for mode in ("off", "on"):
                port = free_port()
                base = f"http://127.0.0.1:{port}"
                with open(workdir / f"{mode}-{i}.log", "wb") as log:
                    server = start_server(bundle_dir, port, log, metrics=mode == "on")
                    prometheus = None
                    try:
                        wait_ready(f"{base}/v2/models/{NAME}/ready", server)
                        if mode == "on":
                            prometheus, url = start_prometheus(port, workdir / f"prometheus-{i}", log)
                            scraped(url)
                        rounds[mode].append(one_round(base, frame, bodies, args.rate, args.seconds))
                        print(mode, i, rounds[mode][-1], flush=True)
                    finally:
                        if prometheus is not None:
                            stop(prometheus)
                        stop(server)

    def median(mode: str, pick) -> float:
        return statistics.median(pick(r) for r in rounds[mode])

    batch = {m: median(m, lambda r: r["batch_seconds"]) for m in rounds}
    p99 = {m: median(m, lambda r: r["online"]["p99_ms"]) for m in rounds}
    p50 = {m: median(m, lambda r: r["online"]["p50_ms"]) for m in rounds}
    figures = {
        "what": "the model server with metrics on and Prometheus scraping it every 1 s, against metrics off "
        "and no scraping; rounds interleaved, medians compared",
        "batch": {
            "rows": args.rows,
            "path": "scoring.score_chunk + HttpScorer (V2 infer, batches of the score step, 4 at a time)",
            "median_seconds": batch,
            "ratio_on_over_off": round(batch["on"] / batch["off"], 4),
            "aim": "under 1.02",
        },
        "online": {
            "rate_per_s": args.rate,
            "seconds_per_round": args.seconds,
            "median_p50_ms": p50,
            "median_p99_ms": p99,
            "p99_added_ms": round(p99["on"] - p99["off"], 2),
            "aim": "under 1 ms",
        },
        "rounds": rounds,
        "spread": {
            m: {
                "batch_seconds": [r["batch_seconds"] for r in rounds[m]],
                "p99_ms": [r["online"]["p99_ms"] for r in rounds[m]],
            }
            for m in rounds
        },
        "score_histogram_update": observe_many_cost(),
        "per_request_in_process": per_request_cost(),
    }
    record("observability", figures)


def per_request_cost() -> dict:
    """What the instrumentation adds to one single-customer request, in process: the error-counting
    context and the counters and histogram for one score (a bound the noisy HTTP rounds cannot resolve)."""
    from serving.metrics import ModelMetrics

    metrics = ModelMetrics("benchmark", "1")
    one = np.asarray([0.3])
    calls = 20_000
    started = time.perf_counter()
    for _ in range(calls):
        with metrics.counting_errors("predict"):
            pass
        metrics.scored(one)
    return {"microseconds_per_request": round((time.perf_counter() - started) / calls * 1e6, 2)}


def observe_many_cost() -> dict:
    """The score histogram's update for one 10k-row answer, against observe() per row (in-process)."""
    from prometheus_client import CollectorRegistry, Histogram

    from serving.metrics import SCORE_BUCKETS, observe_many

    values = np.random.default_rng(1).random(10_000)
    timings = {}
    for name, update in (
        ("observe_many", lambda h: observe_many(h, values)),
        ("observe_each", lambda h: [h.observe(float(v)) for v in values]),
    ):
        histogram = Histogram("s", "", buckets=SCORE_BUCKETS, registry=CollectorRegistry())
        started = time.perf_counter()
        for _ in range(20):
            update(histogram)
        timings[f"{name}_ms_per_10k"] = round((time.perf_counter() - started) / 20 * 1000, 3)
    return timings


if __name__ == "__main__":
    main()
