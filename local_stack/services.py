"""Start the local stack's services that are missing, reuse what runs, report, and stop what was started."""

from __future__ import annotations

import fcntl
import shutil
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

import frontend
from cloud_functions import FUNCTIONS
from remarketing.errors import ServiceError
from remarketing.processes import Entry, ProcessRegistry, free_port, last_error_line
from remarketing.settings import Settings
from remarketing.uploads import widget_mb


@dataclass(frozen=True)
class Service:
    name: str
    address: str
    health_path: str | None  # None: healthy while ``heartbeat`` is fresh (a process with no HTTP)
    startup_seconds: float
    heartbeat: Path | None = None
    prepare: Callable[[], Any] | None = None  # run before each start (e.g. write its configuration)

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def emulator(settings: Settings) -> tuple[Service, list[str], dict[str, str]]:
    data = settings.state_dir.resolve() / "emulator"
    data.mkdir(parents=True, exist_ok=True)
    service = Service("storage-emulator", f"http://127.0.0.1:{settings.emulator_port}", "/", 30)
    command = [
        sys.executable,
        "-m",
        "local_stack.emulator",
        "--port",
        str(settings.emulator_port),
        "--data-dir",
        str(data),
        "--bucket",
        settings.landing_bucket,
        "--bucket",
        settings.artifacts_bucket,
    ]
    return service, command, {}


