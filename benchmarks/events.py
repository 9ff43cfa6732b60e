"""The event path, locally: latency from an object finalized in the landing bucket to its run record
`running` (bridge poll + CloudEvent + function + launch() + the pipeline process taking its slot), and
the memory of the idle local stack, per service.

    .venv/bin/python benchmarks/events.py [--events 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import record  # noqa: E402

WEEKLY = "customer_id;age\nC1;40\n"  # its run fails at validate: cheap, and the latency is the same


def tree_rss(pid: int) -> int:
    try:
        root = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
    except psutil.Error:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10)
    args = parser.parse_args()
    from local_stack import services
    from remarketing.processes import ProcessRegistry
    from remarketing.runs import RunStore, run_id_for
    from remarketing.storage import Storage

    with tempfile.TemporaryDirectory() as state:
        settings = services.private_settings(Path(state))
        services.ensure_stack(settings, services.ALL)
        try:
            time.sleep(5)  # settle
            idle = {
                e.name: round(tree_rss(e.pid) / 2**20) for e in ProcessRegistry(settings.state_dir).entries()
            }
            storage = Storage(settings)
            store = RunStore(storage, settings.artifacts_root)
            latencies = []
            for i in range(args.events):
                name = f"weekly/latency-{i}.csv"
                generation = storage.write_text(f"gs://{settings.landing_bucket}/{name}", WEEKLY)
                finalized = time.perf_counter()
                run_id = run_id_for(settings.landing_bucket, name, generation)
                while True:
                    try:
                        if store.get(run_id).status != "queued":
                            break
                    except Exception:  # noqa: BLE001 - not created yet
                        pass
                    time.sleep(0.01)
                latencies.append(time.perf_counter() - finalized)
                time.sleep(3)  # one at a time: the latency of an event, not of a queue
        finally:
            services.down(settings)
    record(
        "events",
        {
            "events": args.events,
            "finalized_to_running_seconds": {
                "p50": round(statistics.median(latencies), 2),
                "max": round(max(latencies), 2),
                "all": [round(x, 2) for x in latencies],
            },
            "idle_stack_rss_mb": {**idle, "total": sum(idle.values())},
        },
    )


if __name__ == "__main__":
    main()
