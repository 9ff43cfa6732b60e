"""KFP lightweight components, derived from the step tables (``remarketing.flow``): one per declared step,
each a three-line function that hands its task's arguments to :func:`components.runner.run_step`.

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

from components.runner import per_family_argument
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


def function_name(step: flow.Step) -> str:
    return step.name.replace("-", "_")


def source(pipeline: flow.Pipeline, step: flow.Step) -> str:
    """The component function's source text for one declared step."""
    params = ["settings: dict", "run_id: str", "dataset: str"]
    params += ["family: str"] if step.per_family else []
    params += ["shard: int"] if step.sharded else []
    params += [f"{p}: str" for p in step.params]
    for name in step.inputs:
        handoff = pipeline.handoffs[name]
        kind = ARTIFACT_TYPE[handoff.kind]
        if handoff.per_family and not step.per_family:
            params += [f"{per_family_argument(name, f)}: Input[{kind}]" for f in families.NAMES]
        elif pipeline.collected(name) and not step.sharded:  # every shard's output (dsl.Collected)
            params.append(f"{name}: Input[list[{kind}]]")
        else:
            params.append(f"{name}: Input[{kind}]")
    params += [f"{name}: Output[{ARTIFACT_TYPE[pipeline.handoffs[name].kind]}]" for name in step.outputs]
    params.append("metrics: Output[Metrics]")
    return (
        f"def {function_name(step)}({', '.join(params)}):\n"
        f"    from components.runner import run_step\n\n"
        f"    run_step({pipeline.kind!r}, {step.name!r}, locals())\n"
    )


def _function(pipeline: flow.Pipeline, step: flow.Step) -> Any:
    text = source(pipeline, step)
    filename = f"<remarketing {pipeline.kind} step {step.name}>"
    namespace: dict[str, Any] = dict(_TYPES)
    # dont_inherit: this module's `from __future__ import annotations` would make the annotations strings
    exec(compile(text, filename, "exec", dont_inherit=True), namespace)  # noqa: S102 - our own source
    linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)
    return namespace[function_name(step)]


def build(kind: str, image: str) -> dict[str, Any]:
    """The components of pipeline ``kind`` for a base image (kfp is not re-installed at run time: the
    image carries the whole distribution, and locally the runner uses this interpreter)."""
    pipeline = flow.PIPELINES[kind]
    return {
        step.name: dsl.component(_function(pipeline, step), base_image=image, install_kfp_package=False)
        for step in pipeline.steps
    }
