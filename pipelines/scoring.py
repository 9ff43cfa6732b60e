"""The scoring pipeline: validate > resolve model > deploy on KServe > score and explain > publish."""

# No `from __future__ import annotations`: KFP reads the pipeline signature's real annotations.
from kfp import dsl

from components import scoring as components


def build(image: str):
    """The ``@dsl.pipeline`` for a components image (a compile argument, never read from the env)."""
    c = components.build(image)

    @dsl.pipeline(name="remarketing-scoring", description="Score a weekly customer file with the champion.")
    def scoring_pipeline(source_uri: str, dataset: str, run_id: str, settings: dict):
        common = {"settings": settings, "run_id": run_id, "dataset": dataset}
        checked = c["validate_weekly"](source_uri=source_uri, **common).set_display_name("validate")
        model = c["resolve_model"](**common).set_display_name("resolve-model")
        model.after(checked)  # a bad file fails before anything is deployed
        chosen = {k: model.outputs[k] for k in ("model_name", "version", "uri")}
        deployed = c["deploy_model"](settings=settings, run_id=run_id, **chosen).set_display_name("deploy")
        scored = c["score_customers"](
            endpoint=deployed.output, rows=checked.outputs["rows"], **chosen, **common
        ).set_display_name("score")
        c["publish_results"](
            rows=checked.outputs["rows"],
            scored=scored.outputs["scored"],
            rejects=checked.outputs["rejects"],
            **chosen,
            **common,
        ).set_display_name("publish")

    return scoring_pipeline
