"""The generated Prometheus and Alertmanager configuration: valid for the real tools, every service of the
stack scraped, and the model servers discovered from the process registry."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from local_stack import services
from observability import prometheus_config
from observability.targets import targets_file
from remarketing.processes import ProcessRegistry
from tests.observability.conftest import program


def test_the_configuration_passes_promtool_and_scrapes_every_service(tmp_path):
    settings = services.private_settings(tmp_path / "state")
    path = prometheus_config.write_prometheus(settings)
    result = subprocess.run(
        [program("promtool"), "check", "config", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr and "rule files found" in result.stdout + result.stderr
    config = yaml.safe_load(path.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {
        "prometheus",
        "pushgateway",
        "alertmanager",
        "api",
        "mlflow",
        "bridge",
        "functions",
        "model-server",
    }
    assert jobs["pushgateway"]["honor_labels"] is True
    assert [c["labels"]["function"] for c in jobs["functions"]["static_configs"]] == [
        "on_input_file",
        "on_weekly_file",
        "on_outcomes_file",
    ]
    assert f"127.0.0.1:{settings.api_port}" in jobs["api"]["static_configs"][0]["targets"]


def test_the_alertmanager_configuration_passes_amtool_and_routes_to_the_bridges_log(tmp_path):
    settings = services.private_settings(tmp_path / "state")
    path = prometheus_config.write_alertmanager(settings)
    result = subprocess.run(
        [program("amtool"), "check-config", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr
    config = yaml.safe_load(path.read_text())
    hook = config["receivers"][0]["webhook_configs"][0]["url"]
    assert hook == f"http://127.0.0.1:{settings.bridge_metrics_port}/alerts"
    assert config["route"]["receiver"] == config["receivers"][0]["name"]


def test_model_servers_are_discovered_from_the_registry_with_their_version(tmp_path):
    state = tmp_path / "state"
    registry = ProcessRegistry(state)
    command = [sys.executable, "-c", "import time; time.sleep(60)"]
    registry.start(
        "model-server-remarketing-bank-marketing-v12",
        command,
        address="http://127.0.0.1:4567",
        kind="model-server",
    )
    registry.start("api", command, address="http://127.0.0.1:4568")
    try:
        from observability.targets import write_model_server_targets

        write_model_server_targets(state)
        groups = json.loads(targets_file(state).read_text())
        assert groups == [
            {
                "targets": ["127.0.0.1:4567"],
                "labels": {"model": "remarketing-bank-marketing", "version": "12"},
            }
        ]
        registry.stop("model-server-remarketing-bank-marketing-v12")
        write_model_server_targets(state)
        assert json.loads(targets_file(state).read_text()) == []
    finally:
        registry.stop_all()
