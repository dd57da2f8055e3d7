"""What the benchmarks under ``scripts/`` share: processes that never outlive the run, a fresh
database with the demo city per backend, ``reppu serve`` started as production runs it, CPU
read from ``/proc``, progress lines and the dated entries of ``docs/benchmarks.md``.

Every process is started in its own session (process group) and registered with a
:class:`Cleanup`; :func:`run_main` stops every group, drops every database and removes every
folder it holds, on success, on an error, on Ctrl-C and on SIGTERM. Progress goes to stderr,
one line each, with the seconds since the start; the entries go to stdout and the docs.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BENCHMARKS = ROOT / "docs" / "benchmarks.md"
DEFAULT_ADMIN_URL = os.environ.get(
    "REPPU_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
DEMO_PASSWORD = "reppu-demo"  # noqa: S105 - the documented password of every demo account
ADDRESS_LIMIT = 100_000
"""Every benchmark device logs in from 127.0.0.1; a city's phones come from many addresses."""
HEALTH_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
QUIET_BUSY = 0.2
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_started = time.monotonic()


class BenchError(RuntimeError):
    """A step of the benchmark failed; the message says which."""


def say(message: str) -> None:
    """Progress: one line on stderr, with the seconds since the start."""
    print(f"[{time.monotonic() - _started:7.1f} s] {message}", file=sys.stderr, flush=True)


# -- processes, folders and databases that must not outlive the run -------------------------


