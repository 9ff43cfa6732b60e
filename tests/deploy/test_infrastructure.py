"""The code held against its infrastructure, since nothing can be applied here. Terraform is parsed with
python-hcl2 (test_terraform.py's parser) and each contract is a function that lists what a Terraform tree
breaks, so a test can show it failing on an edited copy:

- settings: every Cloud Run service and function that builds ``Settings`` gets an environment from which
  they validate in gcp mode (Terraform's references become placeholders of their shape), naming only
  settings that exist; MLflow's service gets what mlflow/serve.py requires;
- storage: every bucket path the code reads or writes under a service account is granted to it, by role
  and prefix condition (the paths come from the code's own functions where it has them);
- the customer lookup table and the runs' secrets: the API and the parts that launch runs (whose settings
  the runs get) name the lookup database Terraform makes and the secrets the tasks read themselves, the
  same the API is given; the API and the pipelines may read those secrets; the API reaches the private IP;
- retention: the landing weekly/ files, a scored week's customer files under output/ and the pipeline root
  are deleted after ages the platform's variables give;
- invokers: every service-to-service call's caller is a run.invoker of the callee;
- Kubeflow Pipelines: every caller can connect to the cluster (IAM), is let through the ml-pipeline service
  proxy with the verb it needs (RBAC), and the control plane may reach the port it proxies to (the
  firewall and the KFP API's NetworkPolicy); only the listed pods reach the KFP API, its database and its
  object store; the pipeline root is granted to the run pods' account;
- the two roots: the in-cluster root reads what the infrastructure root hands it (cluster_inputs) from that
  root's state; Kourier is a ClusterIP service; each environment has a project of its own; the functions'
  build account holds the role Google documents for builds.

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

    def module_of(self, path: str, name: str = "platform") -> dict:
        """A module block of another file (an environment root's call of the platform)."""
        return self.blocks(path, "module").get(name, {})


@pytest.fixture(scope="module")
def infrastructure(hcl2_python: Path) -> Terraform:
    return Terraform(hcl2_python, TERRAFORM)


def edited_nth(hcl2_python: Path, tmp_path: Path, path: str, old: str, new: str, nth: int) -> Terraform:
    """A copy of the tree with the ``nth`` (1-based) occurrence of ``old`` in one file replaced."""
    root = tmp_path / "terraform"
    shutil.copytree(TERRAFORM, root, ignore=shutil.ignore_patterns(".terraform", "build"))
    text = (root / path).read_text(encoding="utf-8")
    parts = text.split(old)
    assert len(parts) > nth, f"{path} has {old!r} fewer than {nth} times: update this test"
    (root / path).write_text(old.join(parts[:nth]) + new + old.join(parts[nth:]), encoding="utf-8")
    return Terraform(hcl2_python, root)


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
        elif name == "number":  # a project's number (data.google_project)
            shape = "123456789012"
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
        choice = split_top(e, "?", 1)
        if len(choice) == 2:  # <a> == <b> ? <then> : <else> (or !=), decided on the variables' defaults
            left, op, right = re.fullmatch(r"(.+?)\s*(==|!=)\s*(.+)", choice[0], re.S).groups()
            then, otherwise = split_top(choice[1], ":", 1)
            same = self.expression(left) == self.expression(right)
            return self.expression(then if same == (op == "==") else otherwise)
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
SWEEP = "cluster_observability"
SETTINGS_USERS = {
    "api": ("api", ("environment", "secret_environment"), "frontend/api/main.py: create_app"),
    "app": ("app", ("environment", "secret_environment"), "frontend/app/client.py: ApiClient"),
    "functions": ("functions", ("environment",), "cloud_functions/storage_event.py: handle"),
    # In the in-cluster root: the environment the infrastructure root hands over (cluster_inputs.settings).
    "pushgateway sweep": (SWEEP, ("sweeper_environment",), "observability/push.py: sweep"),
}
# How each module puts the environment it is given on what runs.
WIRING = {
    "modules/cloud_run_service/main.tf": ("${var.environment}", "${var.secret_environment}"),
    "modules/functions/main.tf": ("${var.environment}",),
    "modules/cluster_observability/sweeper.tf": ("${var.sweeper_environment}",),
}
SETTINGS_NAMES = {f"REMARKETING_{name.upper()}" for name in Settings.model_fields}
# Settings a part uses in the cloud that Settings cannot require of every part.
NEEDED = {
    # reconciles runs; signs the predictions URL; verifies the IAP assertions the app forwards
    "api": ("kfp_host", "signing_service_account", "iap_audience"),
    "app": ("iap_audience",),  # behind IAP (app_access's default): acts as the person signed in
    "functions": ("kfp_host",),  # launches runs
}
# Variables with the prefix that are no setting, read by the file named.
READ_DIRECTLY = {"REMARKETING_API_URL": "frontend/app/client.py"}


def environment(tf: Terraform, module: str, arguments: tuple[str, ...]) -> dict[str, str]:
    if module == SWEEP:
        return sweep_environment(tf)
    scope, spec, env = Scope(tf), tf.module(module), {}
    for argument in arguments:
        given = scope.value(spec.get(argument) or {})
        if argument == "secret_environment":  # Secret Manager fills these in: a placeholder value
            given = {name: Reference(f"secret.{name}") for name in given}
        env.update({name: str(v) for name, v in given.items()})
    return env


def sweep_environment(tf: Terraform) -> dict[str, str]:
    """The sweep's environment: modules/cluster gives it the settings the infrastructure root handed over
    (cluster_inputs.settings = local.settings); nothing when that chain is broken."""
    given = tf.blocks("modules/cluster/main.tf", "module")["observability"].get("sweeper_environment")
    handed = tf.blocks(PLATFORM, "locals")["cluster_inputs"].get("settings")
    if given != "${local.i.settings}" or handed != "${local.settings}" or handover_problems(tf):
        return {}
    return {name: str(v) for name, v in Scope(tf).value(tf.blocks(PLATFORM, "locals")["settings"]).items()}


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
        'data.google_artifact_registry_docker_image.release["serving"].self_link',
        '"${local.registry}/serving:${var.image_tag}"',
    )
    assert any(p.startswith("api: the serving image is not named by digest") for p in settings_problems(tf))


