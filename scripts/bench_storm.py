"""Benchmark: a storm bulletin to every guardian's devices, on SQLite and on PostgreSQL.

DESIGN.md's hard figure: "storm bulletin: 200,000 guardians, about 300,000 devices: every push
encrypted, signed and accepted by the emulator in about a minute" on a 2-core machine.

For each backend a fresh database (a SQLite file in a temporary data folder, or a PostgreSQL
database created next to the admin database of ``--postgres-admin-url`` and dropped afterwards)
is migrated and gets a demo city (``reppu migrate``, ``reppu demo``). Then:

1. Devices: every guardian gets 1 or 2 devices (``--devices-per-guardian``, 1.5 on average,
   drawn with ``--seed``): one ``auth_token`` row and one ``push_subscription`` row each,
   bulk-inserted through ``server/db/bulk.py``. The subscriptions are those of the push-service
   emulator (``tests/push_service.py``): it is started (uvicorn, one process) with ``--seed``
   and ``--subscribe N``, and this process builds ``PushService`` with the same seed and makes
   the same ``subscribe_many(N)`` call, so both hold the same tokens and keys. Timed apart.
2. ``reppu serve`` (its in-process worker off: ``REPPU_RUN_WORKER=false``) and ``--workers``
   ``reppu worker`` processes (default 1 on SQLite, 2 on PostgreSQL; counts like ``1,2`` run one
   storm each, every one on a fresh database) are started and left idle.
   The emulator checks every push for real: VAPID signature, ``k=`` (Reppu's key), ``aud``,
   then decrypts the payload.
3. The storm: the admin of every municipality of the city (one at 2,000 pupils, seven at full
   scale) logs in, and the clock starts; each sends ``bulletin.send`` (audience its
   municipality, roles guardians, urgent) through ``POST /sync/push``. Measured: send to the
   last mutation committed, to the outbox expanded (polled), to the first and to the last push
   accepted by the emulator (its monotonic clock is the machine's), pushes accepted and
   refused, distinct devices reached. Expected: the guardians each bulletin's audience holds
   (SQL of our own, next to the fan-out's), times their devices; a guardian with children in
   two cities gets two bulletins. The CPU is split between the workers, the emulator,
   PostgreSQL, the server plus this process, and everything else.
4. Where a worker's time goes: a second, smaller bulletin (the smallest municipality) sent with
   one worker run under ``cProfile`` (slower than unprofiled; only the shares matter), and the
   sender's per-push costs measured in isolation in this process (payload, encryption, build).
5. The yardstick, once per run: ``--pywebpush-sample`` pushes to a fresh emulator by a plain
   sequential loop over ``pywebpush.webpush(...)``, as most users would write it (a fresh
   ``vapid_claims`` dict per call: pywebpush writes ``aud`` and ``exp`` into the dict it is
   given, so a dict reused across push services would carry the first one's ``aud``).
   With ``--node-webpush-sample N``, the Node ``web-push`` package sends the same bulletin's
   pushes too, one after another and many at once (``scripts/peers/node_webpush.py``).

``--mix webpush=1,fcm=1,apns=1`` makes the devices a mix of Web Push subscriptions, Android
apps registered for FCM and iPhone apps registered for APNs (here a third each; the default is
Web Push only), each native share sent to its own emulator process (``scripts/storm_native.py``
says how); the storm ends when the three emulators together accepted the pushes expected.

``--worker-script PATH`` runs a Python script in place of ``reppu worker`` (it ends by calling
``server.cli.main(["worker"])``), to measure a candidate change, say a patched class, without
touching ``server/``; the entry names the script.

Every process started runs in its own process group and is stopped, and every database and
temporary folder is removed, also on an error, Ctrl-C or SIGTERM. Only loopback traffic. The
figures are appended to ``docs/benchmarks.md`` as a dated entry of its "Storm bulletin"
section (``--no-record`` skips that; ``--quick`` never records).

Run: ``.venv/bin/python scripts/bench_storm.py [--pupils 160000] [--backend both]``
Smoke run (2,000 pupils, about 3,000 devices, well under a minute a backend):
``.venv/bin/python scripts/bench_storm.py --quick``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import os
import platform
import pstats
import random
import resource
import secrets
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from bench_record import describe_commit, describe_machine
from bench_sync import BenchError, Cleanup, run_to_end, say, wait_until_up
from benchlib import cpu_busy_share, drop_database, free_port, machine_busy_seconds
from storm_native import (
    Emulators,
    assign_channels,
    describe_mix,
    insert_native_devices,
    parse_mix,
    prepare_native,
    start_native,
)

from clients.python import ReppuClient
from notifications.payload import encode_payload
from notifications.webpush import TTL_SECONDS, URGENCY, Kind, PushBuilder, VapidSigner
from notifications.webpush import Subscription as PushTarget
from server.clock import school_today
from server.db.bulk import Rows, bulk_insert
from server.db.engine import open_database
from server.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # tests/ is not installed: the emulator is imported from here
    sys.path.insert(0, str(ROOT))
from tests.push_service import PushService, Subscription  # noqa: E402

BIN = Path(sys.executable).parent
BENCHMARKS = ROOT / "docs" / "benchmarks.md"
SECTION = "## Storm bulletin"
SECTION_INTRO = """\
`scripts/bench_storm.py` loads a demo city into a fresh SQLite file and a fresh PostgreSQL
database, gives every guardian one or two devices subscribed to the push-service emulator
(`tests/push_service.py`, one uvicorn process that checks each push's VAPID token and decrypts
its payload), starts idle `reppu worker` processes, and has each municipality's admin send an
urgent bulletin to its guardians through `POST /sync/push`: seconds from "send" to the last
push accepted. The same machine also runs a plain sequential `pywebpush.webpush()` loop
against the emulator as the yardstick most users would start from. Requirement (DESIGN.md):
200,000 guardians, about 300,000 devices, every push encrypted, signed and accepted by the
emulator in about a minute on 2 cores. Each run appends an entry below.
"""
DEFAULT_ADMIN_URL = os.environ.get(
    "REPPU_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
DEMO_PASSWORD = "reppu-demo"  # noqa: S105 - the documented password of every demo account
TITLE = "Myrskyvaroitus: koulut suljettu huomenna"
BODY = "Kaikki koulut ovat kiinni huomenna myrskyn vuoksi. Lisätiedot sovelluksessa."
VAPID_SUBJECT = "mailto:bench@reppu.invalid"
POLL_SECONDS = 0.25
PROGRESS_SECONDS = 5.0
QUIET_BUSY = 0.25
HEALTH_TIMEOUT = 60.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PG_AUX = (b"checkpointer", b"background writer", b"walwriter", b"autovacuum launcher")


# -- small helpers ----------------------------------------------------------------------------


def wait_for_quiet(limit: float) -> float:
    """Wait, at most ``limit`` seconds, for the CPUs to be mostly idle; the busy share seen."""
    deadline = time.monotonic() + limit
    busy = cpu_busy_share(1.0)
    while busy > QUIET_BUSY and time.monotonic() < deadline:
        say(f"  the machine is {busy:.0%} busy with other work: waiting for it to calm down")
        time.sleep(4.0)
        busy = cpu_busy_share(1.0)
    return busy


@dataclass(frozen=True, slots=True)
class Proc:
    ppid: int
    cpu: float
    cmdline: bytes


def process_table() -> dict[int, Proc]:
    table: dict[int, Proc] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        table[int(entry.name)] = Proc(int(fields[1]), cpu, cmdline)
    return table


def _below(table: dict[int, Proc], pid: int, roots: set[int]) -> bool:
    for _ in range(64):
        if pid in roots:
            return True
        if pid <= 1 or pid not in table:
            return False
        pid = table[pid].ppid
    return False


def _cpu_of(stat: Path) -> float:
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def thread_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds of a process's main thread, and of all its other threads together (the
    process's total less the main thread's: threads that have ended count too, such as
    aiosqlite's, one per connection)."""
    try:
        main = _cpu_of(Path(f"/proc/{pid}/task/{pid}/stat"))
        total = _cpu_of(Path(f"/proc/{pid}/stat"))
    except (OSError, IndexError, ValueError):
        return 0.0, 0.0
    return main, total - main