def mlflow_server(settings: Settings) -> tuple[Service, list[str], dict[str, str]]:
    root = settings.state_dir.resolve() / "mlflow"
    (root / "artifacts").mkdir(parents=True, exist_ok=True)
    service = Service("mlflow", f"http://127.0.0.1:{settings.mlflow_port}", "/health", 90)
    command = [
        _bin("mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(settings.mlflow_port),
        "--workers",
        "1",
        "--expose-prometheus",  # its /metrics (prometheus-flask-exporter keeps them in this folder)
        str(root / "prometheus"),
    ]
    # One worker and no job runner: 512 MB instead of 1.8 GB (STACK.md).
    return service, command, {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def api(settings: Settings) -> tuple[Service, list[str], dict[str, str]]:
    service = Service("api", f"http://127.0.0.1:{settings.api_port}", "/healthz", 30)
    command = [
        _bin("uvicorn"),
        "--factory",
        "frontend.api.main:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(settings.api_port),
        "--log-level",
        "warning",
        "--no-access-log",  # a request's path may hold a customer's id (the audit trail has who asked)
    ]
    return service, command, settings.to_env()


def _function(target: str, port_setting: str):
    """A Cloud Function loaded from its own folder as functions-framework deploys it, plus its /metrics."""

    def factory(settings: Settings) -> tuple[Service, list[str], dict[str, str]]:
        port = getattr(settings, port_setting)
        # Any HTTP answer to a GET means it serves (a CloudEvent function answers GET with 4xx).
        service = Service(f"function-{target}", f"http://127.0.0.1:{port}", "/", 30)
        command = [
            sys.executable,
            "-m",
            "cloud_functions.serve",
            "--target",
            target,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        return service, command, settings.to_env()

    return factory


def bridge(settings: Settings) -> tuple[Service, list[str], dict[str, str]]:
    beat = settings.state_dir.resolve() / "bridge" / "heartbeat"
    service = Service("bridge", "", None, 30, heartbeat=beat)
    return service, [sys.executable, "-m", "local_stack.bridge"], settings.to_env()


def scheduler(settings: Settings) -> tuple[Service, list[str], dict[str, str]]:
    beat = settings.state_dir.resolve() / "scheduler" / "heartbeat"
    service = Service("scheduler", "", None, 30, heartbeat=beat)
    return service, [sys.executable, "-m", "local_stack.scheduler"], settings.to_env()


def ui(settings: Settings) -> tuple[Service, list[str], dict[str, str]]:
    """The Streamlit app; it talks to the API only (address and key from the environment)."""
    app = Path(frontend.__file__).parent / "app" / "Home.py"
    service = Service("ui", f"http://127.0.0.1:{settings.ui_port}", "/_stcore/health", 60)
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(settings.ui_port),
        "--server.headless",
        "true",
        # the widget states the API's own limit (Streamlit counts in MiB, as the API's message does)
        "--server.maxUploadSize",
        str(widget_mb(settings.max_upload_bytes)),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    return (
        service,
        command,
        {**settings.to_env(), "REMARKETING_API_URL": f"http://127.0.0.1:{settings.api_port}"},
    )


# Debian's packages (`make system-packages`): what each observability service runs.
DEBIAN_PACKAGES = {
    "prometheus": "prometheus",
    "prometheus-pushgateway": "prometheus-pushgateway",
    "prometheus-alertmanager": "prometheus-alertmanager",
}


def pushgateway(settings: Settings) -> tuple[Service, list[str], dict[str, str]]:
    root = settings.state_dir.resolve() / "pushgateway"
    address = f"http://127.0.0.1:{settings.pushgateway_port}"
    service = Service(
        "pushgateway", address, "/-/ready", 30, prepare=lambda: root.mkdir(parents=True, exist_ok=True)
    )
    command = [
        "prometheus-pushgateway",
        f"--web.listen-address=127.0.0.1:{settings.pushgateway_port}",
        # runs pushed before a restart are still swept (deleted once ended) afterwards
        f"--persistence.file={root / 'metrics.store'}",
        "--persistence.interval=10s",
    ]
    return service, command, {}


def alertmanager(settings: Settings) -> tuple[Service, list[str], dict[str, str]]:
    from observability.prometheus_config import write_alertmanager

    address = f"http://127.0.0.1:{settings.alertmanager_port}"
    service = Service("alertmanager", address, "/-/ready", 30, prepare=lambda: write_alertmanager(settings))
    root = settings.state_dir.resolve() / "alertmanager"
    command = [
        "prometheus-alertmanager",
        f"--config.file={root / 'alertmanager.yml'}",
        f"--storage.path={root / 'data'}",
        f"--web.listen-address=127.0.0.1:{settings.alertmanager_port}",
        "--cluster.listen-address=",  # one instance: no gossip port
    ]
    return service, command, {}


def prometheus(settings: Settings) -> tuple[Service, list[str], dict[str, str]]:
    from observability.prometheus_config import write_prometheus

    address = f"http://127.0.0.1:{settings.prometheus_port}"
    service = Service("prometheus", address, "/-/ready", 60, prepare=lambda: write_prometheus(settings))
    root = settings.state_dir.resolve() / "prometheus"
    command = [
        "prometheus",
        f"--config.file={root / 'prometheus.yml'}",
        f"--storage.tsdb.path={root / 'data'}",
        "--storage.tsdb.retention.time=7d",
        f"--web.listen-address=127.0.0.1:{settings.prometheus_port}",
    ]
    return service, command, {}


SERVICES = {
    "storage-emulator": emulator,
    "mlflow": mlflow_server,
    "api": api,
    "ui": ui,
    **{f"function-{name}": _function(name, f.port_setting) for name, f in FUNCTIONS.items()},
    "bridge": bridge,
    "scheduler": scheduler,  # REMARKETING_RETRAIN_SCHEDULE's turns (Cloud Scheduler in the cloud)
    "pushgateway": pushgateway,  # pipeline runs' figures (docs/observability.md)
    "alertmanager": alertmanager,
    "prometheus": prometheus,
}
# What `train` and `score` need (they call launch() themselves); `up` starts everything, so files
# dropped into the landing bucket are picked up by the functions through the bridge.
CORE = ("storage-emulator", "mlflow", "api")
OBSERVABILITY = ("pushgateway", "alertmanager", "prometheus")
ALL = tuple(SERVICES)


def healthy(service: Service, timeout: float = 1.0) -> bool:
    if service.health_path is None:
        beat = service.heartbeat
        return bool(beat and beat.exists() and time.time() - beat.stat().st_mtime < 10)
    try:
        return httpx.get(service.address + service.health_path, timeout=timeout).status_code < 500
    except httpx.HTTPError:
        return False


PORT_SETTINGS = (
    "emulator_port",
    "mlflow_port",
    "api_port",
    "ui_port",
    "input_function_port",
    "weekly_function_port",
    "outcomes_function_port",
    "prometheus_port",
    "pushgateway_port",
    "alertmanager_port",
    "bridge_metrics_port",
)


def private_settings(state_dir: Path, **overrides: Any) -> Settings:
    """Settings for a stack of one's own (tests, benchmarks, a second stack beside another): its own state
    folder and every service on a free loopback port."""
    values: dict[str, Any] = {name: free_port() for name in PORT_SETTINGS}
    return Settings(state_dir=Path(state_dir), **values, **overrides)


def _port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


ALIVE_GRACE_SECONDS = 10.0


def _healthy_within(service: Service, entry: Entry, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while entry.alive():
        if healthy(service):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.25)
    return False


def _port_freed(service: Service, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while service.address and _port_in_use(service.port) and time.monotonic() < deadline:
        time.sleep(0.1)


def ensure(settings: Settings, name: str, *, on_start=None) -> Entry:
    """The running service ``name``; started (and waited for) when it is not running."""
    registry = ProcessRegistry(settings.state_dir)
    service, command, env = SERVICES[name](settings)
    entry = registry.get(name)
    # A running service that is slow to answer (a loaded machine) is waited for, not restarted.
    if entry and entry.alive() and _healthy_within(service, entry, ALIVE_GRACE_SECONDS):
        return entry
    if entry:
        registry.stop(name)
        _port_freed(service, ALIVE_GRACE_SECONDS)  # the stopped process's socket, not another program
    if service.address and _port_in_use(service.port):
        raise ServiceError(
            f"{name}: port {service.port} is taken by a program this state folder did not start; "
            f"stop it or choose another port (see README: settings)"
        )
    if not shutil.which(command[0]):
        package = DEBIAN_PACKAGES.get(command[0], command[0])
        raise ServiceError(
            f"{name}: the program {command[0]!r} is not installed: run `make system-packages` "
            f"(Debian's {package} package)"
        )
    if service.prepare:
        service.prepare()
    if on_start:
        on_start(name, service.address or "(no port)")
    entry = registry.start(name, command, address=service.address, env=env)
    deadline = time.monotonic() + service.startup_seconds
    while time.monotonic() < deadline:
        if healthy(service):
            return entry
        if not entry.alive():
            break
        time.sleep(0.25)
    registry.stop(name)
    raise ServiceError(
        f"{name} did not become healthy at {service.address} within {service.startup_seconds:.0f} s"
        f"{last_error_line(entry.log)}; its log is {entry.log}"
    )


def ensure_stack(settings: Settings, names: tuple[str, ...] = CORE, *, on_start=None) -> None:
    """Start what is missing. One command at a time per state folder (two `score`s at once would
    otherwise both start the emulator)."""
    if settings.mode != "local":
        return
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.state_dir / "stack.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for name in names:
            ensure(settings, name, on_start=on_start)


def status(settings: Settings) -> dict:
    registry = ProcessRegistry(settings.state_dir)
    services = {}
    for name, factory in SERVICES.items():
        service, _, _ = factory(settings)
        entry = registry.get(name)
        running, answers = bool(entry and entry.alive()), healthy(service, timeout=0.5)
        services[name] = {
            "address": service.address,
            "pid": entry.pid if entry else None,
            "running": running,
            "healthy": answers,
            "state": _state(entry, running, answers),
            "log": entry.log if entry else None,
        }
    others = [
        {"name": e.name, "kind": e.kind, "pid": e.pid, "address": e.address, "running": e.alive()}
        for e in registry.entries()
        if e.name not in SERVICES
    ]
    return {
        "mode": settings.mode,
        "state_dir": str(settings.state_dir.resolve()),
        "storage_emulator_host": settings.storage_emulator_host,
        "landing_bucket": f"gs://{settings.landing_bucket}",
        "artifacts_bucket": f"gs://{settings.artifacts_bucket}",
        "tracking_uri": settings.tracking_uri,
        "services": services,
        "processes": others,
    }


def _state(entry: Entry | None, running: bool, answers: bool) -> str:
    """What the address and the PID say together, in words."""
    if running:
        return "up" if answers else "started, not answering"
    if entry and entry.group():
        held = "still hold the address" if answers else "are still running"
        return f"its process died but its children {held}: `remarketing down` stops them"
    if answers:
        return "another program answers at this address (not started from this state folder)"
    return "down"


def down(settings: Settings) -> list[str]:
    return ProcessRegistry(settings.state_dir).stop_all()
