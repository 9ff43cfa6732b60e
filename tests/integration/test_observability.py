"""What Prometheus sees of the real stack: a run's pushed figures match its record, and a model server
killed by hand goes down, its alert pending (the rule tests say when it fires)."""

from __future__ import annotations

import psutil
import pytest

from observability.push import groups
from remarketing.ports import CHAMPION
from serving.deployer import LocalDeployer, bundle_uri, server_name
from tests.observability.promql import query, targets, wait_until
from tracking.registry import MlflowRegistry

pytestmark = pytest.mark.integration
MODEL = "remarketing-bank-marketing"


def test_the_training_runs_figures_are_on_the_pushgateway_and_in_prometheus(trained, stack):
    run_id = trained[0].json["run_id"]
    assert groups(stack)[run_id]["status"] == "success"
    series = wait_until(
        "the run's status scraped",
        lambda: query(
            stack.prometheus_url,
            f'remarketing_pipeline_run_status{{run_id="{run_id}", status="success"}} == 1',
        ),
    )
    assert series[0]["metric"]["kind"] == "training" and series[0]["metric"]["job"] == "remarketing-pipeline"
    steps = query(stack.prometheus_url, f'remarketing_pipeline_step_duration_seconds{{run_id="{run_id}"}}')
    assert {"validate", "split", "register"} <= {s["metric"]["step"] for s in steps}


def test_a_killed_model_server_goes_down_and_its_alert_pends(trained, stack):
    version = MlflowRegistry(stack.tracking_uri).by_alias(MODEL, CHAMPION).version
    deployer = LocalDeployer(stack)
    deployer.deploy(MODEL, version, bundle_uri(stack, MODEL, version))
    up = f'up{{job="model-server", model="{MODEL}", version="{version}"}}'
    wait_until("the model server scraped as up", lambda: query(stack.prometheus_url, f"{up} == 1"))
    server = deployer.registry.get(server_name(MODEL, version))
    psutil.Process(server.pid).kill()
    try:
        wait_until("its target down", lambda: query(stack.prometheus_url, f"{up} == 0"))
        pending = wait_until(
            "RemarketingModelServerDown pending",
            lambda: query(
                stack.prometheus_url,
                f'ALERTS{{alertname="RemarketingModelServerDown", model="{MODEL}", version="{version}"}}',
            ),
        )
        assert pending[0]["metric"]["severity"] == "page"
        # Other datasets' servers can carry the same version number: match the model too.
        (target,) = [
            t
            for t in targets(stack.prometheus_url)
            if t["labels"].get("model") == MODEL and t["labels"].get("version") == version
        ]
        assert target["health"] == "down" and target["lastError"]
    finally:  # the next test that scores finds a server again
        deployer.deploy(MODEL, version, bundle_uri(stack, MODEL, version))
    wait_until("the new server scraped as up", lambda: query(stack.prometheus_url, f"{up} == 1"))
