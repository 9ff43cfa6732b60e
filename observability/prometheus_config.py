"""The local stack's Prometheus and Alertmanager configuration, generated into the state folder from the
settings (every port is a setting, so a private stack beside another gets its own)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from cloud_functions import FUNCTIONS
from observability.targets import targets_file, write_model_server_targets
from remarketing.settings import Settings

RULES = Path(__file__).parent / "rules"


def _static(job: str, port: int, **extra: Any) -> dict[str, Any]:
    return {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}], **extra}


def prometheus_config(settings: Settings) -> dict[str, Any]:
    interval = f"{settings.scrape_interval_seconds}s"
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{settings.alertmanager_port}"]}]}]
        },
        "rule_files": [str(path) for path in sorted(RULES.glob("*.rules.yml"))],
        "scrape_configs": [
            _static("prometheus", settings.prometheus_port),
            # the pushed series keep their own job and run_id labels
            _static("pushgateway", settings.pushgateway_port, honor_labels=True),
            _static("alertmanager", settings.alertmanager_port),
            _static("api", settings.api_port),
            _static("mlflow", settings.mlflow_port),
            _static("bridge", settings.bridge_metrics_port),
            {
                "job_name": "functions",
                "honor_labels": True,  # the counters' own `function` label is the same name
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{getattr(settings, f.port_setting)}"],
                        "labels": {"function": name},
                    }
                    for name, f in FUNCTIONS.items()
                ],
            },
            {
                "job_name": "model-server",
                "file_sd_configs": [
                    {"files": [str(targets_file(settings.state_dir))], "refresh_interval": interval}
                ],
            },
        ],
    }


def alertmanager_config(settings: Settings) -> dict[str, Any]:
    """Every alert to the bridge's webhook, which appends it to ``<state>/alertmanager/alerts.jsonl``."""
    return {
        "route": {
            "receiver": "local-log",
            "group_by": ["alertname"],
            "group_wait": "1s",
            "group_interval": "10s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "local-log",
                "webhook_configs": [
                    {"url": f"http://127.0.0.1:{settings.bridge_metrics_port}/alerts", "send_resolved": True}
                ],
            }
        ],
    }


def folder(settings: Settings, name: str) -> Path:
    path = Path(settings.state_dir).resolve() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_prometheus(settings: Settings) -> Path:
    """prometheus.yml, and the model servers' targets as the registry says now (stale after a `down`)."""
    write_model_server_targets(settings.state_dir)
    path = folder(settings, "prometheus") / "prometheus.yml"
    path.write_text(yaml.safe_dump(prometheus_config(settings), sort_keys=False))
    return path


def write_alertmanager(settings: Settings) -> Path:
    path = folder(settings, "alertmanager") / "alertmanager.yml"
    path.write_text(yaml.safe_dump(alertmanager_config(settings), sort_keys=False))
    return path
