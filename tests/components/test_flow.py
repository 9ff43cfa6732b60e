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
    source = components.source(flow.TRAINING, flow.TRAINING.task_of("evaluate"))
    assert source.startswith(
        "def evaluate(settings: dict, run_id: str, dataset: str, candidate_logreg: Input[Model], "
        "candidate_hgb: Input[Model], candidate_mlp: Input[Model], chosen: Output[Model], "
        "report: Output[Artifact], metrics: Output[Metrics]):"
    )
    assert "run_task('training', ('evaluate',), locals())" in source
    train = components.source(flow.TRAINING, flow.TRAINING.task_of("train"))
    assert "family: str" in train and "candidate: Output[Model]" in train
    score = components.source(flow.SCORING, flow.SCORING.task_of("validate"))
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
    assert "candidate_glm: Input[Model]" in components.source(
        flow.TRAINING, flow.TRAINING.task_of("evaluate")
    )


@pytest.mark.parametrize("kind", list(flow.PIPELINES))
def test_the_components_and_the_pipeline_compile_from_the_table(kind, tmp_path):
    from pipelines.compile import compile_one

    text = compile_one(kind, tmp_path, "example.org/components:1").read_text()
    for task in flow.PIPELINES[kind].tasks():  # each task shows its steps' names
        shown = [" + ".join(s.name for s in task)] if len(task) > 1 else task[0].names()
        assert all(f"name: {name}\n" in text for name in shown)


def test_validate_and_deploy_share_one_task_validating_first(tmp_path):
    import yaml

    from pipelines.compile import compile_one

    assert [[s.name for s in task] for task in flow.SCORING.tasks()] == [
        ["validate", "deploy"],
        ["score"],
        ["publish"],
    ]
    source = components.source(flow.SCORING, flow.SCORING.task_of("deploy"))
    assert source.startswith("def validate_and_deploy(settings: dict, run_id: str, dataset: str, source_uri:")
    assert "model: Output[Artifact]" in source and "rows: Output[Dataset]" in source
    assert "run_task('scoring', ('validate', 'deploy'), locals())" in source
    spec = yaml.safe_load(compile_one("scoring", tmp_path, "example.org/components:1").read_text())
    tasks = spec["root"]["dag"]["tasks"]
    assert tasks["validate-and-deploy"]["taskInfo"]["name"] == "validate + deploy"
    assert "validate" not in tasks and "deploy" not in tasks
    publish = tasks["publish"]["inputs"]["artifacts"]
    assert publish["model"]["taskOutputArtifact"]["producerTask"] == "validate-and-deploy"
    assert publish["rows"]["taskOutputArtifact"]["producerTask"] == "validate-and-deploy"


def test_a_step_cannot_join_a_per_family_or_sharded_task():
    joined = dataclasses.replace(flow.SCORING.step("publish"), joins_previous=True)
    broken = dataclasses.replace(flow.SCORING, steps=(*flow.SCORING.steps[:3], joined))
    with pytest.raises(ValueError, match="publish cannot join"):
        broken.tasks()


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
    assert "shard: int" in components.source(flow.SCORING, flow.SCORING.task_of("score"))
    assert "scored: Input[list[Dataset]]" in components.source(flow.SCORING, flow.SCORING.task_of("publish"))


def test_a_step_joins_only_a_task_it_can_share():
    scoring = flow.SCORING
    first = dataclasses.replace(scoring.steps[0], joins_previous=True)
    with pytest.raises(ValueError, match="validate cannot join"):  # no task before it
        dataclasses.replace(scoring, steps=(first, *scoring.steps[1:])).tasks()
    train = dataclasses.replace(flow.TRAINING.step("train"), joins_previous=True)
    training = flow.TRAINING
    with pytest.raises(ValueError, match="train cannot join"):  # per family
        dataclasses.replace(training, steps=(*training.steps[:2], train, *training.steps[3:])).tasks()
    again = dataclasses.replace(scoring.step("deploy"), outputs=("rows", "model"))
    with pytest.raises(ValueError, match="deploy writes a hand-off"):
        dataclasses.replace(scoring, steps=(scoring.steps[0], again, *scoring.steps[2:])).tasks()


def test_a_joined_step_reads_what_its_task_wrote_and_shares_its_parameters(tmp_path, monkeypatch):
    import yaml

    from pipelines.compile import compile_one

    split = dataclasses.replace(flow.TRAINING.step("split"), joins_previous=True, params=("source_uri",))
    training = dataclasses.replace(
        flow.TRAINING, steps=tuple(split if s.name == "split" else s for s in flow.TRAINING.steps)
    )
    monkeypatch.setitem(flow.PIPELINES, "training", training)
    source = components.source(training, training.task_of("split"))
    assert source.startswith(
        "def validate_and_split(settings: dict, run_id: str, dataset: str, source_uri: str, "
        "rows: Output[Dataset], plan: Output[Artifact], metrics: Output[Metrics]):"
    )  # rows: written by validate and read by split in the task, never an input; source_uri once
    spec = yaml.safe_load(compile_one("training", tmp_path, "example.org/components:1").read_text())
    train = spec["root"]["dag"]["tasks"]["train"]["inputs"]["artifacts"]
    assert {a["taskOutputArtifact"]["producerTask"] for a in train.values()} == {"validate-and-split"}


def test_the_local_runner_builds_a_pipeline_without_the_steps_libraries():
    """The run's own process imports kfp and the step tables, not pandas: a task imports what its step
    needs (about 0.6 s of the run's start-up once, when the builder imported components.runner)."""
    import json
    import subprocess
    import sys

    code = (
        "from pipelines.local_runner import pipeline_for; pipeline_for('scoring', 'python:3.11'); "
        "import sys, json; print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    modules = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "kfp" in modules
    assert not {"pandas", "pyarrow", "components.runner"} & modules
