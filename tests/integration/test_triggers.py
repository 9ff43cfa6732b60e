"""Storage triggers on the real local parts: emulator, both functions under functions-framework, the
event bridge, and the pipelines they launch (on files that fail fast at validation)."""

from __future__ import annotations

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest

from local_stack import services
from local_stack.bridge import cloud_event
from remarketing.processes import ProcessRegistry
from remarketing.runs import RunStore, run_id_for
from remarketing.settings import Settings
from remarketing.storage import Storage

pytestmark = pytest.mark.integration
BAD_WEEKLY = "customer_id;age\nC1;40\n"  # a usable CSV for nobody: its run fails at validate, quickly


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    """A whole local stack as `remarketing up` starts it, on its own state folder and ports."""
    settings = services.private_settings(Path(tmp_path_factory.mktemp("events")))
    services.ensure_stack(settings, services.ALL)
    yield settings
    services.down(settings)


def put(settings: Settings, name: str, text: str) -> int:
    return Storage(settings).write_text(f"gs://{settings.landing_bucket}/{name}", text)


def wait_for(predicate, timeout: float = 60.0, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not met in time")


def function_log(settings: Settings) -> str:
    logs = Path(settings.state_dir) / "logs"
    return "".join(p.read_text() for p in logs.glob("function-*.log"))


def finished_record(settings: Settings, run_id: str):
    store = RunStore(Storage(settings), settings.artifacts_root)

    def done():
        try:
            record = store.get(run_id)
        except Exception:  # noqa: BLE001 - not created yet
            return None
        return record if record.finished else None

    return wait_for(done, timeout=120)


def weekly_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.weekly_function_port}"


def event_for(settings: Settings, name: str):
    bucket = Storage(settings).client.bucket(settings.landing_bucket)
    return cloud_event(bucket.get_blob(name))


def test_a_malformed_csv_in_weekly_fails_with_the_reason_and_stays(events):
    generation = put(events, "weekly/malformed.csv", BAD_WEEKLY)
    record = finished_record(events, run_id_for(events.landing_bucket, "weekly/malformed.csv", generation))
    assert record.status == "failed" and record.error.step == "validate"
    assert "missing 12 columns" in record.error.message
    assert Storage(events).read_text(f"gs://{events.landing_bucket}/weekly/malformed.csv") == BAD_WEEKLY


def test_an_outcomes_file_dropped_into_outcomes_starts_a_monitoring_run(events):
    """The third function: outcomes/ is its prefix. Nothing was scored in this stack, so the run fails at
    validate saying no scoring run scored these ids, and the file stays."""
    text = "customer_id;y\nC1;yes\nC2;no\n"
    generation = put(events, "outcomes/week-48.csv", text)
    record = finished_record(events, run_id_for(events.landing_bucket, "outcomes/week-48.csv", generation))
    assert record.kind == "monitoring" and record.run_id.startswith("monitoring-")
    assert record.status == "failed" and record.error.step == "validate"
    assert "no successful bank-marketing scoring run scored all these ids" in record.error.message
    assert Storage(events).read_text(f"gs://{events.landing_bucket}/outcomes/week-48.csv") == text


def test_the_same_event_delivered_five_times_at_once_is_one_run(events):
    generation = put(events, "weekly/five-times.csv", BAD_WEEKLY)
    headers, body = event_for(events, "weekly/five-times.csv")
    with ThreadPoolExecutor(5) as pool:
        answers = list(
            pool.map(lambda _: httpx.post(weekly_url(events), content=body, headers=headers), range(5))
        )
    assert [a.status_code for a in answers] == [200] * 5
    run_id = run_id_for(events.landing_bucket, "weekly/five-times.csv", generation)
    finished_record(events, run_id)
    log = function_log(events)
    assert log.count(f"launched run {run_id}") - log.count(f"already launched run {run_id}") == 1
    assert log.count(f"already launched run {run_id}") >= 5  # ours, and the bridge's own delivery


def test_the_cli_and_the_function_launching_the_same_object_make_one_run(events, tmp_path):
    from tests.integration.helpers import run_cli

    path = tmp_path / "cli-weekly.csv"
    path.write_text(BAD_WEEKLY)
    result = run_cli("score", str(path), env=events.to_env())
    run_id = result.json["run_id"]
    wait_for(lambda: f"run {run_id}" in function_log(events))  # the bridge delivered it too
    log = function_log(events)
    cli_launched = f"run {run_id} launched" in result.stderr
    function_launched = log.count(f"launched run {run_id}") - log.count(f"already launched run {run_id}")
    assert cli_launched + function_launched == 1


