"""Benchmark: the sync protocol over real HTTP, on SQLite and on PostgreSQL.

For each backend a fresh database (a SQLite file in a temporary data folder, or a PostgreSQL
database created next to the admin database of ``--postgres-admin-url`` and dropped afterwards)
is migrated and gets a demo city (``reppu migrate``, ``reppu demo``); then ``reppu serve``
(uvicorn, several workers: the production path) is started on a free loopback port and measured:

1. Bytes on the wire: a first sync and a "nothing new" pull of ``demo-pupil`` and
   ``demo-guardian``, in JSON and MessagePack, each uncompressed, gzip and brotli; response
   bodies counted as they arrived (before decompression), and round trips (pages).
2. "Nothing new" pulls per second under ``wrk`` (a Lua script POSTs the cursor of a full sync
   with the bearer token), next to a bare Litestar endpoint returning ``{}`` served by uvicorn
   with the same options; the DESIGN target is more than half the bare endpoint.
3. ``--devices`` pupils' devices making their first sync with the reference client
   (``clients.python.ReppuClient``) over HTTP, ``--concurrency`` at a time; the logins (an
   argon2 verification each) are timed apart from the syncs.
4. Where a "nothing new" pull spends its time: the SQL statements and connections it costs
   (counted in this process, the app served in-process over ASGI) and a py-spy profile of
   one worker under wrk load (skipped with a message when py-spy is not installed).

The machine may be shared: before each measurement the run waits (``--quiet-wait``) for the
CPUs to be mostly idle, and it reports how the CPU was split during each wrk run between the
server, PostgreSQL, wrk and everything else. ``wrk`` comes from the system
(``apt-get install -y wrk``), ``py-spy`` from ``.venv/bin/pip install py-spy``; without them
those parts are skipped with a message.

Every process started runs in its own process group and is stopped, and every database and
temporary folder is removed, also on an error, Ctrl-C or SIGTERM. Only loopback traffic. The
figures are appended to ``docs/benchmarks.md`` as a dated entry of its "Sync" section
(``--no-record`` skips that; ``--keep-logs DIR`` keeps the server logs and profiles).

Run: ``.venv/bin/python scripts/bench_sync.py [--pupils 20000] [--backends sqlite,postgres]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import asyncpg
import httpx
import msgspec
from bench_record import describe_commit, describe_machine
from benchlib import (  # shared scaffolding; re-exported for bench_storm and bench_rollcall
    BenchError,
    Cleanup,
    drop_database,
    free_port,
    record_entry,
    run_to_end,
    say,
    tool_version,
    wait_until_up,
    worker_pids,
)
from litestar import Litestar, post

from clients.python import ReppuClient
from schemas.sync import SCHEMA_VERSION, PullResponse
from server.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BENCHMARKS = ROOT / "docs" / "benchmarks.md"
SECTION = "## Sync"
SECTION_INTRO = """\
`scripts/bench_sync.py` loads a demo city into a fresh SQLite file and a fresh PostgreSQL
database, serves each with `reppu serve --workers 2` (uvicorn) and measures the sync protocol
over loopback HTTP: bytes on the wire of a first sync and of a "nothing new" pull (JSON and
MessagePack; uncompressed, gzip, brotli), "nothing new" pulls per second under `wrk` next to a
bare Litestar endpoint served the same way, a thousand pupils' devices making their first sync
with the reference client, and where a "nothing new" pull spends its time. Requirements
(DESIGN.md): a first sync of a few kilobytes compressed in one or two round trips; "nothing
new" in a few dozen bytes, at more than half the bare endpoint's rate. Each run appends an
entry below.
"""
DEFAULT_ADMIN_URL = os.environ.get(
    "REPPU_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
DEMO_PASSWORD = "reppu-demo"  # noqa: S105 - the documented password of every demo account
WIRE_ACCOUNTS = ("demo-pupil", "demo-guardian")
FORMATS = {"JSON": "application/json", "MessagePack": "application/x-msgpack"}
ENCODINGS = ("identity", "gzip", "br")
MAX_PAGES = 50
LOGIN_ATTEMPTS = 3
ADDRESS_LIMIT = 100_000
QUIET_BUSY = 0.2
"""Below this CPU busy share (all cores) the machine counts as quiet enough to measure."""
BARE_APP = '''\
"""A bare Litestar endpoint: the ceiling a "nothing new" pull is measured against."""

from litestar import Litestar, post


@post("/sync/pull", status_code=200)
async def pull() -> dict[str, str]:
    return {}


app = Litestar(route_handlers=[pull])
'''

_decode_json = msgspec.json.Decoder(PullResponse)
_decode_msgpack = msgspec.msgpack.Decoder(PullResponse)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- 1. bytes on the wire ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WireRow:
    account: str
    fmt: str
    encoding: str
    first_bytes: int
    first_coding: str
    pages: int
    changes: int
    nothing_bytes: int
    nothing_coding: str
    nothing_header_bytes: int
    nothing_request_bytes: int

    def key(self) -> tuple[Any, ...]:
        return (self.account, self.fmt, self.encoding)

    def figures(self) -> tuple[Any, ...]:
        return (self.first_bytes, self.pages, self.changes, self.nothing_bytes)


@dataclass(frozen=True, slots=True)
class Exchange:
    answer: PullResponse
    body_bytes: int
    coding: str
    header_bytes: int
    request_bytes: int


async def pull_once(
    http: httpx.AsyncClient, token: str, fmt: str, encoding: str, cursor: str | None
) -> Exchange:
    """One pull; the body counted as it came off the socket (compressed, if it was)."""
    body: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
    if cursor:
        body["cursor"] = cursor
    media = FORMATS[fmt]
    content = msgspec.json.encode(body) if fmt == "JSON" else msgspec.msgpack.encode(body)
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": media,
        "Accept": media,
        "Accept-Encoding": encoding,
    }
    async with http.stream("POST", "/sync/pull", content=content, headers=headers) as response:
        # httpx undoes the Content-Encoding; num_bytes_downloaded counts the bytes as sent.
        data = b"".join([chunk async for chunk in response.aiter_bytes()])
        body_bytes = response.num_bytes_downloaded
    if response.status_code != 200:
        raise BenchError(f"pull answered {response.status_code}: {data[:200]!r}")
    coding = response.headers.get("content-encoding", "identity")
    answer = _decode_json.decode(data) if fmt == "JSON" else _decode_msgpack.decode(data)
    # Status line, headers and the blank line, as HTTP/1.1 sent them.
    header_bytes = len(f"HTTP/1.1 {response.status_code} {response.reason_phrase}\r\n") + 2
    header_bytes += sum(len(name) + len(value) + 4 for name, value in response.headers.raw)
    return Exchange(answer, body_bytes, coding, header_bytes, len(content))


async def login(http: httpx.AsyncClient, username: str, device: str) -> str:
    answer = await http.post(
        "/auth/login",
        json={"username": username, "password": DEMO_PASSWORD, "device_name": device},
    )
    if answer.status_code != 200:
        raise BenchError(f"login of {username} answered {answer.status_code}: {answer.text}")
    return str(answer.json()["token"])


async def measure_wire(base_url: str) -> tuple[list[WireRow], dict[str, tuple[str, str]]]:
    """The wire table, and per account the token and cursor after a full JSON sync."""
    rows: list[WireRow] = []
    synced: dict[str, tuple[str, str]] = {}
    async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as http:
        for account in WIRE_ACCOUNTS:
            token = await login(http, account, "bench-wire")
            for fmt in FORMATS:
                for encoding in ENCODINGS:
                    cursor: str | None = None
                    total = pages = changes = 0
                    first_coding = ""
                    for _ in range(MAX_PAGES):
                        ex = await pull_once(http, token, fmt, encoding, cursor)
                        pages += 1
                        total += ex.body_bytes
                        changes += len(ex.answer.changes)
                        first_coding = first_coding or ex.coding
                        cursor = ex.answer.cursor or cursor
                        if not ex.answer.has_more:
                            break
                    else:
                        raise BenchError(f"first sync of {account} took over {MAX_PAGES} pages")
                    if cursor is None:
                        raise BenchError(f"first sync of {account} returned no cursor")
                    nothing = await pull_once(http, token, fmt, encoding, cursor)
                    if nothing.answer != PullResponse():
                        raise BenchError(f"a pull after a full sync of {account} was not empty")
                    rows.append(
                        WireRow(
                            account,
                            fmt,
                            encoding,
                            total,
                            first_coding,
                            pages,
                            changes,
                            nothing.body_bytes,
                            nothing.coding,
                            nothing.header_bytes,
                            nothing.request_bytes,
                        )
                    )
                    synced[account] = (token, cursor)
            say(f"  wire: {account} measured in 2 formats x 3 encodings")
    return rows, synced


# -- 2. "nothing new" pulls per second under wrk ----------------------------------------------


@dataclass(frozen=True, slots=True)
class WrkResult:
    label: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    bad: int
    """Non-2xx answers plus socket errors."""
    busy_before: float = 0.0
    """Share of the machine's CPU busy in the second before the warm-up (servers idle)."""
    server_share: float = 0.0
    """Shares of the machine's CPU during the measured run: the server's processes, the
    PostgreSQL backends serving its database (None: not on PostgreSQL), wrk, and everything
    else (other people's work, the kernel's)."""
    database_share: float | None = None
    wrk_share: float = 0.0
    other_share: float = 0.0


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _latency_ms(text: str, percentile: str) -> float:
    match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if match is None:
        raise BenchError(f"no {percentile}% latency in wrk's output:\n{text}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(label: str, text: str) -> WrkResult:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in", text)
    if rps is None or total is None:
        raise BenchError(f"wrk's output could not be read:\n{text}")
    bad = 0
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if non2xx:
        bad += int(non2xx.group(1))
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    if errors:
        bad += sum(int(g) for g in errors.groups())
    return WrkResult(
        label,
        float(rps.group(1)),
        _latency_ms(text, "50"),
        _latency_ms(text, "99"),
        int(total.group(1)),
        bad,
    )


