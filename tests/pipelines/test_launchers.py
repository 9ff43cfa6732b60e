"""The KFP side of the launcher: only the outermost client (kfp.Client) is faked, and what it received
is asserted. The local side runs for real in tests/integration."""

from types import SimpleNamespace

import yaml

from pipelines.launchers import KfpLauncher, reconcile
from remarketing.runs import RunRecord, RunStore, Source
from remarketing.settings import Settings
from remarketing.storage import Storage


class FakeKfpClient:
    def __init__(self, state: str = "RUNNING") -> None:
        self.submitted: list[dict] = []
        self.state = state

    def create_run_from_pipeline_package(self, path, arguments, run_name, experiment_name):
        self.submitted.append(
            {
                "package": yaml.safe_load(open(path)),
                "arguments": arguments,
                "run_name": run_name,
                "experiment_name": experiment_name,
            }
        )
        return SimpleNamespace(run_id="kfp-123")

    def get_run(self, run_id):
        return SimpleNamespace(state=self.state, error=SimpleNamespace(message="OOMKilled in task train-mlp"))


def gcp_settings(tmp_path) -> Settings:
    return Settings(
        mode="gcp",
        state_dir=tmp_path,
        tracking_uri="https://mlflow.example",
        kfp_host="https://kfp.example",
        components_image="europe-docker.pkg.dev/p/r/components:1.0",
    )


def record(kind="scoring") -> RunRecord:
    return RunRecord(
        run_id=f"{kind}-abc",
        kind=kind,
        dataset="bank-marketing",
        source=Source(uri="gs://landing/weekly/x.csv", generation=7),
    )


def test_kfp_launcher_submits_the_compiled_pipeline_with_the_run_parameters(tmp_path):
    client = FakeKfpClient()
    settings = gcp_settings(tmp_path)
    run = KfpLauncher(client).submit(record(), settings)
    sent = client.submitted[0]
    assert sent["run_name"] == "scoring-abc" and sent["experiment_name"] == "remarketing-scoring"
    assert sent["arguments"]["source_uri"] == "gs://landing/weekly/x.csv"
    assert sent["arguments"]["run_id"] == "scoring-abc" and sent["arguments"]["dataset"] == "bank-marketing"
    assert sent["arguments"]["settings"]["mode"] == "gcp"
    assert sent["package"]["pipelineInfo"]["name"] == "remarketing-scoring"
    images = {e["container"]["image"] for e in sent["package"]["deploymentSpec"]["executors"].values()}
    assert images == {"europe-docker.pkg.dev/p/r/components:1.0"}
    assert run == {
        "runner": "kfp",
        "kfp_run_id": "kfp-123",
        "ui": "https://kfp.example/#/runs/details/kfp-123",
    }


def test_a_failed_kfp_run_is_reconciled_into_the_record_when_read(tmp_path):
    settings = Settings(state_dir=tmp_path)  # the record store on local paths
    store = RunStore(Storage(settings), str(tmp_path / "artifacts"))
    created, _ = store.create(
        record().model_copy(update={"pipeline_run": {"runner": "kfp", "kfp_run_id": "kfp-123"}})
    )
    still = reconcile(settings, store, created, kfp_client=FakeKfpClient("RUNNING"))
    assert still.status == "queued"
    failed = reconcile(settings, store, created, kfp_client=FakeKfpClient("FAILED"))
    assert (
        failed.status == "failed"
        and failed.error.message == "the Kubeflow run ended FAILED: OOMKilled in task train-mlp"
    )