@dataclass
class Cleanup:
    """What the run started or created; :meth:`run` removes all of it (and may run twice)."""

    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)
    databases: list[tuple[str, str]] = field(default_factory=list)
    patience: dict[int, float] = field(default_factory=dict)
    """Seconds to wait after SIGTERM, by pid, for processes that clean up after themselves
    (a scenario script stopping its own servers); others get ``STOP_TIMEOUT``."""

    def start(
        self,
        cmd: Sequence[str],
        *,
        env: dict[str, str],
        log: Path,
        cwd: Path = ROOT,
    ) -> subprocess.Popen[bytes]:
        """Start ``cmd`` in its own session (process group), output into ``log``."""
        with log.open("ab") as out:
            proc = subprocess.Popen(  # noqa: S603 - our own commands, no shell
                list(cmd),
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGTERM to the process group, SIGKILL if it is still there after a while."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            patience = self.patience.get(proc.pid, STOP_TIMEOUT)
            try:
                proc.wait(patience)
            except subprocess.TimeoutExpired:
                say(f"process {proc.pid} ignored SIGTERM for {patience:.0f} s: SIGKILL")
        # The group may hold children that outlived the leader: end them too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        if proc in self.processes:
            self.processes.remove(proc)

    def drop_database(self, admin_url: str, name: str) -> None:
        asyncio.run(drop_database(admin_url, name))
        if (admin_url, name) in self.databases:
            self.databases.remove((admin_url, name))

    def remove_folder(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        if folder in self.folders:
            self.folders.remove(folder)

    def run(self) -> None:
        for proc in list(reversed(self.processes)):
            self.stop(proc)
        for admin_url, name in list(self.databases):
            try:
                self.drop_database(admin_url, name)
            except Exception as exc:  # keep cleaning up the rest
                print(f"could not drop database {name}: {exc}", file=sys.stderr)
        for folder in list(self.folders):
            self.remove_folder(folder)


async def drop_database(admin_url: str, name: str) -> None:
    admin = await asyncpg.connect(admin_url, timeout=10)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def run_to_end(cleanup: Cleanup, cmd: Sequence[str], env: dict[str, str], timeout: float) -> None:
    """Run ``cmd`` in its own process group, output shown here, within ``timeout`` seconds."""
    proc = subprocess.Popen(  # noqa: S603 - our own commands, no shell
        list(cmd),
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=sys.stderr,
        start_new_session=True,
    )
    cleanup.processes.append(proc)
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{' '.join(cmd[1:3])} did not finish within {timeout:.0f} s") from exc
    finally:
        cleanup.stop(proc)
    if code != 0:
        raise BenchError(f"{' '.join(cmd)} exited with {code}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until_up(
    proc: subprocess.Popen[bytes], url: str, log: Path, within: float = HEALTH_TIMEOUT
) -> None:
    """Poll ``url`` until it answers, at most ``within`` seconds."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=2.0) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BenchError(f"the server exited with {proc.returncode}; see {log}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url)).status_code < 500:
                    return
            await asyncio.sleep(0.2)
    raise BenchError(f"{url} did not answer within {within:.0f} s")


def worker_pids(parent: int) -> list[int]:
    """The uvicorn worker processes of the supervisor ``parent`` (not its resource tracker)."""
    return sorted(
        pid
        for pid, (ppid, _, cmdline) in process_table().items()
        if ppid == parent and b"multiprocessing.spawn" in cmdline
    )


def tool_version(cmd: Sequence[str]) -> str:
    """The first line a tool prints about itself, ``?`` when it cannot be run."""
    try:
        out = subprocess.run(  # noqa: S603
            list(cmd), capture_output=True, text=True, check=False, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "?"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "?"


def find_py_spy() -> str | None:
    """py-spy on the PATH, in the virtualenv, or where ``pip install --target /tmp/pyspy
    py-spy`` puts it."""
    for candidate in (shutil.which("py-spy"), BIN / "py-spy", Path("/tmp/pyspy/bin/py-spy")):  # noqa: S108
        if candidate and Path(candidate).exists():
            return str(candidate)
    return None


# -- CPU, read from /proc ---------------------------------------------------------------------

ProcessTable = dict[int, tuple[int, float, bytes]]
"""pid -> (parent pid, CPU seconds so far, command line)."""


def process_table() -> ProcessTable:
    table: ProcessTable = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        table[int(entry.name)] = (int(fields[1]), cpu, cmdline)
    return table


def _below(table: ProcessTable, pid: int, roots: set[int]) -> bool:
    for _ in range(64):  # bounded: a process tree is not that deep
        if pid in roots:
            return True
        if pid <= 1 or pid not in table:
            return False
        pid = table[pid][0]
    return False


@dataclass(frozen=True, slots=True)
class CpuReading:
    """CPU seconds so far: of the processes below some roots (by pid, so that a process that
    ended between two readings does not count against the others), of the PostgreSQL backends
    serving one database, and of the whole machine."""

    tree: dict[int, float]
    postgres: dict[int, float]
    machine: float

    @staticmethod
    def take(roots: Iterable[int], database: str | None = None) -> CpuReading:
        table = process_table()
        wanted = set(roots)
        tree = {pid: cpu for pid, (_, cpu, _) in table.items() if _below(table, pid, wanted)}
        title = f" {database} ".encode() if database else None
        backends = {
            pid: cpu
            for pid, (_, cpu, cmdline) in table.items()
            if title and cmdline.startswith(b"postgres: ") and title in cmdline
        }
        return CpuReading(tree, backends, machine_busy_seconds())

    def since(self, earlier: CpuReading) -> tuple[float, float, float]:
        """CPU seconds used since ``earlier``: the tree, PostgreSQL's backends, the machine."""

        def used(before: dict[int, float], after: dict[int, float]) -> float:
            return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())

        return (
            used(earlier.tree, self.tree),
            used(earlier.postgres, self.postgres),
            self.machine - earlier.machine,
        )


def _cpu_times() -> tuple[int, int]:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields), fields[3] + fields[4]  # total, idle + iowait


def machine_busy_seconds() -> float:
    total, idle = _cpu_times()
    return (total - idle) / CLOCK_TICKS


def cpu_busy_share(seconds: float) -> float:
    """How busy the machine's CPUs are over ``seconds``."""
    total0, idle0 = _cpu_times()
    time.sleep(seconds)
    total1, idle1 = _cpu_times()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def wait_for_quiet(limit: float, busy_share: float = QUIET_BUSY) -> float:
    """Wait, at most ``limit`` seconds, until the CPUs are mostly idle (the machine is shared);
    returns the busy share last seen."""
    deadline = time.monotonic() + limit
    busy = cpu_busy_share(1.0)
    while busy > busy_share and time.monotonic() < deadline:
        say(f"  the machine is {busy:.0%} busy with other work: waiting for it to calm down")
        time.sleep(4.0)
        busy = cpu_busy_share(1.0)
    return busy


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile by the nearest rank (NaN when there are no values)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