def test_a_variable_mlflow_requires_missing_is_reported(hcl2_python, tmp_path):
    tf = edited(hcl2_python, tmp_path, "modules/mlflow/main.tf", "MLFLOW_DB_USER ", "MLFLOW_DB_USERNAME ")
    assert mlflow_problems(tf) == ["mlflow: mlflow/serve.py requires MLFLOW_DB_USER, not set"]


# --- IAP: the API verifies the assertions the app forwards for the app's own audience ----------------------
def iap_problems(tf: Terraform) -> list[str]:
    """The app behind IAP and the API name the same audience: the API verifies, for it, the assertions IAP
    signed for the app (cloud_auth/iap.py)."""
    app = environment(tf, "app", ("environment",)).get("REMARKETING_IAP_AUDIENCE")
    api = environment(tf, "api", ("environment",)).get("REMARKETING_IAP_AUDIENCE")
    if app == api:
        return []
    return [f"api: REMARKETING_IAP_AUDIENCE is {api!r}, the app's {app!r}: every person would be refused"]


def test_the_app_and_the_api_name_the_same_iap_audience(infrastructure, hcl2_python, tmp_path):
    assert iap_problems(infrastructure) == []
    audience = environment(infrastructure, "app", ("environment",))["REMARKETING_IAP_AUDIENCE"]
    assert re.fullmatch(r"/projects/123456789012/locations/[a-z0-9-]+/services/[a-z0-9-]+-app", audience)
    invoker = edited(
        hcl2_python, tmp_path / "invoker", "modules/platform/variables.tf", '= "iap"', '= "invoker"'
    )
    assert environment(invoker, "app", ("environment",))["REMARKETING_IAP_AUDIENCE"] == ""  # no IAP: none
    dropped = "    REMARKETING_IAP_AUDIENCE = local.app_iap_audience\n  })"
    tf = edited(hcl2_python, tmp_path / "api", PLATFORM, dropped, "  })")
    assert iap_problems(tf) == [
        f"api: REMARKETING_IAP_AUDIENCE is None, the app's {audience!r}: every person would be refused"
    ]
    assert "api: REMARKETING_IAP_AUDIENCE is not set" in settings_problems(tf)


# --- the customer lookup table, and the secrets a run's tasks read (docs/personal-data.md) -----------------
# Who reads which secret from Secret Manager, and why.
SECRET_READS = [
    ("api", "pseudonym-key", "REMARKETING_CUSTOMER_ID_KEY of the API on Cloud Run"),
    ("api", "lookup-db", "REMARKETING_LOOKUP_DB_PASSWORD of the API on Cloud Run: GET /customers/{id}"),
    ("pipelines", "pseudonym-key", "components/runner.py: with_secrets, for publish and monitoring"),
    ("pipelines", "lookup-db", "components/runner.py: with_secrets, for publish, which writes the table"),
]
# The secret the API is given (Cloud Run) and the one whose name the runs read it by must be the same: one
# pseudonym per customer in every part, one database password.
SAME_SECRET = {
    "REMARKETING_CUSTOMER_ID_KEY": "REMARKETING_CUSTOMER_ID_KEY_SECRET",
    "REMARKETING_LOOKUP_DB_PASSWORD": "REMARKETING_LOOKUP_DB_PASSWORD_SECRET",
}
# The parts that launch runs hand them their own settings (Settings.for_pipeline): what a run's tasks need
# must be in theirs. The functions launch every run from a file; the API the schedule's retraining.
LAUNCHERS = {"functions": ("environment",), "api": ("environment", "secret_environment")}
RUN_NEEDS = ("lookup_db_host", "customer_id_key_secret", "lookup_db_password_secret")
LOOKUP_OUTPUTS = {"HOST": "host", "NAME": "database", "USER": "user"}  # REMARKETING_LOOKUP_DB_<x>


