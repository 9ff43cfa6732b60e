"""Run one launched run's pipeline on ``kfp.local`` (``python -m pipelines.local_runner RUN_ID``).

Waits for a free slot first (``pipeline_concurrency`` of them, as file locks in the state folder), so
many uploads never run more pipelines at once than the machine holds; the run stays ``queued`` until then.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from remarketing.runs import RunStore
from remarketing.settings import Settings
from remarketing.storage import Storage

log = logging.getLogger("remarketing.pipeline")


@contextmanager
def slot(state_dir: Path, slots: int) -> Iterator[int]:
    folder = state_dir / "queue"
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        for number in range(slots):
            handle = open(folder / f"slot-{number}.lock", "w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            try:
                yield number
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
            return
        time.sleep(0.5)


def _started(record) -> None:
    """The run is running from the moment its process holds a slot (before KFP's imports)."""
    record.pipeline_run["started_pid"] = os.getpid()
    if record.status == "queued":
        record.status = "running"


def pipeline_for(kind: str, image: str):
    from pipelines.definitions import build

    return build(kind, image)


def run(run_id: str, settings: Settings) -> int:
    from pipelines.launchers import process_name, run_arguments
    from remarketing.processes import ProcessRegistry

    # A queued run waits for its slot holding as little memory as it can (~40 MB): the storage client and
    # KFP are imported only once the slot is taken.
    try:
        with slot(settings.state_dir, settings.pipeline_concurrency):
            from kfp import local

            store = RunStore(Storage(settings), settings.artifacts_root)
            record = store.get(run_id)
            store.update(run_id, _started)
            root = settings.state_dir.resolve() / "pipeline-root"
            local.init(
                runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), raise_on_error=True
            )
            pipeline_for(record.kind, settings.components_image)(**run_arguments(record, settings))
        return 0
    except Exception as exc:  # noqa: BLE001 - any failure ends the run, with its reason
        log.exception("run %s failed", run_id)
        failed = RunStore(Storage(settings), settings.artifacts_root).fail(
            run_id, f"the pipeline failed: {exc}"
        )
        from observability.push import push

        push(settings, failed)
        return 1
    finally:
        ProcessRegistry(settings.state_dir).forget(process_name(run_id))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.exit(run(sys.argv[1], Settings()))


if __name__ == "__main__":
    main()
