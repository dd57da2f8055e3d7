"""Benchmark: the roll-call burst, mutations applied per second, on SQLite and on PostgreSQL.

Issue 4: "15,000 teachers x 25 marks in 5 minutes is 1,250 mutations/s. Measure mutations
applied per second on 2 cores over HTTP in batches of 25, on SQLite and on PostgreSQL; aim for
5,000."

For each backend a fresh database (a SQLite file in a temporary data folder, or a PostgreSQL
database created next to the admin database of ``--postgres-admin-url`` and dropped afterwards)
is migrated and gets a demo city (``reppu migrate``, ``reppu demo``). Then:

1. Teachers and classes: ``--teachers`` K home classes, the largest first (their pupils are
   disjoint, as at a real 8:15 roll call, so no two pushes touch one pupil), each with one of
   its teachers (a teacher membership valid today; every teacher used once). Each push marks
   the first ``--marks`` (25) pupils of the class.
2. Lessons: every burst needs a lesson of each class taking place today. The class's own
   lessons of today's weekday are used first (not cancelled today); when the demo timetable has
   too few (at weekends it has none), lessons for today only (weekday today, valid from and to
   today, the chosen teacher) are inserted straight into the ``lesson`` table before the server
   starts. They get no sync records: nothing in the push path reads them.
3. ``reppu serve --workers W`` (uvicorn, real processes; each ``--workers`` value in turn) and
   one login per teacher (argon2, slow: timed apart, before any burst;
   ``REPPU_LOGIN_FAILURES_PER_ADDRESS`` is lifted since every teacher logs in from 127.0.0.1).
4. A burst: all K teachers push their roll call at once (``attendance.mark`` x 25 in one
   ``POST /sync/push``, statuses drawn with ``--seed``: mostly present, some absent or late),
   from a load generator in a separate process (aiohttp, one kept-alive connection per
   teacher, opened before the clock starts). Measured: mutations applied per second and pushes
   per second over first send to last answer, push latency (p50, p95, max), the CPU split
   between the server, PostgreSQL, the generator and everything else. Every result is checked:
   a rejected mutation or a failed push makes the run broken (no figure), and the rows in
   ``roll_mark`` must grow by exactly the marks applied. ``--runs`` bursts per server, each on
   a lesson of its own, so that every mark is a first mark.
5. Where the time goes: statements per mutation, counted at the drivers with the app served in
   this process (ASGI, one push after another, the server stopped), with the time of one push
   there; and, when py-spy is found (``--py-spy``, else ``py-spy`` on the PATH, in the venv or
   in ``/tmp/pyspy/bin``), a profile of one server worker during one more burst (not counted).

Every process started runs in its own process group and is stopped, and every database and
temporary folder is removed, also on an error, Ctrl-C or SIGTERM. Only loopback traffic. The
figures are appended to ``docs/benchmarks.md`` as a dated entry of its "Roll-call burst"
section (``--no-record`` skips that; ``--quick`` and broken runs never record).

Run: ``.venv/bin/python scripts/bench_rollcall.py [--pupils 160000] [--backend both]``
Smoke run (2,000 pupils, 40 teachers, one burst, about a minute a backend):
``.venv/bin/python scripts/bench_rollcall.py --quick``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import platform
import random
import re
import resource
import secrets
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import asyncpg
import httpx
from bench_record import describe_commit, describe_machine
from bench_storm import CpuSnapshot, Db, drop_database, free_port, sql_marks, wait_for_quiet
from bench_sync import (
    BenchError,
    Cleanup,
    StatementCounter,
    counting_statements,
    run_to_end,
    say,
    wait_until_up,
    worker_pids,
)

from schemas.sync import SCHEMA_VERSION
from server.clock import school_today
from server.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BENCHMARKS = ROOT / "docs" / "benchmarks.md"
SECTION = "## Roll-call burst"
SECTION_INTRO = """\
`scripts/bench_rollcall.py` loads a demo city into a fresh SQLite file and a fresh PostgreSQL
database, serves each with `reppu serve` (uvicorn, real processes), logs K teachers in, and
then has all K push the roll call of one of their home classes at once (`attendance.mark` x 25
in one `POST /sync/push` each) from a load generator in a separate process: mutations applied
per second, pushes per second and push latency. Requirement (issue 4): 15,000 teachers x 25
marks in 5 minutes, 1,250 mutations/s on 2 cores; the aim is 5,000. Each run appends an entry
below.
"""
DEFAULT_ADMIN_URL = os.environ.get(
    "REPPU_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
DEMO_PASSWORD = "reppu-demo"  # noqa: S105 - the documented password of every demo account
DEVICE_NAME = "bench roll call"
REQUIRED_RATE = 1250.0
AIM_RATE = 5000.0
ADDRESS_LIMIT = 100_000
LOGIN_CONCURRENCY = 4
LOGIN_ATTEMPTS = 3
PROGRESS_SECONDS = 5.0
START_DELAY = 2.0
"""Seconds between launching the generator and its clock starting (imports, connections)."""
INPROCESS_PUSHES = 12
COUNTED_PUSHES = 3
PY_SPY_RATE = 100
PUSH_TIMEOUT = 300.0
RETRIES_503 = 5
RETRY_SECONDS = 1.0


# -- the plan ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Teacher:
    person: int
    username: str
    group: int
    pupils: tuple[int, ...]
    lessons: tuple[int, ...]
    """Today's lessons of the class, one per occasion (burst, profile, in-process count)."""


@dataclass(slots=True)
class Setup:
    teachers: list[Teacher]
    demo_lessons: int = 0
    """Lessons of the demo timetable used (today's weekday, not cancelled)."""
    inserted_lessons: int = 0
    weekday: int = 0


def status_of(rng: random.Random) -> dict[str, Any]:
    """A pupil's mark: 90 % present, 7 % absent, 3 % late by 1-30 minutes."""
    draw = rng.random()
    if draw < 0.90:
        return {"status": "present"}
    if draw < 0.97:
        return {"status": "absent"}
    return {"status": "late", "late_minutes": rng.randint(1, 30)}


@dataclass(slots=True)
class Installation:
    """One teacher's phone: its token, its client id and its next mutation id."""

    teacher: Teacher
    token: str
    client_id: str
    next_id: int = 1

    def roll_call(self, occasion: int, day: dt.date, seed: int) -> bytes:
        """The body of one roll-call push: every chosen pupil of the class, marked now."""
        rng = random.Random(f"reppu-bench-rollcall:{seed}:{occasion}:{self.teacher.person}")  # noqa: S311
        now = dt.datetime.now(dt.UTC).isoformat()
        mutations = []
        for pupil in self.teacher.pupils:
            args = {
                "lesson_id": self.teacher.lessons[occasion],
                "on_date": day.isoformat(),
                "pupil_id": pupil,
                **status_of(rng),
            }
            mutations.append(
                {"id": self.next_id, "name": "attendance.mark", "args": args, "occurred_at": now}
            )
            self.next_id += 1
        body = {
            "schema_version": SCHEMA_VERSION,
            "client_id": self.client_id,
            "mutations": mutations,
        }
        return json.dumps(body, separators=(",", ":")).encode()


