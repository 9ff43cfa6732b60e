"""The dashboards as code: every panel declared once (title, PromQL, unit, legend, dashboard, whether the
app's Operations page shows it), rendered as Grafana dashboard JSON and provisioning YAML.

Run ``python -m observability.dashboards`` to rewrite ``observability/grafana/`` (committed; a test fails
when the files and this module differ). Expressions use fixed windows and no Grafana variables, so the API
runs them against Prometheus verbatim; only the data source is a dashboard variable (``${datasource}``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

GRAFANA = Path(__file__).parent / "grafana"
DASHBOARDS_DIR = GRAFANA / "dashboards"
PROVISIONING = GRAFANA / "provisioning"
SCHEMA_VERSION = 39
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Where the Grafana release mounts observability/grafana/dashboards (a ConfigMap in the cloud).
MOUNTED_DASHBOARDS = "/var/lib/grafana/dashboards/remarketing"

# Grafana unit ids, and the words the app puts on an axis for them.
UNIT_WORDS = {
    "cps": "per second",
    "reqps": "requests per second",
    "s": "seconds",
    "percentunit": "share",
    "short": "count",
    "none": "value",
}


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str  # Grafana's legendFormat: {{label}} placeholders


@dataclass(frozen=True)
class Panel:
    dashboard: str
    title: str
    queries: tuple[Query, ...]
    unit: str
    description: str
    key: bool = False  # drawn on the app's Operations page too
    kind: Literal["timeseries", "stat"] = "timeseries"
    threshold: float | None = None  # the level an alert rule or a setting draws the line at

    @property
    def slug(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in self.title.lower()).strip("-")


@dataclass(frozen=True)
class Dashboard:
    name: str  # the file observability/grafana/dashboards/<name>.json
    title: str
    description: str
    panels: tuple[Panel, ...] = field(default=())


def _q(expr: str, legend: str) -> tuple[Query, ...]:
    return (Query(expr, legend),)


MODEL = 'job="model-server"'
# Prometheus's own scrapes and health checks would outnumber the users' requests.
API_USERS = 'job="api", route!~"/metrics|/healthz"'
PIPELINE = 'job="remarketing-pipeline"'

# Model servers: `model` and `version` are target labels from service discovery, on every series (KServe's
# latency histograms carry only model_name, so grouping by them works for every panel alike).
SERVING = (
    # Cumulative, not rates: a local server starts with its scoring run, and its first scrape often comes
    # after the batch, which a rate() never sees (there is no earlier sample to differ from).
    Panel(
        "serving",
        "Customers scored by model version",
        _q(f"sum by (model, version) (remarketing_model_predictions_total{{{MODEL}}})", "v{{version}}"),
        "short",
        "Customers scored (one per row: predict, infer or explain) since each version's server started.",
        key=True,
    ),
    Panel(
        "serving",
        "Score distribution by model version (p10, p50, p90)",
        tuple(
            Query(
                f"histogram_quantile({q}, sum by (model, version, le) "
                f"(remarketing_model_score_bucket{{{MODEL}}}))",
                f"v{{{{version}}}} p{round(q * 100)}",
            )
            for q in (0.1, 0.5, 0.9)
        ),
        "percentunit",
        "Quantiles of every score a version's server returned since it started (remarketing_model_score, "
        "0.05-wide buckets): a version whose scores shift while the customers did not is worth a look.",
        key=True,
    ),
    Panel(
        "serving",
        "Model server request errors by cause",
        _q(
            "sum by (model, version, verb, cause) "
            f"(rate(remarketing_model_request_errors_total{{{MODEL}}}[5m]))",
            "v{{version}} {{verb}} {{cause}}",
        ),
        "reqps",
        "Requests not answered with a score: invalid_input is the caller's fault, internal the server's.",
        key=True,
    ),
    Panel(
        "serving",
        "KServe latency by verb (p50, p99)",
        tuple(
            Query(
                f"histogram_quantile({q}, sum by (model, version, le) "
                f"(rate(request_{verb}_seconds_bucket{{{MODEL}}}[5m])))",
                f"v{{{{version}}}} {verb} p{round(q * 100)}",
            )
            for verb in ("predict", "explain")  # online calls predict; the batch path explains
            for q in (0.5, 0.99)
        ),
        "s",
        "KServe's own timers: predict (online) and explain (the scoring pipeline's batches, with reasons); "
        "the line is the predict p99 target of RemarketingModelServerSlow.",
        key=True,
        threshold=0.5,
    ),
    Panel(
        "serving",
        "API requests by route and status",
        _q(
            f"sum by (route, status) (rate(remarketing_api_requests_total{{{API_USERS}}}[5m]))",
            "{{route}} {{status}}",
        ),
        "reqps",
        "Requests by route template and status code (without /metrics and /healthz).",
        key=True,
    ),
    Panel(
        "serving",
        "API latency p99 by route",
        _q(
            "histogram_quantile(0.99, sum by (route, le) "
            f"(rate(remarketing_api_request_duration_seconds_bucket{{{API_USERS}}}[5m])))",
            "{{route}}",
        ),
        "s",
        "The 99th percentile of request duration by route template over 5 minutes (without /metrics and "
        "/healthz).",
    ),
    Panel(
        "serving",
        "Uploads accepted and rejected by reason (last hour)",
        (
            Query(
                'sum by (kind) (increase(remarketing_api_uploads_total{job="api", outcome="accepted"}[1h]))',
                "{{kind}} accepted",
            ),
            # every reason is declared at zero: only the ones that happened are drawn
            Query(
                "sum by (kind, reason) "
                '(increase(remarketing_api_uploads_total{job="api", outcome="rejected"}[1h])) > 0',
                "{{kind}} rejected: {{reason}}",
            ),
        ),
        "short",
        "Weekly and outcomes files in the hour before each point.",
        key=True,
    ),
    Panel(
        "serving",
        "Model server targets up",
        _q(f"up{{{MODEL}}}", "v{{version}} {{instance}}"),
        "none",
        "Whether Prometheus reaches each model server (file-based discovery, rewritten by the Deployer).",
        kind="stat",
    ),
)

# Pipeline series live on the Pushgateway from a run's first push until the retention after it ended:
# the panels show the runs of that window, aggregated over run_id (worst first where it matters).
PIPELINES = (
    Panel(
        "pipelines",
        "Pipeline runs by kind and status",
        _q(
            f"count by (kind, status) (remarketing_pipeline_run_status{{{PIPELINE}}} == 1)",
            "{{kind}} {{status}}",
        ),
        "short",
        "Runs on the Pushgateway now (running, or ended less than the retention ago), by their status.",
        key=True,
    ),
    Panel(
        "pipelines",
        "Step durations",
        _q(
            f"max by (kind, step) (remarketing_pipeline_step_duration_seconds{{{PIPELINE}}})",
            "{{kind}} {{step}}",
        ),
        "s",
        "The longest wall time of each step among the runs on the Pushgateway.",
    ),
    Panel(
        "pipelines",
        "Rows read, scored and rejected",
        _q(f"sum by (dataset, stage) (remarketing_pipeline_rows{{{PIPELINE}}})", "{{dataset}} {{stage}}"),
        "short",
        "Rows of the scoring runs on the Pushgateway.",
    ),
    Panel(
        "pipelines",
        "Bridge: events pending",
        (
            Query('remarketing_bridge_pending_events{job="bridge"}', "pending"),
            Query('sum(increase(remarketing_bridge_events_total{job="bridge"}[5m]))', "queued in 5 minutes"),
        ),
        "short",
        "Storage events not yet acknowledged by every function (local stack only).",
    ),
    Panel(
        "pipelines",
        "Bridge: delivery retries by cause",
        _q(
            'sum by (function, cause) (rate(remarketing_bridge_delivery_retries_total{job="bridge"}[5m]))',
            "{{function}} {{cause}}",
        ),
        "reqps",
        "Deliveries to retry: the function was unreachable or answered a server error.",
    ),
    Panel(
        "pipelines",
        "Functions: events received, ignored, launched, deduplicated (last hour)",
        (
            Query(
                'sum by (function) (increase(remarketing_function_events_total{job="functions"}[1h]))',
                "{{function}} received",
            ),
            Query(
                "sum by (function, reason) "
                '(increase(remarketing_function_events_ignored_total{job="functions"}[1h])) > 0',
                "{{function}} ignored: {{reason}}",
            ),
            Query(
                "sum by (function, kind) "
                '(increase(remarketing_function_runs_launched_total{job="functions"}[1h]))',
                "{{function}} launched {{kind}}",
            ),
            Query(
                "sum by (function) "
                '(increase(remarketing_function_runs_deduplicated_total{job="functions"}[1h]))',
                "{{function}} deduplicated",
            ),
        ),
        "short",
        "What the storage-triggered functions did with their events in the hour before each point (only the "
        "reasons to ignore one that happened).",
    ),
)

DECISIONS = (
    Panel(
        "decisions",
        "Feature drift (PSI) by feature",
        _q(
            f"max by (dataset, feature) (remarketing_pipeline_feature_psi{{{PIPELINE}}})",
            "{{dataset}} {{feature}}",
        ),
        "none",
        "Population stability of each feature of the scored files against training; 0.25 is major drift "
        "(RemarketingFeatureDrift).",
        key=True,
        threshold=0.25,
    ),
    Panel(
        "decisions",
        "Expected conversion rate of the contacted",
        _q(f"max by (dataset) (remarketing_pipeline_expected_conversion_rate{{{PIPELINE}}})", "{{dataset}}"),
        "percentunit",
        "What the scoring runs promise the contacted customers convert at.",
    ),
    Panel(
        "decisions",
        "Realized lift (times the reference)",
        _q(f"min by (dataset) (remarketing_monitoring_realized_lift{{{PIPELINE}}})", "{{dataset}}"),
        "none",
        "The targeted's realized conversion over the reference's, by monitoring run; below 1.2 retrains "
        "(RemarketingRealizedLiftLow).",
        key=True,
        threshold=1.2,
    ),
    Panel(
        "decisions",
        "Calibration error",
        _q(f"max by (dataset) (remarketing_monitoring_calibration_error{{{PIPELINE}}})", "{{dataset}}"),
        "percentunit",
        "Mean absolute gap between expected and actual conversion by score decile; above 0.1 alerts "
        "(RemarketingCalibrationOff).",
        threshold=0.1,
    ),
)

DASHBOARDS = (
    Dashboard(
        "serving",
        "Remarketing · Serving path",
        "Model servers and the API: what is scored, how fast, what fails.",
        SERVING,
    ),
    Dashboard(
        "pipelines",
        "Remarketing · Pipelines",
        "Training, scoring and monitoring runs, and the storage events that start them.",
        PIPELINES,
    ),
    Dashboard(
        "decisions",
        "Remarketing · Model decisions",
        "Drift of the scored customers, what was promised and what the outcomes said.",
        DECISIONS,
    ),
)
PANELS = tuple(panel for dashboard in DASHBOARDS for panel in dashboard.panels)
KEY_PANELS = tuple(panel for panel in PANELS if panel.key)


# --- Grafana JSON ----------------------------------------------------------------------------------------
def _thresholds(panel: Panel) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    if panel.threshold is not None:
        steps.append({"color": "red", "value": panel.threshold})
    return {"mode": "absolute", "steps": steps}


def _field_config(panel: Panel) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit, "thresholds": _thresholds(panel)}
    if panel.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 0,
            "showPoints": "never",
            "spanNulls": False,
            "thresholdsStyle": {"mode": "dashed" if panel.threshold is not None else "off"},
        }
    else:  # up/down in words, not 1 and 0
        defaults["mappings"] = [
            {
                "type": "value",
                "options": {
                    "0": {"color": "red", "index": 0, "text": "down"},
                    "1": {"color": "green", "index": 1, "text": "up"},
                },
            }
        ]
        defaults["color"] = {"mode": "thresholds"}
        defaults["thresholds"] = {
            "mode": "absolute",
            "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}],
        }
    return {"defaults": defaults, "overrides": []}


def _options(panel: Panel) -> dict[str, Any]:
    if panel.kind == "stat":
        return {
            "colorMode": "background",
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "textMode": "value_and_name",
        }
    return {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }


def panel_json(panel: Panel, panel_id: int) -> dict[str, Any]:
    """One panel, two per row of the 24-column grid."""
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": 12, "x": 12 * ((panel_id - 1) % 2), "y": 8 * ((panel_id - 1) // 2)},
        "fieldConfig": _field_config(panel),
        "options": _options(panel),
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": DATASOURCE,
                "editorMode": "code",
                "expr": query.expr,
                "legendFormat": query.legend,
                "range": True,
            }
            for i, query in enumerate(panel.queries)
        ],
    }


def dashboard_json(dashboard: Dashboard) -> dict[str, Any]:
    return {
        "uid": f"remarketing-{dashboard.name}",
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": ["remarketing"],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": False,  # the file is the source: a change made in the UI would be overwritten
        "graphTooltip": 1,
        "timezone": "browser",
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "annotations": {"list": []},
        "links": [],
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "refresh": 1,
                    "regex": "",
                    "options": [],
                }
            ]
        },
        "panels": [panel_json(panel, i) for i, panel in enumerate(dashboard.panels, start=1)],
    }


# --- provisioning ------------------------------------------------------------------------------------
def datasource_provisioning() -> dict[str, Any]:
    # Grafana expands ${...} from its environment: the same variable the API's settings read.
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus",
                "uid": "prometheus",
                "type": "prometheus",
                "access": "proxy",
                "url": "${REMARKETING_PROMETHEUS_URL}",
                "isDefault": True,
                "editable": False,
            }
        ],
    }


def dashboards_provisioning() -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "remarketing",
                "orgId": 1,
                "folder": "Remarketing",
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 30,
                "options": {"path": MOUNTED_DASHBOARDS, "foldersFromFilesStructure": False},
            }
        ],
    }


HEADER = (
    "# Generated by `python -m observability.dashboards` from observability/dashboards.py: do not edit.\n"
)


def rendered() -> dict[Path, str]:
    """Every generated file (path relative to observability/grafana) and its text, as it is committed."""
    files = {
        Path("dashboards") / f"{d.name}.json": json.dumps(dashboard_json(d), indent=2, ensure_ascii=False)
        + "\n"
        for d in DASHBOARDS
    }
    for name, document in [
        ("datasources/prometheus.yaml", datasource_provisioning()),
        ("dashboards/remarketing.yaml", dashboards_provisioning()),
    ]:
        files[Path("provisioning") / name] = HEADER + yaml.safe_dump(document, sort_keys=False)
    return files


def write(root: Path = GRAFANA) -> list[Path]:
    written = []
    for relative, text in rendered().items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    import sys

    for path in write():
        sys.stdout.write(f"wrote {path}\n")
