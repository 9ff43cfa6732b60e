"""Wall time and peak memory of the training pipeline on bank-full, locally, against the same steps run
through the same step adapter in one process (each step's time from the run record: the backtests are the
train-<family> steps).

    .venv/bin/python benchmarks/training_pipeline.py [--data PATH]

The pipeline is run as a user runs it (``remarketing train``: upload, launch, kfp.local tasks as
subprocesses). Memory is the peak summed RSS of the pipeline's process tree (services excluded). The
in-process run calls the same step functions from ``remarketing.training`` in one Python process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import PeakMemory, example, in_process_record, record  # noqa: E402
from remarketing.examples import BANK_FULL  # noqa: E402


def pipeline_run(settings, data: Path) -> dict:
    env = {**os.environ, **settings.to_env(), "OMP_WAIT_POLICY": "PASSIVE"}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "train", str(data)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    # The launched pipeline process is not a child of the CLI (it has its own session): follow it too.
    with PeakMemory(process.pid) as cli_memory:
        pipeline_peak = 0
        while process.poll() is None:
            for p in psutil.process_iter(["cmdline"]):
                if "pipelines.local_runner" in " ".join(p.info["cmdline"] or []):
                    with PeakMemory(p.pid) as memory:
                        while p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                            time.sleep(0.1)
                    pipeline_peak = max(pipeline_peak, memory.peak)
            time.sleep(0.1)
    wall = time.perf_counter() - started
    out = json.loads(process.stdout.read().strip().splitlines()[-1])
    created, updated = (datetime.fromisoformat(out[k]) for k in ("created", "updated"))
    run_seconds = (updated - created).total_seconds()
    return {
        "wall_seconds": round(wall, 1),  # as a user waits: CLI start, upload, launch, pipeline, summary
        "run_seconds": round(run_seconds, 1),  # from the run record's creation to its last update
        "peak_rss_mb": round(max(pipeline_peak, cli_memory.peak) / 2**20),
        "status": out["status"],
        "family": out["metrics"].get("family"),
        "test": out["metrics"],
    }


def in_process_run(settings, data: Path) -> dict:
    from components.runner import run_in_process
    from remarketing.runs import RunStore
    from remarketing.storage import Storage

    run_id, uri = in_process_record(settings, "training", data)
    started = time.perf_counter()
    with PeakMemory(os.getpid()) as memory, tempfile.TemporaryDirectory() as tmp:
        run_in_process("training", settings, run_id, uri, Path(tmp))  # the pipeline's steps, without KFP
    record = RunStore(Storage(settings), settings.artifacts_root).get(run_id)
    steps = {
        step.name: round(
            (datetime.fromisoformat(step.finished) - datetime.fromisoformat(step.started)).total_seconds(), 1
        )
        for step in record.steps
    }
    return {
        "wall_seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mb": round(memory.peak / 2**20),
        "steps_seconds": steps,  # what the backtests cost: the train-<family> steps
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=example(BANK_FULL))
    args = parser.parse_args()
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    from local_stack import services

    with tempfile.TemporaryDirectory() as state:
        settings = services.private_settings(Path(state))
        services.ensure_stack(settings)
        try:
            pipeline = pipeline_run(settings, args.data)
            in_process = in_process_run(settings, args.data)
        finally:
            services.down(settings)
    record(
        "training_pipeline",
        {
            "data": str(args.data.name),
            "pipeline": pipeline,
            "in_process": in_process,
            "overhead_ratio": round(pipeline["wall_seconds"] / in_process["wall_seconds"], 2),
            "overhead_ratio_run_only": round(pipeline["run_seconds"] / in_process["wall_seconds"], 2),
        },
    )


if __name__ == "__main__":
    main()
