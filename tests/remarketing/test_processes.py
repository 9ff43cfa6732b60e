"""The process registry: each process is started in its own group and stopped as a group."""

import sys
import time

import psutil

from remarketing.processes import ProcessRegistry, last_error_line

# A leader that starts a child in its own process group, then waits: as `mlflow server` starts uvicorn.
LEADER = [
    sys.executable,
    "-c",
    "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
    "'import time; time.sleep(300)']); time.sleep(300)",
]


def _child(entry, timeout: float = 30) -> psutil.Process:
    """The leader's child, once it has started it."""
    deadline = time.monotonic() + timeout
    while not (found := psutil.Process(entry.pid).children()):
        assert time.monotonic() < deadline, "the leader never started its child"
        time.sleep(0.05)
    return found[0]


def test_a_leader_killed_alone_leaves_its_child_and_stop_ends_the_group(tmp_path):
    registry = ProcessRegistry(tmp_path)
    entry = registry.start("leader", LEADER)
    child = _child(entry)
    leader = psutil.Process(entry.pid)
    leader.kill()  # someone kills the registered PID only
    leader.wait(timeout=10)
    assert not entry.alive() and child.is_running()
    assert [p.pid for p in entry.group()] == [child.pid]  # what `status` reports as left behind

    assert registry.stop("leader") is True
    child.wait(timeout=10)
    assert not child.is_running()
    assert registry.get("leader") is None and entry.group() == []


def test_a_failure_names_the_logs_last_error_line_not_the_whole_log(tmp_path):
    log = tmp_path / "server.log"
    log.write_text("INFO starting\nDeprecationWarning: old\nOSError: [Errno 98] Address in use\nINFO bye\n")
    assert last_error_line(log) == ' (its log says: "OSError: [Errno 98] Address in use")'
    assert last_error_line(tmp_path / "none.log") == ""
