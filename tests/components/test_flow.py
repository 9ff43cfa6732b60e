"""The step tables: every name, component signature and wiring comes from them (and from the families)."""

import dataclasses

import pytest

import components
from remarketing import families, flow


def test_each_pipeline_names_its_steps_once_with_one_training_step_per_family():
    assert flow.TRAINING.step_names() == [
        "validate",
        "split",
        "train-logreg",
        "train-hgb",
        "train-mlp",
        "evaluate",
        "explain",
        "register",
    ]
    assert flow.SCORING.step_names() == ["validate", "deploy", "score", "publish"]


def test_every_hand_off_is_declared_produced_before_it_is_read_and_resolvable():
    for pipeline in flow.PIPELINES.values():
        produced: set[str] = set()
        for step in pipeline.steps:
            assert set(step.inputs) <= produced, (pipeline.kind, step.name)
            assert set(step.outputs) <= set(pipeline.handoffs)
            produced |= set(step.outputs)
            module, _, name = step.function.partition(":")
            assert callable(getattr(__import__(module, fromlist=[name]), name))


def test_a_component_signature_is_derived_from_its_step():
    source = components.source(flow.TRAINING, flow.TRAINING.step("evaluate"))
    assert source.startswith(
        "def evaluate(settings: dict, run_id: str, dataset: str, candidate_logreg: Input[Model], "
        "candidate_hgb: Input[Model], candidate_mlp: Input[Model], chosen: Output[Model], "
        "report: Output[Artifact], metrics: Output[Metrics]):"
    )
    assert "run_step('training', 'evaluate', locals())" in source
    train = components.source(flow.TRAINING, flow.TRAINING.step("train"))
    assert "family: str" in train and "candidate: Output[Model]" in train
    score = components.source(flow.SCORING, flow.SCORING.step("validate"))
    assert (
        "source_uri: str" in score
        and "rows: Output[Dataset]" in score
        and "rejects: Output[Dataset]" in score
    )


def test_a_new_family_is_one_declaration(monkeypatch):
    extra = dataclasses.replace(families.FAMILIES[0], name="glm")
    monkeypatch.setattr(families, "NAMES", (*families.NAMES, "glm"))
    monkeypatch.setattr(families, "BY_NAME", {**families.BY_NAME, "glm": extra})
    assert "train-glm" in flow.TRAINING.step_names()
    assert "candidate_glm: Input[Model]" in components.source(flow.TRAINING, flow.TRAINING.step("evaluate"))


@pytest.mark.parametrize("kind", list(flow.PIPELINES))
def test_the_components_and_the_pipeline_compile_from_the_table(kind, tmp_path):
    from pipelines.compile import compile_one

    text = compile_one(kind, tmp_path, "example.org/components:1").read_text()
    for name in flow.PIPELINES[kind].step_names():
        assert f"name: {name}\n" in text  # each task shows the step's name


def test_the_score_step_fans_out_over_the_shards_and_publish_reads_them_all(tmp_path):
    import yaml

    from pipelines.compile import compile_one

    spec = yaml.safe_load(compile_one("scoring", tmp_path, "example.org/components:1").read_text())
    root = spec["root"]
    assert root["inputDefinitions"]["parameters"]["shards"]["parameterType"] == "LIST"
    (loop,) = [t for t in root["dag"]["tasks"].values() if "parameterIterator" in t]
    assert loop["parameterIterator"]["items"]["inputParameter"] == "pipelinechannel--shards"
    body = spec["components"][loop["componentRef"]["name"]]["dag"]["tasks"]
    assert list(body) == ["score"]
    scored = root["dag"]["tasks"]["publish"]["inputs"]["artifacts"]["scored"]
    assert scored["taskOutputArtifact"]["producerTask"] == loop["taskInfo"]["name"]
    assert "shard: int" in components.source(flow.SCORING, flow.SCORING.step("score"))
    assert "scored: Input[list[Dataset]]" in components.source(flow.SCORING, flow.SCORING.step("publish"))
