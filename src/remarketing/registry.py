"""The model registry, on MLflow: versions, the ``champion``/``challenger`` aliases, and their history.

Promotion, pinning and rollback move aliases; they never delete a version. Each promotion remembers the
version it replaced (tag ``previous_champion``) so ``rollback`` can go back one step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from remarketing.errors import ModelNotFoundError, RemarketingError

CHAMPION, CHALLENGER = "champion", "challenger"


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: str
    source: str
    run_id: str | None
    aliases: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    created: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "uri": self.source,
            "aliases": self.aliases,
            "family": self.tags.get("family"),
            "backtest_roc_auc": _float(self.tags.get("backtest_roc_auc")),
            "promoted": self.tags.get("promoted") == "true",
            "mlflow_run_id": self.run_id,
        }


def _float(value: str | None) -> float | None:
    return None if value is None else float(value)


class Registry:
    def __init__(self, tracking_uri: str) -> None:
        from mlflow import MlflowClient

        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def _info(self, mv: Any) -> VersionInfo:
        return VersionInfo(
            name=mv.name,
            version=str(mv.version),
            source=mv.source,
            run_id=mv.run_id,
            aliases=list(getattr(mv, "aliases", []) or []),
            tags=dict(mv.tags or {}),
            created=int(mv.creation_timestamp or 0),
        )

    def versions(self, name: str) -> list[VersionInfo]:
        from dataclasses import replace

        from mlflow.exceptions import MlflowException

        found = self.client.search_model_versions(f"name = '{name}'")
        try:  # MLflow's version search leaves the aliases out; the registered model has them
            aliases = self.client.get_registered_model(name).aliases or {}
        except MlflowException:
            aliases = {}
        by_version: dict[str, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(str(version), []).append(alias)
        infos = [replace(self._info(mv), aliases=sorted(by_version.get(str(mv.version), []))) for mv in found]
        return sorted(infos, key=lambda v: int(v.version), reverse=True)

    def latest_version_number(self, name: str) -> int:
        versions = self.versions(name)
        return int(versions[0].version) if versions else 0

    def by_alias(self, name: str, alias: str) -> VersionInfo | None:
        from mlflow.exceptions import MlflowException

        try:
            return self._info(self.client.get_model_version_by_alias(name, alias))
        except MlflowException:
            return None

    def get(self, name: str, version: str) -> VersionInfo:
        from mlflow.exceptions import MlflowException

        try:
            return self._info(self.client.get_model_version(name, str(version)))
        except MlflowException as exc:
            raise ModelNotFoundError(f"{name} has no version {version}") from exc

    def resolve(self, name: str, version: str | None = None) -> VersionInfo:
        """The version asked for, or the champion; a clear error when there is none."""
        if version:
            return self.get(name, version)
        champion = self.by_alias(name, CHAMPION)
        if champion is None:
            raise ModelNotFoundError(
                f"{name} has no champion yet: train one first (remarketing train FILE) "
                "or pass --model-version"
            )
        return champion

    def register(self, name: str, source: str, *, run_id: str | None, tags: dict[str, str]) -> VersionInfo:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
        except MlflowException:
            self.client.create_registered_model(name, description=f"Remarketing model for {name}")
        mv = self.client.create_model_version(name, source, run_id=run_id, tags=tags)
        return self._info(mv)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(name, alias, str(version))

    def promote(self, name: str, version: str) -> VersionInfo:
        """Make ``version`` the champion, remembering the one it replaces."""
        target = self.get(name, version)
        current = self.by_alias(name, CHAMPION)
        if current is not None and current.version == target.version:
            return target
        if current is not None:
            self.client.set_model_version_tag(name, target.version, "previous_champion", current.version)
        self.set_alias(name, CHAMPION, target.version)
        self.client.set_model_version_tag(name, target.version, "promoted", "true")
        challenger = self.by_alias(name, CHALLENGER)
        if challenger is not None and challenger.version == target.version:
            self.client.delete_registered_model_alias(name, CHALLENGER)
        return self.get(name, target.version)

    def rollback(self, name: str) -> VersionInfo:
        """Point ``champion`` back at the version the current champion replaced."""
        current = self.by_alias(name, CHAMPION)
        if current is None:
            raise ModelNotFoundError(f"{name} has no champion to roll back")
        previous = current.tags.get("previous_champion")
        if not previous:
            raise RemarketingError(
                f"{name} v{current.version} replaced no earlier champion: nothing to roll back to"
            )
        self.set_alias(name, CHAMPION, previous)
        self.set_alias(name, CHALLENGER, current.version)
        return self.get(name, previous)
