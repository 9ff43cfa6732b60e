"""The model servers Prometheus scrapes locally: a file-based service-discovery file, rewritten from the
process registry whenever the Deployer starts or stops a server. A registered server whose process died
stays in the file (its target goes down and the alert fires) until a deploy replaces it."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from remarketing.processes import ProcessRegistry

PREFIX = "model-server-"


def targets_file(state_dir: Path) -> Path:
    return Path(state_dir).resolve() / "prometheus" / "targets" / "model-servers.json"


def write_model_server_targets(state_dir: Path) -> Path:
    """Rewrite the file from the registry, one writer at a time (two runs deploying at once would
    otherwise write what each read, and the later file could miss the other's server)."""
    path = targets_file(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _write(state_dir, path)


def _write(state_dir: Path, path: Path) -> Path:
    groups = []
    for entry in ProcessRegistry(state_dir).entries():
        if entry.kind != "model-server" or not entry.address:
            continue
        model, _, version = entry.name.removeprefix(PREFIX).rpartition("-v")
        host = entry.address.split("://", 1)[-1].rstrip("/")
        groups.append({"targets": [host], "labels": {"model": model, "version": version}})
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(sorted(groups, key=lambda g: g["targets"]), indent=2))
    tmp.replace(path)  # Prometheus never reads half a file
    return path