def write_lua(folder: Path, token: str, cursor: str) -> Path:
    script = folder / "nothing_new.lua"
    body = msgspec.json.encode({"schema_version": SCHEMA_VERSION, "cursor": cursor}).decode()
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = [[{body}]]\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
    )
    return script


def run_wrk(
    cleanup: Cleanup, args: argparse.Namespace, url: str, script: Path, seconds: float
) -> str:
    cmd = [
        "wrk",
        f"-t{args.wrk_threads}",
        f"-c{args.connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    proc = subprocess.Popen(  # noqa: S603 - wrk, found on PATH
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    cleanup.processes.append(proc)
    try:
        out, _ = proc.communicate(timeout=seconds + 30)
    except subprocess.TimeoutExpired as exc:
        raise BenchError("wrk did not finish in time") from exc
    finally:
        cleanup.stop(proc)
    return out.decode(errors="replace")


def _cpu_times() -> tuple[int, int]:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields), fields[3] + fields[4]  # total, idle + iowait


def cpu_busy_share(seconds: float) -> float:
    """How busy the machine's CPUs are over ``seconds``: other people's work, when ours idles."""
    try:
        total0, idle0 = _cpu_times()
        time.sleep(seconds)
        total1, idle1 = _cpu_times()
    except (OSError, ValueError, IndexError):
        return float("nan")
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def wait_for_quiet(args: argparse.Namespace) -> float:
    """Wait, at most ``--quiet-wait`` seconds, until the machine's CPUs are mostly idle (our
    servers idle too); returns the busy share last seen."""
    deadline = time.monotonic() + args.quiet_wait
    busy = cpu_busy_share(1.0)
    while busy > QUIET_BUSY and time.monotonic() < deadline:
        say(f"  the machine is {busy:.0%} busy with other work: waiting for it to calm down")
        time.sleep(4.0)
        busy = cpu_busy_share(1.0)
    return busy


def _processes() -> dict[int, tuple[int, float, bytes]]:
    """Every process: its parent, the CPU seconds it has used, its command line."""
    table: dict[int, tuple[int, float, bytes]] = {}
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


def _below(table: dict[int, tuple[int, float, bytes]], pid: int, root: int) -> bool:
    for _ in range(64):  # bounded: a process tree is not that deep
        if pid == root:
            return True
        if pid <= 1 or pid not in table:
            return False
        pid = table[pid][0]
    return False


