"""Shared helpers for benchmarks: a private local stack, process-tree memory sampling, result records."""

from __future__ import annotations

import json
import platform
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

from remarketing.processes import free_port  # noqa: F401 - re-exported for the scripts

RESULTS = Path(__file__).parent / "results"
OUT = Path(__file__).parent / "out"  # git-ignored


def example(relative: Path) -> Path:
    """An example file as a plain CSV path (the shipped bank-full is gzip: decompressed once into out/).
    Thera Bank is not shipped (no licence): it is looked for in REMARKETING_DATA_DIR, then in the shared
    data folder beside the repository."""
    from remarketing import examples

    found = examples.find(relative) or examples.find(relative, SHARED_DATA)
    if found is None:
        return examples.data_dir() / relative  # the scripts' own error names the missing file
    if found.suffix != ".gz":
        return found
    plain = OUT / relative
    if not plain.exists():
        plain.parent.mkdir(parents=True, exist_ok=True)
        plain.write_bytes(examples.read_bytes(found))
    return plain


SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


class Sampler:
    """Calls ``sample()`` every ``interval`` seconds in a thread while the ``with`` block runs."""

    interval = 0.2

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            time.sleep(self.interval)

    def __enter__(self):  # noqa: ANN204 - returns the subclass
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class PeakMemory(Sampler):
    """Samples the summed RSS of a process and its descendants (optionally excluding some PIDs)."""

    def __init__(self, pid: int, exclude: set[int] | None = None, interval: float = 0.1) -> None:
        super().__init__()
        self.pid, self.exclude, self.interval = pid, exclude or set(), interval
        self.peak = 0

    def sample(self) -> None:
        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
            total = sum(p.memory_info().rss for p in procs if p.pid not in self.exclude)
            self.peak = max(self.peak, total)
        except psutil.Error:
            pass


def in_process_record(settings, kind: str, path: Path, params: dict | None = None) -> tuple[str, str]:
    """A run record for ``path`` uploaded outside the trigger's folders (``benchmark/``: no function
    launches a pipeline on it while it is measured), for ``components.runner.run_in_process``:
    ``(run_id, source_uri)``."""
    from remarketing.runs import RunRecord, RunStore, Source, run_id_for
    from remarketing.storage import Storage

    storage = Storage(settings)
    name = f"benchmark/{kind}-in-process-{path.name}"
    uri = f"gs://{settings.landing_bucket}/{name}"
    generation = storage.upload_file(uri, path)
    run_id = run_id_for(settings.landing_bucket, name, generation)
    source = Source(uri=uri, generation=generation)
    record = RunRecord(run_id=run_id, kind=kind, dataset="bank-marketing", source=source, params=params or {})
    RunStore(storage, settings.artifacts_root).create(record)
    return run_id, uri


def run_cli(env: dict[str, str], *args: str) -> tuple[float, dict, str]:
    """Seconds, the JSON line (empty if none) and stderr of one `remarketing` command, as a user runs it."""
    import os
    import subprocess
    import sys

    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        stdin=subprocess.DEVNULL,
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    return time.perf_counter() - started, json.loads(lines[-1]) if lines else {}, done.stderr


def record(name: str, figures: dict) -> Path:
    """``results/<name>.json``: the figures, the machine and the date, and the file's previous figures
    under ``previous``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": psutil.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(),
        },
        **figures,
    }
    path = RESULTS / f"{name}.json"
    if path.exists():  # every figure with the previous one beside it (one run back)
        earlier = json.loads(path.read_text())
        earlier.pop("previous", None)
        payload["previous"] = earlier
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload, indent=2))
    return path
