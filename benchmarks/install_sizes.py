"""The install size of each role's extra, as its image or function installs it: a fresh venv per role,
``pip install -c constraints.txt ".[<role>]"`` (no cache, not editable), the size of its site-packages, and
a smoke run of the role's entry point in that venv (so a missing dependency fails here, not in an image).

    .venv/bin/python benchmarks/install_sizes.py [--roles api app functions serving pipelines]

Aim (issue 10): the API, the app and the functions each under 500 MB.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import record  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SMOKE = {
    "api": "from frontend.api.main import create_app; from fastapi.testclient import TestClient; "
    "assert TestClient(create_app()).get('/healthz').status_code == 200",
    "app": "import streamlit, frontend.app.client, frontend.app.ui",
    "functions": "import functions_framework, cloud_functions.storage_event, pipelines.compile",
    "serving": "import serving.model, serving.deployer, remarketing.models",
    "pipelines": "from pipelines.compile import compile_all; import tempfile, pathlib; "
    "compile_all(pathlib.Path(tempfile.mkdtemp()), 'example.org/components:1'); "
    "import components.runner, tracking.log",
}


def size_of(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def measure(role: str, workdir: Path) -> dict:
    venv = workdir / role
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-cache-dir"]
    started = time.perf_counter()
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-c", str(REPO / "constraints.txt"), f"{REPO}[{role}]"], check=True, cwd=workdir)
    seconds = time.perf_counter() - started
    site = next((venv / "lib").glob("python*/site-packages"))
    smoke = subprocess.run(
        [str(venv / "bin" / "python"), "-c", SMOKE[role]], capture_output=True, text=True, cwd=workdir
    )
    result = {
        "site_packages_mb": round(size_of(site) / 2**20),
        "install_seconds": round(seconds),
        "smoke": "ok" if smoke.returncode == 0 else smoke.stderr.strip().splitlines()[-1],
    }
    print(role, result, flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--roles", nargs="+", default=list(SMOKE))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sizes = {role: measure(role, Path(tmp)) for role in args.roles}
    record(
        "install_sizes",
        {"method": "pip install -c constraints.txt '.[<role>]' in a fresh venv", "roles": sizes},
    )


if __name__ == "__main__":
    main()
