"""Run the real CLI as a user would: a subprocess, JSON on the last stdout line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any


@dataclass
class CliResult:
    code: int
    json: dict[str, Any]
    stderr: str


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> CliResult:
    process = subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )
    lines = process.stdout.strip().splitlines()
    payload = json.loads(lines[-1]) if lines else {}
    return CliResult(process.returncode, payload, process.stderr)