def delivered(settings: Settings) -> set[str]:
    """What the bridge has delivered: it journals an object generation once every function answered it,
    and a function answers only after it has launched the run or decided to ignore the object."""
    journal = Path(settings.state_dir) / "bridge" / "delivered.jsonl"
    return {json.loads(line)["key"] for line in journal.read_text().splitlines() if line}


def test_objects_that_are_not_the_functions_own_are_ignored_and_logged(events):
    store = RunStore(Storage(events), events.artifacts_root)
    before = {r.run_id for r in store.list()}
    objects = {
        "weekly/notes.txt": "not a campaign file",
        "weekly/empty.csv": "",
        "archive/old.csv": BAD_WEEKLY,
        "weekly/.~lock.csv": BAD_WEEKLY,
    }
    keys = {f"{events.landing_bucket}/{name}#{put(events, name, text)}" for name, text in objects.items()}
    wait_for(lambda: keys <= delivered(events))
    log = function_log(events)
    assert "weekly/notes.txt#" in log and "not a .csv file" in log
    assert "a zero-byte object" in log and "not under weekly/" in log and "a temporary object" in log
    assert {r.run_id for r in store.list()} == before


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({"ce-type": "google.cloud.storage.object.v1.finalized"}, {"bucket": "b"}, "name: Field required"),
        (
            {"ce-type": "google.cloud.storage.object.v1.deleted"},
            {"bucket": "b", "name": "weekly/x.csv"},
            "unexpected event type",
        ),
        ({"ce-type": "google.cloud.storage.object.v1.finalized"}, "just text", "not a JSON object"),
        ({"no-ce-headers": "1"}, {"bucket": "b"}, "parsing CloudEvent failed"),
    ],
)
def test_a_malformed_cloud_event_is_400_and_launches_nothing(events, headers, body, expected):
    store = RunStore(Storage(events), events.artifacts_root)
    before = {r.run_id for r in store.list()}
    ce = {
        "ce-id": "x",
        "ce-specversion": "1.0",
        "ce-source": "//storage.googleapis.com/projects/_/buckets/b",
        "ce-subject": "objects/x",
    }
    base = {"Content-Type": "application/json", **({} if "no-ce-headers" in headers else ce)}
    content = json.dumps(body) if not isinstance(body, str) else body
    answer = httpx.post(weekly_url(events), content=content, headers={**base, **headers})
    assert answer.status_code == 400 and expected in answer.text
    assert {r.run_id for r in store.list()} == before


def test_the_bridge_restarted_while_files_arrive_runs_each_file_once(events):
    registry = ProcessRegistry(events.state_dir)
    registry.stop("bridge")
    names = [f"weekly/restart-{i}.csv" for i in range(3)]
    generations = {n: put(events, n, BAD_WEEKLY) for n in names[:2]}  # arrive while it is down
    services.ensure(events, "bridge")
    generations[names[2]] = put(events, names[2], BAD_WEEKLY)
    for name, generation in generations.items():
        finished_record(events, run_id_for(events.landing_bucket, name, generation))
    registry.stop("bridge")
    services.ensure(events, "bridge")  # and once more: nothing is fired again
    # A file dropped after the restart is delivered only after the restarted bridge's first full scan.
    after = f"{events.landing_bucket}/weekly/after-restart.txt#{put(events, 'weekly/after-restart.txt', 'x')}"
    wait_for(lambda: after in delivered(events))
    log = function_log(events)
    for name, generation in generations.items():
        run_id = run_id_for(events.landing_bucket, name, generation)
        assert log.count(f"launched run {run_id}") - log.count(f"already launched run {run_id}") == 1
    journal = (Path(events.state_dir) / "bridge" / "delivered.jsonl").read_text().splitlines()
    keys = [json.loads(line)["key"] for line in journal]
    assert len(keys) == len(set(keys))