# -- a fresh database with the demo city ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fresh:
    """A migrated database holding the demo city, and the environment that points at it."""

    backend: str
    env: dict[str, str]
    version: str
    folder: Path
    sqlite_path: Path | None
    db_name: str | None
    """The PostgreSQL database's name (None on SQLite): PostgreSQL's backends are named by it."""
    seconds: float


async def fresh_database(
    cleanup: Cleanup,
    backend: str,
    folder: Path,
    *,
    pupils: int,
    seed: int,
    admin_url: str = DEFAULT_ADMIN_URL,
    demo_timeout: float = 900.0,
    env_extra: dict[str, str] | None = None,
) -> Fresh:
    """A fresh SQLite file in ``folder``, or a PostgreSQL database created next to the admin
    database of ``admin_url`` (registered with ``cleanup`` to be dropped), migrated and loaded
    with the demo city (``reppu migrate``, ``reppu demo``)."""
    started = time.monotonic()
    env = dict(os.environ, REPPU_DATA_DIR=str(folder), PYTHONUNBUFFERED="1")
    env["REPPU_LOGIN_FAILURES_PER_ADDRESS"] = str(ADDRESS_LIMIT)
    env.update(env_extra or {})
    name: str | None = None
    path: Path | None = None
    if backend == "sqlite":
        path = folder / "reppu.sqlite3"
        env["REPPU_DATABASE_URL"] = f"sqlite:///{path}"
        version = f"SQLite {sqlite3.sqlite_version}"
    elif backend == "postgres":
        name = f"reppu_benchlib_{secrets.token_hex(4)}"
        admin = await asyncpg.connect(admin_url, timeout=10)
        try:
            version = "PostgreSQL " + str(await admin.fetchval("SHOW server_version")).split()[0]
            cleanup.databases.append((admin_url, name))
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        env["REPPU_DATABASE_URL"] = admin_url.rsplit("/", 1)[0] + "/" + name
    else:
        raise BenchError(f"unknown backend {backend!r}")
    reppu = str(BIN / "reppu")
    say(f"{version}: reppu migrate")
    await asyncio.to_thread(run_to_end, cleanup, [reppu, "migrate"], env, 300)
    say(f"{version}: reppu demo --pupils {pupils} --seed {seed}")
    cmd = [reppu, "demo", "--pupils", str(pupils), "--seed", str(seed)]
    await asyncio.to_thread(run_to_end, cleanup, cmd, env, demo_timeout)
    return Fresh(backend, env, version, folder, path, name, time.monotonic() - started)


async def release_database(cleanup: Cleanup, fresh: Fresh) -> None:
    """Drop the PostgreSQL database of ``fresh`` now (SQLite's file goes with its folder)."""
    for admin_url, name in [d for d in cleanup.databases if d[1] == fresh.db_name]:
        say(f"dropping database {name}")
        await drop_database(admin_url, name)
        cleanup.databases.remove((admin_url, name))


# -- reppu serve, as production runs it -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Served:
    proc: subprocess.Popen[bytes]
    base: str
    log: Path


