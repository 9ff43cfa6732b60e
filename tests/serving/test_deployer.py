"""Deployers chosen by mode; KServeDeployer against a fake of its outermost client (KServeClient), asserting
the InferenceService it received."""

from __future__ import annotations

import pytest

from remarketing.errors import ServiceError
from remarketing.settings import Settings
from serving.deployer import Endpoint, KServeDeployer, LocalDeployer, bundle_uri, deployer_for
from serving.inference_service import to_manifest

MODEL = "remarketing-bank-marketing"


class FakeKServeClient:
    """Records calls like kserve.KServeClient; raises what it raises (RuntimeError wrapping a 404)."""

    def __init__(self, *, exists: bool = False, ready: bool = True) -> None:
        self.exists, self.ready = exists, ready
        self.calls: list[tuple] = []

    def get(self, name, namespace=None, **kwargs):
        self.calls.append(("get", name, namespace))
        if not self.exists:
            raise RuntimeError("Exception when calling CustomObjectsApi->get_namespaced_custom_object: (404)")
        return {
            "metadata": {"name": name, "generation": 3},
            "status": {
                "url": f"https://{name}.{namespace}.example.com",
                "address": {"url": f"http://{name}-predictor.{namespace}.svc.cluster.local"},
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