# -- database, demo city, teachers and lessons ------------------------------------------------


async def prepare_database(
    cleanup: Cleanup, backend: str, folder: Path, args: argparse.Namespace
) -> tuple[dict[str, str], str, Path | None, str | None]:
    """A fresh database with the demo city: the environment for ``reppu``, the version, the
    SQLite file (None on PostgreSQL) and the PostgreSQL database name (None on SQLite)."""
    env = dict(os.environ, REPPU_DATA_DIR=str(folder), PYTHONUNBUFFERED="1")
    env["REPPU_LOGIN_FAILURES_PER_ADDRESS"] = str(ADDRESS_LIMIT)
    name: str | None = None
    if backend == "sqlite":
        path: Path | None = folder / "reppu.sqlite3"
        env["REPPU_DATABASE_URL"] = f"sqlite:///{path}"
        version = f"SQLite {sqlite3.sqlite_version}"
    else:
        path = None
        name = f"reppu_bench_rollcall_{secrets.token_hex(4)}"
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


_CLASS_SIZES_SQL = (
    'SELECT m."group", COUNT(*) FROM membership m JOIN school_group sg ON sg.id = m."group" '
    "WHERE sg.kind = 'home_class' AND m.role = 'pupil' "
    "AND m.valid_from <= {} AND (m.valid_to IS NULL OR m.valid_to >= {}) "
    'GROUP BY m."group"'
)
_TEACHERS_SQL = (
    'SELECT m."group", m.person, a.username FROM membership m '
    "JOIN account a ON a.person = m.person "
    "WHERE m.role = 'teacher' AND NOT a.disabled "
    "AND m.valid_from <= {} AND (m.valid_to IS NULL OR m.valid_to >= {}) "
    'ORDER BY m."group", m.person'
)
_PUPILS_SQL = (
    "SELECT m.\"group\", m.person FROM membership m WHERE m.role = 'pupil' "
    "AND m.valid_from <= {} AND (m.valid_to IS NULL OR m.valid_to >= {}) "
    'ORDER BY m."group", m.person'
)
_LESSONS_TODAY_SQL = (
    'SELECT l.id, l."group" FROM lesson l WHERE l.weekday = {} '
    "AND l.valid_from <= {} AND (l.valid_to IS NULL OR l.valid_to >= {}) "
    "AND NOT EXISTS (SELECT 1 FROM lesson_change c WHERE c.lesson = l.id "
    'AND c.on_date = {} AND c.cancelled) ORDER BY l."group", l.starts_at, l.id'
)
_INSERT_LESSON_SQL = (
    'INSERT INTO lesson ("group", subject, teacher, room, weekday, starts_at, ends_at, '
    "valid_from, valid_to) VALUES ({}, {}, {}, NULL, {}, {}, {}, {}, {})"
)


async def choose_teachers(
    db: Db, env: dict[str, str], day: dt.date, args: argparse.Namespace, occasions: int
) -> Setup:
    """K home classes, largest first, each with a teacher not used yet, and ``occasions``
    lessons of each class today (inserting the missing ones)."""
    sizes = [(int(g), int(n)) for g, n in await db.rows(_CLASS_SIZES_SQL, day, day)]
    sizes.sort(key=lambda item: (-item[1], item[0]))
    teachers_of: dict[int, list[tuple[int, str]]] = {}
    for group, person, username in await db.rows(_TEACHERS_SQL, day, day):
        teachers_of.setdefault(int(group), []).append((int(person), str(username)))
    pupils_of: dict[int, list[int]] = {}
    for group, person in await db.rows(_PUPILS_SQL, day, day):
        pupils_of.setdefault(int(group), []).append(int(person))
    used: set[int] = set()
    picked: list[tuple[int, int, str]] = []
    for group, _ in sizes:
        free = [t for t in teachers_of.get(group, []) if t[0] not in used]
        if not free:
            continue
        person, username = free[0]
        used.add(person)
        picked.append((group, person, username))
        if len(picked) == args.teachers:
            break
    if len(picked) < args.teachers:
        raise BenchError(
            f"the demo city has only {len(picked)} home classes with a teacher of their own; "
            f"ask for fewer --teachers or more --pupils"
        )
    weekday = day.isoweekday()
    today_lessons: dict[int, list[int]] = {}
    for lesson, group in await db.rows(_LESSONS_TODAY_SQL, weekday, day, day, day):
        today_lessons.setdefault(int(group), []).append(int(lesson))
    setup = Setup([], weekday=weekday)
    missing: list[tuple[int, int, int]] = []  # (group, teacher, index)
    for group, person, _ in picked:
        have = today_lessons.get(group, [])[:occasions]
        setup.demo_lessons += len(have)
        missing += [(group, person, i) for i in range(len(have), occasions)]
    inserted = await insert_lessons(env, day, missing)
    setup.inserted_lessons = len(missing)
    for group, person, username in picked:
        lessons = today_lessons.get(group, [])[:occasions]
        lessons += [inserted[(group, i)] for i in range(len(lessons), occasions)]
        pupils = tuple(pupils_of[group][: args.marks])
        setup.teachers.append(Teacher(person, username, group, pupils, tuple(lessons)))
    return setup


async def insert_lessons(
    env: dict[str, str], day: dt.date, missing: Sequence[tuple[int, int, int]]
) -> dict[tuple[int, int], int]:
    """Lessons for today only, straight into the ``lesson`` table (before the server starts):
    ``(group, index) -> lesson id``. Times are the index's period from 08:00."""
    if not missing:
        return {}
    ids: dict[tuple[int, int], int] = {}
    url = env["REPPU_DATABASE_URL"]

    def times(index: int) -> tuple[dt.time, dt.time]:
        start = dt.datetime.combine(day, dt.time(8, 0)) + dt.timedelta(minutes=55 * index)
        return start.time(), (start + dt.timedelta(minutes=45)).time()

    if url.startswith("sqlite:"):
        # The text forms Piccolo's SQLite engine writes and reads back (server/demo/load.py).
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30)) as c:
            for group, teacher, index in missing:
                starts, ends = times(index)
                cursor = c.execute(
                    _INSERT_LESSON_SQL.replace("{}", "?"),
                    (
                        group,
                        "Nimenhuuto (benchmark)",
                        teacher,
                        day.isoweekday(),
                        starts.isoformat(),
                        ends.isoformat(),
                        day.isoformat(),
                        day.isoformat(),
                    ),
                )
                ids[(group, index)] = int(cursor.lastrowid or 0)
            c.commit()
        return ids
    pg = await asyncpg.connect(url, timeout=10)
    try:
        async with pg.transaction():
            for group, teacher, index in missing:
                starts, ends = times(index)
                ids[(group, index)] = int(
                    await pg.fetchval(
                        sql_marks(_INSERT_LESSON_SQL, True) + " RETURNING id",
                        group,
                        "Nimenhuuto (benchmark)",
                        teacher,
                        day.isoweekday(),
                        starts,
                        ends,
                        day,
                        day,
                    )
                )
    finally:
        await pg.close()
    return ids


