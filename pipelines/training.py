"""The training pipeline: validate > split (backtest plan) > train candidates (backtests, then a fit on
every row) > evaluate + gate (on the backtests) > explain > register."""

# No `from __future__ import annotations`: KFP reads the pipeline signature's real annotations.
from kfp import dsl

from components import training as components

FAMILIES = ("logreg", "hgb", "mlp")


def build(image: str):
    """The ``@dsl.pipeline`` for a components image (a compile argument, never read from the env)."""
    c = components.build(image)

    @dsl.pipeline(
        name="remarketing-training", description="Train, gate, explain and register a campaign model."
    )
    def training_pipeline(source_uri: str, dataset: str, run_id: str, settings: dict):
        common = {"settings": settings, "run_id": run_id, "dataset": dataset}
        rows = c["validate_data"](source_uri=source_uri, **common).set_display_name("validate")
        split = c["split_data"](rows=rows.outputs["rows"], **common).set_display_name("split")
        trained = {}
        for family in FAMILIES:
            task = c["train_candidate"](
                family=family, rows=rows.outputs["rows"], plan=split.outputs["plan"], **common
            ).set_display_name(f"train-{family}")
            trained[family] = task.outputs["model"]
        evaluated = c["evaluate_and_gate"](**trained, **common).set_display_name("evaluate")
        shap = c["explain_model"](
            model=evaluated.outputs["chosen"], rows=rows.outputs["rows"], plan=split.outputs["plan"], **common
        )
        shap.set_display_name("explain")
        c["register_model"](
            model=evaluated.outputs["chosen"],
            report=evaluated.outputs["report"],
            shap=shap.outputs["shap"],
            **common,
        ).set_display_name("register")

    return training_pipeline