def test_a_function_killed_and_restarted_still_gets_its_pending_events(events):
    registry = ProcessRegistry(events.state_dir)
    entry = registry.get("function-on_weekly_file")
    master = psutil.Process(entry.pid)  # a handle taken before the kill: the pid is gone right after
    os.killpg(os.getpgid(entry.pid), signal.SIGKILL)  # the whole function: gunicorn's master and worker
    psutil.wait_procs([master], timeout=5)
    generation = put(events, "weekly/while-down.csv", BAD_WEEKLY)
    key = f"{events.landing_bucket}/weekly/while-down.csv#{generation}"
    bridge_log = Path(events.state_dir) / "logs" / "bridge.log"
    wait_for(
        lambda: f"{key}: http://127.0.0.1:{events.weekly_function_port} unreachable" in bridge_log.read_text()
    )
    run_id = run_id_for(events.landing_bucket, "weekly/while-down.csv", generation)
    assert f"run {run_id}" not in function_log(events)
    services.ensure(events, "function-on_weekly_file")
    record = finished_record(events, run_id)
    assert record.status == "failed" and record.error.step == "validate"


def test_a_pipeline_process_that_dies_marks_its_run_failed(events):
    generation = put(events, "weekly/killed-runner.csv", BAD_WEEKLY)
    run_id = run_id_for(events.landing_bucket, "weekly/killed-runner.csv", generation)
    store = RunStore(Storage(events), events.artifacts_root)
    entry = wait_for(lambda: ProcessRegistry(events.state_dir).get(f"pipeline-{run_id}"), every=0.02)
    try:
        psutil.Process(entry.pid).kill()
    except psutil.NoSuchProcess:
        pass  # it failed the run at validate and ended before it could be killed: asserted below
    record = finished_record(events, run_id)
    assert record.status == "failed"
    assert "ended without finishing the run" in record.error.message or record.error.step == "validate"
    assert store.get(run_id).finished


def test_a_launch_that_cannot_reach_kfp_stays_queued_and_the_redelivery_launches_it(
    stack, tmp_path, monkeypatch, google_identity
):
    """In the cloud: the function on the real emulator, Kubeflow Pipelines faked at kfp.Client's
    constructor, first out of reach, then back. The failed delivery leaves the run queued (not failed, or
    the redelivery would answer "already launched" for good) and errs, so Eventarc delivers it again."""
    import kfp
    import urllib3
    from cloudevents.http import CloudEvent

    from cloud_functions.storage_event import FINALIZED, handle
    from remarketing.errors import Unavailable
    from tests.pipelines.test_launchers import IMAGE, FakeKfpClient, uploaded

    settings = stack.model_copy(
        update={"mode": "gcp", "kfp_host": "https://kfp.example", "components_image": IMAGE}
    )
    generation = put(stack, "weekly/kfp-out-of-reach.csv", BAD_WEEKLY)
    data = {
        "bucket": stack.landing_bucket,
        "name": "weekly/kfp-out-of-reach.csv",
        "generation": str(generation),
    }
    event = CloudEvent({"type": FINALIZED, "source": "//storage.googleapis.com"}, {**data, "size": "22"})
    run_id = run_id_for(stack.landing_bucket, "weekly/kfp-out-of-reach.csv", generation)
    store = RunStore(Storage(stack), stack.artifacts_root)
    made = []

    def client(host, existing_token):
        made.append(existing_token)
        if len(made) == 1:
            raise urllib3.exceptions.MaxRetryError(None, "/apis/v2beta1/healthz", "Connection refused")
        fake = FakeKfpClient()
        uploaded(fake, tmp_path)
        return fake

    monkeypatch.setattr(kfp, "Client", client)
    with pytest.raises(Unavailable, match="Kubeflow Pipelines at https://kfp.example is unavailable"):
        handle(event, "weekly/", settings, function="on_weekly_file")
    record = store.get(run_id)
    assert record.status == "queued" and "is unavailable" in record.pipeline_run["not_launched"]

    assert handle(event, "weekly/", settings, function="on_weekly_file") == {
        "run_id": run_id,
        "created": True,
    }
    record = store.get(run_id)
    assert record.status == "queued" and record.pipeline_run["kfp_run_id"] == "kfp-123"
    assert "not_launched" not in record.pipeline_run and made == ["access#1", "access#1"]
    assert handle(event, "weekly/", settings, function="on_weekly_file") == {
        "run_id": run_id,
        "created": False,
    }