# -- logins -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Logins:
    seconds: float = 0.0
    refused: int = 0


async def log_in(
    base: str, teachers: Sequence[Teacher], run_tag: str
) -> tuple[list[Installation], Logins]:
    """One login per teacher, a few at a time (the server checks as many passwords at once as
    it has cores); a refused attempt (429, 503) is tried again after a second."""
    result = Logins()
    gate = asyncio.Semaphore(LOGIN_CONCURRENCY)
    done = 0

    async def one(http: httpx.AsyncClient, teacher: Teacher) -> Installation:
        nonlocal done
        async with gate:
            for attempt in range(LOGIN_ATTEMPTS):
                answer = await http.post(
                    "/auth/login",
                    json={
                        "username": teacher.username,
                        "password": DEMO_PASSWORD,
                        "device_name": DEVICE_NAME,
                    },
                )
                if answer.status_code == 200:
                    done += 1
                    client_id = f"rollcall-{run_tag}-{teacher.person}"
                    return Installation(teacher, str(answer.json()["token"]), client_id)
                if answer.status_code in (429, 503) and attempt + 1 < LOGIN_ATTEMPTS:
                    result.refused += 1
                    await asyncio.sleep(1.0)
                    continue
                raise BenchError(
                    f"login of {teacher.username} answered {answer.status_code}: "
                    f"{answer.text[:200]}"
                )
        raise BenchError(f"login of {teacher.username} refused {LOGIN_ATTEMPTS} times")

    async def ticker() -> None:
        while True:
            await asyncio.sleep(PROGRESS_SECONDS)
            say(f"  logins: {done:,}/{len(teachers):,}")

    started = time.monotonic()
    tick = asyncio.create_task(ticker())
    try:
        async with httpx.AsyncClient(base_url=base, timeout=120.0) as http:
            installs = await asyncio.gather(*(one(http, t) for t in teachers))
    finally:
        tick.cancel()
    result.seconds = time.monotonic() - started
    return list(installs), result


# -- the load generator (a separate process) --------------------------------------------------


async def _generate(plan: dict[str, Any]) -> dict[str, Any]:
    """Every push of ``plan`` at once over one kept-alive connection each; the clock starts at
    ``plan["start_at"]`` (``time.monotonic()``, the same clock in every process)."""
    import aiohttp

    pushes: list[dict[str, Any]] = plan["pushes"]
    url = plan["base"] + "/sync/push"
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=PUSH_TIMEOUT)
    out: list[dict[str, Any]] = [{} for _ in pushes]
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        # Open one connection per push before the clock starts: phones keep theirs alive.
        async def warm() -> None:
            async with session.get(plan["base"] + "/health") as answer:
                await answer.read()

        await asyncio.gather(*(warm() for _ in pushes))
        await asyncio.sleep(max(0.0, float(plan["start_at"]) - time.monotonic()))

        async def one(i: int, push: dict[str, Any]) -> None:
            headers = {
                "Authorization": f"Bearer {push['token']}",
                "Content-Type": "application/json",
            }
            t0 = time.monotonic()
            busy = 0
            while True:
                try:
                    async with session.post(url, data=push["body"].encode(), headers=headers) as a:
                        raw = await a.read()
                        status = a.status
                except (aiohttp.ClientError, TimeoutError) as exc:
                    out[i] = {"seconds": time.monotonic() - t0, "http": 0, "error": repr(exc)}
                    return
                if status != 503 or busy >= RETRIES_503:
                    break
                # "The database is busy; try again in a moment": what the app does. Mutations
                # the push applied before the 503 come back as replays.
                busy += 1
                await asyncio.sleep(RETRY_SECONDS)
            seconds = time.monotonic() - t0
            entry: dict[str, Any] = {
                "seconds": seconds,
                "http": status,
                "end": time.monotonic(),
                "busy": busy,
            }
            if status != 200:
                entry["error"] = raw[:300].decode(errors="replace")
            else:
                results = json.loads(raw)["results"]
                entry["applied"] = sum(1 for r in results if r.get("status") == "applied")
                entry["rejected"] = [
                    [r.get("code"), r.get("reason")]
                    for r in results
                    if r.get("status") != "applied"
                ]
            out[i] = entry

        usage0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.monotonic()
        await asyncio.gather(*(one(i, p) for i, p in enumerate(pushes)))
        t1 = time.monotonic()
        usage1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
    return {"t0": t0, "t1": t1, "cpu": cpu, "pushes": out}


def generator_main(plan_path: Path, out_path: Path) -> int:
    plan = json.loads(plan_path.read_text())
    result = asyncio.run(_generate(plan))
    out_path.write_text(json.dumps(result))
    return 0


# -- one burst --------------------------------------------------------------------------------


@dataclass(slots=True)
class Burst:
    label: str
    workers: int
    run: int
    pushes: int = 0
    marks: int = 0
    applied: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    http_errors: Counter[str] = field(default_factory=Counter)
    busy_retries: int = 0
    """503 answers (database busy) the generator tried again after a second, as the app does."""
    pushes_retried: int = 0
    first_problem: str = ""
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    """Share of the machine's cores during the burst, by group."""
    busy_before: float = 0.0
    rows_added: int = 0
    """Rows ``roll_mark`` grew by."""
    waits: Counter[str] = field(default_factory=Counter)
    """PostgreSQL: what the server's connections were doing, over samples of
    ``pg_stat_activity`` taken during the burst."""
    wait_samples: int = 0

    @property
    def broken(self) -> bool:
        return bool(self.rejected or self.http_errors) or self.rows_added != self.applied

    @property
    def rate(self) -> float:
        return self.applied / self.seconds if self.seconds else 0.0

    def cpu_ms(self, group: str) -> float:
        """Milliseconds of CPU ``group`` spent per applied mutation during the burst."""
        cores = os.cpu_count() or 1
        return self.cpu.get(group, 0.0) * cores * self.seconds / max(1, self.applied) * 1000

    @property
    def ceiling(self) -> float:
        """Mutations/s the machine's cores would allow if the server and PostgreSQL had them
        to themselves at this CPU cost per mutation (an extrapolation, not a measurement)."""
        per = self.cpu_ms("server") + self.cpu_ms("PostgreSQL")
        return (os.cpu_count() or 1) * 1000 / per if per else 0.0

    @property
    def push_rate(self) -> float:
        return self.pushes / self.seconds if self.seconds else 0.0


def _pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


WAIT_SAMPLE_SECONDS = 0.05


