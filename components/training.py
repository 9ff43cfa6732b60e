"""The training pipeline's components. Plain functions here; :func:`build` turns them into
``dsl.component``s for a given base image, so the image tag is a compile argument.

Imports sit inside each body: KFP ships the function's source to the task's container.
"""

# No `from __future__ import annotations` here: KFP reads the real annotations of the signatures.
from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output


def validate_data(settings: dict, run_id: str, source_uri: str, dataset: str, rows: Output[Dataset]) -> None:
    from remarketing.training import validate_source

    validate_source(settings, run_id, source_uri, dataset, rows.path)


def split_data(
    settings: dict,
    run_id: str,
    dataset: str,
    rows: Input[Dataset],
    plan: Output[Artifact],
) -> None:
    from remarketing.training import plan_backtests

    plan_backtests(settings, run_id, dataset, rows.path, plan.path)


def train_candidate(
    settings: dict,
    run_id: str,
    dataset: str,
    family: str,
    rows: Input[Dataset],
    plan: Input[Artifact],
    model: Output[Model],
    metrics: Output[Metrics],
) -> None:
    from remarketing.training import train_candidate as fit

    for name, value in fit(settings, run_id, dataset, family, rows.path, plan.path, model.path).items():
        metrics.log_metric(f"backtest_mean_{name}", value)
    model.metadata["family"] = family


def evaluate_and_gate(
    settings: dict,
    run_id: str,
    dataset: str,
    logreg: Input[Model],
    hgb: Input[Model],
    mlp: Input[Model],
    chosen: Output[Model],
    report: Output[Artifact],
    metrics: Output[Metrics],
) -> None:
    from remarketing.settings import Settings
    from remarketing.training import evaluate_and_gate as evaluate
    from tracking.registry import MlflowRegistry

    registry = MlflowRegistry(Settings.model_validate(settings).tracking_uri)
    candidates = {"logreg": logreg.path, "hgb": hgb.path, "mlp": mlp.path}
    result = evaluate(settings, run_id, dataset, candidates, chosen.path, report.path, registry=registry)
    for name, value in result["summary"]["mean"].items():
        metrics.log_metric(f"backtest_mean_{name}", value)
    chosen.metadata.update({"family": result["family"], "promote": result["promote"]})


def explain_model(
    settings: dict,
    run_id: str,
    dataset: str,
    model: Input[Model],
    rows: Input[Dataset],
    plan: Input[Artifact],
    shap: Output[Artifact],
) -> None:
    from remarketing.training import explain_model as explain

    explain(settings, run_id, dataset, model.path, rows.path, plan.path, shap.path)


def register_model(
    settings: dict,
    run_id: str,
    dataset: str,
    model: Input[Model],
    report: Input[Artifact],
    shap: Input[Artifact],
) -> str:
    from remarketing.settings import Settings
    from remarketing.training import register_model as register
    from tracking.log import MlflowTracker
    from tracking.registry import MlflowRegistry

    uri = Settings.model_validate(settings).tracking_uri
    ports = {"registry": MlflowRegistry(uri), "tracker": MlflowTracker(uri)}
    return register(settings, run_id, dataset, model.path, report.path, shap.path, **ports)["model_uri"]


def build(image: str) -> dict:
    """The components for ``image``. kfp is not re-installed at run time: the image carries the
    whole distribution (and locally the runner uses this interpreter)."""
    functions = [validate_data, split_data, train_candidate, evaluate_and_gate, explain_model, register_model]
    return {f.__name__: dsl.component(f, base_image=image, install_kfp_package=False) for f in functions}
