"""GET /operations and the Operations page against a real Prometheus (Debian's package, on a free loopback
port in a temporary folder) scraping a real prometheus_client endpoint every second, with one alert rule
that always fires and one target nothing answers at; and with Prometheus down."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, Counter, start_http_server
from streamlit.testing.v1 import AppTest

from frontend.api.main import create_app
from local_stack import services
from remarketing.processes import ProcessRegistry, free_port
from remarketing.settings import Settings

pytestmark = pytest.mark.integration
PROMETHEUS = Path("/usr/bin/prometheus")
PAGE = Path(__file__).resolve().parents[2] / "frontend" / "app" / "pages" / "6_Operations.py"
KEY = "operations-test-key"
PANEL = "Customers scored by model version"


def wait_for(what: str, check: Callable[[], bool], process: subprocess.Popen, log: Path) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` and the log's end at a deadline or when the
    process exits."""
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Prometheus exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{what} within 30 s:\n{log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def model_server_metrics() -> Iterator[int]:
    """A model server's counter on a real prometheus_client HTTP endpoint."""
    registry = CollectorRegistry()
    predictions = Counter(
        "remarketing_model_predictions",
        "Customers scored",
        ["model_name", "model_version"],
        registry=registry,
    )
    predictions.labels("remarketing-bank-marketing", "3").inc(40)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    yield port
    server.shutdown()
    thread.join(timeout=5)


@dataclass
class RunningPrometheus:
    url: str

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=2)
        return answer.json()["data"]["result"]

    def alerts(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.url}/api/v1/alerts", timeout=2).json()["data"]["alerts"]

    def targets(self) -> dict[str, str]:
        active = httpx.get(f"{self.url}/api/v1/targets", timeout=2).json()["data"]["activeTargets"]
        return {t["labels"]["job"]: t["health"] for t in active}


@pytest.fixture(scope="module")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory, model_server_metrics: int
) -> Iterator[RunningPrometheus]:
    if not PROMETHEUS.exists():  # never a skip: CI installs it
        pytest.fail(f"{PROMETHEUS} is missing: install it with `apt-get install prometheus`", pytrace=False)
    folder = tmp_path_factory.mktemp("prometheus")
    (folder / "always.rules.yml").write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "test",
                        "rules": [
                            {
                                "alert": "OperationsTestAlwaysFiring",
                                "expr": "vector(1)",
                                "labels": {"severity": "ticket"},
                                "annotations": {"summary": "fires for the test", "description": "always"},
                            }
                        ],
                    }
                ]
            }
        )
    )
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(folder / "always.rules.yml")],
        "scrape_configs": [
            {  # as file-based discovery labels a model server
                "job_name": "model-server",
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{model_server_metrics}"],
                        "labels": {"model": "remarketing-bank-marketing", "version": "3"},
                    }
                ],
            },
            # nothing answers there
            {"job_name": "api", "static_configs": [{"targets": [f"127.0.0.1:{free_port()}"]}]},
        ],
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = folder / "prometheus.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                str(PROMETHEUS),
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )
    running = RunningPrometheus(f"http://127.0.0.1:{port}")
    try:
        ready = partial(wait_for, process=process, log=log)
        ready("Prometheus was not ready", lambda: httpx.get(f"{running.url}/-/ready", timeout=1).is_success)
        ready(
            "Prometheus did not scrape the model server up and the api target down",
            lambda: running.targets() == {"model-server": "up", "api": "down"},
        )
        ready(  # two samples at least: a rate over them exists
            "the predictions counter had no two samples",
            lambda: bool(running.query("count_over_time(remarketing_model_predictions_total[1m]) >= 2")),
        )
        ready("the test alert did not fire", lambda: any(a["state"] == "firing" for a in running.alerts()))
        yield running
    finally:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


def api_settings(tmp_path: Path, prometheus_url: str) -> Settings:
    return Settings(state_dir=tmp_path, api_key=KEY, prometheus_url=prometheus_url, scrape_interval_seconds=1)


def client_for(settings: Settings) -> TestClient:
    return TestClient(create_app(settings), headers={"X-API-Key": KEY})


