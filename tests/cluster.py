"""A small Reppu deployment of real processes on one PostgreSQL database, for the scale-out test.

:func:`start_cluster` creates a fresh database (``reppu_test_<random>`` next to the suite's
admin database), runs ``reppu migrate`` and ``reppu demo``, and starts the push-service
emulator (``tests/push_service.py``), ``servers`` API servers (``reppu serve``, one uvicorn
process each, the in-process delivery worker off: ``REPPU_RUN_WORKER=false``) and ``workers``
delivery workers (``reppu worker``). Every process shares one secret key and one VAPID key
given in the environment, as a deployment on several machines does (``server/settings.py``).
Each worker's database connections carry its name as ``application_name`` (``worker-1``, ...),
so a test can tell which worker wrote what (``pg_stat_activity``, a trigger).

Every process, the emulator included, lives under libfaketime at one instant (a constant
offset from the real clock, as ``tests/browser/conftest.py`` does for its server), so the
demo's timetable, the roll call's "today" and the VAPID tokens' expiry all agree. Each runs
in its own process group; :meth:`Cluster.stop` interrupts them (SIGINT, then SIGKILL after a
generous wait) and drops the database, and :func:`start_cluster` does so itself when starting
fails part-way. Only 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import time_machine

from server.settings import generate_vapid_keys
from tests.conftest import _create_postgres_database, _drop_postgres_database

ROOT = Path(__file__).resolve().parents[1]
REPPU = [sys.executable, "-m", "server.cli"]
FAKETIME_LIBRARY = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
UP_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0


def real_now() -> dt.datetime:
    """The real clock, past the suite's frozen one (libfaketime offsets from the real one)."""
    return time_machine.escape_hatch.datetime.datetime.now(dt.UTC)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Cluster:
    """The processes, their addresses and the database they share."""

    database_url: str
    folder: Path
    offset: dt.timedelta
    """The processes' clock minus the real one."""
    env: dict[str, str]
    emulator: str
    """The push-service emulator's origin."""
    servers: list[str] = field(default_factory=list)
    """Base URLs of the API servers."""
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def now(self) -> dt.datetime:
        """The processes' "now" (aware, UTC)."""
        return real_now() + self.offset

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.folder / f"{name}.log").open("wb")
        try:
            proc = subprocess.Popen(
                command,
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, stopped as a whole
            )
        finally:
            log.close()
        self.processes.append((name, proc))
        return proc

    def process(self, name: str) -> subprocess.Popen[bytes]:
        return next(proc for n, proc in self.processes if n == name)

    def start_worker(self, name: str) -> subprocess.Popen[bytes]:
        """A ``reppu worker`` whose connections say ``name`` (``application_name``)."""
        url = f"{self.database_url}?application_name={name}"
        return self.start(name, [*REPPU, "worker"], {**self.env, "REPPU_DATABASE_URL": url})

    def freeze(self, name: str) -> None:
        """Stop the process group of ``name`` in its tracks (SIGSTOP): it does nothing more."""
        os.killpg(self.process(name).pid, signal.SIGSTOP)

    def kill(self, name: str) -> None:
        """``kill -9`` the process group of ``name``, as a lost machine; it is forgotten (its
        log stays)."""
        proc = self.process(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        self.processes.remove((name, proc))

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def check_alive(self) -> None:
        """Fail, with the log's tail, if any process has exited."""
        for name, proc in self.processes:
            if proc.poll() is not None:
                tail = "\n".join(self.log(name).splitlines()[-30:])
                raise AssertionError(f"{name} exited with {proc.returncode}:\n{tail}")

    def errors(self) -> dict[str, list[str]]:
        """ERROR lines and tracebacks in each process's log (nothing here should log one)."""
        found: dict[str, list[str]] = {}
        for name, _ in self.processes:
            bad = [
                line
                for line in self.log(name).splitlines()
                if " ERROR " in line or line.startswith("Traceback")
            ]
            if bad:
                found[name] = bad[:5]
        return found

    async def stop(self) -> None:
        """Interrupt every process group, kill what does not stop, drop the database."""
        for _, proc in self.processes:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGINT)
        deadline = time.monotonic() + STOP_TIMEOUT
        for _, proc in self.processes:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        await _drop_postgres_database(self.database_url)