def secret_readers(tf: Terraform) -> set[tuple[str, str]]:
    """(account, secret) pairs the platform lets read a secret (modules/secrets grants what it is given)."""
    spec = tf.resources("modules/secrets/main.tf", "google_secret_manager_secret_iam_member").get("accessors")
    if (
        not spec
        or spec.get("role") != "roles/secretmanager.secretAccessor"
        or "each.value.member" not in str(spec.get("member"))
    ):
        return set()
    given = str(tf.module("secrets").get("accessors", ""))
    member = r'member\s*=\s*local\.m(?:\.|\[")([\w-]+)'
    found = set()
    listed = r'for name in \[([^\]]*)\]\s*:\s*\{\s*secret\s*=\s*name,\s*label\s*=\s*"[^"]*",\s*' + member
    for names, account in re.findall(listed, given):
        found |= {(account, secret) for secret in re.findall(r'"([\w-]+)"', names)}
    one = r'\{\s*secret\s*=\s*"([\w-]+)",\s*label\s*=\s*"[^"]*",\s*' + member
    found |= {(account, secret) for secret, account in re.findall(one, given)}
    return found


def secret_of(expression) -> str | None:
    found = re.search(r'module\.secrets\.secret_ids\["([\w-]+)"\]', str(expression or ""))
    return found[1] if found else None


def lookup_problems(tf: Terraform) -> list[str]:
    readers = secret_readers(tf)
    problems = [
        f"{account} may not read the secret {secret} ({why})"
        for account, secret, why in SECRET_READS
        if (account, secret) not in readers
    ]
    api = tf.module("api")
    handed = tf.blocks(PLATFORM, "locals")["settings"]
    for given, named in SAME_SECRET.items():
        secret, read = (
            secret_of((api.get("secret_environment") or {}).get(given)),
            secret_of(handed.get(named)),
        )
        if secret is None or secret != read:
            problems.append(
                f"the runs read {named} from the secret {read!r}, the API gets {given} from {secret!r}"
            )
    for part, arguments in LAUNCHERS.items():
        env = environment(tf, part, arguments)
        try:
            with mock.patch.dict(os.environ, env, clear=True):
                settings = Settings(_env_file=None)
        except ValidationError:
            continue  # settings_problems says why
        problems += [
            f"{part}: REMARKETING_{name.upper()} is not set, nor in the settings of the runs it launches"
            for name in RUN_NEEDS
            if not getattr(settings, name)
        ]
        problems += [
            f"{part}: REMARKETING_LOOKUP_DB_{name} is not modules/lookup_database's {output}"
            for name, output in LOOKUP_OUTPUTS.items()
            if env.get(f"REMARKETING_LOOKUP_DB_{name}") != Reference(f"module.lookup_database.{output}")
        ]
    # The instance has a private IP only: Cloud Run reaches it through Direct VPC egress.
    if "module.network.serverless_subnet_id" not in str(api.get("vpc_subnet_id")):
        problems.append(
            "api: no Direct VPC egress (vpc_subnet_id): the lookup table's private IP is out of reach"
        )
    if "vpc_access" not in str(tf.files["modules/cloud_run_service/main.tf"]):
        problems.append("modules/cloud_run_service does not put vpc_subnet_id on the service")
    return problems


def test_the_lookup_table_and_the_runs_secrets_reach_who_uses_them(infrastructure, hcl2_python, tmp_path):
    assert lookup_problems(infrastructure) == []
    pipelines_read = (
        '    [for name in ["pseudonym-key", "lookup-db"] : '
        '{ secret = name, label = "pipelines", member = local.m.pipelines }],\n'
    )
    tf = edited(hcl2_python, tmp_path / "grant", PLATFORM, pipelines_read)
    assert lookup_problems(tf) == [
        "pipelines may not read the secret pseudonym-key "
        "(components/runner.py: with_secrets, for publish and monitoring)",
        "pipelines may not read the secret lookup-db "
        "(components/runner.py: with_secrets, for publish, which writes the table)",
    ]
    tf = edited(
        hcl2_python,
        tmp_path / "other-key",
        PLATFORM,
        'secrets/${module.secrets.secret_ids["pseudonym-key"]}"',
        'secrets/${module.secrets.secret_ids["api-key"]}"',
    )
    assert lookup_problems(tf) == [
        "the runs read REMARKETING_CUSTOMER_ID_KEY_SECRET from the secret 'api-key', "
        "the API gets REMARKETING_CUSTOMER_ID_KEY from 'pseudonym-key'"
    ]
    tf = edited(
        hcl2_python,
        tmp_path / "host",
        PLATFORM,
        "    REMARKETING_LOOKUP_DB_HOST    = module.lookup_database.host\n",
    )
    assert lookup_problems(tf) == [
        f"{part}: REMARKETING_LOOKUP_DB_{x}"
        for part in LAUNCHERS
        for x in (
            "HOST is not set, nor in the settings of the runs it launches",
            "HOST is not modules/lookup_database's host",
        )
    ]
    tf = edited(
        hcl2_python, tmp_path / "vpc", PLATFORM, "  vpc_subnet_id = module.network.serverless_subnet_id\n"
    )
    assert lookup_problems(tf) == [
        "api: no Direct VPC egress (vpc_subnet_id): the lookup table's private IP is out of reach"
    ]


