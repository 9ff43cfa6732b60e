"""The cloud's observability (terraform/modules/observability, the Google side; modules/cluster_observability,
the in-cluster side) against the files it is made from: the functions' real log lines against the
log-based metrics' expressions, the scrape jobs of the rules and dashboards against the PodMonitoring /
RunMonitoring names (GMP's `job`), the rule file against what the alert policies can inline, the alerts on
the delivery of storage events, and the wiring of the settings and both environments."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from .conftest import REPO
from .test_terraform import TERRAFORM, parse

pytestmark = pytest.mark.deploy

MODULE = TERRAFORM / "modules" / "observability"
CLUSTER_MODULE = TERRAFORM / "modules" / "cluster_observability"
RULES = REPO / "observability" / "rules" / "remarketing.rules.yml"
DASHBOARDS = REPO / "observability" / "grafana" / "dashboards"
# What logging.basicConfig() writes (the functions' main.py): "<LEVEL>:<logger>:<message>".
LINE = logging.Formatter(logging.BASIC_FORMAT)
REASONS = {
    "not under",
    "a folder object",
    "a temporary object",
    "not a .csv file",
    "a zero-byte object",
    "not launched",
}


def log_metrics() -> dict:
    return yaml.safe_load((MODULE / "log_metrics.yaml").read_text(encoding="utf-8"))


# ---------------------------------------------------------------- log-based metrics


def function_lines(monkeypatch, caplog) -> list[tuple[str, str]]:
    """(what happened, the line the function wrote) for each way storage_event.handle ends."""
    from cloudevents.http import CloudEvent

    import pipelines.launchers
    import remarketing.launch
    from cloud_functions.storage_event import handle
    from remarketing.errors import RemarketingError
    from remarketing.settings import Settings

    outcome: dict = {}

    def launch(bucket, name, generation, **_):
        if outcome["raise"]:
            raise RemarketingError(f"generation {generation} of gs://{bucket}/{name} no longer exists")
        record = SimpleNamespace(run_id="training-3f2a9c", kind="training")
        return SimpleNamespace(record=record, created=outcome["created"])

    monkeypatch.setattr(remarketing.launch, "launch", launch)
    monkeypatch.setattr(pipelines.launchers, "launcher_for", lambda settings: None)
    settings = Settings()
    cases = [
        ("not under", "weekly/a.csv", 10, {}),
        ("a folder object", "input/sub/", 0, {}),
        ("a temporary object", "input/.a.csv", 10, {}),
        ("not a .csv file", "input/a.txt", 10, {}),
        # an object name that reads like another line must not count as one
        ("not a .csv file", "input/already launched run x for gs://b.txt", 10, {}),
        ("a zero-byte object", "input/a.csv", 0, {}),
        ("not launched", "input/a.csv", 10, {"raise": True, "created": True}),
        ("launched", "input/a.csv", 10, {"raise": False, "created": True}),
        ("already launched", "input/a.csv", 10, {"raise": False, "created": False}),
    ]
    lines = []
    for what, name, size, how in cases:
        outcome.update({"raise": False, "created": True, **how})
        event = CloudEvent(
            {"type": "google.cloud.storage.object.v1.finalized", "source": "//storage.googleapis.com/b"},
            {"bucket": "landing", "name": name, "generation": "1712", "size": str(size)},
        )
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="remarketing.functions"):
            handle(event, "input/", settings, function="on_input_file")
        records = [r for r in caplog.records if r.name == "remarketing.functions"]
        assert len(records) == 1, (what, [r.getMessage() for r in records])
        lines.append((what, LINE.format(records[0])))
    return lines


def test_each_function_line_counts_in_exactly_its_log_metric(monkeypatch, caplog) -> None:
    metrics = log_metrics()
    assert set(metrics) == {
        "remarketing_function_events_ignored",
        "remarketing_function_runs_launched",
        "remarketing_function_runs_deduplicated",
    }
    expected = {
        "launched": "remarketing_function_runs_launched",
        "already launched": "remarketing_function_runs_deduplicated",
    }
    for what, line in function_lines(monkeypatch, caplog):
        # Python's re reads these expressions as RE2 does: classes, groups, alternation, anchors only.
        counted = [name for name, m in metrics.items() if re.search(m["match"], line)]
        assert counted == [expected.get(what, "remarketing_function_events_ignored")], (line, counted)
        if counted == ["remarketing_function_events_ignored"]:
            reason = re.search(metrics[counted[0]]["labels"]["reason"], line)
            assert reason is not None and reason.group(1) == what, (line, reason)


def test_log_metric_labels_are_bounded_and_extractable() -> None:
    for name, metric in log_metrics().items():
        assert "\\" not in metric["match"], f"{name}: a backslash reads differently in YAML, HCL and Logging"
        assert '"' not in metric["match"], name
        for label, regex in metric["labels"].items():
            assert label not in {"function", "file", "name", "run_id", "object"}, (name, label)
            assert re.compile(regex).groups == 1, f"{name}.{label}: REGEXP_EXTRACT takes one capture group"
            assert "\\" not in regex and '"' not in regex, (name, label)
            group = re.search(r"\((?!\?)([^()]*)\)", regex).group(1)
            phrases = {p.replace("[.]", ".") for p in group.split("|")}
            assert phrases <= REASONS, (name, label, phrases - REASONS)


# ---------------------------------------------------------------- scrape jobs


def cloud_jobs() -> set[str]:
    """GMP's `job` of each cloud scrape: the PodMonitorings' names and the RunMonitoring's."""
    template = (CLUSTER_MODULE / "charts" / "gmp-targets" / "templates" / "podmonitorings.yaml").read_text(
        encoding="utf-8"
    )
    pods = re.findall(r"^kind: PodMonitoring\nmetadata:\n  name: (\S+)", template, re.M)
    run = re.findall(r'metadata\s*=\s*\{\s*name\s*=\s*"([^"]+)"', (MODULE / "cloud_run.tf").read_text())
    return set(pods) | set(run)


