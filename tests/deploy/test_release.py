"""The release pipeline (cloudbuild.yaml, cloudbuild-deploy.yaml, terraform/modules/release) as it is
written, since it cannot run here: every builder pinned by digest, nothing applied that was not planned
and saved first, prod deployed only through the trigger that waits for an approval, and the smoke test
run after the deploy. Each rule is a function listing what a copy of the files breaks, shown failing on an
edited copy."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from .conftest import REPO
from .test_infrastructure import ENVS, Terraform, edited
from .test_terraform import TERRAFORM

pytestmark = pytest.mark.deploy

RELEASE, DEPLOY = "cloudbuild.yaml", "cloudbuild-deploy.yaml"
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def load(root: Path, name: str) -> dict:
    return yaml.safe_load((root / name).read_text(encoding="utf-8"))


def substituted(build: dict, value: str) -> str:
    """A step's value with the build's own substitutions (_X) filled in."""
    return re.sub(r"\$\{(_\w+)\}", lambda m: str(build["substitutions"].get(m[1], m[0])), value)


def script(step: dict) -> str:
    return "\n".join(str(a) for a in step.get("args", []))


def builder_problems(root: Path) -> list[str]:
    problems = []
    for name in (RELEASE, DEPLOY):
        build = load(root, name)
        for step in build["steps"]:
            image = substituted(build, step["name"])
            if not DIGEST.search(image):
                problems.append(f"{name}: step {step['id']} runs {image}, not pinned by digest")
    return problems


def plan_problems(root: Path) -> list[str]:
    """Every apply takes a plan file made by `terraform plan -out` earlier in the release; nothing is applied
    with -auto-approve or without a plan."""
    problems = []
    planned: set[str] = set()
    for name in (RELEASE, DEPLOY):
        text = (root / name).read_text(encoding="utf-8")
        if "auto-approve" in text:
            problems.append(f"{name} applies with -auto-approve")
        for step in load(root, name)["steps"]:
            body = script(step)
            planned |= set(re.findall(r"terraform plan\b[^\n]*-out=(\S+)", body))
            for applied in re.findall(r"terraform apply\b([^\n]*)", body):
                plan = applied.split()[-1] if applied.split() else ""
                if not plan.endswith(".tfplan") or plan not in planned:
                    problems.append(
                        f"{name}: step {step['id']} applies without a saved plan: terraform apply{applied}"
                    )
    return problems


def approval_problems(root: Path, tf: Terraform) -> list[str]:
    """The release build only plans and hands over; the deploy build is the deploy trigger's, which waits
    for an approval in prod; and the deploy build refuses prod from any other start."""
    problems = []
    release = "\n".join(script(s) for s in load(root, RELEASE)["steps"])
    if "terraform apply" in release:
        problems.append(f"{RELEASE} applies: it should only plan and hand over to the deploy trigger")
    if not re.search(
        r'gcloud builds triggers run "\$\{_DEPLOY_TRIGGER\}"[^\n]*--sha="\$\{COMMIT_SHA\}"', release
    ):
        problems.append(f"{RELEASE} does not start the deploy trigger at its own commit")
    deploy = "\n".join(script(s) for s in load(root, DEPLOY)["steps"])
    guard = (
        r'if \[ "\$\{_ENV\}" = prod \] && \[ "\$\{TRIGGER_NAME\}" != "\$\{_NAME\}-deploy" \]; then\n'
        r"[^\n]*\n\s*exit [1-9]"
    )
    if not re.search(guard, deploy):
        problems.append(f"{DEPLOY} deploys prod when not started by the deploy trigger")
    triggers = tf.resources("modules/release/main.tf", "google_cloudbuild_trigger")
    if triggers.get("release", {}).get("filename") != RELEASE:
        problems.append("the release trigger does not run cloudbuild.yaml")
    deploy_trigger = triggers.get("deploy", {})
    if (deploy_trigger.get("git_file_source") or [{}])[0].get("path") != DEPLOY:
        problems.append("the deploy trigger does not run cloudbuild-deploy.yaml")
    approval = (deploy_trigger.get("approval_config") or [{}])[0].get("approval_required")
    if approval != "${var.require_approval}":
        problems.append(f"the deploy trigger's approval_required is {approval}, not var.require_approval")
    if deploy_trigger.get("substitutions", "").count("_NAME = var.name") != 1:
        problems.append(
            "the deploy trigger does not name its environment (_NAME), which the prod guard reads"
        )
    wanted = {"dev": "false", "prod": "true"}
    for env in ENVS:
        given = tf.module_of(f"envs/{env}/infra/main.tf").get("require_approval")
        if str(given).lower() != wanted[env]:
            problems.append(f"envs/{env}/infra: require_approval is {given}, not {wanted[env]}")
    if tf.module("release").get("require_approval") != "${var.require_approval}":
        problems.append("the platform does not hand require_approval to the release triggers")
    return problems


def smoke_problems(root: Path) -> list[str]:
    """After the deploy (both roots applied, the pipelines uploaded), the smoke test runs against the
    deployed API with the API key the app sends."""
    build = load(root, DEPLOY)
    steps = {s["id"]: s for s in build["steps"]}
    smoke = next((s for s in build["steps"] if "remarketing smoke" in script(s)), None)
    if smoke is None:
        return [f"{DEPLOY} runs no smoke test"]
    problems = []
    after: set[str] = set()
    waiting = list(smoke.get("waitFor", []))
    while waiting:
        step = waiting.pop()
        if step in steps and step not in after:
            after.add(step)
            waiting += steps[step].get("waitFor", [])
    for needed in ("apply-infra", "apply-cluster", "upload-pipelines"):
        if needed not in after:
            problems.append(f"the smoke test does not wait for {needed}")
    if "REMARKETING_API_KEY" not in smoke.get("secretEnv", []):
        problems.append("the smoke test is not given the API key")
    secrets = build.get("availableSecrets", {}).get("secretManager", [])
    if not any(
        s.get("env") == "REMARKETING_API_KEY" and "-api-key/" in s.get("versionName", "") for s in secrets
    ):
        problems.append("the API key is not read from Secret Manager")
    if "--api-url" not in script(smoke):
        problems.append("the smoke test is not pointed at the deployed API")
    return problems


def backend_problems(root: Path) -> list[str]:
    """The builds initialise each root with the state prefix the in-cluster root reads the infra one from."""
    text = "\n".join((root / name).read_text(encoding="utf-8") for name in (RELEASE, DEPLOY))
    return [
        f"no build initialises envs/<env>/{part} with prefix remarketing/<env>/{part}"
        for part in ("infra", "cluster")
        if f'-backend-config="prefix=remarketing/${{_ENV}}/{part}"' not in text
    ]


@pytest.fixture(scope="module")
def release_tree(hcl2_python: Path) -> Terraform:
    return Terraform(hcl2_python, TERRAFORM)


def copy_with(tmp_path: Path, name: str, old: str, new: str) -> Path:
    root = tmp_path / "repo"
    root.mkdir(parents=True)
    for file in (RELEASE, DEPLOY):
        (root / file).write_text((REPO / file).read_text(encoding="utf-8"), encoding="utf-8")
    text = (root / name).read_text(encoding="utf-8")
    assert old in text, f"{name} no longer has {old!r}: update this test"
    (root / name).write_text(text.replace(old, new, 1), encoding="utf-8")
    return root


def test_every_builder_is_pinned_by_digest(tmp_path):
    assert builder_problems(REPO) == []
    root = copy_with(tmp_path, RELEASE, "cloud-builders/docker@sha256:", "cloud-builders/docker:latest@x")
    assert builder_problems(root)[0] == (
        "cloudbuild.yaml: step build-components runs gcr.io/cloud-builders/docker:latest@x"
        "3d00b6c1a9b862621c30fc74d4f2abfc62bcbdee631ed3febd31e7edbdf6252c, not pinned by digest"
    )


def test_nothing_is_applied_that_was_not_planned_and_saved(tmp_path):
    assert plan_problems(REPO) == []
    root = copy_with(
        tmp_path, DEPLOY, "terraform apply -input=false cluster.tfplan", "terraform apply -auto-approve"
    )
    assert plan_problems(root) == [
        "cloudbuild-deploy.yaml applies with -auto-approve",
        "cloudbuild-deploy.yaml: step apply-cluster applies without a saved plan: "
        "terraform apply -auto-approve",
    ]


def test_prod_waits_for_an_approval(release_tree, hcl2_python, tmp_path):
    assert approval_problems(REPO, release_tree) == []
    tf = edited(
        hcl2_python,
        tmp_path,
        "modules/release/main.tf",
        "approval_required = var.require_approval",
        "approval_required = false",
    )
    assert approval_problems(REPO, tf) == [
        "the deploy trigger's approval_required is False, not var.require_approval"
    ]
    tf = edited(
        hcl2_python,
        tmp_path / "prod",
        "envs/prod/infra/main.tf",
        "require_approval   = true",
        "require_approval   = false",
    )
    assert approval_problems(REPO, tf) == ["envs/prod/infra: require_approval is False, not true"]
    root = copy_with(tmp_path / "guard", DEPLOY, '[ "${_ENV}" = prod ] && ', "")
    assert approval_problems(root, release_tree) == [
        "cloudbuild-deploy.yaml deploys prod when not started by the deploy trigger"
    ]


def test_the_smoke_test_runs_after_the_deploy(tmp_path):
    assert smoke_problems(REPO) == []
    root = copy_with(
        tmp_path, DEPLOY, "waitFor: [upload-pipelines]\n    secretEnv", "waitFor: [install]\n    secretEnv"
    )
    assert smoke_problems(root) == [
        "the smoke test does not wait for apply-infra",
        "the smoke test does not wait for apply-cluster",
        "the smoke test does not wait for upload-pipelines",
    ]


def test_each_root_is_initialised_with_the_state_the_other_reads(tmp_path):
    assert backend_problems(REPO) == []
    root = copy_with(tmp_path, DEPLOY, 'prefix=remarketing/${_ENV}/cluster"', 'prefix=remarketing/${_ENV}"')
    assert backend_problems(root) == [
        "no build initialises envs/<env>/cluster with prefix remarketing/<env>/cluster"
    ]
