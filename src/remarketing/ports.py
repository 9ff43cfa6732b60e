"""What the core needs from outside, as interfaces with their data: the adapters implement them
(``pipelines`` the launchers, ``serving`` the deployers, ``tracking`` the registry and the experiment log),
and the composition roots (the CLI, the local stack, the functions, the pipeline steps) choose one each."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas as pd

    from remarketing.runs import RunRecord
    from remarketing.settings import Settings

CHAMPION, CHALLENGER = "champion", "challenger"


# --- launching a run --------------------------------------------------------------------------------
class Launcher(Protocol):
    def submit(self, record: RunRecord, settings: Settings) -> dict[str, Any]:
        """Start the run's pipeline; return what identifies it (``pipeline_run`` in the record)."""
        ...


# --- serving a model version -------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelRef:
    """A registered model version, as a scoring run uses it."""

    name: str
    version: str
    uri: str  # the bundle's folder


@dataclass(frozen=True)
class Endpoint:
    base_url: str  # http://127.0.0.1:<port> locally; the InferenceService's address on KServe
    model_name: str  # the KServe model name in the URL paths
    version: str

    @property
    def ready_url(self) -> str:
        return f"{self.base_url}/v1/models/{self.model_name}"

    @property
    def predict_url(self) -> str:
        return f"{self.ready_url}:predict"

    @property
    def explain_url(self) -> str:
        return f"{self.ready_url}:explain"

    @property
    def infer_url(self) -> str:
        return f"{self.base_url}/v2/models/{self.model_name}/infer"


class Deployer(Protocol):
    def deploy(self, model_name: str, version: str, bundle_uri: str) -> Endpoint: ...

    def deploy_experiment(
        self, champion: ModelRef, challenger: ModelRef, challenger_percent: int
    ) -> dict[str, Endpoint]:
        """Serve both arms of an experiment (``champion`` and ``challenger`` endpoints); online traffic,
        where there is any, sends ``challenger_percent`` to the challenger."""
        ...


# --- the model registry ------------------------------------------------------------------------------
@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: str
    source: str  # the bundle's address
    run_id: str | None  # the experiment run that produced it
    aliases: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    created: int = 0

    def as_dict(self) -> dict[str, Any]:
        backtest = self.tags.get("backtest_roc_auc")
        return {
            "name": self.name,
            "version": self.version,
            "uri": self.source,
            "aliases": self.aliases,
            "family": self.tags.get("family"),
            "backtest_roc_auc": None if backtest is None else float(backtest),
            "promoted": self.tags.get("promoted") == "true",
            "mlflow_run_id": self.run_id,
        }


class Registry(Protocol):
    """Versions of a model name and its ``champion``/``challenger`` aliases. Moving an alias never
    deletes a version."""

    def versions(self, name: str) -> list[VersionInfo]: ...
    def latest_version_number(self, name: str) -> int: ...
    def by_alias(self, name: str, alias: str) -> VersionInfo | None: ...
    def get(self, name: str, version: str) -> VersionInfo: ...
    def resolve(self, name: str, version: str | None = None) -> VersionInfo: ...
    def register(
        self, name: str, source: str, *, run_id: str | None, tags: dict[str, str]
    ) -> VersionInfo: ...
    def set_alias(self, name: str, alias: str, version: str) -> None: ...
    def promote(self, name: str, version: str) -> VersionInfo: ...
    def rollback(self, name: str) -> VersionInfo: ...


# --- the experiment log of a training run ------------------------------------------------------------
@dataclass
class ExperimentLog:
    """What a training run leaves for people to compare runs by: the tracker writes it."""

    experiment: str
    run_name: str
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    series: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # a metric per step (period)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # artifact path -> table
    figures: dict[str, Any] = field(default_factory=dict)  # artifact path -> matplotlib figure
    folders: dict[str, Path] = field(default_factory=dict)  # artifact folder -> local folder
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)  # artifact path -> JSON


class Tracker(Protocol):
    def log(self, entry: ExperimentLog) -> str:
        """Write the run; return its id."""
        ...

    def add_model_flavour(self, bundle_dir: Path) -> None:
        """Make a saved bundle loadable by the tracker's own model API."""
        ...