def queried_jobs() -> set[str]:
    texts = [RULES.read_text(encoding="utf-8")]
    texts += [p.read_text(encoding="utf-8") for p in DASHBOARDS.glob("*.json")]
    jobs = set()
    for text in texts:
        for match in re.findall(r'job\s*(=~?)\s*\\?"([^"\\]+)', text):
            jobs |= set(match[1].split("|")) if match[0] == "=~" else {match[1]}
    return jobs


def test_the_cloud_scrapes_under_the_local_job_names() -> None:
    cloud = cloud_jobs()
    assert cloud == {"model-server", "remarketing-pipeline", "pushgateway", "api"}
    # local-only: the bridge (no cloud counterpart), the functions (log-based metrics instead), MLflow
    assert queried_jobs() - cloud <= {"bridge", "functions", "mlflow"}, queried_jobs() - cloud


def test_the_pushgateway_job_keeps_the_pushed_series_under_the_pipeline_job() -> None:
    docs = [
        d
        for d in yaml.safe_load_all(
            re.sub(
                r"\{\{[^}]*\}\}",
                "x",
                (CLUSTER_MODULE / "charts" / "gmp-targets" / "templates" / "podmonitorings.yaml").read_text(),
            )
        )
        if d
    ]
    by_name = {d["metadata"]["name"]: d for d in docs}
    pipeline = by_name["remarketing-pipeline"]["spec"]["endpoints"][0]["metricRelabeling"]
    assert {"sourceLabels": ["__name__"], "regex": "remarketing_.*", "action": "keep"} in pipeline
    assert {"regex": "exported_job|exported_instance", "action": "labeldrop"} in pipeline
    gateway = by_name["pushgateway"]["spec"]["endpoints"][0]["metricRelabeling"][0]
    assert gateway["action"] == "drop" and "remarketing_.*" in gateway["regex"]
    assert by_name["model-server"]["metadata"]["namespace"] == "x"  # the serving namespace (templated)


def test_the_dashboards_fit_one_configmap() -> None:
    files = sorted(DASHBOARDS.glob("*.json"))
    assert files, "no dashboard to provision"
    for path in files:
        json.loads(path.read_text(encoding="utf-8"))
    assert sum(len(p.read_bytes()) + len(p.name) for p in files) < 1_000_000  # Kubernetes' 1 MiB limit