def _cpu_by_group(root: int, database: str | None) -> tuple[dict[int, float], dict[int, float]]:
    """CPU seconds so far of the processes below ``root``, and of the PostgreSQL backends
    serving ``database`` (their process title names it)."""
    table = _processes()
    server = {pid: cpu for pid, (_, cpu, _) in table.items() if _below(table, pid, root)}
    title = f" {database} ".encode() if database else None
    backends = {
        pid: cpu
        for pid, (_, cpu, cmdline) in table.items()
        if title and cmdline.startswith(b"postgres: ") and title in cmdline
    }
    return server, backends


def _used(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def _machine_busy_seconds() -> float:
    total, idle = _cpu_times()
    return (total - idle) / CLOCK_TICKS


def load_with_wrk(
    cleanup: Cleanup,
    args: argparse.Namespace,
    label: str,
    url: str,
    script: Path,
    server_pid: int,
    database: str | None = None,
) -> WrkResult:
    busy = wait_for_quiet(args)
    say(f"  wrk: {args.warmup:.0f} s warm-up, then {args.duration:.0f} s against {label}")
    run_wrk(cleanup, args, url, script, args.warmup)
    machine0 = _machine_busy_seconds()
    server0, db0 = _cpu_by_group(server_pid, database)
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    out = run_wrk(cleanup, args, url, script, args.duration)
    elapsed = time.monotonic() - started
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    machine = _machine_busy_seconds() - machine0
    server1, db1 = _cpu_by_group(server_pid, database)
    server, db = _used(server0, server1), _used(db0, db1)
    # wrk has exited and been waited for, so its CPU time is among our children's.
    load = children1.ru_utime + children1.ru_stime - children0.ru_utime - children0.ru_stime
    cores = os.cpu_count() or 1
    result = dataclasses.replace(
        parse_wrk(label, out),
        busy_before=busy,
        server_share=server / (elapsed * cores),
        database_share=db / (elapsed * cores) if database else None,
        wrk_share=load / (elapsed * cores),
        other_share=max(0.0, machine - server - db - load) / (elapsed * cores),
    )
    say(
        f"  wrk: {label}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.1f} ms, "
        f"p99 {result.p99_ms:.1f} ms, {result.bad} bad answers; CPU: server "
        f"{result.server_share:.0%}, PostgreSQL {_share(result.database_share)}, "
        f"wrk {result.wrk_share:.0%}, other {result.other_share:.0%}"
    )
    return result


def serve_bare(
    cleanup: Cleanup, folder: Path, args: argparse.Namespace, *, access_log: bool
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """The bare app under uvicorn with ``reppu serve``'s options (workers, no proxy headers,
    log level info, which keeps uvicorn's access log on unless ``access_log`` is False)."""
    (folder / "bare_litestar.py").write_text(BARE_APP)
    port = free_port()
    log = folder / f"bare-{port}.log"
    cmd = [
        str(BIN / "uvicorn"),
        "bare_litestar:app",
        "--app-dir",
        str(folder),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(args.workers),
        "--no-proxy-headers",
        "--log-level",
        "info",
    ]
    if not access_log:
        cmd.append("--no-access-log")
    proc = cleanup.start(cmd, env=dict(os.environ), log=log)
    return proc, f"http://127.0.0.1:{port}", log


async def measure_bare(
    cleanup: Cleanup, folder: Path, args: argparse.Namespace, script: Path, *, access_log: bool
) -> WrkResult:
    proc, base, log = serve_bare(cleanup, folder, args, access_log=access_log)
    try:
        await wait_until_up(proc, base + "/schema", log)
        label = "bare Litestar" + ("" if access_log else ", no access log")
        return load_with_wrk(cleanup, args, label, base + "/sync/pull", script, proc.pid)
    finally:
        cleanup.stop(proc)


# -- 3. a thousand devices' first sync --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceRun:
    devices: int
    concurrency: int
    login_seconds: float
    login_ms: list[float]
    login_failures: int
    """Devices that could not log in within ``LOGIN_ATTEMPTS`` attempts."""
    login_refused: int
    """Login attempts that failed (each one retried, up to ``LOGIN_ATTEMPTS``)."""
    sync_seconds: float
    sync_ms: list[float]
    sync_failures: int
    pages: int
    changes: int
    first_error: str


def _pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def _pupil_person_ids(database_url: str, sqlite_path: Path | None) -> list[int]:
    """Pupils (membership role 'pupil') whose account is the demo's ``u<person id>``."""
    query = (
        "SELECT DISTINCT m.person FROM membership m JOIN account a ON a.person = m.person "
        "WHERE m.role = 'pupil' AND a.username = 'u' || CAST(m.person AS TEXT) ORDER BY m.person"
    )
    if sqlite_path is not None:
        with contextlib.closing(sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)) as db:
            return [int(row[0]) for row in db.execute(query)]
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        return [int(row[0]) for row in await conn.fetch(query)]
    finally:
        await conn.close()


async def _ticker(label: str, done: Callable[[], int], total: int) -> None:
    while True:
        await asyncio.sleep(3.0)
        say(f"  {label}: {done():,}/{total:,}")


async def run_devices(base_url: str, person_ids: list[int], args: argparse.Namespace) -> DeviceRun:
    """Log in ``len(person_ids)`` devices, then make each one's first sync; timed apart."""
    n = len(person_ids)
    limits = httpx.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency
    )
    gate = asyncio.Semaphore(args.concurrency)
    tokens: dict[int, str] = {}
    login_ms: list[float] = []
    sync_ms: list[float] = []
    errors: list[str] = []
    pages = changes = refused = 0

    async def log_in(http: httpx.AsyncClient, person: int) -> None:
        # Like an app: a failed login is tried again after a second, at most LOGIN_ATTEMPTS
        # times; the time is the device's, retries included.
        nonlocal refused
        async with gate:
            t0 = time.perf_counter()
            for attempt in range(LOGIN_ATTEMPTS):
                try:
                    tokens[person] = await login(http, f"u{person}", f"bench-device-{person}")
                except (BenchError, httpx.HTTPError) as exc:
                    refused += 1
                    errors.append(f"login u{person}: {exc!r}"[:300])
                    if attempt + 1 < LOGIN_ATTEMPTS:
                        await asyncio.sleep(1.0)
                    continue
                login_ms.append((time.perf_counter() - t0) * 1000)
                return

    async def first_sync(http: httpx.AsyncClient, token: str) -> None:
        nonlocal pages, changes
        async with gate:
            client = ReppuClient(http, token)
            t0 = time.perf_counter()
            try:
                report = await client.sync(max_pages=MAX_PAGES)
            except Exception as exc:  # counted and shown, the others go on
                errors.append(f"sync: {exc!r}"[:300])
                return
            finally:
                client.store.db.close()
            sync_ms.append((time.perf_counter() - t0) * 1000)
            pages += report.pages
            changes += report.changes

    async def phase(label: str, jobs: list[Awaitable[None]], done: Callable[[], int]) -> float:
        ticker = asyncio.create_task(_ticker(label, done, len(jobs)))
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(args.phase_timeout):
                await asyncio.gather(*jobs)
        except TimeoutError as exc:
            raise BenchError(f"{label} did not finish within {args.phase_timeout:.0f} s") from exc
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        return time.perf_counter() - t0

    async with httpx.AsyncClient(base_url=base_url, timeout=60.0, limits=limits) as http:
        say(f"  devices: {n:,} logins, {args.concurrency} at a time")
        login_seconds = await phase(
            "logins", [log_in(http, p) for p in person_ids], lambda: len(tokens)
        )
        login_failures = n - len(tokens)
        say(f"  devices: {len(tokens):,} first syncs, {args.concurrency} at a time")
        sync_seconds = await phase(
            "first syncs", [first_sync(http, t) for t in tokens.values()], lambda: len(sync_ms)
        )
    return DeviceRun(
        n,
        args.concurrency,
        login_seconds,
        login_ms,
        login_failures,
        refused,
        sync_seconds,
        sync_ms,
        len(tokens) - len(sync_ms),
        pages,
        changes,
        errors[0] if errors else "",
    )


