"""Deployers chosen by mode; KServeDeployer against a fake of its outermost client (KServeClient), asserting
the InferenceService it received."""

from __future__ import annotations

import pytest

from remarketing.errors import ServiceError
from remarketing.ports import ModelRef
from remarketing.settings import Settings
from serving.deployer import Endpoint, KServeDeployer, LocalDeployer, bundle_uri, deployer_for
from serving.inference_service import to_manifest

MODEL = "remarketing-bank-marketing"


class FakeKServeClient:
    """Records calls like kserve.KServeClient; raises what it raises (RuntimeError wrapping a 404)."""

    def __init__(self, *, exists: bool = False, ready: bool = True, traffic: list | None = None) -> None:
        self.exists, self.ready, self.traffic = exists, ready, traffic
        self.spec: dict = {}
        self.annotations: dict = {}
        self.calls: list[tuple] = []

    def get(self, name, namespace=None, **kwargs):
        self.calls.append(("get", name, namespace))
        if not self.exists:
            raise RuntimeError("Exception when calling CustomObjectsApi->get_namespaced_custom_object: (404)")
        return {
            "metadata": {"name": name, "generation": 3, "annotations": self.annotations},
            "spec": self.spec,
            "status": {
                "url": f"https://{name}.{namespace}.example.com",
                "address": {"url": f"http://{name}-predictor.{namespace}.svc.cluster.local"},
                "components": {"predictor": {"traffic": self.traffic or []}},
            },
        }

    def create(self, inferenceservice, namespace=None, **kwargs):
        self.calls.append(("create", inferenceservice, namespace))
        self.exists = True
        return {"metadata": {"name": inferenceservice.metadata.name, "generation": 1}}

    def patch(self, name, inferenceservice, namespace=None, **kwargs):
        self.calls.append(("patch", name, inferenceservice, namespace))
        return {"metadata": {"name": name, "generation": 4}}

    def wait_isvc_ready(self, name, namespace=None, **kwargs):
        self.calls.append(("wait", name, namespace, kwargs))
        if not self.ready:
            raise RuntimeError(f"Timeout to start the InferenceService {name}")


@pytest.fixture
def gcp() -> Settings:
    return Settings(
        mode="gcp",
        tracking_uri="https://mlflow.example.com",
        artifacts_bucket="acme-artifacts",
        serving_image="europe-docker.pkg.dev/acme/remarketing/predictor:1.2.3",
        serving_namespace="scoring",
        serving_service_account="predictor-sa",
    )


def test_bundle_uri_is_the_versions_model_output_folder(gcp):
    assert bundle_uri(gcp, MODEL, 7) == f"gs://acme-artifacts/model-output/{MODEL}/7/"


def test_deployer_is_chosen_by_mode(gcp, tmp_path):
    assert isinstance(deployer_for(gcp), KServeDeployer)
    assert isinstance(deployer_for(Settings(state_dir=tmp_path)), LocalDeployer)


def test_first_deploy_creates_the_inference_service_and_waits_for_it(gcp):
    client = FakeKServeClient(exists=False)
    endpoint = KServeDeployer(gcp, client).deploy(MODEL, "7", bundle_uri(gcp, MODEL, "7"))

    kinds = [c[0] for c in client.calls]
    assert kinds == ["get", "create", "wait", "get"]
    _, isvc, namespace = client.calls[1]
    assert namespace == "scoring"
    manifest = to_manifest(isvc)
    predictor = manifest["spec"]["predictor"]
    (container,) = predictor["containers"]
    assert {"name": "STORAGE_URI", "value": f"gs://acme-artifacts/model-output/{MODEL}/7/"} in container[
        "env"
    ]
    assert container["image"] == "europe-docker.pkg.dev/acme/remarketing/predictor:1.2.3"
    assert predictor["serviceAccountName"] == "predictor-sa"
    assert manifest["metadata"]["namespace"] == "scoring" and manifest["metadata"]["name"] == MODEL
    wait = client.calls[2]
    assert wait[1:3] == (MODEL, "scoring") and wait[3]["expected_generation"] == 1
    assert endpoint == Endpoint(f"http://{MODEL}-predictor.scoring.svc.cluster.local", MODEL, "7")
    assert endpoint.explain_url.endswith(f"/v1/models/{MODEL}:explain")


def test_a_new_version_patches_the_same_inference_service(gcp):
    client = FakeKServeClient(exists=True)
    KServeDeployer(gcp, client).deploy(MODEL, "8", bundle_uri(gcp, MODEL, "8"))
    (patch,) = [c for c in client.calls if c[0] == "patch"]
    _, name, isvc, namespace = patch
    assert (name, namespace) == (MODEL, "scoring")
    predictor = to_manifest(isvc)["spec"]["predictor"]
    env = {e["name"]: e["value"] for e in predictor["containers"][0]["env"]}
    assert env["STORAGE_URI"] == f"gs://acme-artifacts/model-output/{MODEL}/8/"
    assert predictor["canaryTrafficPercent"] == 100  # a merge patch must undo an earlier canary split
    assert [c for c in client.calls if c[0] == "wait"][0][3]["expected_generation"] == 4
    assert not [c for c in client.calls if c[0] == "create"]


