"""The code held against its infrastructure, since nothing can be applied here. Terraform is parsed with
python-hcl2 (test_terraform.py's parser) and each contract is a function that lists what a Terraform tree
breaks, so a test can show it failing on an edited copy:

- settings: every Cloud Run service and function that builds ``Settings`` gets an environment from which
  they validate in gcp mode (Terraform's references become placeholders of their shape), naming only
  settings that exist; MLflow's service gets what mlflow/serve.py requires;
- storage: every bucket path the code reads or writes under a service account is granted to it, by role
  and prefix condition (the paths come from the code's own functions where it has them);
- invokers: every service-to-service call's caller is a run.invoker of the callee;
- Kubeflow Pipelines: every caller can connect to the cluster (IAM), is let through the ml-pipeline service
  proxy with the verb it needs (RBAC), and the control plane may reach the port it proxies to.

That the clients send the credentials these grants expect is held by tests/cloud_auth, tests/pipelines,
tests/tracking and tests/frontend/test_client_auth.py.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
from pydantic import ValidationError

from remarketing import decisions, experiments, monitoring, uploads
from remarketing.access import AccessBook
from remarketing.audit import AuditLog
from remarketing.runs import PREFIX_KIND, RunStore
from remarketing.settings import Settings

from .conftest import REPO
from .test_terraform import TERRAFORM, parse, tf_files

pytestmark = pytest.mark.deploy

PLATFORM = "modules/platform/main.tf"


# --- the parsed tree ------------------------------------------------------------------------------------
class Terraform:
    """One Terraform tree (the repository's, or a test's edited copy), parsed."""

    def __init__(self, hcl2_python: Path, root: Path) -> None:
        self.root = root
        out = parse(hcl2_python, tf_files(root))
        assert not out["errors"], out["errors"]
        self.files = {Path(p).relative_to(root).as_posix(): body for p, body in out["parsed"].items()}

    def blocks(self, path: str, kind: str) -> dict:
        merged: dict = {}
        for block in self.files[path].get(kind, []):
            merged.update(block)
        return merged

    def resources(self, path: str, kind: str) -> dict:
        found: dict = {}
        for block in self.files[path].get("resource", []):
            found.update(block.get(kind, {}))
        return found

    def module(self, name: str) -> dict:
        return self.blocks(PLATFORM, "module")[name]


@pytest.fixture(scope="module")
def infrastructure(hcl2_python: Path) -> Terraform:
    return Terraform(hcl2_python, TERRAFORM)


def edited(hcl2_python: Path, tmp_path: Path, path: str, old: str, new: str = "") -> Terraform:
    """A copy of the tree with ``old`` replaced in one file (it must be there)."""
    root = tmp_path / "terraform"
    shutil.copytree(TERRAFORM, root, ignore=shutil.ignore_patterns(".terraform", "build"))
    text = (root / path).read_text(encoding="utf-8")
    assert old in text, f"{path} no longer has {old!r}: update this test"
    (root / path).write_text(text.replace(old, new, 1), encoding="utf-8")
    return Terraform(hcl2_python, root)


# --- Terraform expressions, as far as the environments use them ------------------------------------------
def _scan(text: str, start: int = 0):
    """(index, character, depth) outside quoted strings."""
    depth, quoted, i = 0, False, start
    while i < len(text):
        c = text[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        else:
            if c in ")]}":
                depth -= 1
            yield i, c, depth
            if c in "([{":
                depth += 1
        i += 1


def split_top(text: str, sep: str = ",", limit: int = -1) -> list[str]:
    parts, start = [], 0
    for i, c, depth in _scan(text):
        if c == sep and depth == 0 and (limit < 0 or len(parts) < limit):
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def closing(text: str, opened: int) -> int:
    """The index of the brace that closes the one at ``opened``."""
    return next(i for i, c, depth in _scan(text, opened) if c == "}" and depth == 0)


class Reference(str):
    """What Terraform knows only when it applies (a module's output, a data source): a placeholder of the
    value's shape: a registry prefix, an image by digest, a host, a path, a URL, or a name."""

    def __new__(cls, path: str) -> Reference:
        name = re.split(r"\W+", path.strip('"]'))[-1]
        slug = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")
        if name == "repository_url":  # <region>-docker.pkg.dev/<project>/<repository>, no scheme
            shape = "europe-west1-docker.pkg.dev/project/remarketing"
        elif path.startswith("data.google_artifact_registry_docker_image."):
            shape = f"europe-west1-docker.pkg.dev/project/remarketing/{slug}@sha256:{'0' * 64}"
        elif name.endswith(("endpoint", "host")):
            shape = f"{slug}.example.com"
        elif name.endswith("path"):
            shape = f"/{slug}"
        elif name.endswith(("uri", "url")):
            shape = f"https://{slug}.example.run.app"
        else:
            shape = slug
        made = super().__new__(cls, shape)
        made.path = path
        return made


class Scope:
    """The platform module's locals and variable defaults, to evaluate the environments it hands out."""

    def __init__(self, tf: Terraform) -> None:
        self.locals = tf.blocks(PLATFORM, "locals")
        variables = tf.blocks("modules/platform/variables.tf", "variable")
        self.variables = {name: spec.get("default") for name, spec in variables.items()}

    def value(self, expr):
        if isinstance(expr, dict):
            return {key: self.value(v) for key, v in expr.items()}
        if not isinstance(expr, str) or "${" not in expr:
            return expr
        if expr.startswith("${") and closing(expr, 1) == len(expr) - 1:
            return self.expression(expr[2:-1])
        return self.template(expr)

    def template(self, text: str) -> str:
        out, i = [], 0
        while (start := text.find("${", i)) >= 0:
            end = closing(text, start + 1)
            out += [text[i:start], str(self.expression(text[start + 2 : end]))]
            i = end + 1
        return "".join([*out, text[i:]])

    def expression(self, e: str):
        e = e.strip()
        call = re.fullmatch(r"(\w+)\((.*)\)", e, re.S)
        if call and call[1] == "merge":
            merged: dict = {}
            for part in split_top(call[2]):
                merged.update(self.expression(part))
            return merged
        if call and call[1] == "tostring":
            return str(self.expression(call[2]))
        if e.startswith("{"):
            body = e[1:-1].strip()
            if body.startswith("for "):  # people listed in variables (none by default)
                return {}
            pairs = (split_top(item, "=", 1) for item in split_top(body))
            return {key.strip('"'): self.expression(v) for key, v in pairs}
        if e.startswith('"'):
            return self.template(e[1:-1])
        ref = re.fullmatch(r"(local|var)\.(\w+)((?:\.\w+)*)", e)
        if ref is None:
            return Reference(e)
        kind, name, rest = ref.groups()
        found = self.locals.get(name) if kind == "local" else self.variables.get(name)
        value = Reference(f"{kind}.{name}") if found is None else self.value(found)
        for attr in filter(None, rest.split(".")):
            value = self.value(value[attr]) if isinstance(value, dict) else Reference(f"{value.path}.{attr}")
        return value


# --- settings: every part that builds Settings can, from what Terraform gives it ---------------------------
# The deployed parts that build Settings: where Terraform sets their environment (a platform module and its
# arguments) and where the code builds them.
SETTINGS_USERS = {
    "api": ("api", ("environment", "secret_environment"), "frontend/api/main.py: create_app"),
    "app": ("app", ("environment", "secret_environment"), "frontend/app/client.py: ApiClient"),
    "functions": ("functions", ("environment",), "cloud_functions/storage_event.py: handle"),
    "pushgateway sweep": ("observability", ("sweeper_environment",), "observability/push.py: sweep"),
}
# How each module puts the environment it is given on what runs.
WIRING = {
    "modules/cloud_run_service/main.tf": ("${var.environment}", "${var.secret_environment}"),
    "modules/functions/main.tf": ("${var.environment}",),
    "modules/observability/sweeper.tf": ("${var.sweeper_environment}",),
}
SETTINGS_NAMES = {f"REMARKETING_{name.upper()}" for name in Settings.model_fields}
# Settings a part uses in the cloud that Settings cannot require of every part.
NEEDED = {
    "api": ("kfp_host", "signing_service_account"),  # reconciles runs; signs the predictions URL
    "functions": ("kfp_host",),  # launches runs
}
# Variables with the prefix that are no setting, read by the file named.
READ_DIRECTLY = {"REMARKETING_API_URL": "frontend/app/client.py"}


def environment(tf: Terraform, module: str, arguments: tuple[str, ...]) -> dict[str, str]:
    scope, spec, env = Scope(tf), tf.module(module), {}
    for argument in arguments:
        given = scope.value(spec.get(argument) or {})
        if argument == "secret_environment":  # Secret Manager fills these in: a placeholder value
            given = {name: Reference(f"secret.{name}") for name in given}
        env.update({name: str(v) for name, v in given.items()})
    return env


def settings_problems(tf: Terraform) -> list[str]:
    problems = []
    for part, (module, arguments, where) in SETTINGS_USERS.items():
        env = environment(tf, module, arguments)
        unknown = sorted(
            name
            for name in env
            if name.startswith("REMARKETING_") and name not in SETTINGS_NAMES and name not in READ_DIRECTLY
        )
        if unknown:
            problems.append(f"{part}: {', '.join(unknown)} name no setting (ignored by Settings)")
        try:
            with mock.patch.dict(os.environ, env, clear=True):
                settings = Settings(_env_file=None)
        except ValidationError as exc:
            problems.append(f"{part} ({where}) cannot build Settings from its environment: {exc}")
            continue
        problems += [
            f"{part}: REMARKETING_{name.upper()} is not set"
            for name in NEEDED.get(part, ())
            if not getattr(settings, name)
        ]
        if settings.mode != "gcp":
            problems.append(f"{part}: REMARKETING_MODE is {settings.mode}, not gcp")
        if "REMARKETING_SERVING_IMAGE" in env and "@sha256:" not in settings.serving_image:
            problems.append(f"{part}: the serving image is not named by digest ({settings.serving_image})")
    for path, wired in WIRING.items():
        text = str(tf.files[path])
        problems += [f"{path} does not put {w} on what runs" for w in wired if w not in text]
    return problems


def mlflow_problems(tf: Terraform) -> list[str]:
    spec = tf.blocks("modules/mlflow/main.tf", "module")["service"]  # the Cloud Run service it makes
    given = {*spec.get("environment", {}), *spec.get("secret_environment", {})}
    serve = importlib.util.spec_from_file_location("serve", REPO / "mlflow" / "serve.py")
    module = importlib.util.module_from_spec(serve)
    serve.loader.exec_module(module)
    return [
        f"mlflow: mlflow/serve.py requires {name}, not set" for name in module.REQUIRED if name not in given
    ]


def test_every_part_that_builds_settings_can_from_its_terraform_environment(infrastructure):
    assert settings_problems(infrastructure) == []
    assert mlflow_problems(infrastructure) == []


def uncovered(tf: Terraform) -> set[str]:
    """Services and functions the platform deploys that no contract above holds."""
    deployed = {
        name
        for name, spec in tf.blocks(PLATFORM, "module").items()
        if spec["source"] in ("../cloud_run_service", "../functions", "../mlflow")
    }
    held = {module for module, _, _ in SETTINGS_USERS.values()} | {"mlflow"}  # mlflow: mlflow_problems
    return deployed - held


def test_every_service_and_function_has_a_settings_contract(infrastructure, hcl2_python, tmp_path):
    assert uncovered(infrastructure) == set()
    for name, path in READ_DIRECTLY.items():
        assert name in (REPO / path).read_text(encoding="utf-8"), f"{path} no longer reads {name}"
    new = 'module "reports" {\n  source = "../cloud_run_service"\n}\n\nmodule "apis" {'
    assert uncovered(edited(hcl2_python, tmp_path, PLATFORM, 'module "apis" {', new)) == {"reports"}


def test_a_missing_environment_variable_is_reported(hcl2_python, tmp_path):
    tf = edited(
        hcl2_python, tmp_path, PLATFORM, "    REMARKETING_TRACKING_URI = module.mlflow.tracking_uri\n"
    )
    (problem,) = settings_problems(tf)
    assert problem.startswith("app (frontend/app/client.py: ApiClient) cannot build Settings")
    assert "REMARKETING_TRACKING_URI is required in gcp mode" in problem


def test_a_misspelt_setting_and_a_tagged_serving_image_are_reported(hcl2_python, tmp_path):
    tf = edited(hcl2_python, tmp_path, PLATFORM, "REMARKETING_KFP_HOST ", "REMARKETING_KFP_HOTS ")
    assert "functions: REMARKETING_KFP_HOTS name no setting (ignored by Settings)" in settings_problems(tf)
    tf = edited(
        hcl2_python,
        tmp_path / "tagged",
        PLATFORM,
        "data.google_artifact_registry_docker_image.serving.self_link",
        '"${local.registry}/serving:${var.image_tag}"',
    )
    assert any(p.startswith("api: the serving image is not named by digest") for p in settings_problems(tf))


def test_a_variable_mlflow_requires_missing_is_reported(hcl2_python, tmp_path):
    tf = edited(hcl2_python, tmp_path, "modules/mlflow/main.tf", "MLFLOW_DB_USER ", "MLFLOW_DB_USERNAME ")
    assert mlflow_problems(tf) == ["mlflow: mlflow/serve.py requires MLFLOW_DB_USER, not set"]


# --- storage: every path the code touches under a role is granted ---------------------------------------
LANDING, ARTIFACTS = "landing", "artifacts"
CODE = Settings(landing_bucket=LANDING, artifacts_bucket=ARTIFACTS)
ROLE_ACCESS = {
    "roles/storage.objectViewer": {"read"},
    "roles/storage.objectCreator": {"create"},  # never replaces an object
    "roles/storage.objectUser": {"read", "create", "update"},
}


@dataclass(frozen=True)
class Use:
    account: str
    uri: str  # gs://<landing|artifacts>/<an object the code reads or writes>
    access: str  # read | create (a new object) | update (replace one: records, heads, locks)
    where: str


def code_paths() -> list[Use]:
    """What each service account's code reads and writes, by the code's own path functions."""
    art, run, ds = CODE.artifacts_root, "scoring-0123456789abcdef", "bank-marketing"
    landing = {kind: f"{CODE.landing_root}/{prefix}x.csv" for prefix, kind in PREFIX_KIND.items()}
    record = RunStore(None, art).uri(run)
    bundle = f"{CODE.bundle_uri('remarketing-' + ds, 3)}/metadata.json"
    lock = f"{art}/model-output/remarketing-{ds}/.register-lock"  # remarketing.training._registration_lock
    history = f"{CODE.landing_root}/input/history-{ds}-v3.csv"  # remarketing.retraining.put_history
    output = f"{art}/output/{run}/predictions.csv"  # remarketing.scoring (publish), monitoring
    audit = AuditLog(None, art)
    audit_record, audit_head = audit._record_uri(1), audit._head_uri
    experiment = f"{experiments.root(art, ds)}/running.json"
    decision = f"{decisions._root(art, ds)}/x.json"
    history_version = f"{monitoring.history_root(CODE, ds)}/3/rows.parquet"
    uses = [
        *(
            Use("functions", uri, "read", "remarketing.launch: the object's metadata")
            for uri in landing.values()
        ),
        Use("functions", record, "create", "remarketing.launch: the record, create-only"),
        Use("functions", record, "update", "remarketing.launch: claim, release, fail"),
        Use("api", f"{CODE.landing_root}/{uploads.object_name('week.csv')}", "create", "POST /uploads"),
        Use("api", landing["monitoring"], "create", "POST /runs/{id}/outcomes"),
        Use("api", history, "create", "POST /retraining: put_history"),
        Use("api", landing["training"], "read", "POST /retraining: a history version's training files"),
        Use("api", record, "read", "GET /runs, GET /runs/{id}"),
        Use("api", record, "update", "GET /runs/{id}: pipelines.launchers.reconcile closes a record"),
        Use("api", uploads.receipt_uri(CODE, run), "create", "POST /uploads: the receipt"),
        Use("api", uploads.receipt_uri(CODE, run), "read", "GET /runs/{id} before the run starts"),
        Use("api", output, "read", "GET /runs/{id}/predictions, the signed URL"),
        Use("api", history_version, "read", "POST /retraining"),
        Use("api", bundle, "read", "GET /models: what each version was judged on"),
        Use("api", experiment, "update", "POST /experiments, POST /experiments/stop"),
        Use("api", decision, "create", "POST /experiments, /experiments/stop: the decision"),
        Use("api", audit_record, "create", "the audit trail (frontend/api/audit_trail.py)"),
        Use("api", audit_record, "read", "the audit trail: each record follows the one before"),
        Use("api", audit_head, "update", "the audit trail's head"),
        Use("api", AccessBook(None, art, "k").uri, "read", "every route: the access book"),
        *(Use("pipelines", uri, "read", "validate: the run's file") for uri in landing.values()),
        Use("pipelines", history, "create", "monitoring: the retraining policy's file"),
        Use("pipelines", record, "update", "every step (remarketing.step)"),
        Use("pipelines", bundle, "create", "training: register"),
        Use("pipelines", bundle, "read", "scoring: the model's metadata"),
        Use("pipelines", lock, "update", "training: the registration lock"),
        Use("pipelines", output, "create", "scoring: publish; monitoring: performance"),
        Use("pipelines", output, "read", "monitoring: the scored file"),
        Use("pipelines", history_version, "create", "monitoring: extend-history"),
        Use("pipelines", experiment, "update", "monitoring: the experiment's test"),
        Use("pipelines", decision, "create", "training's gate, experiments"),
        Use("pipelines", audit_record, "create", "promotions are audited"),
        Use("pipelines", audit_head, "update", "promotions are audited"),
        Use("serving", bundle, "read", "the predictor (KServe's storageUri)"),
        Use("mlflow", f"{art}/mlflow/1/abc/artifacts/model.pkl", "create", "--artifacts-destination"),
        Use("mlflow", f"{art}/mlflow/1/abc/artifacts/model.pkl", "read", "proxied artifact reads"),
    ]
    return uses


@dataclass(frozen=True)
class Grant:
    name: str
    account: str
    bucket: str
    access: frozenset[str]
    objects: tuple[tuple[str, str], ...] | None  # ("prefix" | "name", object name); None: the whole bucket

    def allows(self, use: Use) -> bool:
        bucket, name = use.uri.removeprefix("gs://").split("/", 1)
        if bucket != self.bucket or use.access not in self.access:
            return False
        if self.objects is None:
            return True
        return any(name.startswith(o) if op == "prefix" else name == o for op, o in self.objects)


def storage_grants(tf: Terraform) -> list[Grant]:
    path = "modules/storage/main.tf"
    source = (tf.root / path).read_text(encoding="utf-8")
    named = {
        k: re.findall(r'"([^"]+)"', v) for k, v in re.findall(r"^\s+(\w+)\s+=\s+\[([^\]]*)\]", source, re.M)
    }
    grants = []
    for name, spec in tf.resources(path, "google_storage_bucket_iam_member").items():
        bucket = LANDING if "google_storage_bucket.landing" in spec["bucket"] else ARTIFACTS
        accounts = re.findall(r'"([\w-]+)"', spec["for_each"]) if "for_each" in spec else []
        accounts = accounts or re.findall(r"var\.members\.([\w-]+)", spec["member"])
        expression = (spec.get("condition") or [{}])[0].get("expression")
        objects = None
        if expression:
            key = re.search(r"local\.prefix_expr\.(\w+)", expression)
            found = (
                [("prefix", p) for p in named[key[1]]]
                if key
                else re.findall(r'(startsWith|==)\s*\(?\\?"\$\{local\.\w+_objects\}/([^"\\]*)', expression)
            )
            objects = tuple(("prefix" if op != "==" else "name", o) for op, o in found)
        access = frozenset(ROLE_ACCESS.get(spec["role"], set()))
        grants += [Grant(name, account, bucket, access, objects) for account in accounts]
    return grants


def storage_problems(tf: Terraform) -> list[str]:
    grants = storage_grants(tf)
    return [
        f"{use.account} cannot {use.access} {use.uri} ({use.where})"
        for use in code_paths()
        if not any(g.account == use.account and g.allows(use) for g in grants)
    ]


def test_every_path_the_code_uses_is_granted_to_its_service_account(infrastructure):
    assert storage_problems(infrastructure) == []


def wide_grants(tf: Terraform) -> list[str]:
    return [g.name for g in storage_grants(tf) if g.objects is None and g.access - {"read"}]


def test_grants_are_no_wider_than_a_prefix_where_the_code_writes(infrastructure, hcl2_python, tmp_path):
    """The prefix conditions are real: no write grant covers a whole bucket (shown on a copy whose
    receipts' grant lost its condition)."""
    assert wide_grants(infrastructure) == []
    condition = (
        '  condition {\n    title       = "upload-receipts-create"\n'
        '    description = "Create upload receipts under uploads/ (never replace them)"\n'
        "    expression  = local.prefix_expr.api_receipts\n  }\n"
    )
    tf = edited(hcl2_python, tmp_path, "modules/storage/main.tf", condition)
    assert wide_grants(tf) == ["artifacts_api_receipts_create"]


def test_a_missing_storage_role_is_reported(hcl2_python, tmp_path):
    # the receipts' grant, a viewer instead of a creator
    receipts = (
        'role   = "roles/storage.objectCreator"\n  member = var.members.api\n  condition {\n'
        '    title       = "upload-receipts'
    )
    tf = edited(
        hcl2_python,
        tmp_path,
        "modules/storage/main.tf",
        receipts,
        receipts.replace("objectCreator", "objectViewer"),
    )
    assert storage_problems(tf) == [
        "api cannot create gs://artifacts/uploads/scoring-0123456789abcdef.json (POST /uploads: the receipt)"
    ]


# --- invokers: every service-to-service call is let through by Cloud Run --------------------------------
# (caller's service account, callee, where the call is made). Each caller sends the ID token Cloud Run
# checks: cloud_auth.tokens (held by tests/tracking and tests/frontend/test_client_auth.py).
CALLS = [
    ("app", "api", "frontend/app/client.py: ApiClient"),
    ("scheduler", "api", "Cloud Scheduler: POST /retraining (modules/platform)"),
    ("api", "mlflow", "frontend/api/deps.py: get_registry -> tracking.registry"),
    ("pipelines", "mlflow", "components/runner.py: the registry and the experiment log"),
    ("eventarc", "functions", "Eventarc: the storage triggers"),
]


def invokers(tf: Terraform) -> dict[str, set[str]]:
    """The service accounts each callee lets in (the platform's arguments, through its module)."""
    found = {
        callee: set(re.findall(r'local\.m(?:\.|\["?)([\w-]+)', tf.module(callee).get("invokers", "")))
        for callee in ("api", "mlflow")
    }
    trigger = tf.module("functions")["trigger_service_account_email"]
    found["functions"] = set(re.findall(r'local\.sa(?:\.|\["?)([\w-]+)', trigger))
    wired = {
        "modules/cloud_run_service/main.tf": (
            "google_cloud_run_v2_service_iam_member",
            "invokers",
            "var.invokers",
        ),
        "modules/functions/main.tf": (
            "google_cloud_run_v2_service_iam_member",
            "trigger_invokes",
            "var.trigger_service_account_email",
        ),
    }
    for path, (kind, name, member) in wired.items():
        spec = tf.resources(path, kind).get(name, {})
        if spec.get("role") != "roles/run.invoker" or member not in str(spec):
            found = {callee: set() for callee in found}  # the module does not grant what it is given
    if "${var.invokers}" not in str(tf.blocks("modules/mlflow/main.tf", "module")["service"].get("invokers")):
        found["mlflow"] = set()
    return found


def invoker_problems(tf: Terraform) -> list[str]:
    let_in = invokers(tf)
    return [
        f"{caller} is not a run.invoker of {callee} ({where})"
        for caller, callee, where in CALLS
        if caller not in let_in[callee]
    ]


def test_every_caller_is_an_invoker_of_what_it_calls(infrastructure):
    assert invoker_problems(infrastructure) == []


def test_a_missing_invoker_binding_is_reported(hcl2_python, tmp_path):
    tf = edited(
        hcl2_python,
        tmp_path,
        PLATFORM,
        "pipelines = local.m.pipelines, api = local.m.api",
        "pipelines = local.m.pipelines",
    )
    assert invoker_problems(tf) == [
        "api is not a run.invoker of mlflow (frontend/api/deps.py: get_registry -> tracking.registry)"
    ]


# --- Kubeflow Pipelines: IAM to the cluster, RBAC to the proxy, a port to the pod ------------------------
# (caller's service account, the proxy verb it needs, where): creating runs is a POST (create), reading
# one a GET (get).
KFP_CALLERS = [
    ("functions", "create", "pipelines.launchers.KfpLauncher.submit"),
    ("api", "get", "pipelines.launchers.kfp_run (GET /runs/{id})"),
]


def kfp_problems(tf: Terraform) -> list[str]:
    problems = []
    iam = "modules/iam/main.tf"
    connect = tf.resources(iam, "google_project_iam_custom_role")["cluster_connect"]
    if "container.clusters.connect" not in connect["permissions"]:
        problems.append("the cluster-connect role lacks container.clusters.connect")
    connected = {
        account  # google_service_account.this["<account>"], or this[each.key] over a set of accounts
        for spec in tf.resources(iam, "google_project_iam_member").values()
        if "cluster_connect" in spec["role"]
        for account in re.findall(
            r'"([\w-]+)"', spec["for_each"] if "each.key" in spec["member"] else spec["member"]
        )
    }
    proxy = tf.blocks("modules/kubeflow/outputs.tf", "output")["kfp_proxy_path"]["value"]
    service, port = re.search(r"services/([\w-]+):(\d+)/proxy", proxy).groups()
    kubeflow, verbs = "modules/kubeflow/main.tf", {}
    roles = tf.resources(kubeflow, "kubernetes_role")
    for binding in tf.resources(kubeflow, "kubernetes_role_binding").values():
        role = roles[re.search(r"kubernetes_role\.(\w+)\.", binding["role_ref"][0]["name"])[1]]
        rule = role["rule"][0]
        if "services/proxy" not in rule["resources"] or f"{service}:{port}" not in rule["resource_names"]:
            continue
        for dynamic in binding.get("dynamic", []):
            variable = re.search(r"var\.(\w+)", dynamic["subject"]["for_each"])[1]
            for account in re.findall(r"local\.sa\.([\w-]+)", str(tf.module("kubeflow").get(variable, ""))):
                verbs.setdefault(account, set()).update(rule["verbs"])
    for account, verb, where in KFP_CALLERS:
        if account not in connected:
            problems.append(f"{account} cannot connect to the cluster's DNS endpoint ({where})")
        if verb not in verbs.get(account, set()):
            problems.append(f"{account} may not {verb} through the {service}:{port} service proxy ({where})")
    opened = {
        p
        for spec in tf.resources("modules/network/main.tf", "google_compute_firewall").values()
        if "var.gke_master_cidr" in str(spec.get("source_ranges"))
        for allow in spec.get("allow", [])
        for p in allow.get("ports", [])
    }
    if port not in opened:
        problems.append(f"the control plane cannot reach {service} on {port} (the service proxy to KFP)")
    return problems


def test_every_kfp_caller_can_reach_it(infrastructure):
    assert kfp_problems(infrastructure) == []


def test_a_missing_port_is_reported(hcl2_python, tmp_path):
    tf = edited(hcl2_python, tmp_path, "modules/network/main.tf", '"9443", "8888"', '"9443"')
    assert kfp_problems(tf) == [
        "the control plane cannot reach ml-pipeline on 8888 (the service proxy to KFP)"
    ]


def test_a_missing_kfp_role_or_binding_is_reported(hcl2_python, tmp_path):
    tf = edited(hcl2_python, tmp_path, PLATFORM, "  kfp_reader_emails    = [local.sa.api]\n")
    assert kfp_problems(tf) == [
        "api may not get through the ml-pipeline:8888 service proxy "
        "(pipelines.launchers.kfp_run (GET /runs/{id}))"
    ]
    tf = edited(
        hcl2_python,
        tmp_path / "iam",
        "modules/iam/main.tf",
        'toset(["functions", "api"])',
        'toset(["functions"])',
    )
    assert kfp_problems(tf) == [
        "api cannot connect to the cluster's DNS endpoint (pipelines.launchers.kfp_run (GET /runs/{id}))"
    ]
