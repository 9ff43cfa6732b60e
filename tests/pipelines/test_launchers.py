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

    def __init__(self) -> None:
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


def test_a_launch_sends_kfp_this_identitys_access_token(tmp_path, monkeypatch, google_identity):
    """The GKE DNS endpoint in front of KFP refuses a request without a Google token: kfp.Client (faked at
    its constructor) gets one per launch, minted again once the last has expired."""
    import kfp

    made = []

    def client(**kwargs):
        made.append(kwargs)
        fake = FakeKfpClient()
        uploaded(fake, tmp_path)
        return fake

    monkeypatch.setattr(kfp, "Client", client)
    settings = gcp_settings(tmp_path)
    KfpLauncher().submit(record(), settings)
    KfpLauncher().submit(record(), settings)
    google_identity.expire()
    KfpLauncher().submit(record(), settings)
    assert made == [
        {"host": "https://kfp.example", "existing_token": "access#1"},
        {"host": "https://kfp.example", "existing_token": "access#1"},
        {"host": "https://kfp.example", "existing_token": "access#2"},
    ]


class Unreachable(FakeKfpClient):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def get_pipeline_id(self, name):
        raise self.error


def api_exception(status: int):
    from kfp_server_api.exceptions import ApiException

    return ApiException(status=status, reason={403: "Forbidden", 400: "Bad Request", 0: "SSL"}[status])


@pytest.mark.parametrize(
    "error, reason",
    [
        (
            __import__("urllib3").exceptions.MaxRetryError(None, "/apis/v2beta1/pipelines", "refused"),
            "it did not answer: MaxRetryError",
        ),
        (
            TimeoutError("Failed getting healthz endpoint after 5 attempts."),
            "it did not answer: TimeoutError",
        ),
        (api_exception(403), "HTTP 403 Forbidden"),  # IAM or RBAC not (yet) in place
        (api_exception(0), "SSL"),
    ],
)
def test_kfp_out_of_reach_is_unavailable_naming_it(error, reason, tmp_path):
    from remarketing.errors import Unavailable

    with pytest.raises(Unavailable) as caught:
        KfpLauncher(Unreachable(error)).submit(record(), gcp_settings(tmp_path))
    assert str(caught.value).startswith(
        f"Kubeflow Pipelines at https://kfp.example is unavailable ({reason})"
    )


def test_a_request_kfp_refuses_is_an_error_not_unavailable(tmp_path):
    from remarketing.errors import Unavailable

    with pytest.raises(RemarketingError, match="refused: HTTP 400 Bad Request") as caught:
        KfpLauncher(Unreachable(api_exception(400))).submit(record(), gcp_settings(tmp_path))
    assert not isinstance(caught.value, Unavailable)


def open_kfp_record(tmp_path):
    settings = gcp_settings(tmp_path).model_copy(update={"mode": "local"})  # the record store on local paths
    store = RunStore(Storage(settings), str(tmp_path / "artifacts"))
    created, _ = store.create(
        record().model_copy(update={"pipeline_run": {"runner": "kfp", "kfp_run_id": "kfp-123"}})
    )
    return settings.model_copy(update={"kfp_host": "https://kfp.example"}), store, created


def kfp_answers(httpx_transport, state, status=200):
    import httpx

    error = {"code": 9, "message": "OOMKilled in task train-mlp"} if state == "FAILED" else None
    httpx_transport.answer = lambda request: httpx.Response(
        status, json={"run_id": "kfp-123", "state": state, "error": error}
    )


@pytest.mark.parametrize(
    "state, status, error",
    [
        ("RUNTIME_STATE_UNSPECIFIED", "queued", None),
        ("PENDING", "queued", None),
        ("RUNNING", "queued", None),
        ("PAUSED", "queued", None),
        ("FAILED", "failed", "the Kubeflow run ended FAILED: OOMKilled in task train-mlp"),
        ("CANCELING", "failed", "the Kubeflow run was canceled"),
        ("CANCELED", "failed", "the Kubeflow run was canceled"),
        ("SUCCEEDED", "failed", "the Kubeflow run ended SUCCEEDED without closing its run record"),
        ("SKIPPED", "failed", "the Kubeflow run ended SKIPPED without closing its run record"),
    ],
)
def test_each_kfp_run_state_is_reconciled_into_an_open_record(
    state, status, error, tmp_path, httpx_transport, google_identity
):
    settings, store, created = open_kfp_record(tmp_path)
    kfp_answers(httpx_transport, state)
    after = reconcile(settings, store, created)
    assert after.status == status
    assert after.error is None if error is None else after.error.message.startswith(error)
    (sent,) = httpx_transport.requests
    assert str(sent.url) == "https://kfp.example/apis/v2beta1/runs/kfp-123"
    assert sent.headers["Authorization"] == "Bearer access#1"


def test_a_run_its_last_step_closed_meanwhile_is_left_as_it_closed(
    tmp_path, httpx_transport, google_identity
):
    settings, store, created = open_kfp_record(tmp_path)  # read open; then its last step closes it
    store.update(created.run_id, lambda r: setattr(r, "status", "success"))
    kfp_answers(httpx_transport, "SUCCEEDED")
    assert reconcile(settings, store, created).status == "success"


@pytest.mark.parametrize("status", [403, 503])
def test_kfp_out_of_reach_while_reconciling_is_unavailable_and_the_record_stays(
    status, tmp_path, httpx_transport, google_identity
):
    from remarketing.errors import Unavailable

    settings, store, created = open_kfp_record(tmp_path)
    kfp_answers(httpx_transport, "FAILED", status=status)
    with pytest.raises(
        Unavailable, match=f"Kubeflow Pipelines at https://kfp.example is unavailable \\(HTTP {status}\\)"
    ):
        reconcile(settings, store, created)
    assert store.get(created.run_id).status == "queued"


def test_a_run_kfp_no_longer_has_fails_its_record(tmp_path, httpx_transport, google_identity):
    settings, store, created = open_kfp_record(tmp_path)
    kfp_answers(httpx_transport, "RUNNING", status=404)
    after = reconcile(settings, store, created)
    assert after.error.message == (
        "the Kubeflow run ended FAILED: Kubeflow Pipelines at https://kfp.example has no run kfp-123"
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