def test_a_canary_deployer_sends_the_split(gcp):
    client = FakeKServeClient(exists=True)
    KServeDeployer(gcp, client, canary_traffic_percent=10).deploy(MODEL, "9", bundle_uri(gcp, MODEL, "9"))
    (patch,) = [c for c in client.calls if c[0] == "patch"]
    assert to_manifest(patch[2])["spec"]["predictor"]["canaryTrafficPercent"] == 10


def test_not_ready_in_time_is_a_service_error(gcp):
    client = FakeKServeClient(exists=False, ready=False)
    with pytest.raises(ServiceError, match="did not become ready"):
        KServeDeployer(gcp, client).deploy(MODEL, "7", bundle_uri(gcp, MODEL, "7"))


def test_other_api_errors_are_not_mistaken_for_absence(gcp):
    class Forbidden(FakeKServeClient):
        def get(self, name, namespace=None, **kwargs):
            raise RuntimeError("Exception when calling CustomObjectsApi: (403) Forbidden")

    client = Forbidden()
    with pytest.raises(ServiceError, match="403"):
        KServeDeployer(gcp, client).deploy(MODEL, "7", bundle_uri(gcp, MODEL, "7"))
    assert not [c for c in client.calls if c[0] in ("create", "patch")]


def test_an_experiment_rolls_the_champion_out_then_puts_the_challenger_on_the_canary(gcp):
    host = f"{MODEL}-predictor.scoring.example.com"
    traffic = [
        {"tag": "prev", "percent": 70, "url": f"http://prev-{host}", "latestRevision": False},
        {"tag": "latest", "percent": 30, "url": f"http://latest-{host}", "latestRevision": True},
    ]
    client = FakeKServeClient(exists=True, traffic=traffic)
    champion = ModelRef(MODEL, "3", bundle_uri(gcp, MODEL, "3"))
    challenger = ModelRef(MODEL, "5", bundle_uri(gcp, MODEL, "5"))
    endpoints = KServeDeployer(gcp, client).deploy_experiment(champion, challenger, 30)

    first, second = [to_manifest(c[2]) for c in client.calls if c[0] == "patch"]
    env = [
        {e["name"]: e["value"] for e in m["spec"]["predictor"]["containers"][0]["env"]}
        for m in (first, second)
    ]
    assert env[0]["STORAGE_URI"].endswith("/3/") and first["spec"]["predictor"]["canaryTrafficPercent"] == 100
    assert env[1]["STORAGE_URI"].endswith("/5/") and second["spec"]["predictor"]["canaryTrafficPercent"] == 30
    assert second["metadata"]["annotations"]["serving.kserve.io/enable-tag-routing"] == "true"
    assert endpoints["champion"] == Endpoint(f"http://prev-{host}", MODEL, "3")
    assert endpoints["challenger"] == Endpoint(f"http://latest-{host}", MODEL, "5")


def test_an_experiment_without_tagged_routes_says_so(gcp):
    client = FakeKServeClient(exists=True, traffic=[{"percent": 100, "url": "http://x"}])
    champion = ModelRef(MODEL, "3", bundle_uri(gcp, MODEL, "3"))
    with pytest.raises(ServiceError, match="no prev/latest tagged routes"):
        KServeDeployer(gcp, client).deploy_experiment(champion, ModelRef(MODEL, "5", champion.uri), 50)


def test_a_second_scoring_run_of_the_experiment_leaves_the_canary_as_it_is(gcp):
    host = f"{MODEL}-predictor.scoring.example.com"
    traffic = [
        {"tag": "prev", "url": f"http://prev-{host}"},
        {"tag": "latest", "url": f"http://latest-{host}"},
    ]
    client = FakeKServeClient(exists=True, traffic=traffic)
    challenger = ModelRef(MODEL, "5", bundle_uri(gcp, MODEL, "5"))
    client.spec = {  # what the first scoring run of the experiment applied
        "predictor": {
            "canaryTrafficPercent": 30,
            "containers": [{"env": [{"name": "STORAGE_URI", "value": challenger.uri}]}],
        }
    }
    client.annotations = {"serving.kserve.io/enable-tag-routing": "true"}
    endpoints = KServeDeployer(gcp, client).deploy_experiment(
        ModelRef(MODEL, "3", bundle_uri(gcp, MODEL, "3")), challenger, 30
    )
    assert not [c for c in client.calls if c[0] in ("patch", "create")]
    assert endpoints["challenger"].base_url == f"http://latest-{host}"