# -- 4. where a "nothing new" pull spends its time --------------------------------------------


@dataclass
class StatementCounter:
    statements: Counter[str] = field(default_factory=Counter)
    connections: int = 0

    def note(self, sql: str) -> None:
        words = " ".join(str(sql).split())
        self.statements[_statement_kind(words)] += 1


def _statement_kind(sql: str) -> str:
    table = re.search(r'\bFROM\s+"?(\w+)"?', sql, re.IGNORECASE)
    if sql.upper().startswith("SELECT") and table:
        return f"SELECT {table.group(1)}"
    if "pg_advisory_unlock_all" in sql:
        return "asyncpg pool reset on release"
    return " ".join(sql.split()[:4])[:40].rstrip(";")


@contextlib.contextmanager
def counting_statements(counter: StatementCounter) -> Iterator[None]:
    """Count every statement aiosqlite or asyncpg is asked to run in this process, and every
    aiosqlite connection opened, by wrapping the drivers' methods (undone on exit)."""
    import aiosqlite

    undo: list[Callable[[], None]] = []

    def wrap(owner: Any, name: str) -> None:
        original = getattr(owner, name)

        def wrapper(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            counter.note(query)
            return original(self, query, *args, **kwargs)

        setattr(owner, name, wrapper)
        undo.append(lambda: setattr(owner, name, original))

    for name in ("execute", "executemany", "execute_fetchall"):
        wrap(aiosqlite.Connection, name)
    for name in ("execute", "executemany", "fetch", "fetchrow", "fetchval"):
        wrap(asyncpg.connection.Connection, name)
    connect = aiosqlite.connect

    def counting_connect(*args: Any, **kwargs: Any) -> Any:
        counter.connections += 1
        return connect(*args, **kwargs)

    aiosqlite.connect = counting_connect
    undo.append(lambda: setattr(aiosqlite, "connect", connect))
    try:
        yield
    finally:
        for step in reversed(undo):
            step()


@dataclass(frozen=True, slots=True)
class QueryCount:
    pulls: int
    statements: Counter[str]
    connections: int
    reppu_us: float
    bare_us: float

    @property
    def per_pull(self) -> float:
        return sum(self.statements.values()) / self.pulls


def _bare_app() -> Litestar:
    @post("/sync/pull", status_code=200)
    async def bare_pull() -> dict[str, str]:
        return {}

    return Litestar(route_handlers=[bare_pull])


async def _time_pulls(
    http: httpx.AsyncClient, body: bytes, headers: dict[str, str], n: int
) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        answer = await http.post("/sync/pull", content=body, headers=headers)
        if answer.status_code != 200 or answer.content != b"{}":
            raise BenchError(f"in-process pull answered {answer.status_code}: {answer.text[:200]}")
    return (time.perf_counter() - t0) / n * 1e6


async def count_queries(env: dict[str, str], token: str, cursor: str, pulls: int) -> QueryCount:
    """The app served in this process (ASGI, no HTTP server): statements and connections per
    "nothing new" pull, and the time of one pull next to the bare app's, sequentially."""
    from server.app import create_app
    from server.db.engine import open_database

    settings = load_settings(env)
    body = msgspec.json.encode({"schema_version": SCHEMA_VERSION, "cursor": cursor})
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    counter = StatementCounter()
    async with open_database(settings) as engine:
        app = create_app(settings, engine=engine)
        transport = httpx.ASGITransport(app=cast(Any, app))
        async with httpx.AsyncClient(transport=transport, base_url="http://reppu") as http:
            await _time_pulls(http, body, headers, 10)  # warm-up
            with counting_statements(counter):
                await _time_pulls(http, body, headers, 20)
            reppu_us = await _time_pulls(http, body, headers, pulls)
    transport = httpx.ASGITransport(app=cast(Any, _bare_app()))
    async with httpx.AsyncClient(transport=transport, base_url="http://bare") as http:
        await _time_pulls(http, body, headers, 10)
        bare_us = await _time_pulls(http, body, headers, pulls)
    return QueryCount(20, counter.statements, counter.connections, reppu_us, bare_us)


# Where a sample of the event-loop thread belongs: the innermost Reppu step on its stack, else
# the layer of the framework or server it is in.
PROFILE_STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("token lookup (authenticate)", ("authenticate (server/identity.py",)),
    ("access facts, 4 queries (load_access_facts)", ("(server/access.py",)),
    (
        "partition heads in a read transaction",
        ("read_snapshot (server/db/engine.py", "(server/sync_store.py", "pull (sync/pull.py"),
    ),
    ("cursor check (decode/encode_cursor)", ("(sync/cursor.py",)),
    ("policy (readable_partitions)", ("(sync/policy.py",)),
    ("body decode, answer encode (server/wire.py)", ("(server/wire.py",)),
    ("rest of the pull route", ("(server/routes/sync.py",)),
)
PROFILE_LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("logging (uvicorn's access log)", ("(logging/",)),
    ("Litestar (middleware, routing, DI, response)", ("(litestar/",)),
    ("uvicorn + httptools (HTTP)", ("(uvicorn/",)),
)