# --- retention: the files that name customers are deleted after ages the variables give --------------------
# (bucket, prefix): the names it is narrowed to (None: every object under the prefix), and the variable.
CUSTOMER_FILES = ("/predictions.csv", "/rejects.csv", "/contributions.parquet")  # CONTRACTS.md: Scored file
RETENTION = {
    ("landing", "weekly/"): (None, "weekly_retention_days"),
    ("artifacts", "output/"): (CUSTOMER_FILES, "output_retention_days"),
    ("artifacts", "kfp/"): (None, "pipeline_root_retention_days"),  # the pipeline root: hand-offs, raw ids
}


def retention_problems(tf: Terraform) -> list[str]:
    path = "modules/storage/main.tf"
    buckets = tf.resources(path, "google_storage_bucket")
    names = tf.blocks(path, "locals")
    storage_variables = tf.blocks("modules/storage/variables.tf", "variable")
    platform_variables = tf.blocks("modules/platform/variables.tf", "variable")
    problems = []
    for (bucket, prefix), (narrowed, variable) in RETENTION.items():
        deletes = [
            rule["condition"][0]
            for rule in buckets[bucket].get("lifecycle_rule", [])
            if rule["action"][0]["type"] == "Delete"
        ]

        def covers(c: dict, prefix: str = prefix, narrowed: tuple | None = narrowed) -> bool:
            prefixes = [
                names.get(p[8:-1], p) if p.startswith("${local.") else p for p in c.get("matches_prefix", [])
            ]
            suffixes = c.get("matches_suffix")
            return (
                prefixes == [prefix]
                and c.get("with_state", "LIVE") == "LIVE"
                and (set(suffixes or ()) >= set(narrowed) if narrowed else suffixes is None)
            )

        ages = [c.get("age") for c in deletes if covers(c)]
        if ages != [f"${{var.{variable}}}"]:
            problems.append(f"{bucket} {prefix}: no one Delete rule after var.{variable} (found ages {ages})")
            continue
        if not isinstance(storage_variables.get(variable, {}).get("default"), int):
            problems.append(f"modules/storage: var.{variable} has no default number of days")
        if tf.module("storage").get(variable) != f"${{var.{variable}}}" or variable not in platform_variables:
            problems.append(f"modules/platform does not pass its var.{variable} to modules/storage")
    return problems


def test_customer_files_are_deleted_after_the_ages_the_variables_give(infrastructure, hcl2_python, tmp_path):
    assert retention_problems(infrastructure) == []
    storage = "modules/storage/main.tf"
    tf = edited(
        hcl2_python, tmp_path / "age", storage, "age            = var.weekly_retention_days", "age = 36500"
    )
    assert retention_problems(tf) == [
        "landing weekly/: no one Delete rule after var.weekly_retention_days (found ages [36500])"
    ]
    tf = edited(hcl2_python, tmp_path / "suffix", storage, ', "/contributions.parquet"]', "]")
    assert retention_problems(tf) == [
        "artifacts output/: no one Delete rule after var.output_retention_days (found ages [])"
    ]
    tf = edited(
        hcl2_python,
        tmp_path / "root",
        storage,
        "matches_prefix = [local.pipeline_root_prefix]",
        'matches_prefix = ["kfp/runs/"]',
    )
    assert retention_problems(tf) == [
        "artifacts kfp/: no one Delete rule after var.pipeline_root_retention_days (found ages [])"
    ]
    tf = edited(
        hcl2_python,
        tmp_path / "passed",
        PLATFORM,
        "  output_retention_days        = var.output_retention_days\n",
    )
    assert retention_problems(tf) == [
        "modules/platform does not pass its var.output_retention_days to modules/storage"
    ]


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
        accounts = accounts or re.findall(r'var\.members(?:\.([\w-]+)|\["([\w-]+)"\])', spec["member"])
        accounts = [a if isinstance(a, str) else "".join(a) for a in accounts]
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
    ("deployer", "api", "cli/smoke.py: the release's smoke test (cloudbuild-deploy.yaml)"),
    ("api", "mlflow", "frontend/api/deps.py: get_registry -> tracking.registry"),
    ("pipelines", "mlflow", "components/runner.py: the registry and the experiment log"),
    ("eventarc", "functions", "Eventarc: the storage triggers"),
]


def invokers(tf: Terraform) -> dict[str, set[str]]:
    """The service accounts each callee lets in (the platform's arguments, through its module); the
    release's deployer is ``local.deployer_member``."""
    found = {}
    for callee in ("api", "mlflow"):
        given = tf.module(callee).get("invokers", "")
        found[callee] = set(re.findall(r'local\.m(?:\.|\["?)([\w-]+)', given))
        found[callee] |= set(re.findall(r"(\w+)\s*=\s*local\.deployer_member", given))
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
    tf = edited(
        hcl2_python,
        tmp_path / "deployer",
        PLATFORM,
        "local.deployer_member == null ? {} : { deployer = local.deployer_member },\n",
    )
    assert invoker_problems(tf) == [
        "deployer is not a run.invoker of api "
        "(cli/smoke.py: the release's smoke test (cloudbuild-deploy.yaml))"
    ]


