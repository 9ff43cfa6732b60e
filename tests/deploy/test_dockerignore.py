""".dockerignore against the Dockerfiles: every file a COPY line takes from the build context is sent to
the build (a file left out fails the build, or worse, a package installs without its data), and what must
never reach an image (state, secrets, virtualenvs, git history, tests and data) is left out.

Docker reads the file with moby's patternmatcher: patterns in order, the last one that matches a path or
one of its parent folders decides; ``!`` lets a path back in; ``*`` and ``?`` stop at ``/``, ``**`` does
not. ``ignored`` below does the same on the files git tracks.
"""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

from .conftest import REPO
from .test_dockerfiles import DOCKERFILES, instructions

pytestmark = pytest.mark.deploy

DOCKERIGNORE = REPO / ".dockerignore"


def _regex(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.index("]", i)
            out.append(pattern[i : end + 1])
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out))


def rules(text: str) -> list[tuple[bool, re.Pattern[str], str]]:
    """(lets back in, the pattern, as written) for each line, comments and blank lines left out."""
    found = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.removeprefix("!").strip().strip("/")
        pattern = re.sub(r"(^|/)\./", r"\1", pattern)
        found.append((negated, _regex(pattern), line))
    return found


def ignored(path: str, text: str) -> bool:
    """Whether Docker leaves ``path`` (relative to the context, with /) out of the build context."""
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    out = False
    for negated, regex, _ in rules(text):
        if any(regex.fullmatch(c) for c in candidates):
            out = not negated
    return out


@cache
def tracked() -> tuple[str, ...]:
    done = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True)
    return tuple(done.stdout.splitlines())


def copied(dockerfile: Path) -> list[str]:
    """The context paths a Dockerfile's COPY and ADD lines take (not those from another stage)."""
    sources = []
    for word, args in instructions(dockerfile):
        if word not in ("COPY", "ADD"):
            continue
        tokens = args.split()
        if any(t.startswith("--from") for t in tokens):
            continue
        tokens = [t for t in tokens if not t.startswith("--")]
        sources += [t.rstrip("/").removeprefix("./") for t in tokens[:-1]]
    return sources


def context_problems(text: str) -> list[str]:
    """Each file a Dockerfile copies that the .dockerignore ``text`` leaves out of the context."""
    problems = []
    for dockerfile in DOCKERFILES:
        name = dockerfile.relative_to(REPO).as_posix()
        for source in copied(dockerfile):
            files = [f for f in tracked() if f == source or f.startswith(source + "/")]
            if not files:
                problems.append(f"{name}: COPY {source}, which git does not track")
            problems += [
                f"{name}: COPY {source} needs {f}, which .dockerignore leaves out"
                for f in files
                if ignored(f, text)
            ]
    return problems


def test_every_file_a_dockerfile_copies_reaches_the_build():
    text = DOCKERIGNORE.read_text(encoding="utf-8")
    assert copied(REPO / "mlflow" / "Dockerfile") == ["mlflow/requirements.txt", "mlflow/serve.py"]
    assert {"src", "README.md", "frontend/app"} <= set(copied(REPO / "frontend" / "app" / "Dockerfile"))
    assert context_problems(text) == []


def test_a_copied_file_left_out_is_reported():
    text = DOCKERIGNORE.read_text(encoding="utf-8") + "\nsrc/remarketing/specs\n"
    problems = context_problems(text)
    assert problems, "a package's data left out of the context went unnoticed"
    assert all("COPY src needs src/remarketing/specs/" in p for p in problems), problems
    assert {p.split(":")[0] for p in problems} == {
        "docker/components.Dockerfile",
        "serving/Dockerfile",
        "frontend/api/Dockerfile",
        "frontend/app/Dockerfile",
    }


NEVER_SENT = [
    ".git/config",
    ".venv/bin/python",
    ".venv-checks/bin/checkov",
    ".remarketing/emulator/landing/weekly.csv",
    ".env",
    "frontend/api/.env",
    "terraform/envs/prod/infra/terraform.tfvars",
    "terraform/envs/prod/infra/.terraform/terraform.tfstate",
    "build/functions/on_input_file.zip",
    "tests/conftest.py",
    "data/bank-marketing/bank-full.csv.gz",
    "src/remarketing/__pycache__/settings.cpython-311.pyc",
    "remarketing.egg-info/PKG-INFO",
    "frontend/api/server.log",
]


@pytest.mark.parametrize("path", NEVER_SENT)
def test_state_secrets_and_build_output_never_reach_a_build(path):
    assert ignored(path, DOCKERIGNORE.read_text(encoding="utf-8"))


def test_the_matcher_reads_patterns_as_docker_does():
    text = "*\n!src\n**/__pycache__\n!src/keep/__pycache__\n"
    assert ignored("docs/a.md", text) and ignored("a.txt", text)
    assert not ignored("src/remarketing/settings.py", text)
    assert ignored("src/remarketing/__pycache__/x.pyc", text)
    assert not ignored("src/keep/__pycache__/x.pyc", text)  # the last matching line decides
    assert ignored("dir/x.py", "dir/*.py\n") and not ignored("dir/sub/x.py", "dir/*.py\n")
    assert ignored("dir/sub/x.py", "dir/**/*.py\n") and ignored("dir/x.py", "dir/**/*.py\n")
