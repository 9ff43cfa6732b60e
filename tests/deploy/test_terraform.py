"""Terraform is checked statically (no terraform binary here): every file parses with python-hcl2, checkov
passes with skips only inline beside their resource, and the least-privilege promises of the storage
module hold."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from .conftest import REPO, run

pytestmark = pytest.mark.deploy

TERRAFORM = REPO / "terraform"

# Parses every file given on the command line and prints JSON:
# {"version": ..., "parsed": {path: body}, "errors": {path: message}}.
PARSE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from importlib.metadata import version
    import hcl2
    out = {"version": version("python-hcl2"), "module": hcl2.__file__, "parsed": {}, "errors": {}}
    for path in sys.argv[1:]:
        try:
            with open(path, encoding="utf-8") as f:
                out["parsed"][path] = hcl2.load(f)
        except Exception as exc:
            out["errors"][path] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(out, default=str))
    """
)


def tf_files(root: Path = TERRAFORM) -> list[Path]:
    return sorted(p for p in root.rglob("*.tf") if ".terraform" not in p.parts and "build" not in p.parts)


def unquote(value):
    """python-hcl2 keeps HCL's quotes around labels and strings ('"name"'): drop them for comparisons."""
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def parse(hcl2_python: Path, files: list[Path]) -> dict:
    result = run([hcl2_python, "-c", PARSE_SCRIPT, *files], timeout=120)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    out["parsed"] = unquote(out["parsed"])
    return out


def checkov_scan(checkov: Path, directory: Path) -> list[dict]:
    result = run(
        [
            checkov,
            "--directory",
            directory,
            "--output",
            "json",
            "--skip-download",
            "--framework",
            "terraform",
            "secrets",
        ],
        timeout=600,
    )
    assert result.returncode in (0, 1), f"checkov crashed:\n{result.stderr[-3000:]}"
    reports = json.loads(result.stdout)
    return reports if isinstance(reports, list) else [reports]


@pytest.fixture(scope="module")
def parsed(hcl2_python: Path) -> dict:
    return parse(hcl2_python, tf_files())


ROOT_FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "providers.tf")


def test_layout_has_modules_and_both_environments() -> None:
    """Each environment has two roots: the infrastructure (Google resources) and what runs in its cluster."""
    for env in ("dev", "prod"):
        for root in ("infra", "cluster"):
            for name in ROOT_FILES:
                path = TERRAFORM / "envs" / env / root / name
                assert path.is_file(), f"envs/{env}/{root}/{name} missing"
        assert not list((TERRAFORM / "envs" / env).glob("*.tf")), (
            f"envs/{env} is no root: its roots are infra/, cluster/"
        )
    modules = {p.name for p in (TERRAFORM / "modules").iterdir() if p.is_dir()}
    expected = {"apis", "storage", "functions", "gke", "kubeflow", "registry", "cloud_run_service", "mlflow"}
    expected |= {"secrets", "iam", "platform", "cluster", "kfp_database", "cluster_observability", "release"}
    assert expected <= modules
    for module in modules:
        for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf"):
            assert (TERRAFORM / "modules" / module / name).is_file(), f"modules/{module}/{name} missing"


def test_every_tf_file_parses(parsed: dict) -> None:
    # The real python-hcl2, not checkov's fork that installs the same `hcl2` module.
    assert int(parsed["version"].split(".")[0]) >= 7, parsed
    assert not parsed["errors"], "HCL parse errors:\n" + "\n".join(
        f"{k}: {v}" for k, v in parsed["errors"].items()
    )
    assert len(parsed["parsed"]) == len(tf_files()) > 20