# --- the two roots: the in-cluster root reads what the infrastructure root hands over -------------------
ENVS = ("dev", "prod")


def handover_problems(tf: Terraform) -> list[str]:
    """Each environment's in-cluster root reads cluster_inputs from its own infrastructure root's state
    (the prefix that root is initialised with: cloudbuild-deploy.yaml, docs/deploy.md)."""
    problems = []
    if (
        tf.blocks("modules/platform/outputs.tf", "output")["cluster_inputs"]["value"]
        != "${local.cluster_inputs}"
    ):
        problems.append("modules/platform does not output its cluster_inputs")
    for env in ENVS:
        out = tf.blocks(f"envs/{env}/infra/outputs.tf", "output").get("cluster_inputs", {})
        if out.get("value") != "${module.platform.cluster_inputs}":
            problems.append(f"envs/{env}/infra does not output cluster_inputs")
        main = f"envs/{env}/cluster/main.tf"
        state = tf.blocks(main, "data").get("terraform_remote_state", {}).get("infra", {})
        config = state.get("config") or {}
        if state.get("backend") != "gcs" or config.get("prefix") != f"remarketing/{env}/infra":
            problems.append(f"envs/{env}/cluster does not read the state of envs/{env}/infra")
        cluster = tf.blocks(main, "module").get("cluster", {})
        if cluster.get("inputs") != "${data.terraform_remote_state.infra.outputs.cluster_inputs}":
            problems.append(f"envs/{env}/cluster does not hand modules/cluster the infrastructure's outputs")
    return problems


def test_the_cluster_root_reads_what_the_infrastructure_root_hands_over(
    infrastructure, hcl2_python, tmp_path
):
    assert handover_problems(infrastructure) == []
    tf = edited(
        hcl2_python, tmp_path, "envs/prod/cluster/main.tf", "remarketing/prod/infra", "remarketing/dev/infra"
    )
    assert handover_problems(tf) == ["envs/prod/cluster does not read the state of envs/prod/infra"]


def provider_problems(tf: Terraform) -> list[str]:
    """No root configures Kubernetes from a cluster made in the same apply; the in-cluster roots' providers
    mint credentials per request with the exec plugin, never a static token."""
    problems = []
    for env in ENVS:
        infra = tf.files[f"envs/{env}/infra/providers.tf"].get("provider", [])
        if any({"kubernetes", "helm"} & set(block) for block in infra):
            problems.append(
                f"envs/{env}/infra configures Kubernetes or Helm: the cluster it makes is not there yet"
            )
        providers = tf.blocks(f"envs/{env}/cluster/providers.tf", "provider")
        for name in ("kubernetes", "helm"):
            spec = providers.get(name)
            spec = (spec or {}).get("kubernetes", [spec])[0] if name == "helm" else spec
            if not spec:
                problems.append(f"envs/{env}/cluster configures no {name} provider")
                continue
            exec_ = (spec.get("exec") or [{}])[0]
            if "token" in spec or "client_key" in spec:
                problems.append(f"envs/{env}/cluster: the {name} provider is given a static credential")
            if exec_.get("command") != "gke-gcloud-auth-plugin" or not str(
                exec_.get("api_version", "")
            ).startswith("client.authentication.k8s.io/"):
                problems.append(
                    f"envs/{env}/cluster: the {name} provider does not use gke-gcloud-auth-plugin"
                )
            if "dns_endpoint" not in str(spec.get("host")):
                problems.append(f"envs/{env}/cluster: the {name} provider does not reach the DNS endpoint")
    return problems


def test_the_in_cluster_root_mints_its_credentials_per_request(infrastructure, hcl2_python, tmp_path):
    assert provider_problems(infrastructure) == []
    exec_ = (
        '  exec {\n    api_version = "client.authentication.k8s.io/v1beta1"\n'
        '    command     = "gke-gcloud-auth-plugin"\n  }\n}\n\nprovider "helm"'
    )
    tf = edited(
        hcl2_python,
        tmp_path,
        "envs/dev/cluster/providers.tf",
        exec_,
        '  token = data.google_client_config.current.access_token\n}\n\nprovider "helm"',
    )
    assert provider_problems(tf) == [
        "envs/dev/cluster: the kubernetes provider is given a static credential",
        "envs/dev/cluster: the kubernetes provider does not use gke-gcloud-auth-plugin",
    ]


def project_problems(tf: Terraform) -> list[str]:
    """One project per environment: the plan stops unless the project is labelled for this environment, and
    the environments are different ones."""
    problems = []
    project = tf.blocks(PLATFORM, "data").get("google_project", {}).get("this", {})
    conditions = [c for life in project.get("lifecycle", []) for c in life.get("postcondition", [])]
    if not any(
        'self.labels["remarketing-environment"]' in str(c.get("condition"))
        and "var.environment" in str(c.get("condition"))
        for c in conditions
    ):
        problems.append("the platform does not stop on a project not labelled for its environment")
    given = {env: tf.module_of(f"envs/{env}/infra/main.tf").get("environment") for env in ENVS}
    if given != {env: env for env in ENVS}:
        problems.append(f"the infrastructure roots do not each name their own environment: {given}")
    return problems