async def serve_reppu(
    cleanup: Cleanup,
    fresh: Fresh,
    *,
    workers: int,
    access_log: bool = True,
    env_extra: dict[str, str] | None = None,
) -> Served:
    """``reppu serve --workers N`` (uvicorn, real worker processes) on a free loopback port,
    answering ``/health``."""
    port = free_port()
    log = fresh.folder / f"serve-{port}.log"
    cmd = [str(BIN / "reppu"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", str(workers)]
    if not access_log:
        cmd.append("--no-access-log")
    say(f"{fresh.version}: reppu serve --workers {workers} on port {port}")
    env = dict(fresh.env, **(env_extra or {}))
    proc = cleanup.start(cmd, env=env, log=log)
    base = f"http://127.0.0.1:{port}"
    await wait_until_up(proc, base + "/health", log)
    return Served(proc, base, log)


async def mint_tokens(fresh: Fresh, persons: Sequence[int], label: str) -> list[str]:
    """A bearer token for each person's account, written straight into ``auth_token`` through
    the bulk path (``POST /auth/login`` costs an argon2 verification, about a tenth of a
    second of a core, which is not what the scenarios measure). Same order as ``persons``."""
    from server.db.bulk import Rows, bulk_insert, run_sql
    from server.db.engine import open_database
    from server.identity import token_digest
    from server.settings import load_settings

    settings = load_settings(fresh.env)
    async with open_database(settings) as engine:
        wanted = set(persons)
        accounts = {
            int(row["person"]): int(row["id"])
            for row in await run_sql("SELECT person, id FROM account")
            if int(row["person"]) in wanted
        }
        missing = wanted - set(accounts)
        if missing:
            raise BenchError(f"{len(missing)} persons have no account, say {min(missing)}")
        first = int((await run_sql("SELECT COALESCE(MAX(id), 0) AS n FROM auth_token"))[0]["n"])
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        until = now + dt.timedelta(days=30)
        stamp: Any = str(now) if settings.is_sqlite else now
        expires: Any = str(until) if settings.is_sqlite else until
        tokens = [secrets.token_urlsafe(32) for _ in persons]
        rows = [
            (
                first + 1 + i,
                accounts[person],
                token_digest(settings, token),
                f"{label} {i}",
                stamp,
                expires,
                None,
            )
            for i, (person, token) in enumerate(zip(persons, tokens, strict=True))
        ]
        columns = (
            "id",
            "account",
            "token_hash",
            "device_name",
            "created_at",
            "expires_at",
            "revoked_at",
        )
        await bulk_insert(engine, [Rows("auth_token", columns, rows)])
    return tokens


async def query(fresh: Fresh, sql: str, *args: Any) -> list[dict[str, Any]]:
    """Rows of ``sql`` (``{}`` for each bound value) read from the fresh database."""
    from server.db.bulk import run_sql
    from server.db.engine import open_database
    from server.settings import load_settings

    async with open_database(load_settings(fresh.env)):
        return list(await run_sql(sql, *args))


# -- bytes and round trips on the wire --------------------------------------------------------


@dataclass(slots=True)
class WireCount:
    """What one exchange (a sync, a pull) cost on the wire: round trips, and bytes as sent
    (bodies before decompression; status lines and headers apart)."""

    round_trips: int = 0
    request_bytes: int = 0
    request_header_bytes: int = 0
    response_bytes: int = 0
    response_header_bytes: int = 0

    def add(self, other: WireCount) -> None:
        self.round_trips += other.round_trips
        self.request_bytes += other.request_bytes
        self.request_header_bytes += other.request_header_bytes
        self.response_bytes += other.response_bytes
        self.response_header_bytes += other.response_header_bytes


counting: contextvars.ContextVar[WireCount | None] = contextvars.ContextVar(
    "counting", default=None
)
"""The :class:`WireCount` the current task's requests add to (set it per task)."""


class _CountedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, count: WireCount) -> None:
        self._inner = inner
        self._count = count

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            self._count.response_bytes += len(chunk)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class CountingTransport(httpx.AsyncBaseTransport):
    """httpx's own transport, counting each request into the task's :data:`counting`: the
    response body as it comes off the socket (compressed, if it was), HTTP/1.1 heads as
    they would be written."""

    def __init__(self, **kwargs: Any) -> None:
        self._inner = httpx.AsyncHTTPTransport(**kwargs)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        count = counting.get()
        response = await self._inner.handle_async_request(request)
        if count is None:
            return response
        count.round_trips += 1
        count.request_bytes += len(request.content)
        target = request.url.raw_path
        count.request_header_bytes += len(request.method) + len(target) + 12  # line + CRLF
        count.request_header_bytes += sum(len(k) + len(v) + 4 for k, v in request.headers.raw)
        count.response_header_bytes += 17 + 2  # "HTTP/1.1 200 OK\r\n", the blank line
        count.response_header_bytes += sum(len(k) + len(v) + 4 for k, v in response.headers.raw)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _CountedStream(response.stream, count)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


# -- a phase of many syncs, timed and counted -------------------------------------------------


@dataclass(slots=True)
class Phase:
    """Many syncs at ``concurrency``: wall time, each one's latency and wire cost, and the CPU
    the server (and PostgreSQL's backends) spent meanwhile."""

    label: str
    syncs: int = 0
    concurrency: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    wire: WireCount = field(default_factory=WireCount)
    changes: int = 0
    server_cpu: float = 0.0
    database_cpu: float = 0.0
    failures: int = 0
    first_error: str = ""

    @property
    def rate(self) -> float:
        return self.syncs / self.seconds if self.seconds else 0.0

    def per_sync(self, value: float) -> float:
        return value / max(1, self.syncs)


async def run_phase(
    label: str,
    jobs: Sequence[Callable[[], Awaitable[int]]],
    concurrency: int,
    server_pid: int,
    database: str | None,
) -> Phase:
    """Run each job (one sync; it returns the changes or documents it brought) with a fresh
    :class:`WireCount`, ``concurrency`` at a time."""
    phase = Phase(label, concurrency=concurrency)
    gate = asyncio.Semaphore(concurrency)

    async def one(job: Callable[[], Awaitable[int]]) -> None:
        async with gate:
            count = WireCount()
            token = counting.set(count)
            t0 = time.perf_counter()
            try:
                phase.changes += await job()
            except Exception as exc:  # counted and shown; the others go on
                phase.failures += 1
                phase.first_error = phase.first_error or repr(exc)[:300]
                return
            finally:
                counting.reset(token)
            phase.latencies_ms.append((time.perf_counter() - t0) * 1000)
            phase.wire.add(count)
            phase.syncs += 1

    cpu0 = CpuReading.take([server_pid], database)
    started = time.perf_counter()
    await asyncio.gather(*(one(job) for job in jobs))
    phase.seconds = time.perf_counter() - started
    phase.server_cpu, phase.database_cpu, _ = CpuReading.take([server_pid], database).since(cpu0)
    return phase


@contextlib.asynccontextmanager
async def counted_client(base: str, concurrency: int) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client for ``base`` whose requests count into the task's ``WireCount``."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    transport = CountingTransport(limits=limits)
    async with httpx.AsyncClient(base_url=base, transport=transport, timeout=60.0) as http:
        yield http


# -- docs/benchmarks.md -----------------------------------------------------------------------


def record_entry(section: str, intro: str, entry: str, path: Path = BENCHMARKS) -> None:
    """Insert ``entry`` at the end of the section headed ``section`` (``## ...``), creating the
    section, with ``intro`` under its heading, at the end of the file when it is missing; the
    other sections are left as they are."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if f"\n{section}\n" not in text:
        text = text.rstrip("\n") + f"\n\n{section}\n\n{intro}"
    start = text.index(f"\n{section}\n") + len(section) + 2
    following = text.find("\n## ", start)
    end = len(text) if following == -1 else following + 1
    before, after = text[:end].rstrip("\n"), text[end:]
    text = f"{before}\n\n{entry}" + (f"\n{after}" if after else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# -- the entry point --------------------------------------------------------------------------


def run_main(
    name: str, body: Callable[[Cleanup], Coroutine[Any, Any, int]], cleanup: Cleanup | None = None
) -> int:
    """Run ``body(cleanup)`` on a new event loop; SIGTERM and Ctrl-C end it like an error, and
    whatever happens everything ``cleanup`` holds is stopped, dropped and removed."""
    cleanup = cleanup or Cleanup()

    def terminate(signum: int, _frame: object) -> None:
        say(f"signal {signum}: stopping, cleaning up what was started")
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    try:
        return asyncio.run(body(cleanup))
    except BenchError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        say("interrupted: cleaning up what was started")
        return 130
    finally:
        cleanup.run()


def write_json(path: Path, value: Any) -> None:
    """``value`` (dataclasses, dicts, lists) as JSON, for ``scripts/bench`` to read back."""
    import msgspec

    def fallback(obj: Any) -> Any:
        return dict(obj) if isinstance(obj, dict) else str(obj)

    path.write_bytes(msgspec.json.encode(value, enc_hook=fallback))