async def sample_waits(url: str, database: str, burst: Burst, stop: asyncio.Event) -> None:
    """Every ``WAIT_SAMPLE_SECONDS``, what each connection of the server to ``database`` is
    doing: running, waiting on a lock or on I/O, or idle between the server's statements."""
    pg = await asyncpg.connect(url, timeout=10)
    try:
        while not stop.is_set():
            rows = await pg.fetch(
                "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'",
                database,
            )
            burst.wait_samples += 1
            for row in rows:
                state, kind, event = row["state"], row["wait_event_type"], row["wait_event"]
                if state == "active":
                    label = f"active, waiting: {kind} {event}" if kind else "active, on CPU"
                elif state == "idle in transaction":
                    label = "idle in transaction (the server's next statement)"
                else:
                    label = f"{state} (no transaction)"
                burst.waits[label] += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), WAIT_SAMPLE_SECONDS)
    finally:
        await pg.close()


async def run_burst(
    cleanup: Cleanup,
    folder: Path,
    base: str,
    installs: Sequence[Installation],
    occasion: int,
    burst: Burst,
    db: Db,
    serve_pid: int,
    database: str | None,
    args: argparse.Namespace,
) -> Burst:
    day = school_today()
    bodies = [i.roll_call(occasion, day, args.seed) for i in installs]
    burst.pushes = len(bodies)
    burst.marks = sum(len(i.teacher.pupils) for i in installs)
    plan_path = folder / f"plan-{burst.label}.json"
    out_path = folder / f"result-{burst.label}.json"
    start_at = time.monotonic() + START_DELAY + len(bodies) / 500
    plan = {
        "base": base,
        "start_at": start_at,
        "pushes": [
            {"token": i.token, "body": b.decode()} for i, b in zip(installs, bodies, strict=True)
        ],
    }
    plan_path.write_text(json.dumps(plan))
    rows0 = int(await db.value("SELECT COUNT(*) FROM roll_mark"))
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--generate",
        str(plan_path),
        str(out_path),
    ]
    say(
        f"  {burst.label}: {burst.pushes:,} teachers push {burst.marks:,} marks at once "
        f"(batches of {burst.marks / max(1, burst.pushes):.1f})"
    )
    gen = cleanup.start(
        cmd, env=dict(os.environ, PYTHONUNBUFFERED="1"), log=folder / "generator.log"
    )
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    roles = {"server": [serve_pid]}
    stop = asyncio.Event()
    sampler = (
        asyncio.create_task(sample_waits(db.url, database, burst, stop))
        if database is not None
        else None
    )
    cpu0 = CpuSnapshot.take(roles, database)
    t_snap0 = time.monotonic()
    deadline = t_snap0 + PUSH_TIMEOUT + 30
    next_report = t_snap0 + PROGRESS_SECONDS
    while gen.poll() is None:
        if time.monotonic() > deadline:
            raise BenchError(f"{burst.label}: the load generator did not finish")
        if time.monotonic() >= next_report:
            next_report += PROGRESS_SECONDS
            say(f"  {burst.label}: {time.monotonic() - t_snap0:.0f} s into the burst")
        await asyncio.sleep(0.05)
    cpu1 = CpuSnapshot.take(roles, database)
    t_snap1 = time.monotonic()
    stop.set()
    if sampler is not None:
        await sampler
    cleanup.stop(gen)
    if gen.returncode != 0 or not out_path.exists():
        tail = (folder / "generator.log").read_text(errors="replace")[-500:]
        raise BenchError(f"{burst.label}: the load generator failed ({gen.returncode}): {tail}")
    result = json.loads(out_path.read_text())
    ends = [float(p["end"]) for p in result["pushes"] if "end" in p]
    burst.seconds = (max(ends) if ends else float(result["t1"])) - float(result["t0"])
    for push in result["pushes"]:
        burst.latencies.append(float(push["seconds"]))
        burst.busy_retries += int(push.get("busy", 0))
        burst.pushes_retried += 1 if push.get("busy") else 0
        if "error" in push:
            burst.http_errors[str(push["http"])] += 1
            burst.first_problem = burst.first_problem or f"HTTP {push['http']}: {push['error']}"
            continue
        burst.applied += int(push["applied"])
        for code, reason in push["rejected"]:
            burst.rejected[str(code)] += 1
            burst.first_problem = burst.first_problem or f"{code}: {reason}"
    burst.rows_added = int(await db.value("SELECT COUNT(*) FROM roll_mark")) - rows0
    cores = os.cpu_count() or 1
    elapsed = t_snap1 - t_snap0
    used = {k: cpu1.groups[k] - cpu0.groups.get(k, 0.0) for k in cpu1.groups}
    used["load generator"] = float(result["cpu"])
    used["this process"] = cpu1.me - cpu0.me
    used["other"] = max(0.0, (cpu1.machine - cpu0.machine) - sum(used.values()))
    burst.cpu = {k: v / (elapsed * cores) for k, v in used.items()}
    verdict = "BROKEN" if burst.broken else "ok"
    say(
        f"  {burst.label}: {burst.applied:,} applied in {burst.seconds:.2f} s = "
        f"{burst.rate:,.0f} mutations/s, {burst.push_rate:,.1f} pushes/s; p50 "
        f"{_ms(_pct(burst.latencies, 0.5))}, p95 {_ms(_pct(burst.latencies, 0.95))}; "
        f"rejected {sum(burst.rejected.values())}, 503s retried {burst.busy_retries} "
        f"(in {burst.pushes_retried} pushes), failed pushes "
        f"{sum(burst.http_errors.values())}, roll_mark +{burst.rows_added:,}: {verdict}"
    )
    if burst.first_problem:
        say(f"  first problem: {burst.first_problem[:300]}")
    say("  CPU during the burst: " + ", ".join(f"{k} {v:.0%}" for k, v in burst.cpu.items()))
    if burst.waits:
        total = sum(burst.waits.values())
        say(
            "  PostgreSQL connections: "
            + ", ".join(f"{k} {n / total:.0%}" for k, n in burst.waits.most_common(6))
        )
    return burst


# -- where the time goes ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InProcess:
    mutations: int
    """Mutations of the counted pushes."""
    statements: Counter[str]
    connections: int
    push_ms: float
    """One push of a roll call, in this process, one after another."""
    marks_per_push: float

    @property
    def per_mutation(self) -> float:
        return sum(self.statements.values()) / max(1, self.mutations)


