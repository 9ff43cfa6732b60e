"""The scoring pipeline's components (see components/training.py for how they are built per image)."""

# No `from __future__ import annotations` here: KFP reads the real annotations of the signatures.
from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Input, Output


def validate_weekly(
    settings: dict,
    run_id: str,
    source_uri: str,
    dataset: str,
    rows: Output[Dataset],
    rejects: Output[Dataset],
) -> None:
    from remarketing.scoring import validate_weekly as validate

    validate(settings, run_id, source_uri, dataset, rows.path, rejects.path)


def resolve_model(settings: dict, run_id: str, dataset: str) -> NamedTuple(
    "Model", [("model_name", str), ("version", str), ("uri", str)]
):
    from collections import namedtuple

    from remarketing.scoring import resolve_model as resolve
    from remarketing.settings import Settings
    from tracking.registry import MlflowRegistry

    model = resolve(
        settings, run_id, dataset, registry=MlflowRegistry(Settings.model_validate(settings).tracking_uri)
    )
    return namedtuple("Model", ["model_name", "version", "uri"])(
        model["model_name"], model["version"], model["uri"]
    )


def deploy_model(settings: dict, run_id: str, model_name: str, version: str, uri: str) -> dict:
    from dataclasses import asdict

    from remarketing.scoring import record_deploy
    from remarketing.settings import Settings
    from serving.deployer import deployer_for

    deployer = deployer_for(Settings.model_validate(settings))
    return record_deploy(settings, run_id, lambda: asdict(deployer.deploy(model_name, version, uri)))


def score_customers(
    settings: dict,
    run_id: str,
    dataset: str,
    endpoint: dict,
    model_name: str,
    version: str,
    uri: str,
    rows: Input[Dataset],
    scored: Output[Dataset],
) -> None:
    from dataclasses import asdict

    from remarketing.scoring import score_rows
    from remarketing.settings import Settings
    from serving.deployer import deployer_for

    # deploy() restarts a server that died, so it doubles as the recovery when scoring loses it.
    deployer = deployer_for(Settings.model_validate(settings))
    score_rows(
        settings,
        run_id,
        dataset,
        endpoint,
        rows.path,
        scored.path,
        redeploy=lambda: asdict(deployer.deploy(model_name, version, uri)),
    )


def publish_results(
    settings: dict,
    run_id: str,
    dataset: str,
    model_name: str,
    version: str,
    uri: str,
    rows: Input[Dataset],
    scored: Input[Dataset],
    rejects: Input[Dataset],
) -> None:
    from remarketing.scoring import publish

    model = {"model_name": model_name, "version": version, "uri": uri}
    publish(settings, run_id, dataset, model, rows.path, scored.path, rejects.path)


def build(image: str) -> dict:
    functions = [validate_weekly, resolve_model, deploy_model, score_customers, publish_results]
    return {f.__name__: dsl.component(f, base_image=image, install_kfp_package=False) for f in functions}
