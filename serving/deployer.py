"""Put one model version behind an HTTP endpoint: a ``Deployer`` chosen once, by ``settings.mode``.

- :class:`LocalDeployer`: one ``python -m serving`` process per model version on a free loopback port,
  registered in the state folder's process registry (kind ``model-server``, so ``remarketing down`` stops
  it by PID), started or reused, and ready when KServe's model-ready route says so.
- :class:`KServeDeployer`: creates the model's ``InferenceService`` or patches it to the version's bundle
  with the KServe SDK's ``KServeClient``, then waits until it is ready.

In an experiment (``deploy_experiment``) both versions are served: locally two processes; on KServe the
challenger is the canary of the champion's InferenceService, reached by its tagged route.

Both return an :class:`Endpoint`; callers use ``endpoint.predict_url`` / ``explain_url`` / ``infer_url``
and never need to know which one served them.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from observability.targets import write_model_server_targets
from remarketing.errors import ModelNotFoundError, RemarketingError, ServiceError
from remarketing.ports import CHALLENGER, CHAMPION, Deployer, Endpoint, ModelRef
from remarketing.processes import Entry, ProcessRegistry, free_port, last_error_line
from remarketing.settings import Settings


def bundle_uri(settings: Settings, model_name: str, version: str | int) -> str:
    """The folder a version is served from: the address training writes it to (a directory, hence the /)."""
    return settings.bundle_uri(model_name, version) + "/"


def deployer_for(settings: Settings, live: Callable[[str], set[str]] | None = None) -> Deployer:
    """The deployer of this mode (chosen here, once). ``live(model_name)``: the versions still in use
    (champion, challenger), whose local servers are never retired."""
    if settings.mode == "gcp":
        return KServeDeployer(settings)
    return LocalDeployer(settings, live=live)


# --- local: a ModelServer process per version ------------------------------------------------------
def server_name(model_name: str, version: str) -> str:
    return f"model-server-{model_name}-v{version}"


def model_ready(endpoint: Endpoint, timeout: float = 1.0) -> bool:
    try:
        response = httpx.get(endpoint.ready_url, timeout=timeout)
        return response.status_code == 200 and response.json().get("ready") is True
    except (httpx.HTTPError, ValueError):
        return False


class LocalDeployer:
    """One ``python -m serving`` process per model version on loopback, started or reused."""

    def __init__(
        self,
        settings: Settings,
        *,
        startup_seconds: float = 90,
        python: str = sys.executable,
        live: Callable[[str], set[str]] | None = None,
    ) -> None:
        self.settings = settings
        self.registry = ProcessRegistry(settings.state_dir)
        self.startup_seconds = startup_seconds
        self.python = python
        self.live = live

    def _used_marker(self, name: str) -> Path:
        return Path(self.settings.state_dir) / "locks" / f"{name}.used"

    def retire_idle(self, model_name: str, *, keep: set[str]) -> list[str]:
        """Stop the servers of ``model_name`` whose version is not in ``keep`` (nor live) and that no
        deploy has asked for in ``model_server_idle_seconds``: superseded versions do not hold memory until
        ``down``. The names of those stopped."""
        idle = self.settings.model_server_idle_seconds

        def idle_for_long(entry: Entry) -> bool:
            marker = self._used_marker(entry.name)
            last = marker.stat().st_mtime if marker.exists() else entry.started
            return time.time() - last >= idle

        candidates = []
        for entry in self.registry.entries():
            version = entry.name.removeprefix(server_name(model_name, ""))
            # (a digit version only: model "x" must not match the servers of "x-v2")
            if entry.kind == "model-server" and version.isdigit() and version not in keep:
                candidates.append((entry, version))
        if not any(idle_for_long(entry) for entry, _ in candidates):
            return []  # the usual case: the registry is not asked which versions are live
        try:
            keep = set(keep) | (self.live(model_name) if self.live else set())
        except RemarketingError:  # which versions are in use is unknown: retire nothing this time
            return []
        stopped = []
        for entry, version in candidates:
            if version in keep:
                continue
            with self._locked(entry.name):  # a deploy of that version waits, then starts it afresh
                if idle_for_long(entry) and self.registry.stop(entry.name):
                    stopped.append(entry.name)
        return stopped

    @contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        """Two scoring runs deploying the same version at once start one server, not two."""
        locks = Path(self.settings.state_dir) / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        with open(locks / f"{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def running(self, model_name: str, version: str) -> tuple[Entry, Endpoint] | None:
        """The registered, alive and ready server of this version, if there is one."""
        entry = self.registry.get(server_name(model_name, version))
        if entry and entry.alive() and entry.address:
            endpoint = Endpoint(entry.address, model_name, str(version))
            if model_ready(endpoint):
                return entry, endpoint
        return None

    def deploy(self, model_name: str, version: str, bundle_uri: str) -> Endpoint:
        version = str(version)
        try:
            endpoint = self._deploy(model_name, version, bundle_uri)
            self.retire_idle(model_name, keep={version})
        finally:
            write_model_server_targets(self.settings.state_dir)
        return endpoint

    def deploy_experiment(
        self, champion: ModelRef, challenger: ModelRef, challenger_percent: int
    ) -> dict[str, Endpoint]:
        """One server per version (the batch sends each arm's customers to its own); the percentage only
        matters for online traffic on KServe."""
        try:
            endpoints = {
                arm: self._deploy(m.name, str(m.version), m.uri)
                for arm, m in ((CHAMPION, champion), (CHALLENGER, challenger))
            }
            self.retire_idle(champion.name, keep={str(champion.version), str(challenger.version)})
        finally:
            write_model_server_targets(self.settings.state_dir)
        return endpoints

    def _deploy(self, model_name: str, version: str, bundle_uri: str) -> Endpoint:
        name = server_name(model_name, version)
        with self._locked(name):
            self._used_marker(name).touch()
            found = self.running(model_name, version)
            if found:
                return found[1]
            self.registry.stop(name)  # a dead or unhealthy leftover
            self._check_bundle(model_name, version, bundle_uri)
            port = free_port()
            endpoint = Endpoint(f"http://127.0.0.1:{port}", model_name, version)
            command = [
                self.python,
                "-m",
                "serving",
                "--model-uri",
                bundle_uri,
                "--model-name",
                model_name,
                "--model-version",
                version,
                "--host",
                "127.0.0.1",
                "--http-port",
                str(port),
            ]
            # The child rebuilds these settings from REMARKETING_* (the emulator's address for gs://).
            env = {
                **self.settings.to_env(),
                "REMARKETING_STATE_DIR": str(Path(self.settings.state_dir).resolve()),
                "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
            }
            entry = self.registry.start(
                name, command, address=endpoint.base_url, kind="model-server", env=env
            )
            deadline = time.monotonic() + self.startup_seconds
            while time.monotonic() < deadline:
                if model_ready(endpoint):
                    return endpoint
                if not entry.alive():
                    break
                time.sleep(0.2)
            self.registry.stop(name)
            raise ServiceError(
                f"the model server for {model_name} v{version} did not become ready at {endpoint.base_url} "
                f"within {self.startup_seconds:.0f} s{last_error_line(entry.log)}; its log is {entry.log}"
            )

    def _check_bundle(self, model_name: str, version: str, bundle_uri: str) -> None:
        """A bundle that is not there is "not found", said at once; storage that does not answer is
        :class:`Unavailable` (from Storage), not a server that would not start."""
        from remarketing.storage import Storage

        if not any(True for _ in Storage(self.settings).list(bundle_uri)):
            raise ModelNotFoundError(f"{model_name} v{version}: there is no model bundle at {bundle_uri}")

    def stop(self, model_name: str, version: str) -> bool:
        """Stop this version's server by PID; True when one was running."""
        stopped = self.registry.stop(server_name(model_name, str(version)))
        write_model_server_targets(self.settings.state_dir)
        return stopped


# --- KServe: one InferenceService per model --------------------------------------------------------
def _not_found(exc: Exception) -> bool:
    # KServeClient wraps the Kubernetes ApiException in a RuntimeError whose text holds the status.
    text = str(exc)
    return "(404)" in text or "Not Found" in text


class KServeDeployer:
    """Create or patch the model's InferenceService with ``KServeClient`` and wait until it is ready.

    ``client`` is the outermost client (a ``kserve.KServeClient``); tests pass a fake one."""

    def __init__(
        self,
        settings: Settings,
        client: Any | None = None,
        *,
        timeout_seconds: int = 600,
        polling_interval: int = 10,
        canary_traffic_percent: int | None = None,
    ) -> None:
        self.settings = settings
        self._client = client
        self.timeout_seconds = timeout_seconds
        self.polling_interval = polling_interval
        self.canary_traffic_percent = canary_traffic_percent

    @property
    def client(self) -> Any:
        if self._client is None:
            from kserve import KServeClient

            self._client = KServeClient()
        return self._client

    def deploy(self, model_name: str, version: str, bundle_uri: str) -> Endpoint:
        """The version on all the traffic (sent explicitly: a merge patch keeps what it does not mention,
        so a canary left by an experiment is rolled out or back here)."""
        status = self._apply(model_name, str(version), bundle_uri, percent=self.canary_traffic_percent or 100)
        # The cluster-internal address (what a pipeline step in the cluster calls), else the public URL.
        url = (status.get("address") or {}).get("url") or status.get("url")
        if not url:
            raise ServiceError(f"InferenceService {self._where(model_name)} is ready but reports no address")
        return Endpoint(url.rstrip("/"), model_name, str(version))

    def deploy_experiment(
        self, champion: ModelRef, challenger: ModelRef, challenger_percent: int
    ) -> dict[str, Endpoint]:
        """The challenger as the canary of the champion's InferenceService: online calls split
        ``challenger_percent`` to it; with tag routing on, the batch reaches each revision by its tag's
        URL (``prev-``: the rolled-out champion, ``latest-``: the challenger)."""
        status = self._canary_in_place(challenger, challenger_percent)
        if status is None:  # not yet this experiment's canary: roll the champion out, then the canary
            self.deploy(champion.name, champion.version, champion.uri)
            status = self._apply(
                challenger.name,
                str(challenger.version),
                challenger.uri,
                percent=challenger_percent,
                tags=True,
            )
        traffic = ((status.get("components") or {}).get("predictor") or {}).get("traffic") or []
        urls = {t.get("tag"): t.get("url") for t in traffic if t.get("tag") and t.get("url")}
        if not {"prev", "latest"} <= set(urls):
            raise ServiceError(
                f"InferenceService {self._where(challenger.name)} reports no prev/latest tagged routes "
                f"(traffic: {traffic}): is the canary rolled out in Knative mode?"
            )
        return {
            CHAMPION: Endpoint(urls["prev"].rstrip("/"), champion.name, str(champion.version)),
            CHALLENGER: Endpoint(urls["latest"].rstrip("/"), challenger.name, str(challenger.version)),
        }

    def _canary_in_place(self, challenger: ModelRef, percent: int) -> dict[str, Any] | None:
        """The status, when the service already carries this challenger as its canary at this share (a
        second scoring run of the experiment): patched again, the tagged routes could move under a run
        that is still scoring."""
        from serving import inference_service

        try:
            current = self.client.get(
                inference_service.isvc_name(challenger.name), namespace=self.settings.serving_namespace
            )
        except RuntimeError:
            return None
        predictor = (current.get("spec") or {}).get("predictor") or {}
        env = {
            e.get("name"): e.get("value")
            for c in predictor.get("containers") or []
            for e in c.get("env") or []
        }
        annotations = (current.get("metadata") or {}).get("annotations") or {}
        if (
            env.get("STORAGE_URI") == challenger.uri
            and predictor.get("canaryTrafficPercent") == percent
            and annotations.get(inference_service.TAG_ROUTING) == "true"
            and (current.get("status") or {}).get("components")
        ):
            return dict(current["status"])
        return None

    def _where(self, model_name: str) -> str:
        from serving import inference_service

        return f"{self.settings.serving_namespace}/{inference_service.isvc_name(model_name)}"

    def _apply(
        self, model_name: str, version: str, bundle_uri: str, *, percent: int, tags: bool = False
    ) -> dict[str, Any]:
        """Create or patch the InferenceService, wait until it is ready, and return its status."""
        from serving import inference_service

        namespace = self.settings.serving_namespace
        name = inference_service.isvc_name(model_name)
        isvc = inference_service.build(
            self.settings,
            model_name,
            version,
            bundle_uri,
            canary_traffic_percent=percent,
            tag_routing=tags,
        )
        try:
            self.client.get(name, namespace=namespace)
            exists = True
        except RuntimeError as exc:
            if not _not_found(exc):
                raise ServiceError(f"cannot read InferenceService {namespace}/{name}: {exc}") from exc
            exists = False
        try:
            if exists:
                applied = self.client.patch(name, isvc, namespace=namespace)
            else:
                applied = self.client.create(isvc, namespace=namespace)
        except RuntimeError as exc:
            verb = "patch" if exists else "create"
            raise ServiceError(f"cannot {verb} InferenceService {namespace}/{name}: {exc}") from exc
        generation = (applied or {}).get("metadata", {}).get("generation")
        try:
            self.client.wait_isvc_ready(
                name,
                namespace=namespace,
                timeout_seconds=self.timeout_seconds,
                polling_interval=self.polling_interval,
                expected_generation=generation,
            )
        except RuntimeError as exc:
            raise ServiceError(
                f"InferenceService {namespace}/{name} (v{version}, {bundle_uri}) did not become ready "
                f"within {self.timeout_seconds} s: {exc}"
            ) from exc
        return (self.client.get(name, namespace=namespace) or {}).get("status", {})