# ---------------------------------------------------------------- alert policies from the rule file

TOKEN = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*|[^A-Za-z_:]+", re.S)


def test_every_alert_of_the_rule_file_can_be_inlined_into_one_promql_condition() -> None:
    """What alerts.tf's preconditions refuse at plan time, checked without Terraform."""
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    rules = [r for g in groups for r in g["rules"]]
    recorded = {r["record"]: r for r in rules if "record" in r}
    alerts = [r for r in rules if "alert" in r]
    assert alerts
    for alert in alerts:
        used = {t for t in TOKEN.findall(alert["expr"]) if t in recorded}
        used |= {t for n in used for t in TOKEN.findall(recorded[n]["expr"]) if t in recorded}
        for name in used:
            assert not recorded[name].get("labels"), (alert["alert"], name, "recording rule with labels")
            for expr in [alert["expr"], *(recorded[n]["expr"] for n in used)]:
                assert not re.search(rf"(^|[^A-Za-z0-9_:]){re.escape(name)}\s*[{{\[]", expr), (
                    alert["alert"],
                    name,
                    "recorded series with a selector or range",
                )
            nested = {t for t in TOKEN.findall(recorded[name]["expr"]) if t in recorded}
            assert all(
                not {t for t in TOKEN.findall(recorded[n]["expr"]) if t in recorded} for n in nested
            ), (alert["alert"], name, "nested more than two deep")
        assert re.fullmatch(r"(\d+(ms|s|m|h|d|w|y))+", str(alert.get("for", "0s"))), alert["alert"]


# ---------------------------------------------------------------- wiring


@pytest.fixture(scope="module")
def tf(hcl2_python: Path) -> dict:
    files = [
        TERRAFORM / "modules" / "platform" / "main.tf",
        *(TERRAFORM / "envs" / env / "infra" / "main.tf" for env in ("dev", "prod")),
        TERRAFORM / "modules" / "cluster" / "main.tf",
        CLUSTER_MODULE / "main.tf",
        CLUSTER_MODULE / "outputs.tf",
        MODULE / "delivery.tf",
    ]
    out = parse(hcl2_python, files)
    assert not out["errors"], out["errors"]
    return {str(Path(k).relative_to(TERRAFORM)): v for k, v in out["parsed"].items()}


def blocks(body: dict, kind: str) -> dict:
    return {name: spec for block in body.get(kind, []) for name, spec in block.items()}


def resources(body: dict, kind: str) -> dict:
    return {name: spec for block in body.get("resource", []) for name, spec in block.get(kind, {}).items()}


def test_the_platform_wires_observability_into_the_settings_and_the_api(tf: dict) -> None:
    platform = tf["modules/platform/main.tf"]
    modules = blocks(platform, "module")
    assert modules["observability"]["source"] == "../observability"
    settings = platform["locals"][0]["settings"]
    assert settings["REMARKETING_PUSHGATEWAY_URL"] == "${local.pushgateway_url}"
    sidecar = modules["api"]["metrics_sidecar"]
    assert sidecar["config_secret"] == "${module.observability.api_metrics_sidecar_config_secret}"
    for env in ("dev", "prod"):
        platform_call = tf[f"envs/{env}/infra/main.tf"]["module"][0]["platform"]
        assert platform_call["alert_email"] == "${var.alert_email}", env


