"""A run's figures on a real Pushgateway: rendered from the record, replaced on each push, brought in line
with the record and deleted after the retention by the sweep."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import httpx
from prometheus_client.parser import text_string_to_metric_families

from observability import push
from remarketing.processes import free_port
from remarketing.runs import RunRecord, Source, Step
from remarketing.settings import Settings


def record(status: str = "running", kind: str = "scoring", **metrics) -> RunRecord:
    """A run that began at 9:00, validated in 3 s, and is scoring (or scored, until 9:00:10)."""
    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def at(seconds: int) -> str:
        return (start + timedelta(seconds=seconds)).isoformat()

    steps = [
        Step(name="validate", status="success", started=at(0), finished=at(3)),
        Step(name="score", status=status, started=at(3), finished=None if status == "running" else at(10)),
    ]
    return RunRecord(
        run_id=f"{kind}-0123456789abcdef",
        kind=kind,
        dataset="bank-marketing",
        source=Source(uri="gs://landing/weekly/w.csv", generation=1),
        status=status,
        steps=steps,
        metrics=metrics,
        created=at(0),
        updated=at(10),
    )


def samples(registry) -> dict[tuple[str, frozenset], float]:
    from prometheus_client import generate_latest

    text = generate_latest(registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_scoring_run_renders_its_status_steps_rows_drift_and_promise():
    got = samples(
        push.render(
            record(
                "success",
                rows_read=120,
                rows_scored=118,
                rows_rejected=2,
                feature_psi={"age": 0.31, "job": 0.02},
                expected_conversion_rate=0.22,
            )
        )
    )
    base = {("kind", "scoring"), ("dataset", "bank-marketing")}
    assert got[("remarketing_pipeline_run_status", frozenset(base | {("status", "success")}))] == 1
    assert got[("remarketing_pipeline_run_status", frozenset(base | {("status", "running")}))] == 0
    assert got[("remarketing_pipeline_step_duration_seconds", frozenset(base | {("step", "score")}))] == 7
    assert got[("remarketing_pipeline_run_duration_seconds", frozenset(base))] == 10
    assert got[("remarketing_pipeline_rows", frozenset(base | {("stage", "rejected")}))] == 2
    assert got[("remarketing_pipeline_feature_psi", frozenset(base | {("feature", "age")}))] == 0.31
    assert got[("remarketing_pipeline_expected_conversion_rate", frozenset(base))] == 0.22
    assert not any("run_id" in dict(labels) for _, labels in got)  # the grouping key adds it, once


def test_a_running_step_has_no_duration_yet_and_a_monitoring_run_its_lift_and_calibration():
    running = samples(push.render(record("running")))
    assert not any(
        n == "remarketing_pipeline_step_duration_seconds" and ("step", "score") in labels
        for n, labels in running
    )
    monitoring = samples(
        push.render(record("success", kind="monitoring", realized_lift=2.2, calibration_error=0.04))
    )
    base = frozenset({("kind", "monitoring"), ("dataset", "bank-marketing")})
    assert monitoring[("remarketing_monitoring_realized_lift", base)] == 2.2
    assert monitoring[("remarketing_monitoring_calibration_error", base)] == 0.04


def test_pushes_replace_the_group_and_the_sweep_catches_up_then_deletes(pushgateway):
    settings = Settings(pushgateway_url=pushgateway, pipeline_metrics_retention_seconds=60)
    run = record("running")
    assert push.push(settings, run)
    assert push.groups(settings) == {
        run.run_id: {"status": "running", "pushed": push.groups(settings)[run.run_id]["pushed"]}
    }
    # the process died and the run was reconciled as failed: the sweep pushes what the record says
    failed = run.model_copy(update={"status": "failed"})
    updated = datetime.fromisoformat(failed.updated).timestamp()
    assert push.sweep(settings, {run.run_id: failed}.get, now=updated + 1) == []
    assert push.groups(settings)[run.run_id]["status"] == "failed"
    # ended, but within the retention: kept (alerts can still fire); after it: deleted
    assert push.sweep(settings, {run.run_id: failed}.get, now=updated + 59) == []
    assert push.sweep(settings, {run.run_id: failed}.get, now=updated + 60) == [run.run_id]
    assert push.groups(settings) == {}


def test_a_running_run_is_never_swept_and_a_vanished_one_is(pushgateway):
    settings = Settings(pushgateway_url=pushgateway, pipeline_metrics_retention_seconds=60)
    running = record("running")
    push.push(settings, running)
    days_later = time.time() + 86400
    assert push.sweep(settings, {running.run_id: running}.get, now=days_later) == []
    assert push.sweep(settings, lambda run_id: None, now=days_later) == [running.run_id]


def test_a_pushgateway_that_is_down_is_named_and_costs_the_run_nothing(caplog):
    settings = Settings(pushgateway_url=f"http://127.0.0.1:{free_port()}")
    with caplog.at_level(logging.WARNING, logger="remarketing.observability"):
        assert push.push(settings, record()) is False
        assert push.sweep(settings, lambda run_id: None) == []
    assert f"the Pushgateway at {settings.pushgateway_url} is down" in caplog.text


def test_other_jobs_groups_are_left_alone(pushgateway):
    httpx.put(f"{pushgateway}/metrics/job/someone-else", content=b"x 1\n").raise_for_status()
    settings = Settings(pushgateway_url=pushgateway)
    assert push.groups(settings) == {} and push.sweep(settings, lambda run_id: None, now=1e12) == []