async def count_inprocess(
    env: dict[str, str], installs: Sequence[Installation], occasion: int, seed: int
) -> InProcess:
    """The app served in this process (ASGI, no HTTP server, nothing else running): statements
    and new connections per mutation over a few roll calls, and the time of one roll-call push."""
    from server.app import create_app
    from server.db.engine import open_database

    settings = load_settings(env)
    chosen = list(installs[: COUNTED_PUSHES + INPROCESS_PUSHES])
    if len(chosen) < 2:
        raise BenchError("too few teachers for the in-process count")
    counted, timed = chosen[: max(1, len(chosen) // 4)], chosen[max(1, len(chosen) // 4) :]
    counter = StatementCounter()
    day = school_today()

    async def push(http: httpx.AsyncClient, install: Installation) -> int:
        body = install.roll_call(occasion, day, seed)
        answer = await http.post(
            "/sync/push",
            content=body,
            headers={
                "Authorization": f"Bearer {install.token}",
                "Content-Type": "application/json",
            },
        )
        if answer.status_code != 200:
            raise BenchError(f"in-process push answered {answer.status_code}: {answer.text[:200]}")
        results = answer.json()["results"]
        bad = [r for r in results if r.get("status") != "applied"]
        if bad:
            raise BenchError(f"in-process push: {len(bad)} rejected, first {bad[0]}")
        return len(results)

    async with open_database(settings) as engine:
        app = create_app(settings, engine=engine)
        transport = httpx.ASGITransport(app=cast(Any, app))
        async with httpx.AsyncClient(transport=transport, base_url="http://reppu") as http:
            mutations = 0
            with counting_statements(counter):
                for install in counted:
                    mutations += await push(http, install)
            t0 = time.perf_counter()
            marks = 0
            for install in timed:
                marks += await push(http, install)
            push_ms = (time.perf_counter() - t0) / len(timed) * 1000
    return InProcess(
        mutations, counter.statements, counter.connections, push_ms, marks / len(timed)
    )


# Where a sample of a worker's event-loop thread belongs: the innermost Reppu step on its
# stack, else the layer of the framework or server it is in.
PROFILE_STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("token lookup (authenticate)", ("(server/identity.py",)),
    ("the caller's access facts (load_access_facts)", ("(server/access.py",)),
    ("sync records, change log, partition heads (write_records)", ("(server/sync_store.py",)),
    (
        "attendance from all the acts (_derive, sync/attendance.py)",
        ("_derive (server/absences.py", "(sync/attendance.py"),
    ),
    (
        "mark checks and the roll_mark insert (mark_attendance)",
        (
            "mark_attendance (server/absences.py",
            "_lesson (server/absences.py",
            "_group_pupils (server/absences.py",
        ),
    ),
    (
        "transaction per mutation: BEGIN, result row, COMMIT (server/push.py)",
        ("(server/push.py", "(server/db/engine.py"),
    ),
    ("policy (sync/policy.py)", ("(sync/policy.py",)),
    ("route, body decode, answer encode", ("(server/routes/sync.py", "(server/wire.py")),
)
PROFILE_LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("logging (uvicorn's access log)", ("(logging/",)),
    ("Litestar (middleware, routing, DI, response)", ("(litestar/",)),
    ("uvicorn + httptools (HTTP)", ("(uvicorn/",)),
)
PROFILE_ROWS = (
    *(name for name, _ in PROFILE_STEPS),
    *(name for name, _ in PROFILE_LAYERS),
    "event loop (uvloop) and the rest",
)


@dataclass(frozen=True, slots=True)
class Profile:
    seconds: float
    samples: int
    shares: dict[str, float]
    in_db_layer: float
    thread_start: float
    other_threads: int
    """Samples of the worker's other threads (aiosqlite's: where SQLite's statements run)."""
    top: list[tuple[str, float]]


def _profile_step(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, patterns in PROFILE_STEPS:
            if any(p in frame for p in patterns):
                return name
    for name, patterns in PROFILE_LAYERS:
        if any(p in f for f in frames for p in patterns):
            return name
    return "event loop (uvloop) and the rest"


def analyse_profile(raw: str, seconds: float) -> Profile:
    steps: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = db = threads = others = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = stack.split(";")
        count = int(count_text)
        if "MainThread" not in frames[0]:
            others += count
            continue
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
        total,
        {name: n / total for name, n in steps.items()},
        db / total,
        threads / total,
        others,
        [(name, n / total) for name, n in leaves.most_common(6)],
    )


def find_py_spy(given: str | None) -> str | None:
    if given:
        return given
    for candidate in (shutil.which("py-spy"), BIN / "py-spy", Path("/tmp/pyspy/bin/py-spy")):  # noqa: S108
        if candidate and Path(candidate).exists():
            return str(candidate)
    return None


async def profile_burst(
    cleanup: Cleanup,
    folder: Path,
    base: str,
    installs: Sequence[Installation],
    occasion: int,
    db: Db,
    serve_pid: int,
    database: str | None,
    workers: int,
    expected_seconds: float,
    args: argparse.Namespace,
) -> Profile | str:
    """py-spy on one worker during one more burst (its figures are not counted)."""
    py_spy = find_py_spy(args.py_spy)
    if py_spy is None:
        return "py-spy not found (`pip install --target /tmp/pyspy py-spy`): profile skipped"
    pids = worker_pids(serve_pid) or [serve_pid]
    out = folder / "profile.txt"
    # py-spy records for a fixed time: the length of the bursts before, plus a margin.
    duration = max(2, round(expected_seconds + 2))
    cmd = [
        py_spy,
        "record",
        "--pid",
        str(pids[0]),
        "--duration",
        str(duration),
        "--rate",
        str(PY_SPY_RATE),
        "--format",
        "raw",
        "--threads",
        "--nonblocking",
        "--output",
        str(out),
    ]
    say(f"  py-spy on worker {pids[0]} for {duration} s during one more burst")
    recorder = cleanup.start(cmd, env=dict(os.environ), log=folder / "py-spy.log")
    await asyncio.sleep(1.0)
    burst = Burst("profiled", workers, 0)
    try:
        await run_burst(
            cleanup, folder, base, installs, occasion, burst, db, serve_pid, database, args
        )
        try:
            await asyncio.to_thread(recorder.wait, duration + 30)
        except subprocess.TimeoutExpired:
            return "py-spy did not finish: profile skipped"
    finally:
        cleanup.stop(recorder)
    if recorder.returncode != 0 or not out.exists():
        tail = (folder / "py-spy.log").read_text(errors="replace")[-300:]
        return f"py-spy failed ({recorder.returncode}): {tail.strip()}"
    return analyse_profile(out.read_text(errors="replace"), min(burst.seconds, duration - 1.0))


# -- one backend ------------------------------------------------------------------------------


@dataclass(slots=True)
class BackendRun:
    backend: str
    version: str
    setup: Setup | None = None
    demo_seconds: float = 0.0
    logins: dict[int, Logins] = field(default_factory=dict)
    bursts: list[Burst] = field(default_factory=list)
    inprocess: InProcess | str = "not measured"
    profile: Profile | str = "not run"
    log_lines: list[str] = field(default_factory=list)


def scan_log(log: Path, workers: int) -> list[str]:
    statuses: Counter[str] = Counter()
    errors: list[str] = []
    for line in log.read_text(errors="replace").splitlines():
        status = re.search(r'HTTP/1\.1" (\d{3})', line)
        if status:
            statuses[status.group(1)] += 1
        elif re.search(r"\b(ERROR|CRITICAL)\b", line) or line.startswith("Traceback"):
            errors.append(line.strip()[:160])
    codes = ", ".join(f"{k}: {v:,}" for k, v in sorted(statuses.items()))
    text = f"server log with {workers} worker(s): status codes {codes or 'none logged'}"
    text += f"; {len(errors)} ERROR lines" + (f", first: `{errors[0]}`" if errors else "")
    return [text]


