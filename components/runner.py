"""Runs one declared step (``remarketing.flow``): the one place that turns a task's arguments into the step
function's typed inputs and its result back into hand-offs and run-record changes.

It builds the settings, the storage, the run store and the step's ports; marks the step in the run record
(running, then success in the same write as what the step reported, or failed with its error); reads each
input hand-off and writes each output (tables as parquet, documents as JSON, folders in place) at the
paths the orchestrator gave. :func:`run_in_process` runs a whole pipeline's steps this way in one process.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd

from observability.push import push
from remarketing import families, flow
from remarketing.datasets import load_spec
from remarketing.errors import RemarketingError
from remarketing.flow import per_family_argument
from remarketing.runs import RunRecord, RunStore
from remarketing.settings import SECRET_SOURCES, Settings
from remarketing.step import Chunks, Folder, MergedChunks, RecordChange, StepContext, StepSettings
from remarketing.storage import Storage


def _registry(settings: Settings) -> Any:
    from tracking.registry import MlflowRegistry

    return MlflowRegistry(settings.tracking_uri)


def _tracker(settings: Settings) -> Any:
    from tracking.log import MlflowTracker

    return MlflowTracker(settings.tracking_uri)


def _deployer(settings: Settings) -> Any:
    from remarketing.ports import CHALLENGER, CHAMPION
    from serving.deployer import deployer_for

    def live(model_name: str) -> set[str]:
        """The versions still in use: a server of one of them is never retired for being idle."""
        aliases = (_registry(settings).by_alias(model_name, a) for a in (CHAMPION, CHALLENGER))
        return {info.version for info in aliases if info is not None}

    return deployer_for(settings, live=live)


PORTS: dict[str, Callable[[Settings], Any]] = {
    "registry": _registry,
    "tracker": _tracker,
    "deployer": _deployer,
}


def _resolve(reference: str) -> Any:
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


# --- hand-offs ---------------------------------------------------------------------------------------
def read(handoff: flow.Handoff, path: str) -> Any:
    if handoff.kind == flow.TABLE:
        return pd.read_parquet(path)
    if handoff.kind == flow.CHUNKS:
        return Chunks(Path(path))
    if handoff.kind in (flow.MODEL, flow.FOLDER):
        return Folder(Path(path))
    data = json.loads(Path(path).read_text())
    cls = _resolve(handoff.type) if handoff.type else dict
    return cls.from_dict(data) if hasattr(cls, "from_dict") else cls(**data)


def read_collected(handoff: flow.Handoff, artifacts: list[Any]) -> MergedChunks:
    """Every shard's output of a sharded step, merged in chunk order."""
    if handoff.kind != flow.CHUNKS:
        raise TypeError(f"only chunks can be written by shards, not {handoff.kind}")
    return MergedChunks(tuple(Chunks(Path(a.path)) for a in artifacts))


def to_fill(handoff: flow.Handoff, path: str) -> Chunks | Folder | None:
    """An output the step writes itself (a folder), or None for one it returns (a table, a document)."""
    if handoff.kind == flow.CHUNKS:
        return Chunks(Path(path))
    if handoff.kind in (flow.MODEL, flow.FOLDER):
        return Folder(Path(path))
    return None