@dataclass(slots=True)
class CpuSnapshot:
    """CPU seconds so far by group: our processes by role, PostgreSQL, this process, all."""

    groups: dict[str, float]
    machine: float
    me: float
    threads: dict[int, tuple[float, float]]

    @staticmethod
    def take(roles: dict[str, list[int]], database: str | None) -> CpuSnapshot:
        table = process_table()
        groups: dict[str, float] = {}
        for role, pids in roles.items():
            roots = set(pids)
            groups[role] = sum(p.cpu for pid, p in table.items() if _below(table, pid, roots))
        if database is not None:
            title = f" {database} ".encode()
            groups["PostgreSQL"] = sum(
                p.cpu
                for p in table.values()
                if p.cmdline.startswith(b"postgres: ")
                and (title in p.cmdline or any(aux in p.cmdline for aux in PG_AUX))
            )
        usage = resource.getrusage(resource.RUSAGE_SELF)
        threads = {pid: thread_cpu(pid) for pid in roles.get("workers", [])}
        return CpuSnapshot(groups, machine_busy_seconds(), usage.ru_utime + usage.ru_stime, threads)


def sql_marks(sql: str, postgres: bool) -> str:
    """``{}`` placeholders as the driver wants them: ``$1, $2, ...`` or ``?``."""
    if not postgres:
        return sql.replace("{}", "?")
    parts = sql.split("{}")
    return "".join(p + (f"${i + 1}" if i < len(parts) - 1 else "") for i, p in enumerate(parts))


class Db:
    """This process's own read connection (sqlite3 read-only, or asyncpg), for counting."""

    def __init__(self, database_url: str, sqlite_path: Path | None) -> None:
        self.url = database_url
        self.sqlite_path = sqlite_path
        self._lite: sqlite3.Connection | None = None
        self._pg: asyncpg.Connection | None = None

    async def open(self) -> None:
        if self.sqlite_path is not None:
            uri = f"file:{self.sqlite_path}?mode=ro"
            self._lite = sqlite3.connect(uri, uri=True, timeout=30)
        else:
            self._pg = await asyncpg.connect(self.url, timeout=10)

    async def close(self) -> None:
        if self._lite is not None:
            self._lite.close()
        if self._pg is not None:
            await self._pg.close()

    async def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        if self._lite is not None:
            values = [a.isoformat() if isinstance(a, dt.date) else a for a in args]
            return list(self._lite.execute(sql_marks(sql, False), values).fetchall())
        assert self._pg is not None
        return [tuple(r) for r in await self._pg.fetch(sql_marks(sql, True), *args)]

    async def value(self, sql: str, *args: Any) -> Any:
        found = await self.rows(sql, *args)
        return found[0][0] if found else None


# -- the run's record -------------------------------------------------------------------------


@dataclass(slots=True)
class Profile:
    pushes: int
    seconds: float
    wall: float
    """Seconds of the profiled period (the main thread's profile total)."""
    shares: dict[str, float]
    top: list[tuple[str, float]]


@dataclass(slots=True)
class StormRun:
    backend: str
    version: str
    workers: int
    pupils: int = 0
    guardians: int = 0
    devices: int = 0
    municipalities: int = 0
    expected: int = 0
    """Pushes expected: per bulletin, the devices of its audience's guardians."""
    expected_devices: int = 0
    channels: dict[str, int] = field(default_factory=dict)
    """Devices per channel (``--mix``)."""
    accepted_by: dict[str, int] = field(default_factory=dict)
    """Pushes accepted per channel's emulator."""
    demo_seconds: float = 0.0
    devices_seconds: float = 0.0
    busy_before: float = 0.0
    committed: float = 0.0
    expanded: float | None = None
    first: float | None = None
    last: float | None = None
    accepted: int = 0
    distinct: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    planned: dict[str, int] = field(default_factory=dict)
    """Delivery rows by status after the storm."""
    finished: bool = False
    cpu: dict[str, float] = field(default_factory=dict)
    """Share of the machine's cores during the storm, by group."""
    worker_threads: tuple[float, float] = (0.0, 0.0)
    """CPU seconds of the workers' main threads and of their other threads (drivers)."""
    emulator_us: float = 0.0
    """Emulator CPU per accepted push, microseconds."""
    profile: Profile | str = "not run"
    log_errors: list[str] = field(default_factory=list)

    @property
    def storm_seconds(self) -> float | None:
        return self.last

    @property
    def rate(self) -> float:
        return self.accepted / self.last if self.last else 0.0


@dataclass(slots=True)
class Yardstick:
    pushes: int
    seconds: float
    ok: int
    refused: dict[str, int]
    aud_note: str
    cpu_share_me: float
    emulator_us: float


@dataclass(slots=True)
class Isolated:
    """The sender's per-push costs in isolation (this process, no I/O), microseconds."""

    payload_us: float
    encrypt_us: float
    build_us: float


# -- database, demo city and devices ----------------------------------------------------------


async def prepare_database(
    cleanup: Cleanup, backend: str, folder: Path, origin: str, args: argparse.Namespace
) -> tuple[dict[str, str], str, Path | None, str | None]:
    """A fresh database with the demo city: the environment for ``reppu``, the version, the
    SQLite file (None on PostgreSQL) and the PostgreSQL database name (None on SQLite)."""
    env = dict(os.environ, REPPU_DATA_DIR=str(folder), PYTHONUNBUFFERED="1")
    env.update(
        REPPU_PUSH_HOSTS=origin,
        REPPU_RUN_WORKER="false",
        REPPU_VAPID_SUBJECT=VAPID_SUBJECT,
        REPPU_LOGIN_FAILURES_PER_ADDRESS="100000",
    )
    name: str | None = None
    if backend == "sqlite":
        path: Path | None = folder / "reppu.sqlite3"
        env["REPPU_DATABASE_URL"] = f"sqlite:///{path}"
        version = f"SQLite {sqlite3.sqlite_version}"
    else:
        path = None
        name = f"reppu_bench_storm_{secrets.token_hex(4)}"
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
    return env, version, path, name


def devices_per_guardian(guardians: Sequence[int], average: float, seed: int) -> list[int]:
    """1 or 2 (floor or ceiling of ``average``) devices per guardian, ``average`` on average."""
    rng = random.Random(f"reppu-bench-storm:{seed}")  # noqa: S311 - a reproducible draw
    low = int(average)
    frac = average - low
    return [max(1, low + (1 if rng.random() < frac else 0)) for _ in guardians]