def test_each_environment_has_a_project_of_its_own(infrastructure, hcl2_python, tmp_path):
    assert project_problems(infrastructure) == []
    tf = edited(
        hcl2_python, tmp_path, "envs/prod/infra/main.tf", 'environment = "prod"', 'environment = "dev"'
    )
    assert project_problems(tf) == [
        "the infrastructure roots do not each name their own environment: {'dev': 'dev', 'prod': 'dev'}"
    ]
    tf = edited(
        hcl2_python,
        tmp_path / "label",
        PLATFORM,
        'try(self.labels["remarketing-environment"], "") == var.environment',
        "true",
    )
    assert project_problems(tf) == [
        "the platform does not stop on a project not labelled for its environment"
    ]


def build_problems(tf: Terraform) -> list[str]:
    """The functions' build account holds the role Google documents for a custom build account, and is the
    account the functions are built as."""
    problems = []
    grants = tf.resources("modules/iam/main.tf", "google_project_iam_member").values()
    if not any(
        g["role"] == "roles/cloudbuild.builds.builder" and 'this["functions-build"]' in g["member"]
        for g in grants
    ):
        problems.append("functions-build lacks roles/cloudbuild.builds.builder (the functions' builds)")
    build = tf.resources("modules/functions/main.tf", "google_cloudfunctions2_function")["this"][
        "build_config"
    ][0]
    if "var.build_service_account_email" not in build.get("service_account", ""):
        problems.append("the functions are not built as var.build_service_account_email")
    if 'local.sa["functions-build"]' not in tf.module("functions").get("build_service_account_email", ""):
        problems.append("the platform does not build the functions as functions-build")
    return problems


def test_the_functions_build_account_holds_the_builder_role(infrastructure, hcl2_python, tmp_path):
    assert build_problems(infrastructure) == []
    tf = edited(
        hcl2_python,
        tmp_path,
        "modules/iam/main.tf",
        '"roles/cloudbuild.builds.builder"',
        '"roles/logging.logWriter"',
    )
    assert build_problems(tf) == [
        "functions-build lacks roles/cloudbuild.builds.builder (the functions' builds)"
    ]


# --- Kubeflow Pipelines: IAM to the cluster, RBAC to the proxy, a port to the pod ------------------------
# (caller's service account, the proxy verb it needs, where): creating runs is a POST (create), reading
# one a GET (get).
KFP_CALLERS = [
    ("functions", "create", "pipelines.launchers.KfpLauncher.submit"),
    ("api", "get", "pipelines.launchers.kfp_run (GET /runs/{id})"),
]
KUBEFLOW = "modules/kubeflow/main.tf"
POLICIES = "modules/kubeflow/networkpolicies.tf"


def handed(tf: Terraform, argument: str) -> str:
    """What modules/cluster gives modules/kubeflow's ``argument``, as the platform hands it over: the
    platform's expression of ``cluster_inputs.<key>`` (empty when either link is missing)."""
    given = str(tf.blocks("modules/cluster/main.tf", "module")["kubeflow"].get(argument, ""))
    key = re.fullmatch(r"\$\{local\.i\.(\w+)\}", given)
    return str(tf.blocks(PLATFORM, "locals")["cluster_inputs"].get(key[1], "")) if key else ""


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
    proxy = Scope(tf).value(tf.blocks(PLATFORM, "locals")["kfp_proxy_path"])
    service, port = re.search(r"services/([\w-]+):(\d+)/proxy", proxy).groups()
    verbs: dict[str, set[str]] = {}
    roles = tf.resources(KUBEFLOW, "kubernetes_role")
    for binding in tf.resources(KUBEFLOW, "kubernetes_role_binding").values():
        role = roles[re.search(r"kubernetes_role\.(\w+)\.", binding["role_ref"][0]["name"])[1]]
        rule = role["rule"][0]
        if "services/proxy" not in rule["resources"] or f"{service}:{port}" not in rule["resource_names"]:
            continue
        for dynamic in binding.get("dynamic", []):
            variable = re.search(r"var\.(\w+)", dynamic["subject"]["for_each"])[1]
            for account in re.findall(r"local\.sa\.([\w-]+)", handed(tf, variable)):
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
    # One control plane range: the cluster's, the firewall's and the NetworkPolicy's.
    ranges = {
        tf.module("gke").get("master_ipv4_cidr_block"),
        tf.module("network").get("gke_master_cidr"),
        handed(tf, "control_plane_cidr"),
    }
    if ranges != {"${local.control_plane_cidr}"}:
        problems.append(
            f"the cluster, its firewall and the KFP API's NetworkPolicy name different ranges: {ranges}"
        )
    if (service, port) not in let_in(tf, "kfp_api", "cidr:${var.control_plane_cidr}"):
        problems.append(
            f"the NetworkPolicy of {service} does not let the control plane in on {port} (the service proxy)"
        )
    return problems