@dataclass(frozen=True, slots=True)
class Profile:
    seconds: float
    rate: int
    samples: int
    """Samples of the event-loop thread (py-spy leaves out idle ones)."""
    shares: dict[str, float]
    in_db_layer: float
    """Share of samples inside Piccolo or the database driver, whichever step they serve."""
    thread_start: float
    """Share of samples starting a thread (aiosqlite starts one per connection)."""
    top: list[tuple[str, float]]


def analyse_profile(raw: str, seconds: float, rate: int) -> Profile:
    steps: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = db = threads = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = stack.split(";")
        if "MainThread" not in frames[0]:
            continue
        count = int(count_text)
        total += count
        leaf = frames[-1] if len(frames) > 1 else "(no Python frame: native code)"
        leaves[re.sub(r":\d+\)$", ")", leaf)] += count
        if any("(piccolo/" in f or "(aiosqlite/" in f or "(asyncpg/" in f for f in frames):
            db += count
        if any(f.startswith("Thread.start ") for f in frames):
            threads += count
        steps[_profile_step(frames)] += count
    if total == 0:
        raise BenchError("py-spy recorded no samples of the event-loop thread")
    return Profile(
        seconds,
        rate,
        total,
        {name: n / total for name, n in steps.most_common()},
        db / total,
        threads / total,
        [(name, n / total) for name, n in leaves.most_common(8)],
    )