async def insert_devices(
    settings: Settings, db: Db, owners: Sequence[int], subs: Sequence[Subscription]
) -> None:
    """One auth token and one push subscription per device, through the bulk path."""
    accounts = dict(await db.rows("SELECT person, id FROM account"))
    first_token = int(await db.value("SELECT COALESCE(MAX(id), 0) FROM auth_token")) + 1
    first_sub = int(await db.value("SELECT COALESCE(MAX(id), 0) FROM push_subscription")) + 1
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    expires = now + dt.timedelta(days=30)
    stamp: Any = now
    until: Any = expires
    if settings.is_sqlite:  # the text form Piccolo's SQLite engine stores (see demo/load.py)
        stamp, until = str(now), str(expires)
    tokens: list[tuple[Any, ...]] = []
    rows: list[tuple[Any, ...]] = []
    for i, (person, sub) in enumerate(zip(owners, subs, strict=True)):
        token_id = first_token + i
        digest = hashlib.sha256(f"bench-storm-device-{i}".encode()).hexdigest()
        tokens.append((token_id, accounts[person], digest, f"bench phone {i}", stamp, until, None))
        rows.append((first_sub + i, person, token_id, sub.endpoint, sub.p256dh, sub.auth, stamp))
    last_report = [0.0]

    def progress(stage: str, done: int, total: int) -> None:
        if time.monotonic() - last_report[0] > 2 or done == total:
            last_report[0] = time.monotonic()
            say(f"  {stage}: {done:,}/{total:,} rows")

    async with open_database(settings) as engine:
        await bulk_insert(
            engine,
            [
                Rows(
                    "auth_token",
                    (
                        "id",
                        "account",
                        "token_hash",
                        "device_name",
                        "created_at",
                        "expires_at",
                        "revoked_at",
                    ),
                    tokens,
                ),
                Rows(
                    "push_subscription",
                    ("id", "person", "device", "endpoint", "p256dh", "auth", "created_at"),
                    rows,
                ),
            ],
            progress,
        )


_AUDIENCE_SQL = (
    "SELECT DISTINCT g.guardian FROM guardianship g "
    "JOIN membership m ON m.person = g.pupil AND m.role = 'pupil' "
    'JOIN school_group sg ON sg.id = m."group" '
    "JOIN organisation s ON s.id = sg.school "
    "WHERE s.parent = {} AND m.valid_from <= {} AND (m.valid_to IS NULL OR m.valid_to >= {}) "
    "AND g.valid_from <= {} AND (g.valid_to IS NULL OR g.valid_to >= {})"
)


@dataclass(frozen=True, slots=True)
class City:
    admin_usernames: dict[int, str]
    """Municipality id -> its admin's username."""
    audiences: dict[int, list[int]]
    """Municipality id -> the guardians a bulletin to its guardians reaches today."""


async def read_city(db: Db) -> City:
    day = school_today()
    admins = await db.rows(
        "SELECT sr.organisation, a.username FROM staff_role sr "
        "JOIN account a ON a.person = sr.person "
        "JOIN organisation o ON o.id = sr.organisation "
        "WHERE sr.role = 'admin' AND o.kind = 'municipality' ORDER BY sr.organisation, sr.id"
    )
    usernames: dict[int, str] = {}
    for org, username in admins:
        usernames.setdefault(int(org), str(username))
    audiences = {
        org: [int(r[0]) for r in await db.rows(_AUDIENCE_SQL, org, day, day, day, day)]
        for org in usernames
    }
    return City(usernames, audiences)


# -- processes --------------------------------------------------------------------------------


def worker_command(args: argparse.Namespace, *, profile: Path | None = None) -> list[str]:
    """``reppu worker`` (or ``--worker-script``), under cProfile when ``profile`` is given."""
    prefix = [sys.executable, "-m", "cProfile", "-o", str(profile)] if profile else []
    if args.worker_script is not None:
        return [*(prefix or [sys.executable]), str(args.worker_script)]
    if profile:
        return [*prefix, "-m", "server.cli", "worker"]
    return [str(BIN / "reppu"), "worker"]


async def wait_for_line(proc: subprocess.Popen[bytes], log: Path, text: str) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
            raise BenchError(
                f"{log.name}: the process exited with {proc.returncode}: " + " | ".join(tail)
            )
        if log.exists() and text in log.read_text(errors="replace"):
            return
        await asyncio.sleep(0.2)
    raise BenchError(f"{log.name} did not say {text!r} within {HEALTH_TIMEOUT:.0f} s")


def start_emulator(
    cleanup: Cleanup,
    folder: Path,
    port: int,
    vapid_public_key: str,
    seed: int,
    subscribe: int,
    label: str,
) -> tuple[subprocess.Popen[bytes], Path]:
    log = folder / f"emulator-{label}.log"
    cmd = [
        sys.executable,
        "-m",
        "tests.push_service",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--seed",
        str(seed),
        "--subscribe",
        str(subscribe),
        "--vapid-public-key",
        vapid_public_key,
        "--no-keep-received",
    ]
    return cleanup.start(cmd, env=dict(os.environ, PYTHONUNBUFFERED="1"), log=log), log


async def emulator_stats(http: httpx.AsyncClient, origin: str) -> dict[str, Any]:
    answer = await http.get(f"{origin}/_admin/stats")
    answer.raise_for_status()
    stats: dict[str, Any] = answer.json()
    return stats


