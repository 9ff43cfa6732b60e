"""A real PostgreSQL server for the tests (Debian's ``postgresql``, which ``make test-packages`` installs):
initdb in a temporary folder, started with pg_ctl on a free loopback port (``pg_ctl start -w`` returns once
it accepts connections), stopped by its PID. As root (CI), the server runs as the ``postgres`` account,
since PostgreSQL refuses to run as root.

Each test gets a database of its own, owned by a role that is no superuser and logs in with a password
over TCP (scram-sha-256), as the lookup's user does on Cloud SQL. Durability is off (fsync, full page
writes): the data lives as long as the test session.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from remarketing.processes import free_port

ROLE, PASSWORD = "lookup", "a-test-password"


def bindir() -> Path:
    """The newest installed PostgreSQL's programs (Debian keeps them out of PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    initdb = found[-1] if found else shutil.which("initdb")
    if initdb is None:  # CI installs it (requirements/debian-tests.txt): never skip silently
        pytest.fail("PostgreSQL is not installed: run `make test-packages` (Debian's postgresql package)")
    return Path(initdb).parent


@dataclass
class Server:
    port: int
    folder: Path
    pid: int
    _numbers: Iterator[int] = itertools.count(1)

    def superuser(self):
        import psycopg

        return psycopg.connect(
            host=str(self.folder), port=self.port, user="postgres", dbname="postgres", autocommit=True
        )

    def new_database(self) -> str:
        """A database of its own for a test, owned by the lookup's role."""
        name = f"test_{next(self._numbers)}"
        with self.superuser() as conn:
            conn.execute(f"CREATE DATABASE {name} OWNER {ROLE} STRATEGY FILE_COPY")  # our own names
        return name


def _as_postgres() -> dict:
    """Run a program as the postgres account when we are root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres", "extra_groups": []}


def start() -> Server:
    programs = bindir()
    folder = Path(tempfile.mkdtemp(prefix="remarketing-pg-"))  # not under pytest's 0700 root-owned folder
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(folder, account.pw_uid, account.pw_gid)
    data, log, port = folder / "data", folder / "server.log", free_port()
    run_as = _as_postgres()
    subprocess.run(
        [
            programs / "initdb", "-D", data, "-U", "postgres", "--auth-local=trust",
            "--auth-host=scram-sha-256", "--no-sync", "--no-instructions", "-E", "UTF8", "--locale=C",
        ],
        check=True, capture_output=True, **run_as,
    )  # fmt: skip
    options = (
        f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off "
        "-c synchronous_commit=off -c max_connections=200"
    )
    started = subprocess.run(
        [programs / "pg_ctl", "start", "-w", "-t", "60", "-D", data, "-l", log, "-o", options],
        capture_output=True, text=True, **run_as,
    )  # fmt: skip
    if started.returncode != 0:
        tail = log.read_text()[-2000:] if log.exists() else ""
        pytest.fail(f"PostgreSQL did not start: {started.stderr}\n{tail}")
    pid = int((data / "postmaster.pid").read_text().splitlines()[0])
    server = Server(port, folder, pid)
    with server.superuser() as conn:
        conn.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")  # test constants
    return server


def stop(server: Server) -> None:
    """Fast shutdown by PID (SIGINT), waiting for the server to exit; then its folder goes."""
    try:
        process = psutil.Process(server.pid)
        os.kill(server.pid, signal.SIGINT)
        process.wait(timeout=60)
    except psutil.NoSuchProcess:
        pass
    shutil.rmtree(server.folder, ignore_errors=True)
