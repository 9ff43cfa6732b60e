"""A task of several steps (``flow.Step.joins_previous``) runs them one after the other through
``components.runner.run_task``, each marked in the run record under its own name: the first one failing
fails the run there and the next never starts; a later one reads what an earlier one wrote at its path.
The steps' work is stood in for; the storage emulator, the run record and the hand-offs are real."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pandas as pd
import pytest

from components import runner
from remarketing import flow
from remarketing.errors import RemarketingError
from remarketing.runs import RunRecord, RunStore, Source
from remarketing.step import StepResult
from remarketing.storage import Storage


def a_run(settings, kind: str, name: str) -> RunStore:
    store = RunStore(Storage(settings), settings.artifacts_root)
    folder = "weekly" if kind == "scoring" else "input"
    store.create(
        RunRecord(
            run_id=f"{kind}-{name}",
            kind=kind,
            dataset="bank-marketing",
            source=Source(uri=f"{settings.landing_root}/{folder}/{name}.csv", generation=1),
        )
    )
    return store


def standing_in(monkeypatch, pipeline: flow.Pipeline, work: dict) -> None:
    original = runner._resolve
    functions = {pipeline.step(name).function: fn for name, fn in work.items()}
    monkeypatch.setattr(runner, "_resolve", lambda ref: functions.get(ref) or original(ref))


def task_arguments(settings, pipeline, task, run_id, tmp_path) -> dict:
    outputs = {o: SimpleNamespace(path=str(tmp_path / o)) for s in task for o in s.outputs}
    common = {"settings": settings.for_pipeline(), "run_id": run_id, "source_uri": "gs://x/y.csv"}
    return {**common, **outputs, "metrics": None}


def test_a_failing_first_step_fails_the_run_there_and_the_second_never_starts(
    emulator, tmp_path, monkeypatch
):
    store = a_run(emulator, "scoring", "bad-file")
    started: list[str] = []

    def validate(ctx, **_):
        started.append("validate")
        raise RemarketingError("line 3: age is not a number")

    def deploy(ctx, **_):
        started.append("deploy")
        return StepResult()

    standing_in(monkeypatch, flow.SCORING, {"validate": validate, "deploy": deploy})
    task = flow.SCORING.task_of("deploy")
    with pytest.raises(RemarketingError):
        runner.run_task(
            "scoring",
            ("validate", "deploy"),
            task_arguments(emulator, flow.SCORING, task, "scoring-bad-file", tmp_path),
        )
    record = store.get("scoring-bad-file")
    assert started == ["validate"]
    assert record.status == "failed" and record.error.step == "validate"
    assert [s.name for s in record.steps] == ["validate"]


def test_a_later_step_of_the_task_reads_what_an_earlier_one_wrote(emulator, tmp_path, monkeypatch):
    split = dataclasses.replace(flow.TRAINING.step("split"), joins_previous=True)
    training = dataclasses.replace(
        flow.TRAINING, steps=tuple(split if s.name == "split" else s for s in flow.TRAINING.steps)
    )
    monkeypatch.setitem(flow.PIPELINES, "training", training)
    store = a_run(emulator, "training", "joined")
    rows = pd.DataFrame({"customer_id": ["a", "b"], "age": [30, 41]})
    read: list[pd.DataFrame] = []

    def split_rows(ctx, *, rows):
        read.append(rows)
        return StepResult(outputs={"plan": {"periods": []}})

    standing_in(
        monkeypatch,
        training,
        {"validate": lambda ctx, **_: StepResult(outputs={"rows": rows}), "split": split_rows},
    )
    task = training.task_of("split")
    runner.run_task(
        "training",
        ("validate", "split"),
        task_arguments(emulator, training, task, "training-joined", tmp_path),
    )
    pd.testing.assert_frame_equal(read[0], rows)
    record = store.get("training-joined")
    assert [(s.name, s.status) for s in record.steps] == [("validate", "success"), ("split", "success")]
