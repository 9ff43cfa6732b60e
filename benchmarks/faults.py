"""How fast a fault is named, on the paths users run: a private local stack, a champion trained through the
CLI on a bank-full sample, then MLflow stopped by `remarketing`'s own registry (its whole process group).

- a weekly file uploaded through the API and launched as the storage trigger's function does: seconds
  until its run has failed, and its message (the registry named as unavailable, not "no champion");
- the API routes the Home and Model pages call (`/runs`, `/models`): seconds until the answer, its status
  and detail;
- then MLflow started again (`remarketing up`) and the same file scored: the run succeeds.

    .venv/bin/python benchmarks/faults.py [--rows-step 10]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import example, record, run_cli  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def upload_and_wait(settings, key: str, data: bytes) -> tuple[float, dict]:
    """POST /uploads, then launch() as the function does; seconds from the launch to the run's end."""
    from pipelines.launchers import launcher_for
    from remarketing.launch import launch
    from remarketing.runs import RunStore
    from remarketing.storage import Storage

    response = httpx.post(
        f"http://127.0.0.1:{settings.api_port}/uploads",
        headers={"X-API-Key": key},
        files={"file": ("week.csv", data, "text/csv")},
        timeout=120,
    )
    response.raise_for_status()
    bucket, name = response.json()["object"].removeprefix("gs://").split("/", 1)
    started = time.perf_counter()
    record = launch(
        bucket, name, response.json()["generation"], settings=settings, launcher=launcher_for(settings)
    )
    store = RunStore(Storage(settings), settings.artifacts_root)
    while not (found := store.get(record.record.run_id)).finished:
        time.sleep(0.2)
    return time.perf_counter() - started, json.loads(found.model_dump_json())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows-step", type=int, default=10, help="every n-th row of bank-full as history")
    args = parser.parse_args()
    from local_stack import services
    from remarketing.processes import ProcessRegistry
    from remarketing.secrets import api_key

    frame = pd.read_csv(example(Path("bank-marketing/bank-full.csv")), sep=";")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings = services.private_settings(folder / "state")
        env = settings.to_env()
        history = folder / "history.csv"
        frame.iloc[: int(len(frame) * 0.8) : args.rows_step].to_csv(history, sep=";", index=False)
        weekly = frame.iloc[int(len(frame) * 0.8) :: 20].drop(columns="y")
        weekly.insert(0, "customer_id", [f"C{i}" for i in weekly.index])
        week = folder / "week.csv"
        week.write_text(weekly.to_csv(sep=";", index=False))
        try:
            trained_s, trained, _ = run_cli(env, "train", str(history))
            assert trained.get("status") == "success", trained
            ProcessRegistry(settings.state_dir).stop("mlflow")  # MLflow down; the champion stays registered

            # The path an analyst takes: the upload through the API, launched as the storage trigger's
            # function does (the CLI would start MLflow again before scoring).
            key = api_key(settings)
            score_s, scored = upload_and_wait(settings, key, week.read_bytes())
            pages = {}
            for route in ("/runs", "/models"):
                started = time.perf_counter()
                response = httpx.get(
                    f"http://127.0.0.1:{settings.api_port}{route}", headers={"X-API-Key": key}, timeout=120
                )
                pages[route] = {
                    "seconds": round(time.perf_counter() - started, 2),
                    "status": response.status_code,
                    "detail": (response.json().get("detail") if response.status_code >= 400 else None),
                }
            services.ensure_stack(settings)  # MLflow back
            again_s, again, _ = run_cli(env, "score", str(week))
        finally:
            services.down(settings)
    record(
        "faults",
        {
            "what": "MLflow stopped after a champion was trained (CLI); a weekly file uploaded through the "
            "API and launched as the storage trigger's function does, then the API routes the Home and "
            "Model pages call; then MLflow restarted and the file scored again through the CLI",
            "history_rows": int(len(frame) * 0.8) // args.rows_step,
            "weekly_rows": len(weekly),
            "training_seconds": round(trained_s, 1),
            "scoring_with_registry_down": {
                "seconds_from_launch_to_end": round(score_s, 1),
                "status": scored.get("status"),
                "step": (scored.get("error") or {}).get("step"),
                "message": (scored.get("error") or {}).get("message"),
            },
            "api_with_registry_down": pages,
            "scoring_after_restart": {"seconds": round(again_s, 1), "status": again.get("status")},
        },
    )


if __name__ == "__main__":
    main()
