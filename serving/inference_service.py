"""The ``InferenceService`` (serving.kserve.io/v1beta1) of one model, built with the KServe SDK's classes.

One InferenceService per model name (``remarketing-<dataset>``); deploying another version patches it to
that version's bundle, so Knative makes a new revision and (with ``canary_traffic_percent``) can split
traffic between the last ready revision and the new one.

How the bundle reaches the custom container (KServe 0.21): the ``STORAGE_URI`` environment variable of
the container named ``kserve-container`` is a custom predictor's storage URI. KServe's storage
initializer (an init container, running as the predictor's service account) downloads it into
``/mnt/models`` and rewrites ``STORAGE_URI`` to ``/mnt/models``; ``python -m serving`` reads
``--model-uri`` from ``$STORAGE_URI``, so the same program serves a local folder, a gs:// address or the
mounted copy.
"""

from __future__ import annotations

import re
from typing import Any

from kserve import (
    V1beta1InferenceService,
    V1beta1InferenceServiceSpec,
    V1beta1PredictorSpec,
    constants,
)
from kubernetes.client import (
    V1Capabilities,
    V1Container,
    V1ContainerPort,
    V1EnvVar,
    V1ObjectMeta,
    V1ResourceRequirements,
    V1SecurityContext,
)

from remarketing.settings import Settings

CONTAINER = "kserve-container"  # the name KServe looks for (constants.InferenceServiceContainerName)
PORT = 8080
DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"
# KServe 0.17 renamed the modes: "Knative" (was "Serverless") and "Standard" (was "RawDeployment",
# now the default); the old names are still accepted.
KNATIVE = "Knative"
TAG_ROUTING = "serving.kserve.io/enable-tag-routing"
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def isvc_name(model_name: str) -> str:
    """The InferenceService's name: the model name, which must be a DNS-1035 label."""
    if not _DNS_1035.match(model_name) or len(model_name) > 45:
        raise ValueError(
            f"model name {model_name!r} cannot name an InferenceService: lower-case letters, digits and "
            "'-', starting with a letter, at most 45 characters (Knative adds revision suffixes)"
        )
    return model_name


def build(
    settings: Settings,
    model_name: str,
    version: str,
    bundle_uri: str,
    *,
    canary_traffic_percent: int | None = None,
    tag_routing: bool = False,
) -> V1beta1InferenceService:
    """The InferenceService that serves ``bundle_uri`` (``gs://<artifacts>/model-output/<model>/<v>/``)
    with the custom predictor image, in the serving namespace, as the predictor service account."""
    if not bundle_uri.startswith("gs://"):
        raise ValueError(f"a cluster can only fetch a gs:// bundle, not {bundle_uri!r}")
    name = isvc_name(model_name)
    labels = {
        "app.kubernetes.io/name": "remarketing-predictor",
        "app.kubernetes.io/part-of": "remarketing",
        "remarketing/model-name": model_name,
        "remarketing/model-version": str(version),
    }
    container = V1Container(
        name=CONTAINER,
        image=settings.serving_image,
        # ENTRYPOINT is `python -m serving`; the model address comes from $STORAGE_URI (/mnt/models).
        args=[
            "--model-name",
            model_name,
            "--model-version",
            str(version),
            "--host",
            "0.0.0.0",
            "--http-port",
            str(PORT),
        ],
        env=[
            V1EnvVar(name="STORAGE_URI", value=bundle_uri),
            V1EnvVar(name="OMP_WAIT_POLICY", value="PASSIVE"),
        ],
        ports=[V1ContainerPort(container_port=PORT, protocol="TCP")],
        resources=V1ResourceRequirements(
            requests={"cpu": "500m", "memory": "1Gi"}, limits={"cpu": "2", "memory": "2Gi"}
        ),
        security_context=V1SecurityContext(
            run_as_non_root=True,
            allow_privilege_escalation=False,
            capabilities=V1Capabilities(drop=["ALL"]),
        ),
    )
    predictor = V1beta1PredictorSpec(
        containers=[container],
        service_account_name=settings.serving_service_account,
        # Knative's autoscaler adds a replica per `serving_concurrency_target` requests in flight: the
        # score step's shards times their concurrency is what one run puts in flight.
        min_replicas=settings.serving_min_replicas,
        max_replicas=settings.serving_max_replicas,
        scale_metric="concurrency",
        scale_target=settings.serving_concurrency_target,
        canary_traffic_percent=canary_traffic_percent,
        labels=labels,
    )
    return V1beta1InferenceService(
        api_version=constants.KSERVE_V1BETA1,
        kind=constants.KSERVE_KIND_INFERENCESERVICE,
        metadata=V1ObjectMeta(
            name=name,
            namespace=settings.serving_namespace,
            labels=labels,
            # tag routing: each revision of a canary rollout also answers at its own prev-/latest- URL
            annotations={DEPLOYMENT_MODE: KNATIVE, TAG_ROUTING: "true" if tag_routing else "false"},
        ),
        spec=V1beta1InferenceServiceSpec(predictor=predictor),
    )


def to_manifest(isvc: V1beta1InferenceService) -> dict[str, Any]:
    """The resource as Kubernetes reads it (camelCase keys, no nulls), e.g. for ``kubectl apply``."""
    from kserve import ApiClient

    return ApiClient().sanitize_for_serialization(isvc)
