"""The model registry on MLflow (the core's ``Registry`` port): versions, the ``champion``/``challenger``
aliases, and their history.

Promotion, pinning and rollback move aliases; they never delete a version. Each promotion remembers the
version it replaced (tag ``previous_champion``) so ``rollback`` can go back one step.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from remarketing.errors import ModelNotFoundError, NotFoundError, RemarketingError, Unavailable
from remarketing.ports import CHALLENGER, CHAMPION, VersionInfo

__all__ = ["CHALLENGER", "CHAMPION", "MlflowRegistry", "VersionInfo"]
F = TypeVar("F", bound=Callable[..., Any])


# MLflow's client retries a refused connection 7 times with a doubling backoff (about 4 minutes) before it
# says anything; a registry that is down must be named as down within seconds. An environment that sets
# these keeps its own values.
FAST_FAILURE = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
}
NOT_FOUND_CODES = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}
DOWN_SIGNS = ("Max retries exceeded", "Connection refused", "ConnectionError", "Read timed out")


# The request-auth plugin (tracking/google_auth.py) that sends MLflow's client's requests with a Google ID
# token: an MLflow server on Cloud Run lets in only its invokers.
AUTH_PROVIDER = "remarketing-google-id-token"


def fail_fast() -> None:
    for key, value in FAST_FAILURE.items():
        os.environ.setdefault(key, value)


def use_google_id_tokens(tracking_uri: str) -> None:
    """MLflow's client sends an ID token to a tracking server on Cloud Run (an environment that names its
    own MLFLOW_TRACKING_AUTH keeps it)."""
    from cloud_auth.tokens import cloud_run_audience

    if cloud_run_audience(tracking_uri):
        os.environ.setdefault("MLFLOW_TRACKING_AUTH", AUTH_PROVIDER)


def _setting(key: str) -> str:
    return os.environ.get(key, FAST_FAILURE[key])


def _auth_headers() -> dict[str, str]:
    """The credentials MLflow's client sends from its environment variables (basic auth first, then a
    token). Its other sources (~/.mlflow/credentials, header plugins) are not read: the deployments here
    reach MLflow on loopback, through the variables, or on Cloud Run (the ID token :meth:`_read` adds)."""
    import base64

    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    return {"Authorization": f"Bearer {token}"} if token else {}


def is_down(exc: Exception) -> bool:
    """The registry did not answer (refused, timed out, 5xx), as opposed to answering "no such thing"."""
    code = getattr(exc, "error_code", "")
    return code == "TEMPORARILY_UNAVAILABLE" or any(sign in str(exc) for sign in DOWN_SIGNS)


def _translated(method: F) -> F:
    """MLflow's own exceptions stop here: callers see the core's errors, with the registry named; a
    registry that does not answer is :class:`Unavailable`, never "not found"."""

    @functools.wraps(method)
    def call(self: MlflowRegistry, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            # mlflow is not imported for the REST reads: if it never was, no MlflowException was raised
            exceptions = sys.modules.get("mlflow.exceptions")
            if exceptions is None or not isinstance(exc, exceptions.MlflowException):
                raise
            if is_down(exc):
                raise self.unavailable(exc) from exc
            raise RemarketingError(f"the model registry at {self.tracking_uri} answered: {exc}") from exc

    return call  # type: ignore[return-value]


class MlflowRegistry:
    """The core's :class:`remarketing.ports.Registry` on an MLflow tracking server."""

    def __init__(self, tracking_uri: str) -> None:
        fail_fast()  # before any mlflow call, the client's or mlflow.artifacts'
        use_google_id_tokens(tracking_uri)
        self.tracking_uri = tracking_uri

    @functools.cached_property
    def client(self) -> Any:
        """MLflow's own client, made on first use: importing mlflow costs about 0.6 s, which a scoring
        run's deploy task, reading two versions, does not pay (:meth:`_read`)."""
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def _read(self, endpoint: str, **params: str) -> dict[str, Any] | None:
        """One model version from MLflow's REST API (``model-versions/get``, ``registered-models/alias``),
        as MLflow's client would ask for it, or None when the registry says there is none. Retried as
        the client is (``FAST_FAILURE``: twice, backing off); a server that does not answer, or answers
        429 or 5xx every time, is down."""
        import httpx

        from cloud_auth.tokens import cloud_run_headers

        url = f"{self.tracking_uri.rstrip('/')}/api/2.0/mlflow/{endpoint}"
        timeout = float(_setting("MLFLOW_HTTP_REQUEST_TIMEOUT"))
        retries, backoff = (
            int(_setting("MLFLOW_HTTP_REQUEST_MAX_RETRIES")),
            float(_setting("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR")),
        )
        for attempt in range(retries + 1):
            if attempt:
                time.sleep(backoff * 2 ** (attempt - 1))
            try:
                headers = {**_auth_headers(), **cloud_run_headers(url)}
                response = httpx.get(url, params=params, timeout=timeout, headers=headers)
            except httpx.TransportError:
                failure = "it did not answer"
                continue
            if response.status_code == 429 or response.status_code >= 500:
                failure = f"it answered HTTP {response.status_code}"
                continue
            break
        else:
            raise self.unavailable(reason=failure)
        try:
            body = response.json()
        except ValueError:
            body = {"message": response.text[:200]}
        if body.get("error_code") in NOT_FOUND_CODES:
            return None
        if response.status_code >= 400 or "model_version" not in body:
            raise RemarketingError(
                f"the model registry at {self.tracking_uri} answered: "
                f"{body.get('error_code', response.status_code)}: {body.get('message', '')}"
            )
        return dict(body["model_version"])

    def _rest(self) -> bool:
        return self.tracking_uri.startswith(("http://", "https://"))

    def unavailable(self, exc: Exception | None = None, reason: str = "it did not answer") -> Unavailable:
        return Unavailable(
            "the model registry (MLflow)",
            self.tracking_uri,
            "start it (`remarketing up`) or check REMARKETING_TRACKING_URI, then run again; "
            "every registered version is kept",
            reason=reason,
        )

    def _info_of(self, mv: dict[str, Any]) -> VersionInfo:
        """A version as the REST API gives it (tags a list of key/value pairs)."""
        return VersionInfo(
            name=mv["name"],
            version=str(mv["version"]),
            source=mv.get("source", ""),
            run_id=mv.get("run_id"),
            aliases=list(mv.get("aliases") or []),
            tags={t["key"]: t.get("value", "") for t in mv.get("tags") or []},
            created=int(mv.get("creation_timestamp") or 0),
        )

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

    @_translated
    def versions(self, name: str) -> list[VersionInfo]:
        from dataclasses import replace

        from mlflow.exceptions import MlflowException

        found = self.client.search_model_versions(f"name = '{name}'")
        try:  # MLflow's version search leaves the aliases out; the registered model has them
            aliases = self.client.get_registered_model(name).aliases or {}
        except MlflowException as exc:
            if is_down(exc):
                raise
            aliases = {}
        by_version: dict[str, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(str(version), []).append(alias)
        infos = [replace(self._info(mv), aliases=sorted(by_version.get(str(mv.version), []))) for mv in found]
        return sorted(infos, key=lambda v: int(v.version), reverse=True)

    def latest_version_number(self, name: str) -> int:
        versions = self.versions(name)
        return int(versions[0].version) if versions else 0

    @_translated
    def by_alias(self, name: str, alias: str) -> VersionInfo | None:
        if self._rest():
            found = self._read("registered-models/alias", name=name, alias=alias)
            return None if found is None else self._info_of(found)
        from mlflow.exceptions import MlflowException

        try:
            return self._info(self.client.get_model_version_by_alias(name, alias))
        except MlflowException as exc:
            if getattr(exc, "error_code", "") in NOT_FOUND_CODES and not is_down(exc):
                return None
            raise

    @_translated
    def get(self, name: str, version: str) -> VersionInfo:
        if self._rest():
            found = self._read("model-versions/get", name=name, version=str(version))
            if found is None:
                raise ModelNotFoundError(f"{name} has no version {version}")
            return self._info_of(found)
        from mlflow.exceptions import MlflowException

        try:
            return self._info(self.client.get_model_version(name, str(version)))
        except MlflowException as exc:
            if getattr(exc, "error_code", "") in NOT_FOUND_CODES and not is_down(exc):
                raise ModelNotFoundError(f"{name} has no version {version}") from exc
            raise

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

    @_translated
    def register(self, name: str, source: str, *, run_id: str | None, tags: dict[str, str]) -> VersionInfo:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
        except MlflowException:
            self.client.create_registered_model(name, description=f"Remarketing model for {name}")
        mv = self.client.create_model_version(name, source, run_id=run_id, tags=tags)
        return self._info(mv)

    @_translated
    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(name, alias, str(version))

    @_translated
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

    @_translated
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

    def artifact(self, run_id: str, path: str) -> bytes:
        """One artifact of an experiment run (a plot, the SHAP importance)."""
        import tempfile

        import mlflow.artifacts
        from mlflow.exceptions import MlflowException

        with tempfile.TemporaryDirectory() as tmp:
            try:
                local = mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path=path, dst_path=tmp, tracking_uri=self.tracking_uri
                )
            except (MlflowException, OSError) as exc:
                if is_down(exc):
                    raise self.unavailable(exc) from None
                raise NotFoundError(f"run {run_id} has no {path} ({exc})") from None
            return Path(local).read_bytes()