def interrupt(cleanup: Cleanup, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """SIGINT (the worker records what it sent and exits; cProfile writes its file)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
    cleanup.stop(proc)


# -- the storm --------------------------------------------------------------------------------


async def admin_clients(http: httpx.AsyncClient, usernames: Sequence[str]) -> list[ReppuClient]:
    clients = []
    for username in usernames:
        answer = await http.post(
            "/auth/login",
            json={"username": username, "password": DEMO_PASSWORD, "device_name": "bench storm"},
        )
        if answer.status_code != 200:
            raise BenchError(f"login of {username} answered {answer.status_code}: {answer.text}")
        clients.append(ReppuClient(http, str(answer.json()["token"])))
    return clients


async def send_bulletins(clients: Sequence[ReppuClient], cities: Sequence[int]) -> None:
    """Each admin sends its city's bulletin; all of them at once, as a region's storm would."""

    async def one(client: ReppuClient, city: int) -> None:
        client.queue(
            "bulletin.send",
            {
                "audience": "municipality",
                "audience_id": city,
                "roles": ["guardians"],
                "title": TITLE,
                "body": BODY,
                "urgent": True,
            },
        )
        (result,) = await client.push()
        if result.get("status") != "applied":
            raise BenchError(f"bulletin.send to city {city} was not applied: {result}")

    await asyncio.gather(*(one(c, city) for c, city in zip(clients, cities, strict=True)))


@dataclass(slots=True)
class Watch:
    expanded: float | None = None
    first: float | None = None
    last: float | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    finished: bool = False


async def watch(
    emulators: Emulators,
    db: Db,
    started: float,
    expected: int,
    baseline: int,
    stall_limit: float,
    label: str,
    deadline: float | None = None,
) -> Watch:
    """Poll the emulator and the outbox until ``expected`` more pushes were accepted (or
    ``deadline``, a ``time.monotonic()``, has passed)."""
    seen = Watch()
    last_change = time.monotonic()
    last_count = -1
    next_report = time.monotonic() + PROGRESS_SECONDS
    while True:
        stats = await emulators.stats()
        seen.stats = stats
        now = time.monotonic()
        if seen.expanded is None:
            # The outbox entries are small; an open one means expansion is still going.
            open_entries = await db.value("SELECT COUNT(*) FROM outbox WHERE done_at IS NULL")
            if open_entries == 0:
                seen.expanded = now - started
                say(f"  {label}: outbox expanded after {seen.expanded:.1f} s")
        accepted = int(stats["accepted"]) - baseline
        if accepted != last_count:
            last_count, last_change = accepted, now
        if accepted >= expected:
            seen.finished = accepted == expected
            break
        if deadline is not None and now >= deadline:
            say(f"  {label}: {accepted:,} accepted in the {now - started:.0f} s allowed: enough")
            break
        if now - last_change > stall_limit:
            say(f"  {label}: no push accepted for {stall_limit:.0f} s: giving up")
            break
        if now >= next_report:
            next_report = now + PROGRESS_SECONDS
            rate = accepted / (now - started)
            refused = stats.get("refused") or {}
            say(
                f"  {label}: {accepted:,}/{expected:,} accepted after {now - started:.0f} s "
                f"({rate:,.0f}/s overall)" + (f"; refused {refused}" if refused else "")
            )
        await asyncio.sleep(POLL_SECONDS)
    # A push past the expected count would be a duplicate: give it a moment to show up.
    await asyncio.sleep(1.0)
    seen.stats = await emulators.stats()
    if seen.stats["first_accept_at"] is not None:
        seen.first = float(seen.stats["first_accept_at"]) - started
        seen.last = float(seen.stats["last_accept_at"]) - started
    return seen


def scan_logs(folder: Path) -> list[str]:
    """ERROR lines and tracebacks of the workers' and the server's logs, first few of each."""
    found: list[str] = []
    for log in sorted(folder.glob("*.log")):
        text = log.read_text(errors="replace").splitlines()
        bad = [line for line in text if " ERROR " in line or line.startswith("Traceback")]
        if bad:
            found.append(f"{log.name}: {len(bad)} ERROR/traceback lines, first: {bad[0][:160]}")
    return found


def worker_counts(args: argparse.Namespace, backend: str) -> list[int]:
    """``--workers`` (one count or a comma-separated list), or the backend's default."""
    if not args.workers:
        return [1 if backend == "sqlite" else 2]
    return [int(part) for part in str(args.workers).split(",") if part.strip()]


async def run_backend(
    cleanup: Cleanup, backend: str, args: argparse.Namespace, workers: int, *, profile: bool
) -> tuple[StormRun, Settings | None, list[Subscription]]:
    """One storm on a fresh database with ``workers`` worker processes; the profiled worker
    afterwards when ``profile`` (once per backend is enough)."""
    folder = Path(tempfile.mkdtemp(prefix=f"reppu-bench-storm-{backend}-"))
    cleanup.folders.append(folder)
    databases_before = list(cleanup.databases)
    emulator_port = free_port()
    origin = f"http://127.0.0.1:{emulator_port}"
    db: Db | None = None
    emulators: Emulators | None = None
    try:
        started = time.monotonic()
        env, version, sqlite_path, db_name = await prepare_database(
            cleanup, backend, folder, origin, args
        )
        run = StormRun(backend, version, workers, pupils=args.pupils)
        run.demo_seconds = time.monotonic() - started
        db = Db(env["REPPU_DATABASE_URL"], sqlite_path)
        await db.open()

        say(f"{version}: devices and subscriptions")
        started = time.monotonic()
        guardians = [
            int(r[0])
            for r in await db.rows("SELECT DISTINCT guardian FROM guardianship ORDER BY 1")
        ]
        counts = devices_per_guardian(guardians, args.devices_per_guardian, args.seed)
        owners = [g for g, n in zip(guardians, counts, strict=True) for _ in range(n)]
        channels = assign_channels(len(owners), args.mix, args.seed)
        by_channel = {
            name: [g for g, c in zip(owners, channels, strict=True) if c == name]
            for name in ("webpush", "fcm", "apns")
        }
        run.channels = {name: len(people) for name, people in by_channel.items()}
        native = prepare_native(folder, run.channels, {"fcm": free_port(), "apns": free_port()})
        env.update(native.env)  # before the settings: they name the native services
        settings = load_settings(env)
        service = PushService(origin, settings.vapid_public_key, seed=args.seed)
        subs = service.subscribe_many(run.channels["webpush"])
        await insert_devices(settings, db, by_channel["webpush"], subs)
        await insert_native_devices(
            settings, db, {"fcm": by_channel["fcm"], "apns": by_channel["apns"]}, native
        )
        run.devices_seconds = time.monotonic() - started
        run.guardians, run.devices = len(guardians), len(owners)
        say(
            f"  {len(guardians):,} guardians, {len(owners):,} devices inserted in "
            f"{run.devices_seconds:.1f} s ({_mix_cell(run.channels)})"
        )
        city = await read_city(db)
        by_guardian = dict(zip(guardians, counts, strict=True))
        run.municipalities = len(city.admin_usernames)
        run.expected = sum(
            by_guardian.get(g, 0) for people in city.audiences.values() for g in people
        )
        reached = {g for people in city.audiences.values() for g in people}
        run.expected_devices = sum(by_guardian.get(g, 0) for g in reached)
        say(
            f"  {run.municipalities} municipalities; expected {run.expected:,} pushes to "
            f"{run.expected_devices:,} devices of {len(reached):,} guardians"
        )

        say(f"{version}: emulator on {origin}, reppu serve, {workers} reppu worker(s)")
        emulator, emulator_log = start_emulator(
            cleanup,
            folder,
            emulator_port,
            settings.vapid_public_key,
            args.seed,
            run.channels["webpush"],
            "storm",
        )
        await wait_until_up(emulator, f"{origin}/_admin/stats", emulator_log)
        await start_native(cleanup, native)
        emulators = Emulators({"webpush": origin, **native.origins})
        serve_port = free_port()
        base = f"http://127.0.0.1:{serve_port}"
        reppu = str(BIN / "reppu")
        serve_log = folder / "serve.log"
        serve_cmd = [reppu, "serve", "--host", "127.0.0.1", "--port", str(serve_port)]
        serve = cleanup.start([*serve_cmd, "--no-access-log"], env=env, log=serve_log)
        await wait_until_up(serve, base + "/health", serve_log)
        worker_procs = []
        for i in range(workers):
            log = folder / f"worker-{i + 1}.log"
            proc = cleanup.start(worker_command(args), env=env, log=log)
            worker_procs.append(proc)
            await wait_for_line(proc, log, "Delivery worker on")

        async with (
            httpx.AsyncClient(base_url=base, timeout=60.0) as http,
            httpx.AsyncClient(timeout=10.0) as admin,
        ):
            stats = await emulator_stats(admin, origin)
            if int(stats["subscriptions"]) != run.channels["webpush"]:
                raise BenchError(f"the emulator holds {stats['subscriptions']} subscriptions")
            cities = sorted(city.admin_usernames)
            clients = await admin_clients(http, [city.admin_usernames[c] for c in cities])
            run.busy_before = await asyncio.to_thread(wait_for_quiet, args.quiet_wait)
            roles = {
                "workers": [p.pid for p in worker_procs],
                "emulator": [emulator.pid, *(p.pid for p in native.procs)],
                "server": [serve.pid],
            }
            cpu0 = CpuSnapshot.take(roles, db_name)
            say(
                f"{version}: storm: {run.municipalities} bulletin(s), "
                f"{run.expected:,} pushes expected"
            )
            t0 = time.monotonic()
            await send_bulletins(clients, cities)
            run.committed = time.monotonic() - t0
            say(f"  bulletins committed after {run.committed:.2f} s")
            seen = await watch(emulators, db, t0, run.expected, 0, args.stall_timeout, version)
            cpu1 = CpuSnapshot.take(roles, db_name)
            elapsed = time.monotonic() - t0
        run.expanded, run.first, run.last = seen.expanded, seen.first, seen.last
        run.accepted = int(seen.stats["accepted"])
        run.distinct = int(seen.stats["distinct_tokens_accepted"])
        run.refused = dict(seen.stats.get("refused") or {})
        run.accepted_by = {name: int(one["accepted"]) for name, one in emulators.by_channel.items()}
        run.finished = seen.finished and run.distinct == run.expected_devices
        cores = os.cpu_count() or 1
        used = {k: cpu1.groups[k] - cpu0.groups.get(k, 0.0) for k in cpu1.groups}
        used["server + benchmark"] = used.pop("server", 0.0) + cpu1.me - cpu0.me
        used["other"] = max(0.0, (cpu1.machine - cpu0.machine) - sum(used.values()))
        run.cpu = {k: v / (elapsed * cores) for k, v in used.items()}
        run.emulator_us = used["emulator"] / max(1, run.accepted) * 1e6
        main_threads = sum(
            cpu1.threads[p][0] - cpu0.threads.get(p, (0.0, 0.0))[0] for p in cpu1.threads
        )
        other_threads = sum(
            cpu1.threads[p][1] - cpu0.threads.get(p, (0.0, 0.0))[1] for p in cpu1.threads
        )
        run.worker_threads = (main_threads, other_threads)
        run.planned = {
            str(status): int(n)
            for status, n in await db.rows(
                "SELECT status, COUNT(*) FROM delivery GROUP BY status ORDER BY status"
            )
        }
        say(
            f"  {version}: {run.accepted:,} accepted ({run.distinct:,} devices) of "
            f"{run.expected:,}; first after {_s(run.first)}, last after {_s(run.last)}; "
            f"refused {run.refused or 'none'}; deliveries {run.planned}"
        )
        say(
            "  CPU during the storm: "
            + ", ".join(f"{k} {v:.0%}" for k, v in run.cpu.items())
            + f" of {cores} cores"
        )
        for proc in worker_procs:
            cleanup.stop(proc)

        if not profile:
            run.profile = "measured in the first run of this backend"
        elif args.profile:
            try:
                run.profile = await profile_worker(
                    cleanup, folder, env, base, emulators, db, city, by_guardian, args, version
                )
            except BenchError as exc:  # the storm's figures stand without it
                say(f"  profile failed: {exc}")
                run.profile = f"not measured ({exc})"
        cleanup.stop(serve)
        cleanup.stop(emulator)
        for proc in native.procs:
            cleanup.stop(proc)
        run.log_errors = scan_logs(folder)
        return run, settings, subs
    finally:
        if emulators is not None:
            await emulators.aclose()
        if db is not None:
            await db.close()
        for admin_url, name in [d for d in cleanup.databases if d not in databases_before]:
            say(f"dropping database {name}")
            await drop_database(admin_url, name)
            cleanup.databases.remove((admin_url, name))
        if args.keep_logs:
            keep = args.keep_logs / f"{backend}-{workers}"
            keep.mkdir(parents=True, exist_ok=True)
            for item in folder.glob("*"):
                if item.suffix in (".log", ".prof"):
                    item.replace(keep / item.name)
        cleanup.remove_folder(folder)


# -- where a worker's time goes ---------------------------------------------------------------

# (category, file suffix, function name): inclusive times taken from the profile.
_PROFILE_POINTS = {
    "expand_next": ("server/fanout.py", "expand_next"),
    "assemble_digests": ("server/fanout.py", "assemble_digests"),
    "claim": ("server/deliver.py", "claim"),
    "claim_old": ("server/deliver.py", "_claim"),
    "send_once": ("server/deliver.py", "send_once"),
    "record": ("server/deliver.py", "record_outcomes"),
    "worker_send": ("server/deliver.py", "_send"),
    "payload": ("notifications/payload.py", "encode_payload"),
    "build": ("notifications/webpush.py", "build"),
    "encrypt": ("notifications/webpush.py", "encrypt_aes128gcm"),
    "vapid": ("notifications/webpush.py", "header"),
    "post": ("server/deliver.py", "_post"),
}
PROFILE_ROWS = (
    "expanding the outbox (fanout.expand_next, digests)",
    "claiming deliveries (deliver.claim)",
    "reading the claimed rows (send_once's SELECT ... JOIN)",
    "recording outcomes (deliver.record_outcomes)",
    "payload JSON (notifications.payload)",
    "encryption (aes128gcm: ECDH, HKDF, AES-GCM)",
    "VAPID header (cached per origin)",
    "rest of building the request",
    "HTTP client (PushSender._post and what it calls)",
    "rest of sending one push (judge, outcome, texts)",
    "event loop and the rest",
)


def _inclusive(stats: pstats.Stats, suffix: str, name: str) -> float:
    total = 0.0
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    for (filename, _, function), (_, _, _, cumulative, _) in raw.items():
        if function == name and filename.replace("\\", "/").endswith(suffix):
            total += cumulative
    return total


def summarise_profile(path: Path, pushes: int, seconds: float) -> Profile:
    stats = pstats.Stats(str(path))
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    wall = sum(own for (_, _, own, _, _) in raw.values())
    idle = sum(
        own
        for (filename, _, function), (_, _, own, _, _) in raw.items()
        if filename == "~" and ("poll' of 'select" in function or "select.select" in function)
    )
    t = {key: _inclusive(stats, *where) for key, where in _PROFILE_POINTS.items()}
    values = [
        t["expand_next"] + t["assemble_digests"],
        t["claim"] + t["claim_old"],
        max(0.0, t["send_once"] - t["claim"] - t["claim_old"]),
        t["record"],
        t["payload"],
        t["encrypt"],
        t["vapid"],
        max(0.0, t["build"] - t["encrypt"] - t["vapid"]),
        t["post"],
        max(0.0, t["worker_send"] - t["payload"] - t["build"] - t["post"]),
    ]
    busy = max(1e-9, wall - idle)
    values.append(max(0.0, busy - sum(values)))
    shares = {name: v / busy for name, v in zip(PROFILE_ROWS, values, strict=True)}
    shares["busy share of the main thread"] = busy / max(1e-9, wall)
    own_times = sorted(
        (
            (own, f"{Path(filename).name}:{function}" if filename != "~" else function)
            for (filename, _, function), (_, _, own, _, _) in raw.items()
            if not (filename == "~" and "poll' of 'select" in function)
        ),
        reverse=True,
    )
    top = [(label, own / busy) for own, label in own_times[:8]]
    return Profile(pushes, seconds, wall, shares, top)


async def profile_worker(
    cleanup: Cleanup,
    folder: Path,
    env: dict[str, str],
    base: str,
    emulators: Emulators,
    db: Db,
    city: City,
    by_guardian: dict[int, int],
    args: argparse.Namespace,
    version: str,
) -> Profile | str:
    """A bulletin to the smallest city, one worker under cProfile for at most
    ``--profile-seconds``."""
    smallest = min(
        city.audiences, key=lambda c: sum(by_guardian.get(g, 0) for g in city.audiences[c])
    )
    expected = sum(by_guardian.get(g, 0) for g in city.audiences[smallest])
    if not expected:
        return "no devices in the smallest city"
    out = folder / "worker.prof"
    log = folder / "worker-profiled.log"
    cmd = worker_command(args, profile=out)
    # Others may add migrations to the working tree during a long run; the worker would then
    # refuse to start (and under cProfile its exit code is lost).
    await asyncio.to_thread(run_to_end, cleanup, [str(BIN / "reppu"), "migrate"], env, 300)
    say(f"{version}: profile: one worker under cProfile, {expected:,} pushes (smallest city)")
    proc = cleanup.start(cmd, env=env, log=log)
    try:
        await wait_for_line(proc, log, "Delivery worker on")
        async with httpx.AsyncClient(base_url=base, timeout=60.0) as http:
            baseline = int((await emulators.stats())["accepted"])
            (client,) = await admin_clients(http, [city.admin_usernames[smallest]])
            t0 = time.monotonic()
            await send_bulletins([client], [smallest])
            seen = await watch(
                emulators,
                db,
                t0,
                expected,
                baseline,
                args.stall_timeout,
                "profiled",
                deadline=t0 + args.profile_seconds,
            )
            seconds = time.monotonic() - t0
            pushes = int(seen.stats["accepted"]) - baseline
    finally:
        interrupt(cleanup, proc)
    if not out.exists():
        return "the profiled worker wrote no profile"
    profile = summarise_profile(out, pushes, seconds)
    say(
        "  profile: "
        + ", ".join(f"{k.split(' (')[0]} {v:.0%}" for k, v in list(profile.shares.items())[:11])
    )
    return profile


def measure_isolated(settings: Settings, subs: Sequence[Subscription], n: int) -> Isolated:
    """Per-push costs of the sender's CPU work, without I/O: payload, encryption, build."""
    builder = PushBuilder(VapidSigner(settings.vapid_private_key, settings.vapid_subject))
    targets = [PushTarget(s.endpoint, s.p256dh, s.auth) for s in subs[:n]]
    payload = encode_payload(Kind.URGENT, item_id=1, title=TITLE, body=BODY)
    started = time.perf_counter()
    for i in range(len(targets)):
        encode_payload(Kind.URGENT, item_id=i, title=TITLE, body=BODY)
    payload_s = time.perf_counter() - started
    from notifications.webpush import encrypt_aes128gcm  # the one step, timed alone

    started = time.perf_counter()
    for target in targets:
        encrypt_aes128gcm(target, payload)
    encrypt_s = time.perf_counter() - started
    started = time.perf_counter()
    for target in targets:
        builder.build(target, payload, Kind.URGENT, topic="b1")
    build_s = time.perf_counter() - started
    count = max(1, len(targets))
    return Isolated(payload_s / count * 1e6, encrypt_s / count * 1e6, build_s / count * 1e6)


# -- the yardstick: a plain pywebpush loop ----------------------------------------------------


def pywebpush_loop(
    subs: Sequence[Subscription], private_key: str, data: bytes, ttl: int, aud: str | None
) -> tuple[int, dict[str, int], str]:
    """The loop most users write; returns pushes accepted, refusals by status, first error."""
    from pywebpush import WebPushException, webpush  # type: ignore[import-untyped]

    ok = 0
    refused: dict[str, int] = {}
    first_error = ""
    for sub in subs:
        claims: dict[str, str | int] = {"sub": VAPID_SUBJECT}  # fresh: webpush() writes into it
        if aud is not None:
            claims["aud"] = aud
        try:
            webpush(
                subscription_info=sub.to_json(),
                data=data,  # bytes are sent as they are
                vapid_private_key=private_key,
                vapid_claims=claims,
                ttl=ttl,
                timeout=10,
            )
            ok += 1
        except WebPushException as exc:
            status = str(exc.response.status_code) if exc.response is not None else "error"
            refused[status] = refused.get(status, 0) + 1
            first_error = first_error or str(exc).splitlines()[0][:200]
    return ok, refused, first_error


async def run_yardstick(
    cleanup: Cleanup, settings: Settings, args: argparse.Namespace
) -> Yardstick:
    folder = Path(tempfile.mkdtemp(prefix="reppu-bench-storm-pywebpush-"))
    cleanup.folders.append(folder)
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    n = args.pywebpush_sample
    try:
        say(f"pywebpush: {n:,} pushes by a plain loop to a fresh emulator on {origin}")
        service = PushService(origin, settings.vapid_public_key, seed=args.seed)
        subs = service.subscribe_many(n)
        emulator, log = start_emulator(
            cleanup, folder, port, settings.vapid_public_key, args.seed, n, "pywebpush"
        )
        await wait_until_up(emulator, f"{origin}/_admin/stats", log)
        data = encode_payload(Kind.URGENT, item_id=1, title=TITLE, body=BODY)
        ttl = TTL_SECONDS[Kind.URGENT]
        # One push first: does pywebpush's own aud (scheme://netloc of the endpoint) pass?
        ok, refused, error = await asyncio.to_thread(
            pywebpush_loop, subs[:1], settings.vapid_private_key, data, ttl, None
        )
        aud: str | None = None
        note = "pywebpush's own `aud` (scheme://host:port of the endpoint) was accepted"
        if not ok:
            aud = origin
            note = (
                f"pywebpush's own `aud` was refused ({refused}: {error}); the loop passes "
                f'`"aud": "{origin}"` in the claims'
            )
            say(f"  {note}")
        await asyncio.to_thread(wait_for_quiet, args.quiet_wait)
        async with httpx.AsyncClient(timeout=10.0) as http:
            await http.post(f"{origin}/_admin/reset")
            table0 = process_table()
            me0 = resource.getrusage(resource.RUSAGE_SELF)
            started = time.monotonic()
            ok, refused, error = await asyncio.to_thread(
                pywebpush_loop, subs, settings.vapid_private_key, data, ttl, aud
            )
            seconds = time.monotonic() - started
            me1 = resource.getrusage(resource.RUSAGE_SELF)
            table1 = process_table()
            stats = await emulator_stats(http, origin)
        me = (me1.ru_utime + me1.ru_stime) - (me0.ru_utime + me0.ru_stime)
        emu = table1[emulator.pid].cpu - table0[emulator.pid].cpu if emulator.pid in table1 else 0.0
        if stats["accepted"] != ok:
            say(f"  the emulator counted {stats['accepted']} accepted, the loop {ok}")
        if error:
            say(f"  first refusal: {error}")
        cleanup.stop(emulator)
        result = Yardstick(n, seconds, ok, refused, note, me / seconds, emu / max(1, ok) * 1e6)
        say(
            f"  pywebpush: {ok:,}/{n:,} accepted in {seconds:.1f} s = {ok / seconds:,.0f} "
            f"pushes/s; this process used {result.cpu_share_me:.0%} of a core"
        )
        return result
    finally:
        cleanup.remove_folder(folder)


async def node_yardstick(cleanup: Cleanup, settings: Settings, args: argparse.Namespace) -> Any:
    """The same bulletin's pushes by the Node web-push package (scripts/peers/)."""
    from peers.node_webpush import run_node_webpush

    return await run_node_webpush(
        cleanup,
        vapid_private_key=settings.vapid_private_key,
        vapid_public_key=settings.vapid_public_key,
        vapid_subject=VAPID_SUBJECT,
        payload=encode_payload(Kind.URGENT, item_id=1, title=TITLE, body=BODY),
        ttl=TTL_SECONDS[Kind.URGENT],
        urgency=URGENCY[Kind.URGENT],
        sample=args.node_webpush_sample,
        concurrencies=[int(c) for c in str(args.node_webpush_concurrency).split(",") if c],
        seed=args.seed,
        quiet_wait=args.quiet_wait,
    )


# -- the entry --------------------------------------------------------------------------------


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _cpu_cell(run: StormRun) -> str:
    order = ["workers", "emulator", "PostgreSQL", "server + benchmark", "other"]
    return " / ".join(f"{run.cpu[k]:.0%}" if k in run.cpu else "-" for k in order)


def _storm_table(runs: list[StormRun], yard: Yardstick | None) -> list[str]:
    lines = [
        "| backend | workers | pushes expected | accepted (devices) | refused | committed | "
        "outbox expanded | first push | last push | pushes/s | CPU: workers / emulator / "
        "PostgreSQL / server + benchmark / other | vs pywebpush |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    ypr = yard.ok / yard.seconds if yard and yard.seconds else 0.0
    for r in runs:
        refused = ", ".join(f"{k}: {v:,}" for k, v in r.refused.items()) or "0"
        ratio = f"{r.rate / ypr:.1f}x" if ypr else "-"
        lines.append(
            f"| {r.version} | {r.workers} | {r.expected:,} | {r.accepted:,} ({r.distinct:,}) | "
            f"{refused} | {_s(r.committed)} | {_s(r.expanded)} | {_s(r.first)} | "
            f"**{_s(r.last)}** | {r.rate:,.0f} | {_cpu_cell(r)} | {ratio} |"
        )
    return lines


_CHANNEL_NAMES = {"webpush": "Web Push", "fcm": "FCM", "apns": "APNs"}


def _mix_cell(counts: dict[str, int]) -> str:
    return ", ".join(f"{_CHANNEL_NAMES[k]} {v:,}" for k, v in counts.items() if v)


def _setup_lines(runs: list[StormRun]) -> list[str]:
    lines = []
    for r in runs:
        if any(r.channels.get(k) for k in ("fcm", "apns")):
            lines.append(
                f"- {r.version}, {r.workers} worker(s): devices by channel: "
                f"{_mix_cell(r.channels)}; pushes accepted by each emulator: "
                f"{_mix_cell(r.accepted_by)}"
            )
        planned = ", ".join(f"{k} {v:,}" for k, v in r.planned.items())
        lines.append(
            f"- {r.version}, {r.workers} worker(s): migrate and demo city "
            f"{r.demo_seconds:.0f} s; {r.devices:,} devices (auth tokens and subscriptions, "
            f"bulk path) inserted in {r.devices_seconds:.1f} s; "
            f"CPU busy before the storm {r.busy_before:.0%}; delivery rows after it: {planned}; "
            f"the emulator spent {r.emulator_us:,.0f} us of CPU per accepted push; the workers' "
            f"main threads {r.worker_threads[0]:.0f} s of CPU, their other threads "
            f"{r.worker_threads[1]:.0f} s"
            + (
                "; every device got exactly one push per bulletin"
                if r.finished
                else "; NOT every expected push arrived exactly once"
            )
        )
        for line in r.log_errors:
            lines.append(f"  - log: {line}")
    return lines


def _profile_lines(runs: list[StormRun], iso: Isolated | None) -> list[str]:
    done = [(r.version, r.profile) for r in runs if isinstance(r.profile, Profile)]
    lines: list[str] = []
    for r in runs:
        if isinstance(r.profile, str):
            lines.append(f"Profile on {r.version} ({r.workers} worker(s)): {r.profile}.")
    if done:
        first = done[0][1]
        lines += [
            "One `reppu worker` under `cProfile` sending a bulletin to the smallest city "
            f"({first.pushes:,} pushes accepted in the {first.seconds:.0f} s profiled; "
            "profiling slows it, so only the shares count): the "
            "main thread's busy time by step (inclusive times of the named functions; idle "
            "time in the selector left out). On SQLite the queries run in aiosqlite's thread "
            "and show here only as the steps' waits.",
            "",
            "| share of the worker's busy main thread | " + " | ".join(v for v, _ in done) + " |",
            "| --- |" + " ---: |" * len(done),
        ]
        for name in PROFILE_ROWS:
            lines.append(
                f"| {name} | " + " | ".join(f"{p.shares.get(name, 0):.0%}" for _, p in done) + " |"
            )
        lines.append(
            "| *busy share of the main thread (rest: waiting)* | "
            + " | ".join(f"*{p.shares['busy share of the main thread']:.0%}*" for _, p in done)
            + " |"
        )
        lines.append(
            "| *profiled pushes/s* | "
            + " | ".join(f"*{p.pushes / p.seconds:,.0f}*" for _, p in done)
            + " |"
        )
        for version, p in done:
            top = "; ".join(f"`{name}` {share:.0%}" for name, share in p.top[:6])
            lines.append(f"\nTop own-time functions on {version}: {top}.")
    if iso is not None:
        lines += [
            "",
            f"The sender's CPU per push in isolation (this process, no I/O): payload JSON "
            f"{iso.payload_us:.0f} us, encryption {iso.encrypt_us:.0f} us, the whole request "
            f"built (encryption, cached VAPID header, headers) {iso.build_us:.0f} us.",
        ]
    return lines


def _yard_lines(yard: Yardstick | None, runs: list[StormRun]) -> list[str]:
    if yard is None:
        return ["Not measured (`--pywebpush-sample 0`)."]
    rate = yard.ok / yard.seconds if yard.seconds else 0.0
    devices = max((r.expected for r in runs), default=0)
    extrapolated = devices / rate if rate else float("nan")
    refused = ", ".join(f"{k}: {v:,}" for k, v in yard.refused.items()) or "none"
    version = _dist_version("pywebpush")
    return [
        f"pywebpush {version}: {yard.ok:,} of {yard.pushes:,} pushes accepted in "
        f"{yard.seconds:.1f} s = **{rate:,.0f} pushes/s**, one after another, each call "
        "`webpush(subscription_info, data, vapid_private_key=<Reppu's raw key, base64url>, "
        'vapid_claims={"sub": ...}, ttl=43200)` with a fresh claims dict (refused: '
        f"{refused}); {yard.aud_note}. It signs a VAPID token and opens a new HTTP "
        f"connection (requests, no session) for every push; the loop's process used "
        f"{yard.cpu_share_me:.0%} of a core, the emulator {yard.emulator_us:,.0f} us per push. "
        f"At that rate the {devices:,} pushes of the storm would take {extrapolated:,.0f} s "
        f"({extrapolated / 60:,.1f} min).",
    ]


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def make_entry(
    args: argparse.Namespace,
    runs: list[StormRun],
    yard: Yardstick | None,
    iso: Isolated | None,
    load: tuple[float, float, float],
) -> str:
    command = (
        f".venv/bin/python scripts/bench_storm.py --pupils {args.pupils} --seed {args.seed} "
        f"--devices-per-guardian {args.devices_per_guardian:g} --backend {args.backend}"
        f" --pywebpush-sample {args.pywebpush_sample} --mix {describe_mix(args.mix)}"
    )
    if args.workers:
        command += f" --workers {args.workers}"
    if args.worker_script:
        command += f" --worker-script {args.worker_script}"
    first = runs[0] if runs else None
    people = (
        f"{first.guardians:,} guardians with {first.devices:,} devices; "
        f"{first.municipalities} municipalities, one bulletin each"
        if first
        else ""
    )
    lines = [
        f"### {dt.date.today().isoformat()}: {args.pupils:,} pupils, seed {args.seed}",
        "",
        f"- Command: `{command}`",
        f"- Commit: {args.commit}, as the run started",
        f"- Machine: {describe_machine()}; Python {platform.python_version()}; "
        + "; ".join(dict.fromkeys(r.version for r in runs)),
        f"- Load average when the run started: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f} "
        "(the machine is shared)",
        f"- City: {people}. Each admin sends an urgent bulletin to its city's guardians "
        "(`bulletin.send` over `POST /sync/push`, all at once); the emulator runs under "
        "uvicorn in one process and checks VAPID and decrypts every push"
        + (
            " (FCM's and APNs' emulators, one process each, check the OAuth bearer and the "
            "ES256 provider token of every push; APNs over HTTP/2)"
            if any(args.mix[k] for k in ("fcm", "apns"))
            else ""
        )
        + "; workers are "
        "`reppu worker` processes, settings at their defaults (50 requests at once per push "
        "service, claims of 200)"
        + (
            f"; the workers ran `{args.worker_script}` instead of `reppu worker`."
            if args.worker_script
            else "."
        ),
        *_setup_lines(runs),
        "",
        'Seconds from "send" (the admins\' requests leave) to each point; pushes/s is '
        "accepted pushes over send-to-last-push. The CPU column splits the machine's cores "
        "during the storm.",
        "",
        *_storm_table(runs, yard),
        "",
        "#### The yardstick: a plain pywebpush loop",
        "",
        *_yard_lines(yard, runs),
        "",
        "#### Where a worker's time goes",
        "",
        *_profile_lines(runs, iso),
        "",
        *interpretation(runs, yard),
    ]
    return "\n".join(lines) + "\n"


def interpretation(runs: list[StormRun], yard: Yardstick | None) -> list[str]:
    if not runs:
        return []
    cores = os.cpu_count() or 1
    parts = []
    for r in runs:
        emu = r.cpu.get("emulator", 0.0) * cores
        wrk = r.cpu.get("workers", 0.0) * cores
        per_push = wrk * (r.last or 0.0) / max(1, r.accepted) * 1e6
        parts.append(
            f"{r.version} with {r.workers} worker(s) {_s(r.last)} ({r.rate:,.0f} pushes/s; "
            f"the workers used {wrk:.2f} cores, {per_push:,.0f} us of CPU per push, "
            f"the emulator {emu:.2f})"
        )
    text = "The whole storm took " + "; ".join(parts) + ', against "about a minute".'
    floor = max(r.emulator_us * r.expected / 1e6 for r in runs)
    text += (
        f" The emulator alone needs about {floor:,.0f} s of one core for these pushes, a floor "
        "for any sender on this machine."
    )
    profiles = [r.profile for r in runs if isinstance(r.profile, Profile)]
    if profiles:
        name, share = max(
            ((n, statistics.fmean(p.shares.get(n, 0.0) for p in profiles)) for n in PROFILE_ROWS),
            key=lambda item: item[1],
        )
        text += f" In a worker, the largest step is {name}: {share:.0%} of its busy main thread."
    if yard and yard.seconds:
        rate = yard.ok / yard.seconds
        text += (
            f" A plain pywebpush loop manages {rate:,.0f} pushes/s on the same machine, so "
            "Reppu's fan-out runs at "
            + " and ".join(f"{r.rate / rate:.1f}x" for r in runs)
            + " that rate."
        )
    return [text]


def record(entry: str) -> None:
    """Insert the entry at the end of the "Storm bulletin" section, creating the section at
    the end of the file when it is missing; the other sections are left as they are."""
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n"
    if f"\n{SECTION}\n" not in text:
        text = text.rstrip("\n") + f"\n\n{SECTION}\n\n{SECTION_INTRO}"
    start = text.index(f"\n{SECTION}\n") + len(SECTION) + 2
    following = text.find("\n## ", start)
    end = len(text) if following == -1 else following + 1
    before, after = text[:end].rstrip("\n"), text[end:]
    text = f"{before}\n\n{entry}" + (f"\n{after}" if after else "")
    BENCHMARKS.write_text(text)


# -- main -------------------------------------------------------------------------------------


async def _main(args: argparse.Namespace, cleanup: Cleanup) -> int:
    load = os.getloadavg()
    args.commit = describe_commit()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    say(
        f"Storm benchmark: {args.pupils:,} pupils, {args.devices_per_guardian:g} devices per "
        f"guardian, backends {', '.join(backends)}; load average {load[0]:.2f}"
    )
    runs: list[StormRun] = []
    settings: Settings | None = None
    subs: list[Subscription] = []
    for backend in backends:
        for index, workers in enumerate(worker_counts(args, backend)):
            run, settings, subs = await run_backend(
                cleanup, backend, args, workers, profile=index == 0
            )
            runs.append(run)
    iso: Isolated | None = None
    if settings is not None and subs:
        iso = measure_isolated(settings, subs, min(len(subs), 2000))
        say(
            f"sender in isolation: payload {iso.payload_us:.0f} us, encryption "
            f"{iso.encrypt_us:.0f} us, build {iso.build_us:.0f} us per push"
        )
    yard: Yardstick | None = None
    if args.pywebpush_sample and settings is not None:
        yard = await run_yardstick(cleanup, settings, args)
    node: list[Any] = []
    if args.node_webpush_sample and settings is not None:
        try:
            node = await node_yardstick(cleanup, settings, args)
        except BenchError as exc:  # the storm's figures stand without it
            say(f"Node web-push yardstick not measured: {exc}")
    entry = make_entry(args, runs, yard, iso, load)
    if node:  # the Node web-push yardstick (scripts/peers/node_webpush.py)
        from peers.node_webpush import node_lines

        rates = {f"{r.version}, {r.workers} worker(s)": r.rate for r in runs if r.rate}
        entry += "\n#### The yardstick: the Node web-push package\n\n"
        entry += "\n".join(node_lines(node, rates)) + "\n"
    if args.json:
        from benchlib import write_json

        write_json(args.json, {"runs": runs, "yardstick": yard, "isolated": iso, "node": node})
    print()
    print(entry)
    if args.record:
        record(entry)
        say(f"Recorded in {BENCHMARKS.relative_to(ROOT)}.")
    else:
        say("Not recorded (--quick or --no-record).")
    return 0 if all(r.finished for r in runs) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--pupils", type=int, default=160_000, help="demo city size (160000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--devices-per-guardian",
        type=float,
        default=1.5,
        help="average devices per guardian, each 1 or 2 (1.5)",
    )
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument(
        "--mix",
        type=parse_mix,
        default=parse_mix("webpush=1"),
        help="devices' channels by weight, e.g. webpush=1,fcm=1,apns=1 (default: Web Push only)",
    )
    parser.add_argument(
        "--workers",
        help="reppu worker processes: a count, or counts like 1,2 (each its own storm on a "
        "fresh database); default 1 on SQLite, 2 on PostgreSQL",
    )
    parser.add_argument("--pywebpush-sample", type=int, default=3000, help="0: skip")
    parser.add_argument(
        "--node-webpush-sample", type=int, default=0, help="pushes by Node web-push (0: skip)"
    )
    parser.add_argument(
        "--node-webpush-concurrency",
        default="1,50",
        help="pushes in flight, each in turn (1,50)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here, as JSON")
    parser.add_argument("--postgres-admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    parser.add_argument(
        "--worker-script",
        type=Path,
        help="a Python script run instead of `reppu worker` (it ends by calling "
        "server.cli.main(['worker'])): measures a variant of the worker, say with a patched "
        "class, without touching server/",
    )
    parser.add_argument(
        "--profile-seconds", type=float, default=45.0, help="longest profiled run (45)"
    )
    parser.add_argument("--stall-timeout", type=float, default=120.0)
    parser.add_argument("--demo-timeout", type=float, default=900.0)
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120.0,
        help="before each measurement, wait up to this many seconds for a quiet machine",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 2000 pupils, 300 pywebpush pushes"
    )
    parser.add_argument("--no-record", dest="record", action="store_false")
    parser.add_argument("--keep-logs", type=Path, help="move logs and profiles here")
    args = parser.parse_args()
    if args.quick:
        args.pupils = 2000
        args.pywebpush_sample = min(args.pywebpush_sample, 300)
        args.quiet_wait = min(args.quiet_wait, 10.0)
        args.record = False
    if args.pupils < 500:
        parser.error("--pupils must be at least 500")
    if not 1.0 <= args.devices_per_guardian <= 2.0:
        parser.error("--devices-per-guardian must be between 1 and 2")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    cleanup = Cleanup()

    def terminate(signum: int, _frame: object) -> None:
        say(f"signal {signum}: stopping, cleaning up what was started")
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        # Started in the background (`cmd &` ignores SIGINT, and the ignoring is inherited):
        # the profiled worker must still stop on SIGINT, or cProfile writes nothing.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return asyncio.run(_main(args, cleanup))
    except BenchError as exc:
        print(f"bench_storm: {exc}", file=sys.stderr)
        return 2
    finally:
        cleanup.run()


if __name__ == "__main__":
    sys.exit(main())
