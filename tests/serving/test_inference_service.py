"""The InferenceService is built with the KServe SDK's classes and serialises to what KServe 0.21 reads."""

from __future__ import annotations

import pytest
from kserve import V1beta1InferenceService

from remarketing.settings import Settings
from serving.inference_service import build, isvc_name, to_manifest

URI = "gs://acme-artifacts/model-output/remarketing-bank-marketing/7/"


@pytest.fixture
def settings() -> Settings:
    return Settings(
        artifacts_bucket="acme-artifacts",
        serving_image="europe-docker.pkg.dev/acme/remarketing/predictor@sha256:" + "a" * 64,
        serving_namespace="scoring",
        serving_service_account="predictor-sa",
    )


def test_the_manifest_points_the_custom_predictor_at_the_bundle(settings):
    isvc = build(settings, "remarketing-bank-marketing", "7", URI)
    assert isinstance(isvc, V1beta1InferenceService)
    manifest = to_manifest(isvc)
    assert manifest["apiVersion"] == "serving.kserve.io/v1beta1"
    assert manifest["kind"] == "InferenceService"
    meta = manifest["metadata"]
    assert meta["name"] == "remarketing-bank-marketing" and meta["namespace"] == "scoring"
    assert meta["annotations"] == {
        "serving.kserve.io/deploymentMode": "Knative",
        "serving.kserve.io/enable-tag-routing": "false",
    }
    assert meta["labels"]["remarketing/model-version"] == "7"
    predictor = manifest["spec"]["predictor"]
    assert predictor["serviceAccountName"] == "predictor-sa"
    (container,) = predictor["containers"]
    assert container["name"] == "kserve-container"  # the name KServe takes STORAGE_URI from
    assert container["image"] == settings.serving_image
    assert {"name": "STORAGE_URI", "value": URI} in container["env"]
    args = container["args"]
    assert args[args.index("--model-name") + 1] == "remarketing-bank-marketing"
    assert args[args.index("--model-version") + 1] == "7"
    assert args[args.index("--host") + 1] == "0.0.0.0"
    assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert container["securityContext"]["runAsNonRoot"] is True
    assert "canaryTrafficPercent" not in predictor  # full rollout unless asked
    assert "null" not in str(manifest) and None not in _leaves(manifest)


def test_canary_split_is_on_the_predictor(settings):
    manifest = to_manifest(build(settings, "remarketing-bank-marketing", "8", URI, canary_traffic_percent=10))
    assert manifest["spec"]["predictor"]["canaryTrafficPercent"] == 10


def test_replicas_autoscale_on_concurrency_as_the_settings_say(settings):
    scaled = settings.model_copy(
        update={"serving_min_replicas": 1, "serving_max_replicas": 12, "serving_concurrency_target": 6}
    )
    predictor = to_manifest(build(scaled, "remarketing-bank-marketing", "8", URI))["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 12)
    assert (predictor["scaleMetric"], predictor["scaleTarget"]) == ("concurrency", 6)


def test_more_warm_replicas_than_the_most_allowed_is_refused():
    with pytest.raises(ValueError, match="MIN_REPLICAS .* is above .*MAX_REPLICAS"):
        Settings(serving_min_replicas=4, serving_max_replicas=2)


@pytest.mark.parametrize("name", ["Remarketing", "1model", "model_x", "m" * 46, ""])
def test_names_that_cannot_name_an_inference_service_are_refused(name):
    with pytest.raises(ValueError, match="cannot name an InferenceService"):
        isvc_name(name)


def test_a_local_bundle_cannot_be_deployed_to_a_cluster(settings, tmp_path):
    with pytest.raises(ValueError, match="gs://"):
        build(settings, "remarketing-bank-marketing", "1", str(tmp_path))


def _leaves(value):
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def test_the_inference_service_points_where_training_writes_the_bundle():
    """The InferenceService of a version reads the folder that training's register step writes and MLflow
    registers: one function (Settings.bundle_uri) names it for both."""
    from remarketing.settings import Settings
    from serving import inference_service
    from serving.deployer import bundle_uri

    settings = Settings(mode="gcp", tracking_uri="https://mlflow.example", artifacts_bucket="acme-artifacts")
    isvc = inference_service.build(
        settings, "remarketing-bank-marketing", "7", bundle_uri(settings, "remarketing-bank-marketing", "7")
    )
    env = {
        e["name"]: e["value"]
        for e in inference_service.to_manifest(isvc)["spec"]["predictor"]["containers"][0]["env"]
    }
    assert env["STORAGE_URI"].rstrip("/") == settings.bundle_uri("remarketing-bank-marketing", "7")
    assert env["STORAGE_URI"] == "gs://acme-artifacts/model-output/remarketing-bank-marketing/7/"