def _run(command: list[str], env: dict[str, str], timeout: float) -> None:
    done = subprocess.run(
        command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{command[3:]} failed:\n{done.stderr[-3000:]}"


async def _wait_up(cluster: Cluster, url: str) -> None:
    deadline = time.monotonic() + UP_TIMEOUT
    async with httpx.AsyncClient(timeout=5) as http:
        while True:
            cluster.check_alive()
            with contextlib.suppress(httpx.TransportError):
                if (await http.get(url)).status_code == 200:
                    return
            assert time.monotonic() < deadline, f"{url} did not answer within {UP_TIMEOUT:.0f} s"
            await asyncio.sleep(0.2)


async def wait_for_line(cluster: Cluster, name: str, text: str) -> None:
    deadline = time.monotonic() + UP_TIMEOUT
    while text not in cluster.log(name):
        cluster.check_alive()
        assert time.monotonic() < deadline, f"{name} did not say {text!r}"
        await asyncio.sleep(0.2)


async def start_cluster(
    folder: Path, instant: dt.datetime, *, pupils: int, servers: int, workers: int
) -> Cluster:
    """The database with a demo city, the emulator, the servers and the workers, all up."""
    if not Path(FAKETIME_LIBRARY).exists():
        reason = (
            f"the scale-out test needs libfaketime ({FAKETIME_LIBRARY}: apt-get install faketime)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    database_url = await _create_postgres_database()  # skips loudly, or fails under CI=true
    offset = dt.timedelta(seconds=int((instant - real_now()).total_seconds()))
    emulator_port = free_port()
    emulator = f"http://127.0.0.1:{emulator_port}"
    vapid_private, vapid_public = generate_vapid_keys()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("REPPU_")},
        "REPPU_DATABASE_URL": database_url,
        "REPPU_DATA_DIR": str(folder),
        "REPPU_SECRET_KEY": secrets.token_urlsafe(32),
        "REPPU_VAPID_PRIVATE_KEY": vapid_private,
        "REPPU_PUSH_HOSTS": emulator,
        "REPPU_RUN_WORKER": "false",
        "REPPU_WORKERS": "1",
        "REPPU_HOST": "127.0.0.1",
        "REPPU_LOGIN_FAILURES_PER_ADDRESS": "100000",
        "PYTHONUNBUFFERED": "1",
        "LD_PRELOAD": FAKETIME_LIBRARY,
        "FAKETIME": f"{int(offset.total_seconds()):+d}",
        "DONT_FAKE_MONOTONIC": "1",
        "FAKETIME_DONT_RESET": "1",
    }
    cluster = Cluster(database_url, folder, offset, env, emulator)
    try:
        await asyncio.to_thread(_run, [*REPPU, "migrate"], env, 300)
        await asyncio.to_thread(_run, [*REPPU, "demo", "--pupils", str(pupils)], env, 600)
        cluster.start(
            "emulator",
            [
                sys.executable,
                "-m",
                "tests.push_service",
                "--host",
                "127.0.0.1",
                "--port",
                str(emulator_port),
                "--vapid-public-key",
                vapid_public,
            ],
            env,
        )
        await _wait_up(cluster, f"{emulator}/_admin/stats")
        for i in range(servers):
            port = free_port()
            name = f"serve-{i + 1}"
            cluster.start(
                name, [*REPPU, "serve", "--no-access-log"], {**env, "REPPU_PORT": str(port)}
            )
            cluster.servers.append(f"http://127.0.0.1:{port}")
        for base in cluster.servers:
            await _wait_up(cluster, f"{base}/health")
        for i in range(workers):
            cluster.start_worker(f"worker-{i + 1}")
        for i in range(workers):
            await wait_for_line(cluster, f"worker-{i + 1}", "Delivery worker on")
    except BaseException:
        await cluster.stop()
        raise
    return cluster


async def connect(cluster: Cluster) -> Any:
    """This process's own connection to the shared database, for setting up and counting."""
    return await asyncpg.connect(cluster.database_url, timeout=10)
