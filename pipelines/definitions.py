"""The ``@dsl.pipeline`` of each pipeline, wired from its step table (``remarketing.flow``) by hand-off
name: a step's input is the output of that name of an earlier step (one per family for a per-family
step's output). The components image is a compile argument, never read from the environment."""

# No `from __future__ import annotations`: KFP reads the pipeline signature's real annotations.
from typing import Any

from kfp import dsl

import components
from components.runner import per_family_argument
from remarketing import families, flow


def build(kind: str, image: str) -> Any:
    pipeline = flow.PIPELINES[kind]
    made = components.build(kind, image)

    @dsl.pipeline(name=pipeline.name, description=pipeline.description)
    def definition(source_uri: str, dataset: str, run_id: str, settings: dict):  # type: ignore[no-untyped-def]
        run = {"source_uri": source_uri}
        produced: dict[str, Any] = {}  # hand-off name -> a task output, or {family: task output}
        tasks: dict[str, list[Any]] = {}
        for step in pipeline.steps:
            for family in families.NAMES if step.per_family else (None,):
                args: dict[str, Any] = {"settings": settings, "run_id": run_id, "dataset": dataset}
                args.update({p: run[p] for p in step.params})
                if family is not None:
                    args["family"] = family
                for name in step.inputs:
                    value = produced[name]
                    if isinstance(value, dict) and family is not None:
                        args[name] = value[family]
                    elif isinstance(value, dict):
                        args.update({per_family_argument(name, f): v for f, v in value.items()})
                    else:
                        args[name] = value
                task = made[step.name](**args).set_display_name(
                    f"{step.name}-{family}" if family else step.name
                )
                for earlier in step.after:
                    for other in tasks[earlier]:
                        task.after(other)
                tasks.setdefault(step.name, []).append(task)
                for name in step.outputs:
                    if family is not None:
                        produced.setdefault(name, {})[family] = task.outputs[name]
                    else:
                        produced[name] = task.outputs[name]

    return definition