def test_every_kfp_caller_can_reach_it(infrastructure):
    assert kfp_problems(infrastructure) == []


def test_a_missing_port_is_reported(hcl2_python, tmp_path):
    tf = edited(hcl2_python, tmp_path, "modules/network/main.tf", '"9443", "8888"', '"9443"')
    assert kfp_problems(tf) == [
        "the control plane cannot reach ml-pipeline on 8888 (the service proxy to KFP)"
    ]
    control_plane = (
        "          cidr = var.control_plane_cidr\n        }\n      }\n"
        '      ports {\n        port     = "8888"'
    )
    tf = edited(
        hcl2_python, tmp_path / "policy", POLICIES, control_plane, control_plane.replace("8888", "8887")
    )
    assert kfp_problems(tf) == [
        "the NetworkPolicy of ml-pipeline does not let the control plane in on 8888 (the service proxy)"
    ]


def test_a_missing_kfp_role_or_binding_is_reported(hcl2_python, tmp_path):
    tf = edited(hcl2_python, tmp_path, PLATFORM, "    kfp_reader_emails = [local.sa.api]\n")
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


# --- NetworkPolicies: who reaches the KFP API, its database and its object store ------------------------
RUN_PODS = "label:workflows.argoproj.io/workflow"
# policy (networkpolicies.tf) -> (the pods it selects, every (source, port) it lets in)
NETWORK_POLICIES = {
    "kfp_api": (
        "app=ml-pipeline",
        {("ml-pipeline", "8888")}
        | {
            (source, p)
            for source in (
                RUN_PODS,
                "app=ml-pipeline-ui",
                "app=ml-pipeline-persistenceagent",
                "app=ml-pipeline-scheduledworkflow",
            )
            for p in ("8887", "8888")
        },
    ),
    "kfp_database": (
        "app=cloudsqlproxy",
        {
            (source, "3306")
            for source in ("app=ml-pipeline", "app=cache-server", "component=metadata-grpc-server")
        },
    ),
    "kfp_object_store": (
        "app=seaweedfs",
        {(source, "8333") for source in ("app=ml-pipeline", "app=ml-pipeline-ui", RUN_PODS)},
    ),
}


def _selector(tf: Terraform, selector: dict) -> set[str]:
    """A pod selector as the set of pods it names: 'k=v' per value, 'label:k' for Exists, '*' for none."""
    locals_ = tf.blocks(POLICIES, "locals")
    names = {f"{k}={v}" for k, v in (selector.get("match_labels") or {}).items()}
    for expression in selector.get("match_expressions", []):
        key = locals_.get(expression["key"].removeprefix("${local.").removesuffix("}"), expression["key"])
        if expression["operator"] == "Exists":
            names.add(f"label:{key}")
        else:
            values = expression.get("values", [])
            if isinstance(values, str):
                values = locals_[values.removeprefix("${local.").removesuffix("}")]
            names |= {f"{key}={v}" for v in values}
    return names or {"*"}


def let_in(tf: Terraform, policy: str, only: str | None = None) -> set[tuple[str, str]]:
    """Every (source, port) a policy lets in; a source is a pod selector's name, or 'cidr:<range>'. With
    ``only``, the ports that source is let in on, as (the selected pods' app, port)."""
    spec = tf.resources(POLICIES, "kubernetes_network_policy_v1").get(policy, {}).get("spec", [{}])[0]
    pairs = set()
    for rule in spec.get("ingress", []):
        ports = {p["port"] for p in rule.get("ports", [])} or {"*"}
        for source in rule.get("from", []) or [{}]:
            names = set()
            for block in source.get("ip_block", []):
                names.add(f"cidr:{block['cidr']}")
            for block in source.get("pod_selector", []):
                names |= _selector(tf, block)
            if source.get("namespace_selector"):
                names.add("*")
            pairs |= {(n, p) for n in names or {"*"} for p in ports}
    if only is None:
        return pairs
    selected = _selector(tf, (spec.get("pod_selector") or [{}])[0])
    app = next((n.split("=", 1)[1] for n in selected if n.startswith("app=")), "")
    return {(app, p) for n, p in pairs if n == only}


def network_policy_problems(tf: Terraform) -> list[str]:
    problems = []
    policies = tf.resources(POLICIES, "kubernetes_network_policy_v1")
    for name, (pods, expected) in NETWORK_POLICIES.items():
        if name not in policies:
            problems.append(f"no NetworkPolicy {name}: every pod of the cluster reaches {pods}")
            continue
        spec = policies[name]["spec"][0]
        if _selector(tf, spec["pod_selector"][0]) != {pods} or "Ingress" not in spec.get("policy_types", []):
            problems.append(f"NetworkPolicy {name} does not select {pods} for ingress")
        found = {
            ("ml-pipeline" if s == "cidr:${var.control_plane_cidr}" else s, p) for s, p in let_in(tf, name)
        }
        if found != expected:
            problems.append(
                f"NetworkPolicy {name} lets in {sorted(found - expected)} beyond, "
                f"and not {sorted(expected - found)} of, what it should"
            )
    kustomization = (tf.root / "modules/kubeflow/kfp/kustomization.yaml").read_text(encoding="utf-8")
    if "name: seaweedfs" not in kustomization.split("$patch: delete", 1)[-1]:
        problems.append("KFP's own NetworkPolicy seaweedfs (any pod of the namespace) is not deleted")
    return problems