async def run_backend(cleanup: Cleanup, backend: str, args: argparse.Namespace) -> BackendRun:
    folder = Path(tempfile.mkdtemp(prefix=f"reppu-bench-rollcall-{backend}-"))
    cleanup.folders.append(folder)
    databases_before = list(cleanup.databases)
    db: Db | None = None
    occasions = len(args.workers) * args.runs + int(args.profile) + int(args.inprocess)
    try:
        started = time.monotonic()
        env, version, sqlite_path, db_name = await prepare_database(cleanup, backend, folder, args)
        run = BackendRun(backend, version, demo_seconds=time.monotonic() - started)
        db = Db(env["REPPU_DATABASE_URL"], sqlite_path)
        await db.open()
        day = school_today()
        say(f"{version}: {args.teachers:,} teachers and their classes; lessons of {day}")
        setup = await choose_teachers(db, env, day, args, occasions)
        run.setup = setup
        say(
            f"  {len(setup.teachers):,} home classes, "
            f"{sum(len(t.pupils) for t in setup.teachers):,} pupils; lessons today: "
            f"{setup.demo_lessons:,} of the demo timetable, "
            f"{setup.inserted_lessons:,} inserted (ISO weekday {setup.weekday})"
        )
        run_tag = secrets.token_hex(3)
        installs: list[Installation] = []
        occasion = 0
        for w_index, workers in enumerate(args.workers):
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            log = folder / f"serve-{workers}.log"
            serve_env = dict(env, REPPU_WORKERS=str(workers))
            cmd = [str(BIN / "reppu"), "serve", "--host", "127.0.0.1", "--port", str(port)]
            cmd += ["--workers", str(workers)]
            say(f"{version}: reppu serve --workers {workers} on port {port}")
            serve = cleanup.start(cmd, env=serve_env, log=log)
            try:
                await wait_until_up(serve, base + "/health", log)
                if not installs:
                    say(
                        f"{version}: {len(setup.teachers):,} logins (argon2: about 10/s on 2 cores)"
                    )
                    installs, logins = await log_in(base, setup.teachers, run_tag)
                    run.logins[workers] = logins
                    say(f"  logins took {logins.seconds:.1f} s ({logins.refused} refused attempts)")
                for r in range(args.runs):
                    busy = await asyncio.to_thread(wait_for_quiet, args.quiet_wait)
                    burst = Burst(f"{backend} w{workers} run {r + 1}", workers, r + 1)
                    burst.busy_before = busy
                    await run_burst(
                        cleanup,
                        folder,
                        base,
                        installs,
                        occasion,
                        burst,
                        db,
                        serve.pid,
                        db_name,
                        args,
                    )
                    run.bursts.append(burst)
                    occasion += 1
                if args.profile and w_index == len(args.workers) - 1:
                    await asyncio.to_thread(wait_for_quiet, args.quiet_wait)
                    try:
                        run.profile = await profile_burst(
                            cleanup,
                            folder,
                            base,
                            installs,
                            occasion,
                            db,
                            serve.pid,
                            db_name,
                            workers,
                            run.bursts[-1].seconds,
                            args,
                        )
                    except BenchError as exc:  # the bursts' figures stand without it
                        run.profile = f"not measured ({exc})"
                    occasion += 1
            finally:
                cleanup.stop(serve)
                run.log_lines += scan_log(log, workers)
        if args.inprocess:
            say(f"{version}: statements per mutation, in this process (server stopped)")
            try:
                run.inprocess = await count_inprocess(env, installs, occasion, args.seed)
                ip = run.inprocess
                say(
                    f"  {ip.per_mutation:.1f} statements and "
                    f"{ip.connections / max(1, ip.mutations):.2f} new connections per mutation; "
                    f"one roll-call push {ip.push_ms:,.0f} ms"
                )
            except Exception as exc:  # the bursts' figures stand without it
                run.inprocess = f"not measured ({type(exc).__name__}: {exc})"
                say(f"  {run.inprocess}")
        return run
    finally:
        if db is not None:
            await db.close()
        for admin_url, name in [d for d in cleanup.databases if d not in databases_before]:
            say(f"dropping database {name}")
            await drop_database(admin_url, name)
            cleanup.databases.remove((admin_url, name))
        if args.keep_logs:
            keep = args.keep_logs / backend
            keep.mkdir(parents=True, exist_ok=True)
            for item in folder.glob("*"):
                if item.suffix in (".log", ".txt"):
                    shutil.copy(item, keep / item.name)
        cleanup.remove_folder(folder)


# -- the entry --------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def _cpu_cell(burst: Burst) -> str:
    order = ["server", "PostgreSQL", "load generator", "other"]
    cpu = dict(burst.cpu)
    cpu["other"] = cpu.get("other", 0.0) + cpu.get("this process", 0.0)
    return " / ".join(f"{cpu[k]:.0%}" if k in cpu else "-" for k in order)