def test_a_broken_file_fails_the_parse(hcl2_python: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.tf"
    broken.write_text('resource "google_storage_bucket" "b" {\n  name = "x"\n', encoding="utf-8")
    assert str(broken) in parse(hcl2_python, [broken])["errors"]


def test_variables_and_outputs_are_documented(parsed: dict) -> None:
    undocumented = []
    for path, body in parsed["parsed"].items():
        for kind in ("variable", "output"):
            for block in body.get(kind, []):
                for name, spec in block.items():
                    if not str(spec.get("description", "")).strip():
                        undocumented.append(f"{Path(path).relative_to(REPO)}: {kind} {name}")
                    if kind == "variable" and "type" not in spec:
                        undocumented.append(f"{Path(path).relative_to(REPO)}: variable {name} has no type")
    assert not undocumented, "\n".join(undocumented)


PROVIDERS = {
    "infra": ("google", "google-beta", "random", "archive"),
    "cluster": ("google", "helm", "kubernetes"),
}


def test_providers_are_pinned(parsed: dict) -> None:
    for env in ("dev", "prod"):
        for root, names in PROVIDERS.items():
            body = parsed["parsed"][str(TERRAFORM / "envs" / env / root / "versions.tf")]
            providers = body["terraform"][0]["required_providers"][0]
            assert set(providers) == set(names), (env, root, sorted(providers))
            for name in names:
                assert re.match(r"^~> \d+\.\d+", providers[name]["version"]), (
                    env,
                    root,
                    name,
                    providers[name],
                )


def test_no_secret_in_variable_defaults(parsed: dict) -> None:
    for path, body in parsed["parsed"].items():
        for block in body.get("variable", []):
            for name, spec in block.items():
                if re.search(r"password|secret|api_key|token", name):
                    default = spec.get("default")
                    secret_default = isinstance(default, str) and default not in ("", "null")
                    assert not secret_default, f"{path}: variable {name} has a default value"


def test_artifacts_grants_are_prefix_scoped(parsed: dict) -> None:
    """Who may touch what in the artifacts bucket (the least-privilege table of the issue)."""
    body = parsed["parsed"][str(TERRAFORM / "modules" / "storage" / "main.tf")]
    grants = {}
    for block in body["resource"]:
        for name, spec in block.get("google_storage_bucket_iam_member", {}).items():
            grants[name] = spec
    expected_prefixes = {
        "artifacts_serving_read": ["model-output/"],
        "artifacts_api_read": ["runs/", "output/", "history/", "model-output/", "uploads/"],
        "artifacts_api_experiments": ["experiments/", "decisions/", "runs/"],
        "artifacts_api_receipts_create": ["uploads/"],
        "artifacts_pipelines_write": [
            "model-output/",
            "output/",
            "runs/",
            "history/",
            "experiments/",
            "decisions/",
            "kfp/",  # KFP's pipeline root: the run pods write every step's artifacts there
        ],
        "artifacts_kfp_ui_read": ["kfp/"],
        "artifacts_functions_runs": ["runs/"],
        "artifacts_mlflow": ["mlflow/"],
        "landing_api_weekly_create": ["weekly/", "outcomes/"],
        "landing_pipelines_history_create": ["input/"],
        "landing_api_history_create": ["input/"],
        "landing_api_input_read": ["input/"],
        "artifacts_audit_create": ["audit/"],  # audit/records/ (the pattern reads the first folder)
        "artifacts_audit_read": ["audit/"],
        "artifacts_api_access_read": ["access/"],
    }
    # The named prefix sets of `local.prefix_expr` (a for expression: read from the source text).
    source = (TERRAFORM / "modules" / "storage" / "main.tf").read_text(encoding="utf-8")
    named = {
        k: re.findall(r'"([^"]+)"', v) for k, v in re.findall(r"^\s+(\w+)\s+=\s+\[([^\]]*)\]", source, re.M)
    }
    for name, prefixes in expected_prefixes.items():
        expression = grants[name]["condition"][0]["expression"]
        key = re.search(r"local\.prefix_expr\.(\w+)", expression)
        granted = named[key.group(1)] if key else re.findall(r"objects}?/([\w-]+/)", expression)
        assert sorted(granted) == sorted(prefixes), (name, granted)
    assert grants["artifacts_serving_read"]["role"] == "roles/storage.objectViewer"
    # the audit trail's records can be created and read, never replaced or deleted; only the head moves
    assert grants["artifacts_audit_create"]["role"] == "roles/storage.objectCreator"
    assert "/audit/records/" in grants["artifacts_audit_create"]["condition"][0]["expression"]
    assert grants["artifacts_audit_read"]["role"] == "roles/storage.objectViewer"
    head = grants["artifacts_audit_head"]["condition"][0]["expression"]
    assert head.startswith("resource.name ==") and "/audit/head.json" in head
    assert grants["landing_api_weekly_create"]["role"] == "roles/storage.objectCreator"
    assert grants["artifacts_api_receipts_create"]["role"] == "roles/storage.objectCreator"


def test_checkov_passes_with_inline_skips_only(checkov: Path) -> None:
    reports = checkov_scan(checkov, TERRAFORM)
    summary = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0}
    failed, skipped = [], []
    for report in reports:
        for key in summary:
            summary[key] += report["summary"][key]
        failed += report["results"]["failed_checks"]
        skipped += report["results"]["skipped_checks"]
    assert summary["parsing_errors"] == 0, summary
    assert summary["passed"] > 50, summary  # it really looked at the resources
    assert not failed, "checkov failed checks:\n" + "\n".join(
        f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range']})" for c in failed
    )
    for check in skipped:
        reason = (check.get("check_result") or {}).get("suppress_comment") or ""
        assert len(reason.strip()) >= 20, (
            f"{check['check_id']} on {check['resource']} is skipped without a reason"
        )


def test_no_repository_wide_skip_list() -> None:
    for config in (".checkov.yaml", ".checkov.yml"):
        assert not (REPO / config).exists()
        assert not (TERRAFORM / config).exists()
    for path in tf_files():
        for line in path.read_text(encoding="utf-8").splitlines():
            if "checkov:skip" in line:
                # check ids: CKV_GCP_12, CKV2_GCP_5, CKV_K8S_43 (Kubernetes resources of the provider)
                assert re.match(r"^\s*#checkov:skip=CKV2?_[A-Z][A-Z0-9]*_\d+:\S.{19,}", line), (
                    f"{path}: {line.strip()}"
                )


def test_checkov_catches_a_public_bucket(checkov: Path, tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text(
        'resource "google_storage_bucket" "open" {\n  name = "open"\n  location = "EU"\n}\n'
        'resource "google_storage_bucket_iam_member" "public" {\n  bucket = google_storage_bucket.open.name\n'
        '  role = "roles/storage.objectViewer"\n  member = "allUsers"\n}\n',
        encoding="utf-8",
    )
    failed = {c["check_id"] for r in checkov_scan(checkov, tmp_path) for c in r["results"]["failed_checks"]}
    assert {"CKV_GCP_29", "CKV_GCP_28"} <= failed, failed