def test_only_the_listed_pods_reach_the_kfp_api_its_database_and_object_store(
    infrastructure, hcl2_python, tmp_path
):
    assert network_policy_problems(infrastructure) == []
    tf = edited(
        hcl2_python,
        tmp_path,
        POLICIES,
        'resource "kubernetes_network_policy_v1" "kfp_database"',
        'resource "kubernetes_network_policy_v1" "removed"',
    )
    assert network_policy_problems(tf) == [
        "no NetworkPolicy kfp_database: every pod of the cluster reaches app=cloudsqlproxy"
    ]
    # the object store's first source, preceded by a selector of every pod in the namespace
    first = (
        '      from {\n        pod_selector {\n          match_expressions {\n            key      = "app"'
    )
    everyone = "      from {\n        pod_selector {\n          match_labels = {}\n        }\n      }\n"
    tf = edited_nth(hcl2_python, tmp_path / "open", POLICIES, first, everyone + first, nth=3)
    (problem,) = network_policy_problems(tf)
    assert problem.startswith("NetworkPolicy kfp_object_store lets in [('*', '8333')] beyond"), problem


# --- Kourier: the Knative gateway in front of the predictors is no public load balancer -----------------
def kourier_problems(tf: Terraform) -> list[str]:
    release = tf.resources(KUBEFLOW, "helm_release")["knative_serving"]
    values = {s["name"]: s["value"] for s in release.get("set", [])}
    problems = []
    if values.get("kourierServiceType") != "ClusterIP":
        problems.append(f"Kourier's gateway is a {values.get('kourierServiceType')} service, not ClusterIP")
    template = (
        tf.root / "modules/kubeflow/charts/knative-serving/templates/knative-serving.yaml"
    ).read_text()
    if not re.search(r"kourier:\n(\s+.*\n)*?\s+service-type: \{\{ \.Values\.kourierServiceType", template):
        problems.append("the KnativeServing chart does not set spec.ingress.kourier.service-type")
    return problems


def test_kourier_is_reached_from_inside_the_cluster_only(infrastructure, hcl2_python, tmp_path):
    assert kourier_problems(infrastructure) == []
    tf = edited(hcl2_python, tmp_path, KUBEFLOW, 'value = "ClusterIP"', 'value = "LoadBalancer"')
    assert kourier_problems(tf) == ["Kourier's gateway is a LoadBalancer service, not ClusterIP"]


# --- the pipeline root: KFP's artifacts in GCS, where the run pods may write them -------------------------
def pipeline_root_problems(tf: Terraform) -> list[str]:
    """The pipeline root KFP is given (gs://<artifacts>/<prefix>) is where the run pods' account may create
    and read objects, and KFP's UI may read them; it reaches KFP's install unchanged."""
    problems = []
    root = tf.blocks("modules/storage/outputs.tf", "output")["pipeline_root"]["value"]
    prefix = tf.blocks("modules/storage/main.tf", "locals")["pipeline_root_prefix"]
    if root != "gs://${google_storage_bucket.artifacts.name}/${local.pipeline_root_prefix}":
        problems.append(f"the pipeline root is not a folder of the artifacts bucket: {root}")
    artifact = f"{CODE.artifacts_root}/{prefix}training-1a2b/validate/report.json"
    grants = storage_grants(tf)
    for account, access, why in (
        ("pipelines", "create", "KFP's launcher writes each step's outputs"),
        ("pipelines", "read", "KFP's launcher reads a step's inputs"),
        ("kfp-system", "read", "KFP's UI shows the artifacts"),
    ):
        use = Use(account, artifact, access, why)
        if not any(g.account == account and g.allows(use) for g in grants):
            problems.append(f"{account} cannot {access} {artifact} ({why})")
    if handed(tf, "pipeline_root") != "${module.storage.pipeline_root}":
        problems.append("modules/cluster does not give KFP the storage module's pipeline root")
    command = tf.resources(KUBEFLOW, "terraform_data")["kfp"]["provisioner"][0]["local-exec"]["command"]
    if "${var.pipeline_root}" not in command:
        problems.append("KFP is installed without the pipeline root")
    return problems


def test_the_pipeline_root_is_where_the_run_pods_may_write(infrastructure, hcl2_python, tmp_path):
    assert pipeline_root_problems(infrastructure) == []
    tf = edited(hcl2_python, tmp_path, "modules/storage/main.tf", '"decisions/", "kfp/"]', '"decisions/"]')
    assert pipeline_root_problems(tf) == [
        "pipelines cannot create gs://artifacts/kfp/training-1a2b/validate/report.json "
        "(KFP's launcher writes each step's outputs)",
        "pipelines cannot read gs://artifacts/kfp/training-1a2b/validate/report.json "
        "(KFP's launcher reads a step's inputs)",
    ]