def _profile_step(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, patterns in PROFILE_STEPS:
            if any(p in frame for p in patterns):
                return name
    for name, patterns in PROFILE_LAYERS:
        if any(p in f for f in frames for p in patterns):
            return name
    return "event loop (uvloop) and the rest"


async def profile_worker(
    cleanup: Cleanup,
    args: argparse.Namespace,
    folder: Path,
    serve: subprocess.Popen[bytes],
    url: str,
    script: Path,
) -> Profile | str:
    """py-spy on one worker while wrk loads the server; a reason string when it cannot run."""
    py_spy = shutil.which("py-spy") or (str(BIN / "py-spy") if (BIN / "py-spy").exists() else None)
    if py_spy is None:
        return "py-spy not installed (`.venv/bin/pip install py-spy`): profile skipped"
    workers = worker_pids(serve.pid)
    if not workers:
        return "no worker process found under the server: profile skipped"
    out = folder / f"profile-{workers[0]}.txt"
    seconds = args.profile_seconds
    cmd = [
        py_spy,
        "record",
        "--pid",
        str(workers[0]),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        "100",
        "--format",
        "raw",
        "--threads",
        "--nonblocking",
        "--output",
        str(out),
    ]
    say(f"  py-spy: {seconds:.0f} s on worker {workers[0]} under wrk load")
    recorder = cleanup.start(cmd, env=dict(os.environ), log=folder / "py-spy.log")
    try:
        run_wrk(cleanup, args, url, script, seconds + 2)
        try:
            recorder.wait(30)
        except subprocess.TimeoutExpired:
            return "py-spy did not finish: profile skipped"
    finally:
        cleanup.stop(recorder)
    if recorder.returncode != 0 or not out.exists():
        tail = (folder / "py-spy.log").read_text(errors="replace")[-300:]
        return f"py-spy failed ({recorder.returncode}): {tail.strip()}"
    return analyse_profile(out.read_text(errors="replace"), seconds, 100)


# -- one backend ------------------------------------------------------------------------------


@dataclass
class BackendRun:
    backend: str
    version: str
    wire: list[WireRow] = field(default_factory=list)
    reppu_wrk: WrkResult | None = None
    bare_wrk: WrkResult | None = None
    devices: DeviceRun | None = None
    queries: QueryCount | None = None
    profile: Profile | str | None = None
    busy_before_devices: float = float("nan")
    statuses: Counter[str] = field(default_factory=Counter)
    exceptions: Counter[str] = field(default_factory=Counter)
    error_lines: int = 0


def scan_log(log: Path, run: BackendRun) -> None:
    """Status codes of the access log, and the exceptions of the tracebacks logged."""
    for line in log.read_text(errors="replace").splitlines():
        status = re.search(r'HTTP/1\.1" (\d{3})', line)
        if status:
            run.statuses[status.group(1)] += 1
        elif re.match(r"^[\w.]+(Error|Exception|Exit|Interrupt)\b", line):
            run.exceptions[line.strip()[:200]] += 1
        elif re.search(r"\b(ERROR|CRITICAL)\b", line):
            run.error_lines += 1


async def prepare_database(
    cleanup: Cleanup, backend: str, folder: Path, args: argparse.Namespace
) -> tuple[dict[str, str], str, Path | None]:
    """A fresh database with the demo city: the environment for ``reppu``, the version, and
    the SQLite file (None on PostgreSQL)."""
    env = dict(os.environ, REPPU_DATA_DIR=str(folder), PYTHONUNBUFFERED="1")
    # Every device of the benchmark logs in from 127.0.0.1; a city's phones come from many
    # addresses. Lift the per-address limit so that it does not stand in for the server.
    env["REPPU_LOGIN_FAILURES_PER_ADDRESS"] = str(ADDRESS_LIMIT)
    if backend == "sqlite":
        path = folder / "reppu.sqlite3"
        env["REPPU_DATABASE_URL"] = f"sqlite:///{path}"
        version = f"SQLite {sqlite3.sqlite_version}"
    else:
        path = None
        name = f"reppu_bench_sync_{secrets.token_hex(4)}"
        admin = await asyncpg.connect(args.postgres_admin_url, timeout=10)
        try:
            version = "PostgreSQL " + str(await admin.fetchval("SHOW server_version")).split()[0]
            cleanup.databases.append((args.postgres_admin_url, name))
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        env["REPPU_DATABASE_URL"] = args.postgres_admin_url.rsplit("/", 1)[0] + "/" + name
    reppu = str(BIN / "reppu")
    say(f"{version}: reppu migrate")
    await asyncio.to_thread(run_to_end, cleanup, [reppu, "migrate"], env, 300)
    say(f"{version}: reppu demo --pupils {args.pupils} --seed {args.seed}")
    cmd = [reppu, "demo", "--pupils", str(args.pupils), "--seed", str(args.seed)]
    await asyncio.to_thread(run_to_end, cleanup, cmd, env, args.demo_timeout)
    return env, version, path


async def run_backend(cleanup: Cleanup, backend: str, args: argparse.Namespace) -> BackendRun:
    folder = Path(tempfile.mkdtemp(prefix=f"reppu-bench-sync-{backend}-"))
    cleanup.folders.append(folder)
    databases_before = list(cleanup.databases)
    try:
        env, version, sqlite_path = await prepare_database(cleanup, backend, folder, args)
        run = BackendRun(backend, version)
        port = free_port()
        log = folder / "serve.log"
        reppu = str(BIN / "reppu")
        serve_cmd = [reppu, "serve", "--host", "127.0.0.1", "--port", str(port)]
        serve_cmd += ["--workers", str(args.workers)]
        say(f"{version}: reppu serve --workers {args.workers} on port {port}")
        serve = cleanup.start(serve_cmd, env=env, log=log)
        base = f"http://127.0.0.1:{port}"
        try:
            await wait_until_up(serve, base + "/health", log)
            say(f"{version}: 1. bytes on the wire")
            run.wire, synced = await measure_wire(base)
            token, cursor = synced["demo-pupil"]
            script = write_lua(folder, token, cursor)
            if args.wrk:
                say(f"{version}: 2. 'nothing new' pulls per second")
                run.reppu_wrk = load_with_wrk(
                    cleanup,
                    args,
                    f"Reppu ({version})",
                    base + "/sync/pull",
                    script,
                    serve.pid,
                    None if sqlite_path else env["REPPU_DATABASE_URL"].rsplit("/", 1)[1],
                )
                say(f"{version}: 4. profile of one worker")
                run.profile = await profile_worker(
                    cleanup, args, folder, serve, base + "/sync/pull", script
                )
            else:
                run.profile = "wrk not installed: profile under load skipped"
            say(f"{version}: 4. statements per 'nothing new' pull (in-process)")
            wait_for_quiet(args)
            run.queries = await count_queries(env, token, cursor, args.inprocess_pulls)
            say(
                f"  {run.queries.per_pull:.0f} statements and "
                f"{run.queries.connections / run.queries.pulls:.0f} new connections per pull; "
                f"{run.queries.reppu_us:,.0f} us in-process (bare: {run.queries.bare_us:,.0f} us)"
            )
            if args.devices:
                say(f"{version}: 3. {args.devices:,} devices' first sync")
                pupils = await _pupil_person_ids(env["REPPU_DATABASE_URL"], sqlite_path)
                step = max(1, len(pupils) // args.devices)
                chosen = pupils[::step][: args.devices]
                run.busy_before_devices = wait_for_quiet(args)
                run.devices = await run_devices(base, chosen, args)
                d = run.devices
                say(
                    f"  logins {d.login_seconds:.1f} s, first syncs {d.sync_seconds:.1f} s, "
                    f"{d.login_failures + d.sync_failures} failures"
                )
        finally:
            cleanup.stop(serve)
            scan_log(log, run)
        if args.wrk:
            run.bare_wrk = await measure_bare(cleanup, folder, args, script, access_log=True)
        return run
    finally:
        for admin_url, name in [d for d in cleanup.databases if d not in databases_before]:
            say(f"dropping database {name}")
            await drop_database(admin_url, name)
            cleanup.databases.remove((admin_url, name))
        if args.keep_logs:
            keep = args.keep_logs / backend
            keep.mkdir(parents=True, exist_ok=True)
            for item in folder.glob("*"):
                if item.suffix in (".log", ".txt", ".lua"):
                    shutil.copy(item, keep / item.name)
        cleanup.remove_folder(folder)


# -- the entry --------------------------------------------------------------------------------


def _kib(n: int) -> str:
    return f"{n:,} B" if n < 10_000 else f"{n / 1024:,.1f} KiB"


def _wire_table(runs: list[BackendRun]) -> list[str]:
    with_wire = [r for r in runs if r.wire]
    if not with_wire:
        return []
    by_key: dict[tuple[Any, ...], list[WireRow]] = {}
    for run in with_wire:
        for w in run.wire:
            by_key.setdefault(w.key(), []).append(w)

    def cell(values: list[str]) -> str:
        return values[0] if len(set(values)) == 1 else " / ".join(values)

    versions = [r.version for r in with_wire]
    lines = [
        "Response bodies as they came off the socket (compressed where `Content-Encoding` "
        "says so), summed over the pages of a first sync (page limit 500); the server "
        "compresses answers over 512 bytes only. A cell with two figures is "
        + " / ".join(versions)
        + ".",
        "",
        "| account | format | Accept-Encoding | "
        + " | ".join(f"first sync ({v.split()[0]})" for v in versions)
        + ' | round trips | changes | "nothing new" |',
        "| --- | --- | --- |" + " ---: |" * (len(versions) + 3),
    ]
    for (account, fmt, encoding), rows in by_key.items():
        firsts = [
            _kib(w.first_bytes)
            + (f" ({w.first_coding})" if w.first_coding not in ("identity", "") else "")
            for w in rows
        ]
        lines.append(
            f"| {account} | {fmt} | {encoding} | "
            + " | ".join(firsts)
            + f" | {cell([str(w.pages) for w in rows])} | {cell([str(w.changes) for w in rows])}"
            f" | {cell([f'{w.nothing_bytes} B' for w in rows])} |"
        )
    sample = with_wire[0].wire
    json_row = next(w for w in sample if w.fmt == "JSON")
    mp_row = next(w for w in sample if w.fmt == "MessagePack")
    lines += [
        "",
        f'A "nothing new" answer also carries {json_row.nothing_header_bytes} bytes of status '
        f"line and headers (JSON; {mp_row.nothing_header_bytes} for MessagePack), and its "
        f"request body (the cursor) is {json_row.nothing_request_bytes} bytes in JSON, "
        f"{mp_row.nothing_request_bytes} in MessagePack, plus the bearer token header.",
    ]
    return lines


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _wrk_row(result: WrkResult, ratio: str) -> str:
    return (
        f"| {result.label} | {result.rps:,.0f} | {result.p50_ms:.2f} ms | "
        f"{result.p99_ms:.2f} ms | {result.requests:,} | {result.bad:,} | "
        f"{result.server_share:.0%} / {_share(result.database_share)} / "
        f"{result.wrk_share:.0%} / {result.other_share:.0%} | {ratio} |"
    )


def _wrk_table(
    runs: list[BackendRun], bare_no_log: WrkResult | None, args: argparse.Namespace
) -> list[str]:
    if not any(r.reppu_wrk for r in runs):
        return ["wrk was not installed: no requests per second measured."]
    lines = [
        f"`wrk -t{args.wrk_threads} -c{args.connections} -d{args.duration:.0f}s --latency` after "
        f"a {args.warmup:.0f} s warm-up, POSTing demo-pupil's cursor after a full sync with "
        "the bearer token (answer `{}`); each bare run follows the Reppu run above it. wrk "
        "runs on the same 2 cores as the server's workers and takes a share of them: the CPU "
        "column splits the machine's 2 cores during the run between the server's processes, "
        "the PostgreSQL backends serving it, wrk, and everything else (other work on this "
        "shared machine, the kernel; before each run the "
        f"benchmark waits up to {args.quiet_wait:.0f} s for the machine to fall under "
        f"{QUIET_BUSY:.0%} busy).",
        "",
        "| server | req/s | p50 | p99 | requests | errors | CPU: server / PostgreSQL / wrk / "
        "other | "
        "Reppu / bare |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        if run.reppu_wrk is None:
            continue
        bare = run.bare_wrk
        lines.append(
            _wrk_row(run.reppu_wrk, f"{run.reppu_wrk.rps / bare.rps:.1%}" if bare else "-")
        )
        if bare is not None:
            lines.append(_wrk_row(bare, ""))
    if bare_no_log is not None:
        lines.append(_wrk_row(bare_no_log, ""))
    return lines


def _devices_table(runs: list[BackendRun]) -> list[str]:
    done = [r for r in runs if r.devices]
    if not done:
        return []
    d0 = done[0].devices
    assert d0 is not None
    lines = [
        f"{d0.devices:,} pupils' devices (pupils spread evenly over the city), "
        f"{d0.concurrency} at a time, each `ReppuClient` over httpx (JSON, brotli) into an "
        "in-memory store. The client runs in the benchmark's process, on the same 2 cores. "
        "Logins (one argon2id verification each) are timed apart from the syncs; a refused "
        f"login is tried again after a second, up to {LOGIN_ATTEMPTS} times. CPU busy before "
        "the logins: " + ", ".join(f"{r.version} {r.busy_before_devices:.0%}" for r in done) + ".",
        "",
        "| backend | logins | per login p50 / p99 | refused attempts | first syncs | syncs/s "
        "| per sync p50 / p99 | round trips | changes | devices failed |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in done:
        d = run.devices
        assert d is not None
        rate = len(d.sync_ms) / d.sync_seconds if d.sync_seconds else 0.0
        lines.append(
            f"| {run.version} | {d.login_seconds:.1f} s | {_pct(d.login_ms, 50):,.0f} / "
            f"{_pct(d.login_ms, 99):,.0f} ms | {d.login_refused:,} | {d.sync_seconds:.1f} s | "
            f"{rate:,.0f} | {_pct(d.sync_ms, 50):,.0f} / {_pct(d.sync_ms, 99):,.0f} ms | "
            f"{d.pages:,} | {d.changes:,} | {d.login_failures + d.sync_failures} |"
        )
    for run in done:
        if run.devices and run.devices.first_error:
            lines.append(f"\nFirst failure on {run.version}: `{run.devices.first_error}`")
    return lines


def _where_table(runs: list[BackendRun]) -> list[str]:
    lines: list[str] = []
    counted = [r for r in runs if r.queries]
    if counted:
        lines += [
            'Statements per "nothing new" pull, counted at the drivers (aiosqlite, asyncpg) '
            "with the app served in this process over ASGI, and the time of one pull there, "
            "one after another, next to the bare app served the same way. On SQLite each new "
            "connection also runs the two pragmas of `server/db/engine.py` through sqlite3 "
            "itself (not counted here).",
            "",
            "| backend | statements per pull | of which | new connections per pull | "
            "in-process pull | bare in-process |",
            "| --- | ---: | --- | ---: | ---: | ---: |",
        ]
        for run in counted:
            q = run.queries
            assert q is not None
            kinds = ", ".join(f"{n / q.pulls:g} {kind}" for kind, n in sorted(q.statements.items()))
            lines.append(
                f"| {run.version} | {q.per_pull:g} | {kinds} | {q.connections / q.pulls:g} | "
                f"{q.reppu_us:,.0f} us | {q.bare_us:,.0f} us |"
            )
    profiles = [(r.version, r.profile) for r in runs if isinstance(r.profile, Profile)]
    for version, reason in ((r.version, r.profile) for r in runs if isinstance(r.profile, str)):
        lines += ["", f"Profile on {version}: {reason}."]
    if profiles:
        names = list(
            dict.fromkeys(
                [n for n, _ in PROFILE_STEPS]
                + [n for n, _ in PROFILE_LAYERS]
                + ["event loop (uvloop) and the rest"]
            )
        )
        lines += [
            "",
            "py-spy (`record --rate 100 --nonblocking --threads`) on one worker's event-loop "
            "thread while wrk loads the server. Each sample goes to the innermost Reppu step on "
            "its stack, else to the layer it is in; a step includes the Piccolo and driver code "
            "it calls.",
            "",
            "| share of event-loop samples | " + " | ".join(v for v, _ in profiles) + " |",
            "| --- |" + " ---: |" * len(profiles),
        ]
        for name in names:
            cells = [f"{p.shares.get(name, 0.0):.0%}" for _, p in profiles]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append(
            "| *inside Piccolo or the driver, whichever step* | "
            + " | ".join(f"*{p.in_db_layer:.0%}*" for _, p in profiles)
            + " |"
        )
        lines.append(
            "| *starting a thread (aiosqlite: one per connection)* | "
            + " | ".join(f"*{p.thread_start:.0%}*" for _, p in profiles)
            + " |"
        )
        lines.append(
            "| *event-loop samples (busy share of the thread)* | "
            + " | ".join(
                f"*{p.samples:,} ({p.samples / (p.seconds * p.rate):.0%})*" for _, p in profiles
            )
            + " |"
        )
        for version, p in profiles:
            top = "; ".join(f"`{name}` {share:.0%}" for name, share in p.top[:5])
            lines.append(f"\nTop leaf frames on {version}: {top}.")
    return lines


def _logs_lines(runs: list[BackendRun]) -> list[str]:
    lines = []
    for run in runs:
        codes = ", ".join(f"{code}: {n:,}" for code, n in sorted(run.statuses.items()))
        raised = "; ".join(f"{n:,} x `{text}`" for text, n in run.exceptions.most_common(3))
        lines.append(
            f"- Server log on {run.version}: status codes {codes or 'none logged'}; "
            f"{run.error_lines:,} ERROR lines; tracebacks: {raised or 'none'}"
        )
    return lines


def make_entry(
    args: argparse.Namespace,
    runs: list[BackendRun],
    bare_no_log: WrkResult | None,
    load: tuple[float, float, float],
    wrk_version: str,
) -> str:
    backends = ",".join(args.backends)
    command = f".venv/bin/python scripts/bench_sync.py --pupils {args.pupils} --seed {args.seed}"
    if backends != "sqlite,postgres":
        command += f" --backends {backends}"
    lines = [
        f"### {dt.date.today().isoformat()}: {args.pupils:,} pupils, seed {args.seed}",
        "",
        f"- Command: `{command}`",
        f"- Commit: {describe_commit()}",
        f"- Machine: {describe_machine()}; Python {platform.python_version()}; "
        + "; ".join(r.version for r in runs)
        + f"; {wrk_version}",
        f"- Load average when the run started: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f} "
        "(the machine is shared)",
        f"- Server: `reppu serve --workers {args.workers}` (uvicorn, its access log on), "
        f"`REPPU_LOGIN_FAILURES_PER_ADDRESS={ADDRESS_LIMIT}` (every device logs in from "
        "127.0.0.1), other settings at their defaults",
        *_logs_lines(runs),
        "",
        "#### Bytes on the wire",
        "",
        *_wire_table(runs),
        "",
        '#### "Nothing new" pulls per second',
        "",
        *_wrk_table(runs, bare_no_log, args),
        "",
        "#### First sync of many devices",
        "",
        *(_devices_table(runs) or ["Not measured (`--devices 0`)."]),
        "",
        '#### Where a "nothing new" pull spends its time',
        "",
        *_where_table(runs),
    ]
    return "\n".join(lines) + "\n"


def record(entry: str) -> None:
    """Insert the entry at the end of the "Sync" section, creating the section at the end of
    the file when it is missing; the other sections are left as they are."""
    record_entry(SECTION, SECTION_INTRO, entry, BENCHMARKS)


# -- main -------------------------------------------------------------------------------------


async def _main(args: argparse.Namespace, cleanup: Cleanup) -> int:
    load = os.getloadavg()
    say(
        f"Sync benchmark: {args.pupils:,} pupils, backends {','.join(args.backends)}; "
        f"load average {load[0]:.2f}"
    )
    wrk_version = "wrk not installed"
    if args.wrk:
        if shutil.which("wrk") is None:
            say(
                "wrk is not installed: the requests-per-second part is skipped. Install it with "
                "`apt-get update && apt-get install -y wrk`."
            )
            args.wrk = False
        else:
            wrk_version = tool_version(["wrk", "-v"]).split(" [")[0]
    runs: list[BackendRun] = []
    for backend in args.backends:
        runs.append(await run_backend(cleanup, backend, args))
    bare_no_log: WrkResult | None = None
    if args.wrk and runs:
        folder = Path(tempfile.mkdtemp(prefix="reppu-bench-sync-bare-"))
        cleanup.folders.append(folder)
        try:
            say("bare Litestar without the access log, for reference")
            token, cursor = "x" * 43, "x" * 120
            script = write_lua(folder, token, cursor)
            bare_no_log = await measure_bare(cleanup, folder, args, script, access_log=False)
        finally:
            cleanup.remove_folder(folder)
    entry = make_entry(args, runs, bare_no_log, load, wrk_version)
    print()
    print(entry)
    if not args.no_record:
        record(entry)
        say(f"Recorded in {BENCHMARKS.relative_to(ROOT)}.")
    failures = sum(
        (r.devices.login_failures + r.devices.sync_failures) if r.devices else 0 for r in runs
    )
    return 1 if failures else 0


def _backends(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = set(names) - {"sqlite", "postgres"}
    if unknown or not names:
        raise argparse.ArgumentTypeError("backends: comma-separated sqlite,postgres")
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--pupils", type=int, default=20_000, help="demo city size (default 20000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backends", type=_backends, default=["sqlite", "postgres"])
    parser.add_argument("--postgres-admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--workers", type=int, default=2, help="reppu serve --workers (2)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of each wrk run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of wrk warm-up")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument("--no-wrk", dest="wrk", action="store_false", help="skip wrk and py-spy")
    parser.add_argument("--profile-seconds", type=float, default=8.0)
    parser.add_argument("--inprocess-pulls", type=int, default=300)
    parser.add_argument("--devices", type=int, default=1000, help="first syncs (0: skip)")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--phase-timeout", type=float, default=600.0, help="per device phase")
    parser.add_argument("--demo-timeout", type=float, default=900.0)
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120.0,
        help="before each measurement, wait up to this many seconds for a quiet machine",
    )
    parser.add_argument("--no-record", action="store_true", help="do not touch docs/")
    parser.add_argument("--keep-logs", type=Path, help="copy server logs and profiles here")
    args = parser.parse_args()
    if args.pupils < 500:
        parser.error("--pupils must be at least 500")
    # The app's modules log every in-process request at INFO; keep the progress readable.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    cleanup = Cleanup()

    def terminate(signum: int, _frame: object) -> None:
        say(f"signal {signum}: stopping, cleaning up what was started")
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    try:
        return asyncio.run(_main(args, cleanup))
    except BenchError as exc:
        print(f"bench_sync: {exc}", file=sys.stderr)
        return 2
    finally:
        cleanup.run()


if __name__ == "__main__":
    sys.exit(main())
