"""Every Dockerfile in the repository (found by glob, so serving/Dockerfile is checked as soon as it exists)
passes hadolint, pins its base images by digest and runs as a non-root user."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import REPO, repo_files, run

pytestmark = pytest.mark.deploy

DOCKERFILES = repo_files("**/Dockerfile", "**/*.Dockerfile", "**/Dockerfile.*")
OWN = [
    "docker/components.Dockerfile",
    "frontend/api/Dockerfile",
    "frontend/app/Dockerfile",
    "mlflow/Dockerfile",
]


def ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(REPO)) for p in paths]


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text(encoding="utf-8"))
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_the_deployment_dockerfiles_exist() -> None:
    found = ids(DOCKERFILES)
    for path in OWN:
        assert path in found, f"{path} missing"


def test_mlflow_folder_is_not_a_package() -> None:
    # An mlflow/__init__.py would shadow the mlflow library for anything run from the repository root.
    assert not (REPO / "mlflow" / "__init__.py").exists()


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=ids(DOCKERFILES))
def test_hadolint(hadolint: Path, dockerfile: Path) -> None:
    result = run([hadolint, "--no-color", "--failure-threshold", "info", dockerfile], timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=ids(DOCKERFILES))
def test_base_images_are_pinned_by_digest(dockerfile: Path) -> None:
    stages: set[str] = set()
    for word, args in instructions(dockerfile):
        if word != "FROM":
            continue
        tokens = [t for t in args.split() if not t.startswith("--")]
        image = tokens[0]
        if image.lower() not in stages and image != "scratch":
            assert re.search(r"@sha256:[0-9a-f]{64}$", image), (
                f"{dockerfile}: base {image} is not pinned by digest"
            )
        if len(tokens) >= 3 and tokens[1].upper() == "AS":
            stages.add(tokens[2].lower())


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=ids(DOCKERFILES))
def test_final_stage_runs_as_non_root(dockerfile: Path) -> None:
    steps = instructions(dockerfile)
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    users = [args for word, args in steps[last_from:] if word == "USER"]
    assert users, f"{dockerfile}: the final stage never sets USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"{dockerfile}: runs as {users[-1]}"


def test_hadolint_catches_a_bad_dockerfile(hadolint: Path, tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install curl\nRUN pip install flask\n")
    result = run([hadolint, "--no-color", bad], timeout=60)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3013"):
        assert rule in result.stdout, result.stdout
