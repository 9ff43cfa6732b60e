"""The KFP side of the launcher: only the outermost client (kfp.Client) is faked, and what it received
is asserted. The local side runs for real in tests/integration."""

import json
from types import SimpleNamespace

import pytest
import yaml

from pipelines.compile import compile_one
from pipelines.launchers import KfpLauncher, reconcile, run_arguments
from pipelines.versions import PipelineVersionMissing, image_tag, upload
from remarketing.errors import RemarketingError
from remarketing.runs import RunRecord, RunStore, Source
from remarketing.settings import Settings
from remarketing.storage import Storage


class FakeKfpClient:
    """kfp.Client's pipeline, version, experiment and run calls, kept in memory."""

    def __init__(self, state: str = "RUNNING") -> None:
        self.state = state
        self.pipelines: dict[str, str] = {}  # name -> id
        self.versions: dict[str, list[dict]] = {}  # pipeline id -> versions
        self.runs: list[dict] = []

    def get_pipeline_id(self, name):
        return self.pipelines.get(name)

    def upload_pipeline(self, path, pipeline_name, description=None):
        pipeline_id = f"p-{len(self.pipelines) + 1}"
        self.pipelines[pipeline_name] = pipeline_id
        self._add_version(path, pipeline_name, pipeline_id)  # KFP's default version, named as the pipeline
        return SimpleNamespace(pipeline_id=pipeline_id)

    def upload_pipeline_version(self, path, pipeline_version_name, pipeline_id):
        return self._add_version(path, pipeline_version_name, pipeline_id)

    def _add_version(self, path, name, pipeline_id):
        versions = self.versions.setdefault(pipeline_id, [])
        version = {
            "id": f"{pipeline_id}-v{len(versions) + 1}",
            "name": name,
            "package": yaml.safe_load(open(path)),
        }
        versions.append(version)
        return SimpleNamespace(pipeline_version_id=version["id"])

    def list_pipeline_versions(self, pipeline_id, filter=None, page_size=10):
        wanted = json.loads(filter)["predicates"][0]["stringValue"]
        found = [v for v in self.versions.get(pipeline_id, []) if v["name"] == wanted]
        return SimpleNamespace(
            pipeline_versions=[SimpleNamespace(pipeline_version_id=v["id"]) for v in found] or None
        )

    def create_experiment(self, name):
        return SimpleNamespace(experiment_id=f"e-{name}")

    def run_pipeline(self, experiment_id, job_name, params, pipeline_id, version_id):
        self.runs.append(
            {
                "experiment_id": experiment_id,
                "job_name": job_name,
                "params": params,
                "pipeline_id": pipeline_id,
                "version_id": version_id,
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


IMAGE = "europe-docker.pkg.dev/p/r/components:1.0"


def uploaded(client, tmp_path, image=IMAGE, kind="scoring"):
    return upload(client, kind, compile_one(kind, tmp_path / "build", image), image)


def test_the_release_uploads_each_pipeline_as_the_version_of_its_image(tmp_path):
    client = FakeKfpClient()
    first = uploaded(client, tmp_path)
    assert first["pipeline"] == "remarketing-scoring" and first["version"] == "remarketing-scoring-1.0"
    assert first["uploaded"] is True
    (pipeline_id,) = client.pipelines.values()
    version = next(v for v in client.versions[pipeline_id] if v["name"] == "remarketing-scoring-1.0")
    images = {e["container"]["image"] for e in version["package"]["deploymentSpec"]["executors"].values()}
    assert images == {IMAGE}
    assert uploaded(client, tmp_path)["uploaded"] is False  # the same tag again: kept as it is
    assert len(client.versions[pipeline_id]) == 2  # KFP's default version and ours, nothing more
    uploaded(client, tmp_path, image="europe-docker.pkg.dev/p/r/components:1.1")
    assert [v["name"] for v in client.versions[pipeline_id]][-1] == "remarketing-scoring-1.1"


def test_kfp_launcher_runs_the_uploaded_version_with_the_run_parameters(tmp_path, monkeypatch):
    client = FakeKfpClient()
    settings = gcp_settings(tmp_path)
    uploaded(client, tmp_path)
    import pipelines.compile

    def no_compiling(*args, **kwargs):
        raise AssertionError("a launch must not compile")

    monkeypatch.setattr(pipelines.compile, "compile_one", no_compiling)
    settings = settings.model_copy(update={"scoring_shards": 4})
    run = KfpLauncher(client).submit(record(), settings)
    (sent,) = client.runs
    (pipeline_id,) = client.pipelines.values()
    ours = next(v for v in client.versions[pipeline_id] if v["name"] == "remarketing-scoring-1.0")
    assert sent["pipeline_id"] == pipeline_id and sent["version_id"] == ours["id"]
    assert sent["job_name"] == "scoring-abc" and sent["experiment_id"] == "e-remarketing-scoring"
    assert sent["params"]["source_uri"] == "gs://landing/weekly/x.csv"
    assert sent["params"]["run_id"] == "scoring-abc" and sent["params"]["dataset"] == "bank-marketing"
    assert sent["params"]["settings"]["mode"] == "gcp"
    assert sent["params"]["shards"] == [0, 1, 2, 3]  # the score step's ParallelFor fans out over these
    assert run == {
        "runner": "kfp",
        "kfp_run_id": "kfp-123",
        "ui": "https://kfp.example/#/runs/details/kfp-123",
    }


@pytest.mark.parametrize("kind", ["training", "scoring", "monitoring"])
def test_a_launch_sends_exactly_the_parameters_the_compiled_pipeline_declares(kind, tmp_path):
    spec = yaml.safe_load(compile_one(kind, tmp_path, "example.org/components:1").read_text())
    declared = set(spec["root"]["inputDefinitions"]["parameters"])
    sent = run_arguments(record(kind), gcp_settings(tmp_path))
    assert set(sent) == declared


def test_a_launch_without_the_uploaded_version_says_how_to_upload_it(tmp_path):
    client = FakeKfpClient()
    with pytest.raises(PipelineVersionMissing, match="no pipeline 'remarketing-scoring'.*pipelines upload"):
        KfpLauncher(client).submit(record(), gcp_settings(tmp_path))
    uploaded(client, tmp_path, image="europe-docker.pkg.dev/p/r/components:0.9")  # an older release only
    with pytest.raises(PipelineVersionMissing, match="no version 'remarketing-scoring-1.0'"):
        KfpLauncher(client).submit(record(), gcp_settings(tmp_path))
    assert client.runs == []


@pytest.mark.parametrize(
    "image, tag",
    [
        ("r/components:1.4.0", "1.4.0"),
        ("host:5000/r/components:abc", "abc"),
        ("r/c@sha256:ab12", "sha256-ab12"),
    ],
)
def test_the_version_is_named_after_the_images_tag(image, tag):
    assert image_tag(image) == tag


def test_an_image_without_a_tag_cannot_name_a_version():
    with pytest.raises(RemarketingError, match="has no tag"):
        image_tag("host:5000/r/components")


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


def test_the_upload_command_uploads_every_pipeline(tmp_path):
    from pipelines.versions import upload_all

    client = FakeKfpClient()
    done = upload_all("https://kfp.example", None, IMAGE, client=client)
    assert [d["version"] for d in done] == [
        "remarketing-training-1.0",
        "remarketing-scoring-1.0",
        "remarketing-monitoring-1.0",
    ]
    assert set(client.pipelines) == {"remarketing-training", "remarketing-scoring", "remarketing-monitoring"}
