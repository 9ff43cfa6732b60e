"""The state folder's process registry: every process any command started, so ``down`` stops exactly
those, by PID. Entries are written under an exclusive file lock (several commands may start things)."""

from __future__ import annotations

import fcntl
import json
import os
import random
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

_HANDED_OUT: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A loopback port nothing listens on right now, never handed out before by this process, and outside
    the kernel's ephemeral range: a port from that range can be taken between choosing it and starting the
    service, by any process that binds port 0 or opens an outgoing connection (CI saw exactly that)."""
    low, _ = _ephemeral_range()
    candidates = list(range(max(1024, low - 12000), low))
    random.SystemRandom().shuffle(candidates)
    for port in candidates:
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise OSError(f"no free loopback port below the ephemeral range (starts at {low})")


def last_error_line(log: str | Path) -> str:
    """The log's last error-looking line, quoted, for a one-sentence failure: the log stays in its file,
    and the message names that file instead of pasting it."""
    path = Path(log)
    if not path.exists():
        return ""
    lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines()[-200:] if ln.strip()]
    line = ([ln for ln in lines if "Error" in ln or "error" in ln] or lines or [""])[-1]
    return f' (its log says: "{line[:200]}")' if line else ""


@dataclass
class Entry:
    name: str
    pid: int
    command: list[str]
    address: str = ""
    log: str = ""
    kind: str = "service"  # service | model-server | pipeline
    started: float = field(default_factory=time.time)
    create_time: float = 0.0  # guards against a recycled PID

    def alive(self) -> bool:
        try:
            process = psutil.Process(self.pid)
            return (
                process.is_running()
                and process.status() != psutil.STATUS_ZOMBIE
                and (not self.create_time or abs(process.create_time() - self.create_time) < 1)
            )
        except psutil.Error:
            return False

    def group(self) -> list[psutil.Process]:
        """The processes still in this entry's process group (it was started as a session leader, so
        the group's id is its PID): children keep serving its port when only the leader is killed. None
        when that group is not ours: no recorded start time, or the PID now leads another process."""
        if not self.create_time:
            return []
        try:
            leader = psutil.Process(self.pid)
            if abs(leader.create_time() - self.create_time) >= 1:
                return []  # a recycled PID leading some other group
        except psutil.Error:
            pass  # the leader is gone: its group may live on
        return group_members(self.pid, since=self.create_time)


def group_members(pgid: int, *, since: float = 0.0) -> list[psutil.Process]:
    members = []
    for process in psutil.process_iter(["create_time"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["create_time"] >= since - 0.5:
                if process.status() != psutil.STATUS_ZOMBIE:
                    members.append(process)
        except (ProcessLookupError, psutil.Error):
            continue
    return members


class ProcessRegistry:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / "processes.json"
        self.logs = self.state_dir / "logs"

    @contextmanager
    def _locked(self) -> Iterator[dict[str, dict]]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / "processes.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            entries = json.loads(self.path.read_text()) if self.path.exists() else {}
            yield entries
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(entries, indent=2))
            tmp.replace(self.path)

    def entries(self) -> list[Entry]:
        with self._locked() as entries:
            return [Entry(**e) for e in entries.values()]

    def get(self, name: str) -> Entry | None:
        with self._locked() as entries:
            return Entry(**entries[name]) if name in entries else None

    def start(
        self,
        name: str,
        command: list[str],
        *,
        address: str = "",
        kind: str = "service",
        env: dict[str, str] | None = None,
    ) -> Entry:
        """Start ``command`` in its own session (it outlives this command), logging to logs/<name>.log."""
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{name}.log"
        with open(log, "ab") as out:
            process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, **(env or {})},
            )
        # Read before it can be reaped: a process that exits at once is still there (a zombie) until then.
        created = psutil.Process(process.pid).create_time()
        # Reap it when it ends: a long-lived parent (a function's worker) would otherwise collect zombies.
        threading.Thread(target=process.wait, name=f"reap-{name}", daemon=True).start()
        entry = Entry(name, process.pid, command, address, str(log), kind, create_time=created)
        with self._locked() as entries:
            entries[name] = asdict(entry)
        return entry

    def forget(self, name: str) -> None:
        with self._locked() as entries:
            entries.pop(name, None)

    def stop(self, name: str, *, timeout: float = 10) -> bool:
        """Stop the entry's whole process group (also what is left when only its leader was killed)."""
        entry = self.get(name)
        members = entry.group() if entry else []
        if entry and members:
            terminate_group(entry.pid, members, timeout=timeout)
        self.forget(name)
        return bool(members)

    def stop_all(self) -> list[str]:
        # Pipelines first (they use the services), services last.
        order = {"pipeline": 0, "model-server": 1, "service": 2}
        stopped = []
        for entry in sorted(self.entries(), key=lambda e: order.get(e.kind, 1)):
            if self.stop(entry.name):
                stopped.append(entry.name)
        return stopped


def terminate_group(group: int, procs: list[psutil.Process], *, timeout: float = 10) -> None:
    """SIGTERM the process group, then SIGKILL what is left of ``procs`` (its members)."""
    try:
        os.killpg(group, signal.SIGTERM)
    except ProcessLookupError:
        return
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for process in alive:
        try:
            process.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=5)
