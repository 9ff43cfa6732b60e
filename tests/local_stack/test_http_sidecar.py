"""The bridge's HTTP side on a real socket: its metrics for Prometheus, and Alertmanager's webhook written
to the alert log, a line per notification; a body that is not a notification is refused in words."""

from __future__ import annotations

import json

import httpx
import pytest

from local_stack import bridge  # noqa: F401 - registers the bridge's series
from local_stack.http_sidecar import Sidecar
from remarketing.processes import free_port


@pytest.fixture
def sidecar(tmp_path):
    port = free_port()
    log = tmp_path / "alertmanager" / "alerts.jsonl"
    server = Sidecar(port, log)
    server.start()
    yield f"http://127.0.0.1:{port}", log
    server.stop()


def test_metrics_are_served_for_prometheus(sidecar):
    url, _ = sidecar
    response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert "remarketing_bridge_pending_events" in response.text
    assert "remarketing_bridge_last_cycle_timestamp_seconds" in response.text


def test_each_notification_is_one_line_of_the_alert_log(sidecar):
    url, log = sidecar
    notification = {"status": "firing", "alerts": [{"labels": {"alertname": "RemarketingModelServerDown"}}]}
    for _ in range(2):
        assert httpx.post(f"{url}/alerts", json=notification).status_code == 200
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == 2 and all(line["alerts"] == notification["alerts"] for line in lines)
    assert all(line["received"] > 0 for line in lines)


def test_a_body_that_is_not_a_notification_is_refused_and_logs_nothing(sidecar):
    url, log = sidecar
    response = httpx.post(f"{url}/alerts", content=b"{not json")
    assert response.status_code == 400 and "not a JSON Alertmanager notification" in response.text
    assert httpx.get(f"{url}/elsewhere").status_code == 404
    assert not log.exists() or log.read_text() == ""
