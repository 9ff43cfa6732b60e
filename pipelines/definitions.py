"""The ``@dsl.pipeline`` of each pipeline, wired from its step table (``remarketing.flow``), one task per
``flow.Pipeline.tasks`` entry, by hand-off name: a step's input is the output of that name of an earlier
step (one per family for a per-family step's output; all the shards' outputs, in shard order, for a
sharded step's). A sharded pipeline takes ``shards``, the shard numbers its sharded step fans out over
(``flow.shard_numbers``). The components image is a compile argument, never read from the environment."""

# No `from __future__ import annotations`: KFP reads the pipeline signature's real annotations.
from typing import Any

from kfp import dsl

import components
from remarketing import families, flow


def build(kind: str, image: str) -> Any:
    pipeline = flow.PIPELINES[kind]
    made = components.build(kind, image)

    def wire(run: dict[str, Any], common: dict[str, Any], shards: Any = None) -> None:
        produced: dict[str, Any] = {}  # hand-off name -> a task output, {family: task output}, or Collected
        tasks: dict[str, list[Any]] = {}
        for task_steps in pipeline.tasks():
            step = task_steps[0]  # a task of several steps is never per family nor sharded (flow.tasks)
            names = {s.name for s in task_steps}
            for family in families.NAMES if step.per_family else (None,):
                args: dict[str, Any] = dict(common)
                args.update({p: run[p] for p in pipeline.task_params(task_steps)})
                if family is not None:
                    args["family"] = family
                for name in pipeline.task_inputs(task_steps):
                    value = produced[name]
                    if isinstance(value, dict) and family is not None:
                        args[name] = value[family]
                    elif isinstance(value, dict):
                        args.update({flow.per_family_argument(name, f): v for f, v in value.items()})
                    else:
                        args[name] = value
                shown = f"{step.name}-{family}" if family else " + ".join(s.name for s in task_steps)
                if step.sharded:  # one task per shard; the next steps read every shard's outputs
                    with dsl.ParallelFor(shards) as shard:
                        task = made[step.name](**args, shard=shard).set_display_name(shown)
                else:
                    task = made[step.name](**args).set_display_name(shown)
                for earlier in {e for s in task_steps for e in s.after} - names:
                    for other in tasks[earlier]:
                        task.after(other)
                for s in task_steps:
                    tasks.setdefault(s.name, []).append(task)
                for name in (o for s in task_steps for o in s.outputs):
                    if step.sharded:
                        produced[name] = dsl.Collected(task.outputs[name])
                    elif family is not None:
                        produced.setdefault(name, {})[family] = task.outputs[name]
                    else:
                        produced[name] = task.outputs[name]

    if pipeline.sharded:

        @dsl.pipeline(name=pipeline.name, description=pipeline.description)
        def sharded(source_uri: str, dataset: str, run_id: str, settings: dict, shards: list):  # type: ignore[no-untyped-def]
            common = {"settings": settings, "run_id": run_id, "dataset": dataset}
            wire({"source_uri": source_uri}, common, shards)

        return sharded

    @dsl.pipeline(name=pipeline.name, description=pipeline.description)
    def definition(source_uri: str, dataset: str, run_id: str, settings: dict):  # type: ignore[no-untyped-def]
        wire({"source_uri": source_uri}, {"settings": settings, "run_id": run_id, "dataset": dataset})

    return definition
