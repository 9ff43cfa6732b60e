"""What a pipeline step is given and what it gives back, so that its logic never touches the run record,
the orchestrator or a file path it did not ask for.

A step function is ``function(ctx, **inputs, **outputs, **ports) -> StepResult``:

- ``ctx`` (:class:`StepContext`): the settings (only the fields its declaration lists can be read), the
  dataset spec, the run (read-only), the storage, and the family for a per-family step;
- inputs: tables as DataFrames, documents as their dataclasses, folders as :class:`Folder` /
  :class:`Chunks` to read;
- outputs it writes itself (folders: an empty :class:`Folder` / :class:`Chunks`); tables and documents it
  returns in :attr:`StepResult.outputs` and the adapter writes them;
- ports (a registry, a tracker, a deployer) chosen by the adapter.

The adapter (``components.runner``) marks the step in the run record, reads and writes the hand-offs and
applies :attr:`StepResult.record`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from remarketing.errors import RemarketingError

if TYPE_CHECKING:
    from remarketing.datasets import DatasetSpec
    from remarketing.runs import RunRecord
    from remarketing.settings import Settings
    from remarketing.storage import Storage


@dataclass(frozen=True)
class Folder:
    """A folder hand-off (a model bundle, the SHAP artifacts): read, or to fill."""

    path: Path

    def __post_init__(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True)
class Chunks:
    """A table too big for memory, as numbered parquet chunks in a folder (written in order).

    A sharded step (``remarketing.flow``) reads the chunks its shard owns (:meth:`owned`) and writes them
    under the same numbers, so the shards' folders merge back in order (:class:`MergedChunks`)."""

    path: Path

    def __post_init__(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)

    def files(self) -> list[Path]:
        return sorted(self.path.glob("chunk-*.parquet"))

    def write(self, index: int, frame: pd.DataFrame) -> Path:
        target = self.path / f"chunk-{index:05d}.parquet"
        frame.to_parquet(target, index=False)
        return target

    def frames(self, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
        for path in self.files():
            yield pd.read_parquet(path, columns=columns)

    def rows(self) -> int:
        return _rows(self.files())

    def owned(self, shard: int, shards: int) -> list[tuple[int, Path]]:
        """The chunks shard ``shard`` of ``shards`` handles, with their numbers: every ``shards``-th one,
        so each shard gets an even share of a file that ends in a short chunk."""
        return [(i, path) for i, path in enumerate(self.files()) if i % shards == shard]


@dataclass(frozen=True)
class MergedChunks:
    """The chunks the shards of a sharded step wrote, each into its own folder, read as one table in
    chunk order. Refuses a chunk written twice: two shards claimed it."""

    parts: tuple[Chunks, ...]

    def files(self) -> list[Path]:
        files = sorted((f for part in self.parts for f in part.files()), key=lambda f: f.name)
        twice = sorted(n for n, k in Counter(f.name for f in files).items() if k > 1)
        if twice:
            raise RemarketingError(f"more than one shard wrote {', '.join(twice)}: the shards overlap")
        return files

    def frames(self, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
        for path in self.files():
            yield pd.read_parquet(path, columns=columns)

    def rows(self) -> int:
        return _rows(self.files())


def _rows(files: list[Path]) -> int:
    """The rows of parquet files, from their footers (nothing else is read)."""
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(f).num_rows for f in files)


@dataclass
class RecordChange:
    """What a step says about its run: applied to the record by the adapter, in one write."""

    warnings: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)  # model_name, model_version, predictions_uri, ...
    source: dict[str, Any] = field(default_factory=dict)  # sha256, size of the object that started it
    pipeline_run: dict[str, Any] = field(default_factory=dict)  # e.g. the endpoint scored against
    finish: bool = False  # the last step: the run is a success unless it failed


@dataclass
class StepResult:
    outputs: dict[str, Any] = field(default_factory=dict)  # tables and documents, by hand-off name
    record: RecordChange = field(default_factory=RecordChange)
    metrics: dict[str, float] = field(default_factory=dict)  # for the orchestrator's own UI (KFP metrics)


class StepSettings:
    """The settings as one step sees them: only the fields its declaration lists (and where things are)
    can be read, so the declaration stays true. Methods and derived properties work as on Settings."""

    WHERE = frozenset(
        {
            "mode",
            "state_dir",
            "gcp_project",
            "region",
            "landing_bucket",
            "artifacts_bucket",
            "storage_emulator_host",
            "tracking_uri",
            "default_dataset",
        }
    )

    def __init__(self, settings: Settings, step: str, fields: tuple[str, ...]) -> None:
        self._settings, self._step, self._fields = settings, step, frozenset(fields) | self.WHERE

    @property
    def whole(self) -> Settings:
        """The full settings, for what a step hands to another component (storage, a port)."""
        return self._settings

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._settings, name)
        if name in type(self._settings).model_fields and name not in self._fields:
            raise RemarketingError(
                f"step {self._step!r} reads the setting {name!r}, which its declaration in "
                "remarketing.flow does not list: add it there"
            )
        return value


@dataclass
class StepContext:
    settings: StepSettings
    spec: DatasetSpec
    run: RunRecord  # as it was when the step started (read-only: changes go in the result)
    storage: Storage
    family: str | None = None
    shard: int | None = None  # a sharded step's shard, 0 .. settings.scoring_shards - 1

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def dataset(self) -> str:
        return self.run.dataset