def _burst_table(runs: list[BackendRun]) -> list[str]:
    lines = [
        "| backend | workers | run | pushes | marks applied | rejected | 503 retried (pushes) "
        "| failed pushes | burst "
        "| **mutations/s** | pushes/s | p50 | p95 | max | CPU: server / PostgreSQL / load "
        "generator / other | CPU per mutation: server / PostgreSQL | ceiling on free cores "
        "| of 1,250/s | of 5,000/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
        "---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in runs:
        for b in r.bursts:
            rate = "BROKEN" if b.broken else f"**{b.rate:,.0f}**"
            lines.append(
                f"| {r.version} | {b.workers} | {b.run} | {b.pushes:,} | {b.applied:,} | "
                f"{sum(b.rejected.values()):,} | {b.busy_retries:,} ({b.pushes_retried:,}) | "
                f"{sum(b.http_errors.values()):,} | "
                f"{b.seconds:.2f} s | {rate} | {b.push_rate:,.1f} | {_ms(_pct(b.latencies, 0.5))} "
                f"| {_ms(_pct(b.latencies, 0.95))} | {_ms(max(b.latencies, default=0.0))} | "
                f"{_cpu_cell(b)} | {b.cpu_ms('server'):.1f} / {b.cpu_ms('PostgreSQL'):.1f} ms | "
                f"{b.ceiling:,.0f}/s | {b.rate / REQUIRED_RATE:.0%} | {b.rate / AIM_RATE:.0%} |"
            )
    return lines


def _setup_lines(runs: list[BackendRun]) -> list[str]:
    lines = []
    for r in runs:
        s = r.setup
        if s is None:
            continue
        marks = [len(t.pupils) for t in s.teachers]
        logins = "; ".join(
            f"{lg.seconds:.1f} s ({lg.refused} refused attempts)" for lg in r.logins.values()
        )
        busy = ", ".join(f"{b.busy_before:.0%}" for b in r.bursts)
        lines.append(
            f"- {r.version}: migrate and demo city {r.demo_seconds:.0f} s; {len(s.teachers):,} "
            f"teachers, each one home class of {min(marks)}-{max(marks)} pupils (mean "
            f"{statistics.fmean(marks):.1f}); today's lessons: {s.demo_lessons:,} of the demo "
            f"timetable, {s.inserted_lessons:,} inserted for today (ISO weekday {s.weekday}); "
            f"logins {logins}; CPU busy before each burst: {busy}"
        )
        for line in r.log_lines:
            lines.append(f"  - {line}")
        for b in r.bursts:
            if b.broken:
                lines.append(
                    f"  - {b.label} is BROKEN: rejected {dict(b.rejected)}, failed pushes "
                    f"{dict(b.http_errors)}, roll_mark grew by {b.rows_added:,} for "
                    f"{b.applied:,} applied; first problem: {b.first_problem[:200]}"
                )
    return lines


def _inprocess_lines(runs: list[BackendRun]) -> list[str]:
    done = [(r.version, r.inprocess) for r in runs if isinstance(r.inprocess, InProcess)]
    lines = [
        f"In-process count on {r.version}: {r.inprocess}."
        for r in runs
        if isinstance(r.inprocess, str)
    ]
    if not done:
        return lines
    lines += [
        "Statements per `attendance.mark`, counted at the drivers (aiosqlite, asyncpg) with the "
        f"app served in this process over ASGI, over {COUNTED_PUSHES} roll calls pushed one "
        "after another with nothing else running, and the time of one roll-call push there "
        "(the lower bound of a push's latency; one core). On SQLite each new connection also "
        "runs the two pragmas of `server/db/engine.py` through sqlite3 itself (not counted).",
        "",
        "| backend | statements per mutation | of which (per mutation) | new connections per "
        "mutation | one roll-call push in-process | per mutation | one core's ceiling |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for version, ip in done:
        kinds = ", ".join(
            f"{n / ip.mutations:.2g} {kind}" for kind, n in ip.statements.most_common()
        )
        per_mut = ip.push_ms / ip.marks_per_push
        lines.append(
            f"| {version} | {ip.per_mutation:.1f} | {kinds} | "
            f"{ip.connections / max(1, ip.mutations):.2f} | {ip.push_ms:,.1f} ms "
            f"({ip.marks_per_push:.0f} marks) | {per_mut:.2f} ms | {1000 / per_mut:,.0f}/s |"
        )
    return lines


def _waits_lines(runs: list[BackendRun]) -> list[str]:
    bursts = [(r.version, b) for r in runs for b in r.bursts if b.waits]
    if not bursts:
        return []
    labels: Counter[str] = Counter()
    for _, b in bursts:
        labels.update(b.waits)
    head = [f"{b.workers} w, run {b.run}" for _, b in bursts]
    lines = [
        f"What the server's PostgreSQL connections were doing during each burst: "
        f"`pg_stat_activity` sampled every {WAIT_SAMPLE_SECONDS * 1000:.0f} ms (share of "
        "connection-samples; the sampler's own connection left out).",
        "",
        "| connection state | " + " | ".join(head) + " |",
        "| --- |" + " ---: |" * len(bursts),
    ]
    for label, _ in labels.most_common(8):
        cells = [f"{b.waits[label] / max(1, sum(b.waits.values())):.0%}" for _, b in bursts]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    cells = [f"{sum(b.waits.values()) / max(1, b.wait_samples):.1f}" for _, b in bursts]
    lines.append("| *connections open (mean)* | " + " | ".join(cells) + " |")
    return lines


def _profile_lines(runs: list[BackendRun]) -> list[str]:
    done = [(r.version, r.profile) for r in runs if isinstance(r.profile, Profile)]
    lines = [f"Profile on {r.version}: {r.profile}." for r in runs if isinstance(r.profile, str)]
    if not done:
        return lines
    lines += [
        f"py-spy (`record --rate {PY_SPY_RATE} --nonblocking --threads`) on one worker of the "
        "last server during one more burst (its figures not counted). Each event-loop sample "
        "goes to the innermost Reppu step on its stack, else to the layer it is in; a step "
        "includes the Piccolo and driver code it calls.",
        "",
        "| share of event-loop samples | " + " | ".join(v for v, _ in done) + " |",
        "| --- |" + " ---: |" * len(done),
    ]
    for name in PROFILE_ROWS:
        lines.append(
            f"| {name} | " + " | ".join(f"{p.shares.get(name, 0):.0%}" for _, p in done) + " |"
        )
    rows: tuple[tuple[str, Callable[[Profile], str]], ...] = (
        ("*inside Piccolo or the driver, whichever step*", lambda p: f"*{p.in_db_layer:.0%}*"),
        (
            "*starting a thread (aiosqlite: one per connection)*",
            lambda p: f"*{p.thread_start:.0%}*",
        ),
        (
            "*event-loop samples (busy share of the thread over the burst)*",
            lambda p: f"*{p.samples:,} ({p.samples / max(1e-9, p.seconds * PY_SPY_RATE):.0%})*",
        ),
        (
            "*samples of the worker's other threads (aiosqlite's)*",
            lambda p: f"*{p.other_threads:,}*",
        ),
    )
    for label, cell in rows:
        lines.append(f"| {label} | " + " | ".join(cell(p) for _, p in done) + " |")
    for version, p in done:
        top = "; ".join(f"`{name}` {share:.0%}" for name, share in p.top[:5])
        lines.append(f"\nTop leaf frames on {version}: {top}.")
    return lines


def interpretation(runs: list[BackendRun]) -> list[str]:
    parts = []
    for r in runs:
        good = [b for b in r.bursts if not b.broken]
        if not good:
            parts.append(f"{r.version}: no unbroken burst")
            continue
        by_workers: dict[int, list[float]] = {}
        for b in good:
            by_workers.setdefault(b.workers, []).append(b.rate)
        parts.append(
            f"{r.version} "
            + ", ".join(
                f"{' and '.join(f'{x:,.0f}' for x in rates)} mutations/s with {w} worker(s)"
                for w, rates in by_workers.items()
            )
        )
    best = max((b.rate for r in runs for b in r.bursts if not b.broken), default=0.0)
    return [
        "Applied mutations per second: "
        + "; ".join(parts)
        + f". Against the requirement of {REQUIRED_RATE:,.0f}/s and the aim of "
        f"{AIM_RATE:,.0f}/s, the best burst reached {best / REQUIRED_RATE:.0%} and "
        f"{best / AIM_RATE:.0%}."
    ]


def make_entry(args: argparse.Namespace, runs: list[BackendRun], load: tuple[float, ...]) -> str:
    command = (
        f".venv/bin/python scripts/bench_rollcall.py --pupils {args.pupils} --seed {args.seed} "
        f"--teachers {args.teachers} --marks {args.marks} --backend {args.backend} "
        f"--workers {','.join(map(str, args.workers))} --runs {args.runs}"
        f" --quiet-wait {args.quiet_wait:g}"
    )
    lines = [
        f"### {dt.date.today().isoformat()}: {args.pupils:,} pupils, {args.teachers:,} teachers,"
        f" seed {args.seed}",
        "",
        f"- Command: `{command}`",
        f"- Commit: {args.commit}, as the run started",
        f"- Machine: {describe_machine()}; Python {platform.python_version()}; "
        + "; ".join(r.version for r in runs),
        f"- Load average when the run started: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f} "
        "(the machine is shared)",
        "- Server: `reppu serve --workers W` (uvicorn, access log on, its in-process delivery "
        f"worker on), `REPPU_LOGIN_FAILURES_PER_ADDRESS={ADDRESS_LIMIT}`, other settings at "
        "their defaults. Load generator: a separate process (aiohttp), one kept-alive "
        "connection per teacher opened before the clock starts, every push sent at once.",
        *_setup_lines(runs),
        "",
        "A burst: every teacher pushes one roll call (their class's pupils, one `attendance.mark`"
        " each) at the same moment; the burst runs from the first push sent to the last answer "
        'read. A push answered 503 `server.unavailable` ("the database is busy; try again in '
        f'a moment") is sent again after {RETRY_SECONDS:.0f} s, up to {RETRIES_503} times, as '
        "the app would; the marks it had applied come back as replays, and its latency runs "
        "to the final answer. Mutations/s counts applied marks only. The CPU column splits "
        "the machine's cores during the burst (other: work of other users of this shared "
        "machine, and the kernel); "
        "CPU per mutation is the server's processes' (and PostgreSQL's backends') CPU time over "
        "the marks applied, and the ceiling is what the cores would allow at that cost if the "
        "server and PostgreSQL had them to themselves: an extrapolation, not a measurement.",
        "",
        *_burst_table(runs),
        "",
        "#### Where the time goes",
        "",
        *_inprocess_lines(runs),
        "",
        *_waits_lines(runs),
        "",
        *_profile_lines(runs),
        "",
        *interpretation(runs),
    ]
    return "\n".join(lines) + "\n"


def record(entry: str) -> None:
    """Insert the entry at the end of the "Roll-call burst" section, creating the section at
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
    if TREE_ENV in os.environ:
        args.commit = (
            describe_commit().split(" ")[0] + " (served from a clean copy of HEAD made with `git "
            "archive`; uncommitted changes in the checkout left out)"
        )
        say(f"Reppu's code comes from a clean copy of HEAD in {os.environ[TREE_ENV]}")
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    say(
        f"Roll-call burst: {args.pupils:,} pupils, {args.teachers:,} teachers x {args.marks} "
        f"marks, workers {args.workers}, {args.runs} run(s), backends {', '.join(backends)}; "
        f"load average {load[0]:.2f}"
    )
    runs = [await run_backend(cleanup, backend, args) for backend in backends]
    entry = make_entry(args, runs, load)
    if args.json:  # for scripts/bench
        from benchlib import write_json

        write_json(args.json, {"runs": runs})
    print()
    print(entry)
    broken = any(b.broken for r in runs for b in r.bursts)
    if broken:
        say("A burst is BROKEN (rejections, failed pushes or missing rows): not recorded.")
    elif args.record:
        record(entry)
        say(f"Recorded in {BENCHMARKS.relative_to(ROOT)}.")
    else:
        say("Not recorded (--quick or --no-record).")
    return 1 if broken else 0


def _workers(text: str) -> list[int]:
    try:
        values = [int(t) for t in text.split(",") if t.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError("workers: comma-separated counts, say 2 or 1,2") from exc
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("workers: comma-separated counts, say 2 or 1,2")
    return values


TREE_ENV = "REPPU_BENCH_TREE"
"""Set in the child that runs from a clean copy of HEAD: the copy's folder."""


def run_from_head(argv: Sequence[str]) -> int:
    """Run this benchmark again in a child whose Reppu code is a clean copy of HEAD (``git
    archive``), first on ``PYTHONPATH`` so that it wins over the editable install: others may
    be editing the checkout while the benchmark runs. The copy is removed afterwards."""
    copy = Path(tempfile.mkdtemp(prefix="reppu-bench-rollcall-head-"))
    child: subprocess.Popen[bytes] | None = None

    def forward(signum: int, _frame: object) -> None:
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    try:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", "HEAD"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        subprocess.run(  # noqa: S603 - tar, fixed arguments
            ["tar", "-x", "-C", str(copy)],  # noqa: S607
            input=archive.stdout,
            check=True,
        )
        env = dict(os.environ, PYTHONPATH=str(copy), **{TREE_ENV: str(copy)})
        signal.signal(signal.SIGTERM, forward)
        child = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *argv], env=env)  # noqa: S603
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:  # the child got it too (same process group): wait for it
                continue
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--generate"]:  # the load generator's own process
        if len(argv) != 3:
            print("usage: bench_rollcall.py --generate PLAN.json RESULT.json", file=sys.stderr)
            return 2
        return generator_main(Path(argv[1]), Path(argv[2]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--pupils", type=int, default=160_000, help="demo city size (160000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--teachers", type=int, default=200, help="teachers in a burst (200)")
    parser.add_argument("--marks", type=int, default=25, help="most marks per push (25)")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument(
        "--workers", type=_workers, default=[2], help="reppu serve --workers, each in turn (2)"
    )
    parser.add_argument("--runs", type=int, default=2, help="bursts per server (2)")
    parser.add_argument("--postgres-admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    parser.add_argument("--py-spy", help="path of py-spy (default: found on the PATH)")
    parser.add_argument("--no-inprocess", dest="inprocess", action="store_false")
    parser.add_argument("--demo-timeout", type=float, default=900.0)
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="before each burst, wait up to this many seconds for a quiet machine (60)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 2000 pupils, 40 teachers, one burst"
    )
    parser.add_argument("--no-record", dest="record", action="store_false")
    parser.add_argument("--keep-logs", type=Path, help="copy server logs and profiles here")
    parser.add_argument("--json", type=Path, help="also write the results here, as JSON")
    parser.add_argument(
        "--working-tree",
        action="store_true",
        help="serve the checkout as it is, uncommitted changes and all (default: a clean copy "
        "of HEAD, since others may be editing the checkout during the run)",
    )
    args = parser.parse_args(argv)
    if not args.working_tree and TREE_ENV not in os.environ:
        return run_from_head(argv)
    if args.quick:
        args.pupils = 2000
        args.teachers = min(args.teachers, 40)
        args.runs = 1
        args.quiet_wait = min(args.quiet_wait, 5.0)
        args.record = False
    if args.pupils < 500:
        parser.error("--pupils must be at least 500")
    if args.teachers < 2 or args.marks < 1 or args.runs < 1:
        parser.error("--teachers must be at least 2, --marks and --runs at least 1")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    cleanup = Cleanup()

    def terminate(signum: int, _frame: object) -> None:
        say(f"signal {signum}: stopping, cleaning up what was started")
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    try:
        return asyncio.run(_main(args, cleanup))
    except BenchError as exc:
        print(f"bench_rollcall: {exc}", file=sys.stderr)
        return 2
    finally:
        cleanup.run()


if __name__ == "__main__":
    sys.exit(main())
