"""The monitoring pipeline on a week of 10,000 customers, as a user runs it: `remarketing outcomes` on the
outcomes of a week scored through `remarketing score`, on a private local stack (kfp.local).

Prints and records the seconds from the outcomes command to its end, the monitoring run's own duration
(record created to finished) and each step's, and the realized figures of that week.

    .venv/bin/python benchmarks/monitoring.py [--customers 10000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import example, record, run_cli  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=10_000)
    args = parser.parse_args()
    from local_stack import services
    from remarketing.runs import RunStore
    from remarketing.storage import Storage

    frame = pd.read_csv(example(Path("bank-marketing/bank-full.csv")), sep=";")
    cut = int(len(frame) * 0.7)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings = services.private_settings(folder / "state")
        env = settings.to_env()
        history, week, outcomes = folder / "history.csv", folder / "week.csv", folder / "outcomes.csv"
        frame.iloc[:cut:5].to_csv(history, sep=";", index=False)
        later = frame.iloc[cut : cut + args.customers].copy()
        later.insert(0, "customer_id", [f"C{i}" for i in later.index])
        later.drop(columns="y").to_csv(week, sep=";", index=False)
        later[["customer_id", "y"]].to_csv(outcomes, sep=";", index=False)
        try:
            _, trained, _ = run_cli(env, "train", str(history))
            assert trained.get("status") == "success", trained
            # the version trained here, champion or not (a short history may not clear the gate)
            version = str(trained["model_version"])
            budget = str(args.customers // 10)
            _, scored, _ = run_cli(env, "score", str(week), "--budget", budget, "--model-version", version)
            assert scored.get("status") == "success", scored
            wall, monitored, _ = run_cli(env, "outcomes", str(outcomes), "--run", scored["run_id"])
            assert monitored.get("status") == "success", monitored
            run = RunStore(Storage(settings), settings.artifacts_root).get(monitored["run_id"])
        finally:
            services.down(settings)
    record(
        "monitoring",
        {
            "what": "remarketing outcomes on a scored week of bank-full (rows after the 70% cut-off), the "
            "model trained on every 5th row before it",
            "customers": len(later),
            "outcomes_command_seconds": round(wall, 1),
            "monitoring_run_seconds": seconds(run.created, run.updated),
            "steps": {s.name: seconds(s.started, s.finished) for s in run.steps},
            "realized_roc_auc": monitored.get("realized_roc_auc"),
            "realized_conversion_rate_targeted": monitored.get("realized_conversion_rate_targeted"),
            "expected_conversion_rate_targeted": monitored.get("expected_conversion_rate_targeted"),
            "promise_inside": monitored.get("promise_inside"),
            "incremental_conversion_rate": monitored.get("incremental_conversion_rate"),
            "model_version": trained.get("model_version"),
            "promoted": trained.get("promoted"),
        },
    )


if __name__ == "__main__":
    main()