def write(handoff: flow.Handoff, value: Any, path: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if handoff.kind == flow.TABLE:
        value.to_parquet(target, index=False)
        return
    if isinstance(value, dict):
        data = value
    else:
        data = value.as_dict() if hasattr(value, "as_dict") else dataclasses.asdict(value)
    target.write_text(json.dumps(data, indent=2, default=float))


# --- the record ----------------------------------------------------------------------------------------
def apply(record: RunRecord, change: RecordChange) -> None:
    record.warnings.extend(w for w in change.warnings if w not in record.warnings)
    record.metrics.update(change.metrics)
    for key, value in change.fields.items():
        setattr(record, key, value)
    for key, value in change.source.items():
        setattr(record.source, key, value)
    record.pipeline_run.update(change.pipeline_run)
    if change.finish and record.status != "failed":
        record.status = "success"


# --- one step ----------------------------------------------------------------------------------------
def with_secrets(settings: Settings) -> Settings:
    """A task's settings: the run's, as its ``settings`` parameter carries them (never a secret:
    ``Settings.for_pipeline``), with each secret the settings name (``SECRET_SOURCES``: the pseudonym
    key, the lookup table's password) read by the task itself from Secret Manager, as the pipelines'
    service account. Locally none is named: the state folder holds them."""
    wanted = {
        secret: getattr(settings, source)
        for secret, source in SECRET_SOURCES.items()
        if getattr(settings, source) and not getattr(settings, secret)
    }
    if not wanted:
        return settings
    from cloud_auth.secret_manager import secret_value

    return settings.model_copy(update={secret: secret_value(name) for secret, name in wanted.items()})


def run_step(kind: str, name: str, args: dict[str, Any]) -> None:
    """Run step ``name`` of pipeline ``kind`` with a task's arguments (parameters, and artifacts with a
    ``path``; ``metrics`` an output the orchestrator shows)."""
    pipeline = flow.PIPELINES[kind]
    step = pipeline.step(name)
    settings = Settings.model_validate(args["settings"])
    storage = Storage(settings)
    store = RunStore(storage, settings.artifacts_root)
    family = args.get("family")
    shown = f"{step.name}-{family}" if step.per_family else step.name
    try:
        _run_marked(pipeline, step, shown, settings, storage, store, args)
    finally:  # the run's figures as its record now says, whatever happened (docs/observability.md)
        try:
            push(settings, store.get(args["run_id"]))
        except RemarketingError:
            pass  # storage is down: the step's own error says so


def run_task(kind: str, names: tuple[str, ...], args: dict[str, Any]) -> None:
    """Run the steps of one task (``flow.Pipeline.tasks``) one after the other, each marked under its own
    name; a later step reads an earlier one's output at the path the task wrote it."""
    for name in names:
        run_step(kind, name, args)


def _run_marked(pipeline, step, shown, settings, storage, store, args) -> None:
    family = args.get("family")
    # KFP hands a loop item over as a JSON number (0.0): the shard is its integer.
    shard = int(args["shard"]) if step.sharded else None
    shards = settings.scoring_shards if step.sharded else 1
    with store.step(args["run_id"], shown, shards=shards) as after:
        settings = with_secrets(settings)  # in the step: a secret that cannot be read fails it, saying why
        record = store.get(args["run_id"])
        push(settings, record)  # running, from the step's first moment
        ctx = StepContext(
            StepSettings(settings, shown, step.settings),
            load_spec(record.dataset),
            record,
            storage,
            family,
            shard,
        )
        kwargs: dict[str, Any] = {p: args[p] for p in step.params}
        for handoff_name in step.inputs:
            handoff = pipeline.handoffs[handoff_name]
            if handoff.per_family and not step.per_family:
                kwargs[handoff_name] = {
                    f: read(handoff, args[per_family_argument(handoff_name, f)].path) for f in families.NAMES
                }
            elif pipeline.collected(handoff_name) and not step.sharded:
                kwargs[handoff_name] = read_collected(handoff, args[handoff_name])
            else:
                kwargs[handoff_name] = read(handoff, args[handoff_name].path)
        for handoff_name in step.outputs:
            folder = to_fill(pipeline.handoffs[handoff_name], args[handoff_name].path)
            if folder is not None:
                kwargs[handoff_name] = folder
        kwargs.update({port: PORTS[port](settings) for port in step.ports})
        try:
            result = _resolve(step.function)(ctx, **kwargs)
        except RemarketingError as exc:
            if isinstance(exc.found, RecordChange):  # written with the failure
                found = exc.found
                after.append(lambda r: apply(r, found))
            raise
        for handoff_name in step.outputs:
            if handoff_name in result.outputs:
                write(pipeline.handoffs[handoff_name], result.outputs[handoff_name], args[handoff_name].path)
        for metric, value in result.metrics.items():
            if args.get("metrics") is not None:
                args["metrics"].log_metric(metric, float(value))
        after.append(lambda r: apply(r, result.record))


def run_in_process(kind: str, settings: Settings, run_id: str, source_uri: str, workdir: Path) -> None:
    """Every step of pipeline ``kind`` through :func:`run_step` in this process, the hand-offs in
    ``workdir``: the same code a pipeline's tasks run, without the orchestrator (benchmarks compare them).
    A sharded step's shards run one after the other."""
    pipeline = flow.PIPELINES[kind]
    common = {
        "settings": settings.for_pipeline(),
        "run_id": run_id,
        "source_uri": source_uri,
        "metrics": None,
    }
    for step in pipeline.steps:
        shards = flow.shard_numbers(settings.scoring_shards) if step.sharded else [None]
        for family in families.NAMES if step.per_family else (None,):
            for shard in shards:
                args: dict[str, Any] = {**common, "family": family, "shard": shard}
                for handoff_name in (*step.inputs, *step.outputs):
                    handoff = pipeline.handoffs[handoff_name]
                    if handoff.per_family and not step.per_family:
                        for f in families.NAMES:
                            args[per_family_argument(handoff_name, f)] = _artifact(workdir, handoff_name, f)
                    elif pipeline.collected(handoff_name) and not step.sharded:
                        args[handoff_name] = [
                            _artifact(workdir, handoff_name, f"shard-{n}")
                            for n in flow.shard_numbers(settings.scoring_shards)
                        ]
                    elif step.sharded and handoff_name in step.outputs:
                        args[handoff_name] = _artifact(workdir, handoff_name, f"shard-{shard}")
                    else:
                        args[handoff_name] = _artifact(
                            workdir, handoff_name, family if handoff.per_family else None
                        )
                run_step(kind, step.name, args)


def _artifact(workdir: Path, name: str, part: str | None) -> SimpleNamespace:
    return SimpleNamespace(path=str(workdir / (f"{name}-{part}" if part else name)))
