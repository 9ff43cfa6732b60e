"""Batch scoring throughput and memory: a large weekly file (bank-full resampled, new ids) scored end to
end through the local KServe model server with reason codes, against vectorised in-process predict + SHAP
+ reasons on the same rows, for each model family that can be champion.

    .venv/bin/python benchmarks/batch_scoring.py [--rows 1000000] [--rows-slow 100000]

The pipeline figure is what a user waits for (``remarketing score``: upload, validate in chunks, deploy,
score through HTTP, publish). Beside it, the same steps called one after the other in this process
(``components.runner.run_in_process``, the file already uploaded): what the orchestration costs. Memory
is the peak summed RSS of the pipeline's processes and the model server.
Tree and neural SHAP are ~1,000 rows/s per core, so those families run on ``--rows-slow`` rows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import PeakMemory, Sampler, example, in_process_record, record  # noqa: E402
from remarketing.examples import BANK_FULL  # noqa: E402

FAMILIES = "logreg,hgb,mlp"  # every family that can be champion


class TreeMemory(Sampler):
    """Peaks of RSS, with children, of what the run itself uses: its pipeline processes summed with the
    model server of the version it scores, and that server alone. Services (emulator, MLflow, API) and
    the idle servers of other versions (an earlier family's) are left out."""

    def __init__(self, state_dir: Path, server: str) -> None:
        from remarketing.processes import ProcessRegistry

        super().__init__()
        self.registry = ProcessRegistry(state_dir)
        self.server = server  # the registry name of the run's model server
        self.peak = 0
        self.server_peak = 0

    def sample(self) -> None:
        total = server = 0
        for entry in self.registry.entries():
            if entry.kind == "service" or (entry.kind == "model-server" and entry.name != self.server):
                continue
            try:
                root = psutil.Process(entry.pid)
                rss = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
            except psutil.Error:
                continue
            total += rss
            server = rss if entry.name == self.server else server
        self.peak = max(self.peak, total)
        self.server_peak = max(self.server_peak, server)


def weekly_file(source: Path, rows: int, path: Path, seed: int = 7) -> Path:
    frame = pd.read_csv(source, sep=";")
    sample = frame.sample(rows, replace=True, random_state=seed).drop(columns="y").reset_index(drop=True)
    sample.insert(0, "customer_id", [f"W{i:07d}" for i in range(rows)])
    sample.to_csv(path, sep=";", index=False)
    return path


def register_families(settings, source: Path) -> dict[str, str]:
    """Fit each family on every row, calibrated as the pipeline does (Platt on the latest period's
    out-of-time scores, by the model fitted before it), and register it."""
    from remarketing import bundle
    from remarketing.datasets import load_spec
    from remarketing.drift import reference_profile
    from remarketing.models import FAMILIES, fit_family, platt
    from remarketing.storage import Storage, join
    from remarketing.validation import Purpose, validate
    from tracking.log import MlflowTracker
    from tracking.registry import CHAMPION, MlflowRegistry

    spec = load_spec("bank-marketing")
    both = validate(source.read_bytes(), spec, Purpose.TRAINING).frame
    cut = int(len(both) * 0.9)
    registry, storage = MlflowRegistry(settings.tracking_uri), Storage(settings)
    name = settings.model_name("bank-marketing")
    versions = {}
    for i, family in enumerate(FAMILIES, start=1):
        before = fit_family(family, spec, both.iloc[:cut], seed=42, background_rows=200)
        model = fit_family(family, spec, both, seed=42, background_rows=200)
        model.calibration = platt(before.margin(both.iloc[cut:]), both["y"].to_numpy()[cut:])
        with tempfile.TemporaryDirectory() as tmp:
            folder = bundle.save(
                model, Path(tmp) / "b", {"training_profile": reference_profile(both, spec.feature_names)}
            )
            MlflowTracker(settings.tracking_uri).add_model_flavour(folder)
            uri = join(settings.artifacts_root, "model-output", name, str(i))
            storage.upload_dir(folder, uri)
        versions[family] = registry.register(name, uri, run_id=None, tags={"family": family}).version
    registry.set_alias(name, CHAMPION, versions["logreg"])
    return versions


def pipeline_run(settings, path: Path, version: str) -> dict:
    env = {**os.environ, **settings.to_env(), "OMP_WAIT_POLICY": "PASSIVE"}
    started = time.perf_counter()
    from serving.deployer import server_name

    with TreeMemory(
        settings.state_dir, server_name(settings.model_name("bank-marketing"), version)
    ) as memory:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "cli",
                "score",
                str(path),
                "--model-version",
                version,
                "--budget",
                "10000",
            ],
            env=env,
            capture_output=True,
            text=True,
        )
    wall = time.perf_counter() - started
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["status"] != "success":
        raise SystemExit(f"scoring failed: {result.get('error')}")
    from remarketing.runs import RunStore
    from remarketing.storage import Storage

    steps = {
        s.name: s for s in RunStore(Storage(settings), settings.artifacts_root).get(result["run_id"]).steps
    }
    from datetime import datetime

    step_seconds = {
        name: round(
            (datetime.fromisoformat(s.finished) - datetime.fromisoformat(s.started)).total_seconds(), 1
        )
        for name, s in steps.items()
        if s.started and s.finished
    }
    score_seconds = step_seconds["score"]
    rows = result["rows_scored"]
    return {
        "rows": rows,
        "wall_seconds": round(wall, 1),
        "rows_per_second": round(rows / wall),
        "score_step_rows_per_second": round(rows / score_seconds),
        "step_seconds": step_seconds,
        "peak_rss_mb": round(memory.peak / 2**20),
        "server_peak_rss_mb": round(memory.server_peak / 2**20),
    }