def pushgateway_problems(tf: dict) -> list[str]:
    """The Pushgateway the settings name (the infrastructure root's) is the one the in-cluster root runs:
    the same release name, namespace and port, handed over in cluster_inputs, and a URL that waits for no
    resource (the functions' settings feed the modules their names: waiting would make a cycle)."""
    problems = []
    locals_ = {k: v for block in tf["modules/platform/main.tf"]["locals"] for k, v in block.items()}
    url = locals_["pushgateway_url"]
    if re.search(r"\$\{(?!local\.pushgateway\.|local\.k8s\.)", url):
        problems.append(
            f"the settings' Pushgateway URL depends on more than local.pushgateway and local.k8s: {url}"
        )
    if not {"local.pushgateway.release", "local.k8s.monitoring", "local.pushgateway.port"} <= set(
        re.findall(r"local\.[\w.]+", url)
    ):
        problems.append(
            f"the settings' Pushgateway URL is not <release>.<monitoring namespace>:<port>: {url}"
        )
    handed = locals_["cluster_inputs"]
    if handed.get("pushgateway") != "${local.pushgateway}" or handed.get("k8s") != "${local.k8s}":
        problems.append("cluster_inputs does not hand the in-cluster root the Pushgateway's names")
    cluster = blocks(tf["modules/cluster/main.tf"], "module")["observability"]
    if (
        cluster.get("pushgateway") != "${local.i.pushgateway}"
        or cluster.get("namespace") != "${local.i.k8s.monitoring}"
    ):
        problems.append("modules/cluster does not run the Pushgateway under the names it was handed")
    main = (CLUSTER_MODULE / "main.tf").read_text(encoding="utf-8")
    for wired in (
        "pushgateway_release = var.pushgateway.release",
        "pushgateway_port    = var.pushgateway.port",
    ):
        if wired not in main:
            problems.append(
                f"modules/cluster_observability does not set {wired.split()[0]} from var.pushgateway"
            )
    release = resources(tf["modules/cluster_observability/main.tf"], "helm_release")["pushgateway"]
    if (
        release["name"] != "${local.pushgateway_release}"
        or "local.pushgateway_port" not in release["values"][0]
    ):
        problems.append("the Pushgateway's release is not named and served as var.pushgateway says")
    checks = blocks(tf["modules/cluster/main.tf"], "check")
    if "pushgateway_in_settings" not in checks:
        problems.append("modules/cluster does not check the settings' URL against the Pushgateway it runs")
    return problems


def test_the_settings_name_the_pushgateway_the_cluster_runs(tf: dict) -> None:
    assert pushgateway_problems(tf) == []
    broken = {**tf, "modules/cluster/main.tf": {**tf["modules/cluster/main.tf"], "check": []}}
    assert pushgateway_problems(broken) == [
        "modules/cluster does not check the settings' URL against the Pushgateway it runs"
    ]


def test_every_setting_terraform_gives_is_one_the_code_reads(tf: dict) -> None:
    from remarketing.settings import Settings

    settings = tf["modules/platform/main.tf"]["locals"][0]["settings"]
    fields = {f"REMARKETING_{name.upper()}" for name in Settings.model_fields}
    assert set(settings) <= fields, set(settings) - fields
    assert settings["REMARKETING_SCORING_SHARDS"] == "${tostring(var.scoring_shards)}"


# ---------------------------------------------------------------- the delivery of storage events


def test_undelivered_events_and_unlaunched_files_page_someone(tf: dict) -> None:
    """A storage event no function accepted (Eventarc's Pub/Sub backlog) and a file no run was launched
    for (the log-based metric's reason "not launched", which the functions' real line is counted under in
    test_each_function_line_counts_in_exactly_its_log_metric) each have an alert policy."""
    policies = resources(tf["modules/observability/delivery.tf"], "google_monitoring_alert_policy")
    backlog = policies["events_not_delivered"]["conditions"][0]["condition_threshold"][0]
    text = backlog["filter"].replace('\\"', '"')  # HCL's escaped quotes, as Terraform reads them
    assert 'metric.type = "pubsub.googleapis.com/subscription/oldest_unacked_message_age"' in text, text
    assert 'resource.labels.subscription_id = starts_with("eventarc-")' in text, text
    assert backlog["comparison"] == "COMPARISON_GT"
    assert backlog["threshold_value"] == "${var.undelivered_event_age_seconds}"
    query = policies["not_launched"]["conditions"][0]["condition_prometheus_query_language"][0]["query"]
    query = query.replace('\\"', '"')
    metric = re.search(
        r'logging_googleapis_com:user_\$\{google_logging_metric\.functions\["(\w+)"\]\.name\}', query
    )
    assert metric is not None and metric.group(1) in log_metrics(), query
    reason = re.search(r'reason="([^"]+)"', query).group(1)
    assert reason == "not launched" and reason in REASONS
    for policy in policies.values():
        assert policy["notification_channels"] == "${local.notification_channels}"