def test_operations_returns_the_key_panels_targets_and_alerts(prometheus: RunningPrometheus, tmp_path: Path):
    client = client_for(api_settings(tmp_path, prometheus.url))

    response = client.get("/operations", params={"minutes": 5})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["prometheus"] == prometheus.url and body["minutes"] == 5
    panels = {p["title"]: p for p in body["panels"]}
    predictions = panels[PANEL]
    assert predictions["unit"] == "short" and predictions["error"] is None
    [series] = predictions["series"]
    assert series["name"] == "v3"
    assert series["labels"] == {"model": "remarketing-bank-marketing", "version": "3"}
    last_time, last_value = series["points"][-1]
    assert last_value == 40.0  # the customers scored since the server started
    assert abs(last_time - time.time()) < 30
    assert panels["Feature drift (PSI) by feature"]["series"] == []  # nothing there: empty, not an error
    assert all(p["error"] is None for p in body["panels"])

    targets = {t["job"]: t for t in body["targets"]}
    assert targets["model-server"]["health"] == "up" and targets["model-server"]["last_error"] is None
    assert targets["api"]["health"] == "down" and "connection refused" in targets["api"]["last_error"]
    [alert] = body["alerts"]
    assert alert["name"] == "OperationsTestAlwaysFiring" and alert["summary"] == "fires for the test"


def test_operations_needs_the_api_key_and_bounds_the_window(prometheus: RunningPrometheus, tmp_path: Path):
    app = create_app(api_settings(tmp_path, prometheus.url))
    assert TestClient(app).get("/operations").status_code == 401
    client = TestClient(app, headers={"X-API-Key": KEY})
    assert client.get("/operations", params={"minutes": 1}).status_code == 422
    assert client.get("/operations", params={"minutes": 7 * 24 * 60 + 1}).status_code == 422
    week = client.get("/operations", params={"minutes": 7 * 24 * 60}).json()
    assert week["step_seconds"] == 7 * 24 * 3600 // 240  # 240 points


def test_operations_says_prometheus_is_down(tmp_path: Path):
    closed = f"http://127.0.0.1:{free_port()}"
    response = client_for(api_settings(tmp_path, closed)).get("/operations")
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert detail.startswith(f"Prometheus at {closed} is unavailable (down: nothing answers there)")


# --- the page, over HTTP to a real API process -----------------------------------------------------------
@pytest.fixture
def api_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Start the API as `remarketing up` does, querying the given Prometheus; the page's env points at it."""
    started: list[Path] = []

    def start(prometheus_url: str) -> None:
        state = tmp_path / f"api-{len(started)}"
        settings = services.private_settings(state, api_key=KEY, prometheus_url=prometheus_url)
        started.append(state)
        services.ensure(settings, "api")
        monkeypatch.setenv("REMARKETING_API_URL", f"http://127.0.0.1:{settings.api_port}")
        monkeypatch.setenv("REMARKETING_API_KEY", KEY)

    yield start
    for state in started:
        ProcessRegistry(state).stop("api")


def test_the_page_draws_the_panels_targets_and_alerts(api_for, prometheus: RunningPrometheus):
    api_for(prometheus.url)
    at = AppTest.from_file(str(PAGE), default_timeout=30).run()
    assert not at.exception, at.exception
    assert any(
        w.value.startswith("**OperationsTestAlwaysFiring** (ticket): fires for the test") for w in at.warning
    )
    table = at.dataframe[0].value
    assert dict(zip(table["job"], table["state"], strict=True)) == {"api": "down", "model-server": "up"}
    assert "connection refused" in table.loc[table["job"] == "api", "last error"].iloc[0]
    assert any(c.value.startswith("1 of 2 targets up; down: api") for c in at.caption)
    assert any(m.value == f"**{PANEL}**" for m in at.markdown)
    assert at.get("vega_lite_chart")  # the predictions panel has data
    assert any(i.value == "No data in the last hour." for i in at.info)  # e.g. drift: no pipeline ran


def test_the_page_says_prometheus_is_down(api_for):
    api_for(f"http://127.0.0.1:{free_port()}")
    at = AppTest.from_file(str(PAGE), default_timeout=30).run()
    assert not at.exception, at.exception
    [error] = at.error
    assert error.value.startswith(
        "Prometheus is down, so there is nothing to show: Prometheus at http://127.0.0.1:"
    )
    assert not at.get("vega_lite_chart") and not at.dataframe
