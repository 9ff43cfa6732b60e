"""KFP lightweight components, derived from the step tables (``remarketing.flow``): one per task (a declared
step, with any step that joins it), each a three-line function that hands its arguments to
:func:`components.runner.run_task`.

KFP builds a lightweight component from a Python function's signature and its source text (which it ships
to the task). So the function is generated from the declaration: its parameters are the run parameters,
one typed ``Input``/``Output`` artifact per hand-off (one per family for a hand-off every family writes,
a list for one every shard writes), ``shard`` for a sharded step, and a ``Metrics`` output; its source is
registered with :mod:`linecache` so that KFP can read it.
"""

from __future__ import annotations

import linecache
from typing import Any

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from remarketing import families, flow

ARTIFACT_TYPE = {
    flow.TABLE: "Dataset",
    flow.CHUNKS: "Dataset",
    flow.MODEL: "Model",
    flow.DOCUMENT: "Artifact",
    flow.FOLDER: "Artifact",
}
_TYPES = {
    "Input": Input,
    "Output": Output,
    "Dataset": Dataset,
    "Model": Model,
    "Artifact": Artifact,
    "Metrics": Metrics,
}


def function_name(task: tuple[flow.Step, ...]) -> str:
    return "_and_".join(step.name.replace("-", "_") for step in task)


def source(pipeline: flow.Pipeline, task: tuple[flow.Step, ...]) -> str:
    """The component function's source text for one task (``flow.Pipeline.tasks``: a step, and any step
    that joins it; a task of several steps is never per family nor sharded)."""
    first = task[0]
    params = ["settings: dict", "run_id: str", "dataset: str"]
    params += ["family: str"] if first.per_family else []
    params += ["shard: int"] if first.sharded else []
    params += [f"{p}: str" for p in pipeline.task_params(task)]
    for name in pipeline.task_inputs(task):
        handoff = pipeline.handoffs[name]
        kind = ARTIFACT_TYPE[handoff.kind]
        if handoff.per_family and not first.per_family:
            params += [f"{flow.per_family_argument(name, f)}: Input[{kind}]" for f in families.NAMES]
        elif pipeline.collected(name) and not first.sharded:  # every shard's output (dsl.Collected)
            params.append(f"{name}: Input[list[{kind}]]")
        else:
            params.append(f"{name}: Input[{kind}]")
    params += [
        f"{name}: Output[{ARTIFACT_TYPE[pipeline.handoffs[name].kind]}]" for s in task for name in s.outputs
    ]
    params.append("metrics: Output[Metrics]")
    names = tuple(s.name for s in task)
    return (
        f"def {function_name(task)}({', '.join(params)}):\n"
        f"    from components.runner import run_task\n\n"
        f"    run_task({pipeline.kind!r}, {names!r}, locals())\n"
    )


def _function(pipeline: flow.Pipeline, task: tuple[flow.Step, ...]) -> Any:
    text = source(pipeline, task)
    filename = f"<remarketing {pipeline.kind} task {function_name(task)}>"
    namespace: dict[str, Any] = dict(_TYPES)
    # dont_inherit: this module's `from __future__ import annotations` would make the annotations strings
    exec(compile(text, filename, "exec", dont_inherit=True), namespace)  # noqa: S102 - our own source
    linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)
    return namespace[function_name(task)]


def build(kind: str, image: str) -> dict[str, Any]:
    """The component of each task of pipeline ``kind`` for a base image, by its first step's name (kfp is
    not re-installed at run time: the image carries the whole distribution, and locally the runner uses
    this interpreter)."""
    pipeline = flow.PIPELINES[kind]
    return {
        task[0].name: dsl.component(_function(pipeline, task), base_image=image, install_kfp_package=False)
        for task in pipeline.tasks()
    }
