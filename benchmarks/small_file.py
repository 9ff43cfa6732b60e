"""A small weekly file's fixed cost: a 40-row file scored through ``remarketing score`` (the path a user
runs) several times, one after the other, with the champion's server already up after the first. The
figure is the run record's time from the file landing (the record is created by the trigger) to
``success``, p50 over the runs, with each step's seconds beside it so the start-up costs show.

    .venv/bin/python benchmarks/small_file.py [--runs 7] [--rows 40]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import example, record  # noqa: E402
from benchmarks.batch_scoring import register_families, weekly_file  # noqa: E402
from remarketing.examples import BANK_FULL  # noqa: E402


def one_run(settings, path: Path, version: str) -> dict:
    from remarketing.runs import RunStore
    from remarketing.storage import Storage

    env = {**os.environ, **settings.to_env(), "OMP_WAIT_POLICY": "PASSIVE"}
    out = subprocess.run(
        [sys.executable, "-m", "cli", "score", str(path), "--model-version", version],
        env=env,
        capture_output=True,
        text=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["status"] != "success":
        raise SystemExit(f"scoring failed: {result.get('error')}\n{out.stderr[-2000:]}")
    run = RunStore(Storage(settings), settings.artifacts_root).get(result["run_id"])
    iso = datetime.fromisoformat
    done = max(iso(s.finished) for s in run.steps if s.finished)
    return {
        "landed_to_success_seconds": round((done - iso(run.created)).total_seconds(), 2),
        "step_seconds": {
            s.name: round((iso(s.finished) - iso(s.started)).total_seconds(), 2)
            for s in run.steps
            if s.started and s.finished
        },
        "first_step_waited_seconds": round((iso(run.steps[0].started) - iso(run.created)).total_seconds(), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=example(BANK_FULL))
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--rows", type=int, default=40)
    args = parser.parse_args()
    from local_stack import services

    runs = []
    with tempfile.TemporaryDirectory() as state:
        settings = services.private_settings(Path(state))
        services.ensure_stack(settings)
        try:
            version = register_families(settings, args.data)["logreg"]
            for i in range(args.runs):
                path = weekly_file(args.data, args.rows, Path(state) / f"small-{i}.csv", seed=i)
                runs.append(one_run(settings, path, version))
                print(json.dumps(runs[-1]), flush=True)
        finally:
            services.down(settings)
    warm = [r["landed_to_success_seconds"] for r in runs[1:]]  # the first also starts the server
    record(
        "small_file",
        {
            "rows": args.rows,
            "runs": runs,
            "first_run_seconds": runs[0]["landed_to_success_seconds"],
            "warm_p50_seconds": round(statistics.median(warm), 2),
            "warm_max_seconds": max(warm),
            "note": "landed (run record created by the trigger) to the last step's success",
        },
    )


if __name__ == "__main__":
    main()