def same_steps_run(settings, path: Path, version: str) -> dict:
    """The pipeline's steps (validate, deploy, score through the server, publish) run one after the other
    in this process (``components.runner.run_in_process``): the pipeline without the orchestrator's task
    start-ups, the upload and the trigger. The server is the one the pipeline run left up."""
    from components.runner import run_in_process
    from remarketing.runs import RunStore
    from remarketing.storage import Storage

    run_id, uri = in_process_record(settings, "scoring", path, {"model_version": version, "budget": 10000})
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run_in_process("scoring", settings, run_id, uri, Path(tmp))
    seconds = time.perf_counter() - started  # a failed step raised: the run succeeded
    record = RunStore(Storage(settings), settings.artifacts_root).get(run_id)
    return {"seconds": round(seconds, 1), "rows_per_second": round(record.metrics["rows_scored"] / seconds)}


def in_process_run(settings, path: Path, version: str) -> dict:
    from remarketing import bundle
    from remarketing.datasets import load_spec
    from remarketing.reasons import reason_columns
    from remarketing.storage import Storage
    from remarketing.validation import Purpose, validate_file
    from tracking.registry import MlflowRegistry

    spec = load_spec("bank-marketing")
    info = MlflowRegistry(settings.tracking_uri).get(settings.model_name("bank-marketing"), version)
    with tempfile.TemporaryDirectory() as tmp:
        model = bundle.load(Storage(settings).download_dir(info.source, Path(tmp) / "m"))
        chunks = [c.frame for c in validate_file(path, spec, Purpose.SCORING)]
        rows = sum(len(c) for c in chunks)
        started = time.perf_counter()
        with PeakMemory(os.getpid()) as memory:
            for frame in chunks:  # what the model server runs for each batch
                p, e = model.scores(frame)
                reason_columns(e.contributions, frame)
                assert len(p) == len(frame)
        seconds = time.perf_counter() - started
    return {
        "rows": rows,
        "seconds": round(seconds, 1),
        "rows_per_second": round(rows / seconds),
        "peak_rss_mb": round(memory.peak / 2**20),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=example(BANK_FULL))
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rows-slow", type=int, default=100_000, help="rows for the hgb and mlp families")
    parser.add_argument("--families", default=FAMILIES)
    args = parser.parse_args()
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    from local_stack import services

    results = {}
    with tempfile.TemporaryDirectory() as state:
        settings = services.private_settings(Path(state))
        services.ensure_stack(settings)
        try:
            versions = register_families(settings, args.data)
            for family in args.families.split(","):
                rows = args.rows if family == "logreg" else args.rows_slow
                path = weekly_file(args.data, rows, Path(state) / f"weekly-{family}.csv")
                pipeline = pipeline_run(settings, path, versions[family])
                in_process = in_process_run(settings, path, versions[family])
                # after in_process_run: its peak memory is this process's, and must not hold these steps'
                same_steps = same_steps_run(settings, path, versions[family])
                results[family] = {
                    "pipeline": pipeline,
                    "same_steps_in_one_process": same_steps,
                    "in_process": in_process,
                    "throughput_ratio": round(pipeline["rows_per_second"] / in_process["rows_per_second"], 3),
                    "same_steps_ratio": round(pipeline["rows_per_second"] / same_steps["rows_per_second"], 3),
                    "score_step_ratio": round(
                        pipeline["score_step_rows_per_second"] / in_process["rows_per_second"], 3
                    ),
                }
                print(family, json.dumps(results[family]), flush=True)
        finally:
            services.down(settings)
    record(  # a run of some families only is its own record, so the full one keeps every family
        "batch_scoring" if args.families == FAMILIES else f"batch_scoring-{args.families.replace(',', '-')}",
        {
            "data": args.data.name,
            "families": results,
            "note": "throughput_ratio: end to end (upload..publish) over in-process predict+SHAP+reasons; "
            "same_steps_ratio: end to end over the pipeline's own steps run in one process",
        },
    )


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
