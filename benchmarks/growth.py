"""How scoring grows with the file: the logistic champion scores weekly files of 10k to 10M rows end to end
(``remarketing score``, the path a user runs), and each step's time and peak memory are recorded, so that
what grows with the row count shows. Also the model server's rate, the per-replica figure that
docs/sizing.md turns into shards and replicas for 100M customers a week.

    .venv/bin/python benchmarks/growth.py [--sizes 10000,100000,1000000,10000000] [--shards 1]

Per-step memory: every process of the run is sampled every 0.2 s and charged to the step its kfp.local
task folder names (the model server is its own line). Files come from bank-full resampled with new ids.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import Sampler, example, record  # noqa: E402
from benchmarks.batch_scoring import register_families, weekly_file  # noqa: E402
from remarketing.examples import BANK_FULL  # noqa: E402

# A task's command line names its inputs' producers too: its own folder is the one of its metrics output.
TASK = re.compile(r"([a-z][a-z-]*)/metrics\b")


class StepMemory(Sampler):
    """Peak RSS per step of one run: each process under ``root`` is charged to the step of its task
    folder (from its command line); the run's model server is charged to ``model-server``."""

    def __init__(self, root: int, server_pid: Callable[[], int | None]) -> None:
        super().__init__()
        self.root, self.server_pid = root, server_pid
        self.peaks: dict[str, int] = {}

    def sample(self) -> None:
        now: dict[str, int] = {}
        try:
            processes = [psutil.Process(self.root), *psutil.Process(self.root).children(recursive=True)]
        except psutil.Error:
            return
        server = self.server_pid()
        for p in processes:
            try:
                found = TASK.search(" ".join(p.cmdline()))
                if found:
                    now[found.group(1)] = now.get(found.group(1), 0) + p.memory_info().rss
            except psutil.Error:
                continue
        if server:
            try:
                now["model-server"] = psutil.Process(server).memory_info().rss
            except psutil.Error:
                pass
        for step, rss in now.items():
            self.peaks[step] = max(self.peaks.get(step, 0), rss)


def scored_run(settings, path: Path, version: str, shards: int) -> dict:
    from remarketing.processes import ProcessRegistry
    from remarketing.runs import RunStore
    from remarketing.storage import Storage
    from serving.deployer import server_name

    env = {
        **os.environ,
        **settings.to_env(),
        "OMP_WAIT_POLICY": "PASSIVE",
        "REMARKETING_SCORING_SHARDS": str(shards),
    }
    name = server_name(settings.model_name("bank-marketing"), version)

    def server_pid() -> int | None:
        entry = ProcessRegistry(settings.state_dir).get(name)
        return entry.pid if entry else None

    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "score", str(path), "--model-version", version, "--budget", "10000"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with StepMemory(process.pid, server_pid) as memory:
        stdout, stderr = process.communicate()
    wall = time.perf_counter() - started
    result = json.loads(stdout.strip().splitlines()[-1])
    if result["status"] != "success":
        raise SystemExit(f"scoring failed: {result.get('error')}\n{stderr[-2000:]}")
    steps = RunStore(Storage(settings), settings.artifacts_root).get(result["run_id"]).steps
    iso = datetime.fromisoformat
    seconds = {
        s.name: round((iso(s.finished) - iso(s.started)).total_seconds(), 1)
        for s in steps
        if s.started and s.finished
    }
    rows = result["rows_scored"]
    return {
        "rows": rows,
        "file_mb": round(path.stat().st_size / 2**20, 1),
        "wall_seconds": round(wall, 1),
        "rows_per_second": round(rows / wall),
        "step_seconds": seconds,
        "score_step_rows_per_second": round(rows / seconds["score"]) if seconds.get("score") else None,
        "step_peak_rss_mb": {k: round(v / 2**20) for k, v in sorted(memory.peaks.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=example(BANK_FULL))
    parser.add_argument("--sizes", default="10000,100000,1000000,10000000")
    parser.add_argument("--shards", type=int, default=1)
    args = parser.parse_args()
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    from local_stack import services

    runs = []
    with tempfile.TemporaryDirectory() as state:
        settings = services.private_settings(Path(state))
        services.ensure_stack(settings)
        try:
            versions = register_families(settings, args.data)
            for rows in (int(n) for n in args.sizes.split(",")):
                path = weekly_file(args.data, rows, Path(state) / f"weekly-{rows}.csv")
                runs.append(scored_run(settings, path, versions["logreg"], args.shards))
                path.unlink()
                print(json.dumps(runs[-1]), flush=True)
        finally:
            services.down(settings)
    first, last = runs[0], runs[-1]
    growth = last["rows"] / first["rows"]
    record(
        "growth",
        {
            "data": args.data.name,
            "family": "logreg",
            "shards": args.shards,
            "runs": runs,
            "time_growth_over_rows_growth": round(last["wall_seconds"] / first["wall_seconds"] / growth, 4),
            "note": (
                "rows grow by the factor in the first and last runs; step_peak_rss_mb shows which steps "
                "grow with the file (flat: streamed in chunks)"
            ),
        },
    )


if __name__ == "__main__":
    main()
