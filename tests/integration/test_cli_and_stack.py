import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from local_stack import services
from pipelines.launchers import launcher_for
from remarketing.launch import launch
from remarketing.runs import RunStore
from remarketing.storage import Storage
from tests.integration.helpers import run_cli

pytestmark = pytest.mark.integration


def test_usage_errors_exit_2(settings, tmp_path):
    assert run_cli("train", str(tmp_path / "missing.csv"), env=settings.to_env()).code == 2
    existing = tmp_path / "x.csv"
    existing.write_text("a\n1\n")
    result = run_cli("train", str(existing), "--dataset", "nope", env=settings.to_env())
    assert result.code == 2 and "unknown dataset 'nope'" in result.stderr


def test_compiled_pipelines_load_with_kfp_and_carry_the_image(tmp_path):
    from kfp import components

    result = run_cli(
        "pipelines", "compile", "--output-dir", str(tmp_path), "--image", "registry.example/c:1.2.3"
    )
    assert result.code == 0
    names = {}
    for path in result.json["pipelines"]:
        names[path.rsplit("/", 1)[1]] = components.load_component_from_file(path).name
        text = open(path).read()
        assert "image: registry.example/c:1.2.3" in text and "pip install" not in text
    assert names == {
        "training.yaml": "remarketing-training",
        "scoring.yaml": "remarketing-scoring",
        "monitoring.yaml": "remarketing-monitoring",
    }


def test_the_same_object_launched_concurrently_runs_once(settings):
    storage = Storage(settings)
    name = "input/launched-twice.csv"
    generation = storage.write_text(f"gs://{settings.landing_bucket}/{name}", "not;a;campaign\n1;2;3\n")
    with ThreadPoolExecutor(5) as pool:
        results = list(
            pool.map(
                lambda _: launch(
                    settings.landing_bucket,
                    name,
                    generation,
                    settings=settings,
                    launcher=launcher_for(settings),
                ),
                range(5),
            )
        )
    assert sum(r.created for r in results) == 1
    assert len({r.record.run_id for r in results}) == 1
    store = RunStore(storage, settings.artifacts_root)
    run_id = results[0].record.run_id
    deadline = time.monotonic() + 120
    while not store.get(run_id).finished and time.monotonic() < deadline:
        time.sleep(0.5)
    record = store.get(run_id)
    assert record.status == "failed" and "missing" in record.error.message and record.error.step == "validate"


def test_up_status_down_leave_no_process_behind(tmp_path):
    settings = services.private_settings(tmp_path / "state")
    env = settings.to_env()
    up = run_cli("up", env=env)
    assert up.code == 0, up.stderr
    status = run_cli("status", "--json", env=env).json
    assert status["storage_emulator_host"] == settings.storage_emulator_host
    assert status["landing_bucket"] == f"gs://{settings.landing_bucket}"
    pids = [s["pid"] for s in status["services"].values()]
    assert all(s["healthy"] for s in status["services"].values()) and all(pids)
    again = run_cli("up", env=env).json  # reuses what runs
    assert [s["pid"] for s in again["services"].values()] == pids
    assert {s["state"] for s in again["services"].values()} == {"up"}

    # MLflow killed by its registered PID alone: its server child keeps the port. Status says so (the
    # address answers, the PID is gone), and `down` stops the whole group.
    leader = psutil.Process(status["services"]["mlflow"]["pid"])
    children = leader.children(recursive=True)
    assert children  # `mlflow server` serves from a uvicorn child
    leader.kill()
    leader.wait(timeout=10)
    mlflow = run_cli("status", "--json", env=env).json["services"]["mlflow"]
    assert mlflow["running"] is False and mlflow["healthy"] is True
    assert (
        mlflow["state"]
        == "its process died but its children still hold the address: `remarketing down` stops them"
    )
    procs = [psutil.Process(p) for p in pids if psutil.pid_exists(p)] + [
        c for c in children if c.is_running()
    ]

    down = run_cli("down", env=env)
    assert down.code == 0 and sorted(down.json["stopped"]) == sorted(services.ALL)  # mlflow's leftovers too
    _, alive = psutil.wait_procs(procs, timeout=10)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    assert not any(s["running"] for s in run_cli("status", "--json", env=env).json["services"].values())


def test_the_demo_runs_the_whole_chain_and_checks_the_promise(tmp_path, bank_sample):
    """The README's main command, on a sample: both files through the storage trigger, then the truth,
    then the outcomes through the monitoring pipeline; after it every Prometheus target is up and every
    dashboard panel's query has data on the live Prometheus."""
    settings = services.private_settings(tmp_path / "state", scrape_interval_seconds=1)
    sample = tmp_path / "bank-sample.csv"
    sample.write_bytes(bank_sample)
    try:
        result = run_cli("demo", "--data", str(sample), "--budget", "50", env=settings.to_env(), timeout=900)
        assert result.code == 0, result.stderr
        every_target_up_and_every_panel_has_data(settings)
    finally:
        services.down(settings)
    assert result.json["monitoring"]["status"] == "success", result.stderr
    actual = result.json["actual"]
    assert result.json["training"]["promoted"] and result.json["scoring"]["status"] == "success"
    assert (
        actual["customers"] == 905
        and actual["targeted"] + actual["conversion_rate_by_group"].get("holdout", 0) > 0
    )
    assert 0 < actual["roc_auc"] < 1 and actual["lift"] == pytest.approx(
        actual["conversion_rate_targeted"] / actual["base_rate"]
    )
    assert "this week's outcomes: the" in result.stderr and "80% interval" in result.stderr
    assert "predictions URL (expires in 60 min): http://127.0.0.1:" in result.stderr


def every_target_up_and_every_panel_has_data(settings) -> None:
    from observability.dashboards import PANELS
    from tests.observability.promql import query, targets, wait_until

    def down() -> list[str]:
        found = targets(settings.prometheus_url)
        return [
            f"{t['labels']['job']} {t['scrapeUrl']}: {t['lastError']}" for t in found if t["health"] != "up"
        ]

    try:
        wait_until("every target up", lambda: not down(), timeout=30)  # (a target's first scrape)
    except AssertionError:
        raise AssertionError(f"targets down after the demo: {down()}") from None
    from observability.prometheus_config import prometheus_config

    # every job the configuration names has a target (the model server's, discovered, among them)
    jobs = {t["labels"]["job"] for t in targets(settings.prometheus_url)}
    assert jobs == {job["job_name"] for job in prometheus_config(settings)["scrape_configs"]}

    def empty() -> list[str]:  # a panel has data when one of its queries has (a filtered one may not)
        return [
            f"{panel.dashboard} / {panel.title}: {[q.expr for q in panel.queries]}"
            for panel in PANELS
            if not any(query(settings.prometheus_url, q.expr) for q in panel.queries)
        ]

    try:  # the monitoring run's push is scraped within a second of the demo's end
        wait_until("every panel with data", lambda: not empty(), timeout=20, every=2)
    except AssertionError:
        raise AssertionError("panels without data after the demo:\n" + "\n".join(empty())) from None
