"""Real Prometheus-family processes for the observability tests: started on free loopback ports in a
temporary folder, waited for on their readiness route, stopped by PID."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from remarketing.processes import free_port


def program(name: str) -> str:
    path = shutil.which(name)
    if path is None:  # CI installs it (make system-packages): never skip silently
        pytest.fail(f"{name} is not installed: run `make system-packages` (Debian's {name} package)")
    return path


def wait_ready(url: str, process: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{url} exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{url} was not ready within {timeout} s: {log.read_text()[-2000:]}")


def start(command: list[str], url: str, folder: Path) -> subprocess.Popen:
    log = folder / "process.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=folder)
    wait_ready(url, process, log)
    return process


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start(
        [program("prometheus-pushgateway"), f"--web.listen-address=127.0.0.1:{port}"], url, tmp_path
    )
    yield url
    stop(process)
