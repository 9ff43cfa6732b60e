"""The pipelines on Kubeflow Pipelines as uploaded versions: the release uploads each compiled pipeline
once per components image, and a launch runs that version (it never compiles). Both sides name it the
same way: pipeline ``remarketing-<kind>``, version ``remarketing-<kind>-<the components image's tag>``,
so the functions (deployed with the release's image) run exactly what the release uploaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from remarketing import flow
from remarketing.errors import RemarketingError


class PipelineVersionMissing(RemarketingError):
    """The pipeline version a launch needs was never uploaded to this Kubeflow Pipelines."""


def image_tag(image: str) -> str:
    """``.../components:1.4.0`` -> ``1.4.0``; ``...@sha256:ab12...`` -> ``sha256-ab12...`` (a digest)."""
    if "@" in image:
        return image.rsplit("@", 1)[1].replace(":", "-")
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        raise RemarketingError(f"the components image {image!r} has no tag: a pipeline version needs one")
    return last.rsplit(":", 1)[1]


def names(kind: str, components_image: str) -> tuple[str, str]:
    """The KFP pipeline's name and the version's name for ``kind`` built on ``components_image``."""
    pipeline = flow.PIPELINES[kind].name
    return pipeline, f"{pipeline}-{image_tag(components_image)}"


def _by_name(name: str) -> str:
    return json.dumps({"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": name}]})


def find_version(client: Any, pipeline_name: str, version_name: str) -> tuple[str | None, str | None]:
    """The ids of the pipeline and of its version (None where there is none)."""
    pipeline_id = client.get_pipeline_id(pipeline_name)
    if pipeline_id is None:
        return None, None
    found = client.list_pipeline_versions(pipeline_id, filter=_by_name(version_name), page_size=1)
    versions = getattr(found, "pipeline_versions", None) or []
    return pipeline_id, (versions[0].pipeline_version_id if versions else None)


def upload(client: Any, kind: str, package: Path, components_image: str) -> dict[str, Any]:
    """Upload one compiled pipeline as its version (creating the pipeline the first time); a version
    already there is left as it is (a tag names one build)."""
    pipeline_name, version_name = names(kind, components_image)
    pipeline_id, version_id = find_version(client, pipeline_name, version_name)
    if version_id is not None:
        return {"pipeline": pipeline_name, "version": version_name, "uploaded": False}
    if pipeline_id is None:
        pipeline_id = client.upload_pipeline(
            str(package), pipeline_name=pipeline_name, description=flow.PIPELINES[kind].description
        ).pipeline_id
    made = client.upload_pipeline_version(
        str(package), pipeline_version_name=version_name, pipeline_id=pipeline_id
    )
    return {
        "pipeline": pipeline_name,
        "version": version_name,
        "uploaded": True,
        "version_id": made.pipeline_version_id,
    }


def version_ids(client: Any, kind: str, components_image: str, host: str) -> tuple[str, str]:
    """The ids a launch runs, or :class:`PipelineVersionMissing` saying how to upload it."""
    pipeline_name, version_name = names(kind, components_image)
    pipeline_id, version_id = find_version(client, pipeline_name, version_name)
    if pipeline_id is None or version_id is None:
        missing = f"pipeline {pipeline_name!r}" if pipeline_id is None else f"version {version_name!r}"
        raise PipelineVersionMissing(
            f"Kubeflow Pipelines at {host} has no {missing} for the components image {components_image}: "
            "the release uploads it (`remarketing pipelines upload --image <that image>`)"
        )
    return pipeline_id, version_id


def upload_all(host: str, token: str | None, components_image: str, client: Any | None = None) -> list[dict]:
    """Compile every pipeline with ``components_image`` and upload each as its version to the KFP at
    ``host`` (``remarketing pipelines upload``)."""
    import tempfile

    from pipelines.compile import compile_one

    if client is None:
        import kfp

        client = kfp.Client(host=host, existing_token=token)
    with tempfile.TemporaryDirectory() as tmp:
        return [
            upload(client, kind, compile_one(kind, Path(tmp), components_image), components_image)
            for kind in flow.PIPELINES
        ]
