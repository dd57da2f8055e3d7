"""The morning spike and the sync peers, over real HTTP against ``reppu serve`` (used by
``scripts/bench spike``, ``scripts/bench peers`` and ``scripts/bench all``).

One session per backend: a fresh database with the demo city (``benchlib.fresh_database``),
``reppu serve --workers W``, bearer tokens written straight into ``auth_token`` for the pupils'
devices and the teachers (``benchlib.mint_tokens``: a login's argon2 is not what is measured).

**Peers** (first, so that the spike's lesson changes do not touch their data): ``--peer-pupils``
pupils, spread over the city, make a first sync with the reference client
(``clients.python.ReppuClient``) and, later, a "nothing new" sync; pouchdb-server holds one
database per pupil with exactly the records that first sync brought, and the same pupils
replicate it with the CouchDB replication protocol (``scripts/peers/couch.py``), first and
"nothing new". Both sides at the same concurrency, over one counting httpx transport: round
trips, bytes as sent, latency, syncs/s, the server's CPU per sync.

**Spike**: ``--devices`` pupils' devices (reference client, many at once over asyncio) make
their first sync, then each asks "anything new?" every ``--interval`` seconds (start times
spread evenly) for ``--steady`` seconds, while teachers of those pupils' classes push
``lesson.change`` (a room for a lesson next week, in this or next week's window that the group
partition carries) at ``--changes-per-second``. Measured: pulls/s against the schedule's
rate, latency p50/p95/p99, bytes per pull, pulls that brought changes, the server's (and
PostgreSQL's) CPU per pull read from ``/proc``.

**Ceiling** (``wrk``, when installed): "nothing new" pulls/s of Reppu (a synced device's cursor
and token) next to a bare Litestar endpoint answering ``{}`` under uvicorn with the same
options, and pouchdb-server's ``GET /{db}/_changes?since=<last_seq>`` (its "nothing new").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import random
import re
import resource
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from bench_sync import Profile, WrkResult, analyse_profile, load_with_wrk, measure_bare, write_lua
from benchlib import (
    BenchError,
    Cleanup,
    CpuReading,
    Fresh,
    Phase,
    Served,
    WireCount,
    counted_client,
    counting,
    find_py_spy,
    fresh_database,
    mint_tokens,
    percentile,
    query,
    release_database,
    run_phase,
    say,
    serve_reppu,
    wait_for_quiet,
    worker_pids,
)
from peers import couch

from clients.python import ReppuClient
from server.clock import school_today

MAX_PAGES = 50
CONNECTIONS_PER_CLIENT = 2
IDLE_SECONDS = 3.0


@dataclass(slots=True)
class Steady:
    """The "anything new?" phase of the spike."""

    devices: int
    interval: float
    seconds: float = 0.0
    pulls: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    wire: WireCount = field(default_factory=WireCount)
    with_changes: int = 0
    changes: int = 0
    profile: Profile | str = "not run"
    """py-spy on one server worker during the phase (bench_sync's analysis of a pull)."""
    late: int = 0
    """Pulls answered after the device's next pull was due (that one then waits an interval)."""
    failures: int = 0
    first_error: str = ""
    server_cpu: float = 0.0
    database_cpu: float = 0.0
    machine_cpu: float = 0.0
    teacher_pushes: int = 0
    teacher_applied: int = 0
    teacher_rejected: Counter[str] = field(default_factory=Counter)
    teacher_latencies_ms: list[float] = field(default_factory=list)
    teachers: int = 0
    client_cpu: float = 0.0
    """CPU seconds of the benchmark's own process (the devices' and teachers' clients)."""
    idle_cpu_per_second: float = 0.0
    """CPU seconds per second the server (and PostgreSQL) used just before, with no load."""

    @property
    def busy_cpu_per_pull(self) -> float:
        """Server (and PostgreSQL) CPU seconds per pull above the idle rate."""
        used = self.server_cpu + self.database_cpu - self.idle_cpu_per_second * self.seconds
        return max(0.0, used) / max(1, self.pulls)

    @property
    def target_rate(self) -> float:
        return self.devices / self.interval if self.interval else 0.0

    @property
    def rate(self) -> float:
        return self.pulls / self.seconds if self.seconds else 0.0


@dataclass(slots=True)
class Ceiling:
    reppu: WrkResult | None = None
    bare: WrkResult | None = None
    couch: WrkResult | None = None
    note: str = ""


@dataclass(slots=True)
class PeerRun:
    pupils: int
    concurrency: int
    docs: int = 0
    load_seconds: float = 0.0
    reppu_first: Phase | None = None
    reppu_nothing: Phase | None = None
    couch_first: Phase | None = None
    couch_nothing: Phase | None = None
    versions: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Session:
    backend: str
    version: str
    demo_seconds: float = 0.0
    first: Phase | None = None
    steady: Steady | None = None
    peers: PeerRun | None = None
    ceiling: Ceiling = field(default_factory=Ceiling)
    log_lines: list[str] = field(default_factory=list)


# -- who takes part ---------------------------------------------------------------------------

_PUPILS_SQL = (
    "SELECT DISTINCT m.person AS person FROM membership m JOIN account a ON a.person = m.person "
    "WHERE m.role = 'pupil' ORDER BY m.person"
)
_GROUPS_SQL = (
    'SELECT DISTINCT m."group" AS grp FROM membership m '
    "WHERE m.role = 'pupil' AND m.person IN ({})"
)
_LESSONS_SQL = (
    "SELECT t.person AS teacher, l.id AS lesson, l.weekday AS weekday, l.valid_from AS lf, "
    "l.valid_to AS lt, t.valid_from AS tf, t.valid_to AS tt FROM lesson l "
    'JOIN membership t ON t."group" = l."group" AND t.role = \'teacher\' '
    'WHERE l."group" IN ({}) ORDER BY l.id, t.person'
)


def spread(items: list[int], n: int) -> list[int]:
    """``n`` items evenly spread over ``items`` (all of them when there are fewer)."""
    if n <= 0:
        return []
    if n >= len(items):
        return list(items)
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def _date(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _valid(start: Any, end: Any, day: dt.date) -> bool:
    first, last = _date(start), _date(end)
    return first is not None and first <= day and (last is None or day <= last)


def change_date(weekday: int, today: dt.date) -> dt.date | None:
    """The lesson's next occurrence at least two days ahead (no "today/tomorrow" notification
    rides on it), if it falls in this or next week (the window the group partition carries)."""
    day = today + dt.timedelta(days=(weekday - today.isoweekday()) % 7)
    if (day - today).days < 2:
        day += dt.timedelta(days=7)
    monday = today - dt.timedelta(days=today.isoweekday() - 1)
    return day if day < monday + dt.timedelta(days=14) else None


async def teachers_of(fresh: Fresh, pupils: list[int]) -> dict[int, list[tuple[int, dt.date]]]:
    """Teachers (valid today) of the pupils' groups, each with lessons they may change."""
    today = school_today()
    groups: set[int] = set()
    for start in range(0, len(pupils), 5000):
        chunk = pupils[start : start + 5000]
        sql = _GROUPS_SQL.format(", ".join("{}" for _ in chunk))
        groups.update(int(r["grp"]) for r in await query(fresh, sql, *chunk))
    found: dict[int, list[tuple[int, dt.date]]] = {}
    ordered = sorted(groups)
    for start in range(0, len(ordered), 5000):
        chunk = ordered[start : start + 5000]
        sql = _LESSONS_SQL.format(", ".join("{}" for _ in chunk))
        for r in await query(fresh, sql, *chunk):
            if not _valid(r["tf"], r["tt"], today):
                continue
            day = change_date(int(r["weekday"]), today)
            if day is None or not _valid(r["lf"], r["lt"], day):
                continue
            found.setdefault(int(r["teacher"]), []).append((int(r["lesson"]), day))
    return found


# -- the peers --------------------------------------------------------------------------------


async def run_peers(
    cleanup: Cleanup,
    folder: Path,
    served: Served,
    fresh: Fresh,
    pupils: list[int],
    tokens: list[str],
    args: argparse.Namespace,
    session: Session,
) -> tuple[Served, str, str]:
    """Reppu's and pouchdb-server's first and "nothing new" syncs of the same pupils; returns
    pouchdb-server and one pupil's database and last sequence (for wrk)."""
    from peers import ensure_node_packages

    versions = ensure_node_packages()
    c = args.peer_concurrency
    run = PeerRun(len(pupils), c, versions=versions)
    session.peers = run
    database = fresh.db_name
    async with counted_client(served.base, c) as http:
        clients = {p: ReppuClient(http, t) for p, t in zip(pupils, tokens, strict=True)}

        def reppu_sync(client: ReppuClient) -> Any:
            async def job() -> int:
                return int((await client.sync(max_pages=MAX_PAGES)).changes)

            return job

        say(f"{session.version}: peers: Reppu first sync of {len(pupils):,} pupils, {c} at a time")
        await asyncio.to_thread(wait_for_quiet, args.quiet_wait)
        jobs = [reppu_sync(cl) for cl in clients.values()]
        run.reppu_first = await run_phase("Reppu first sync", jobs, c, served.proc.pid, database)
        records = {p: list(cl.store.records().values()) for p, cl in clients.items()}
        run.docs = sum(len(r) for r in records.values())
        pouch = await couch.start_pouchdb(cleanup, folder / "pouchdb")
        async with counted_client(pouch.base, c) as couch_http:
            say(f"  pouchdb-server: {len(pupils):,} databases, {run.docs:,} documents")
            run.load_seconds = await couch.load_pupils(couch_http, records, c)
            replicas = {p: couch.Replica() for p in pupils}

            def couch_sync(pupil: int) -> Any:
                async def job() -> int:
                    db = couch.database_name(pupil)
                    return await couch.replicate(couch_http, db, replicas[pupil])

                return job

            say(f"{session.version}: peers: CouchDB replication, first, {c} at a time")
            await asyncio.to_thread(wait_for_quiet, args.quiet_wait)
            jobs = [couch_sync(p) for p in pupils]
            run.couch_first = await run_phase(
                "CouchDB first replication", jobs, c, pouch.proc.pid, None
            )
            for pupil in pupils:
                if len(replicas[pupil].docs) != len(records[pupil]):
                    raise BenchError(
                        f"pupil {pupil}: {len(replicas[pupil].docs)} documents replicated "
                        f"of {len(records[pupil])}"
                    )
            say(f"{session.version}: peers: 'nothing new', Reppu and CouchDB")
            await asyncio.to_thread(wait_for_quiet, args.quiet_wait)
            jobs = [reppu_sync(cl) for cl in clients.values()]
            run.reppu_nothing = await run_phase(
                'Reppu "nothing new"', jobs, c, served.proc.pid, database
            )
            jobs = [couch_sync(p) for p in pupils]
            run.couch_nothing = await run_phase(
                'CouchDB "nothing new"', jobs, c, pouch.proc.pid, None
            )
            first_pupil = pupils[0]
            seq = replicas[first_pupil].checkpoint
        for client in clients.values():
            client.store.db.close()
    for phase in (run.reppu_first, run.couch_first, run.reppu_nothing, run.couch_nothing):
        assert phase is not None
        say(
            f"  {phase.label}: {phase.rate:,.0f}/s, p50 {percentile(phase.latencies_ms, 50):.1f}"
            f" ms, {phase.per_sync(phase.wire.round_trips):.1f} round trips, "
            f"{phase.per_sync(phase.wire.response_bytes):,.0f} B in, server CPU "
            f"{phase.per_sync(phase.server_cpu + phase.database_cpu) * 1000:.2f} ms per sync; "
            f"{phase.failures} failed"
            + (f" (first: {phase.first_error})" if phase.first_error else "")
        )
    return pouch, couch.database_name(first_pupil), str(seq)


# -- the spike --------------------------------------------------------------------------------


async def first_syncs(clients: list[ReppuClient], served: Served, fresh: Fresh, c: int) -> Phase:
    def job(client: ReppuClient) -> Any:
        async def one() -> int:
            return int((await client.sync(max_pages=MAX_PAGES)).changes)

        return one

    return await run_phase(
        "first sync", [job(cl) for cl in clients], c, served.proc.pid, fresh.db_name
    )


PY_SPY_RATE = 100


def start_py_spy(
    cleanup: Cleanup, folder: Path, served: Served, seconds: float
) -> subprocess.Popen[bytes] | str:
    """py-spy recording one server worker for ``seconds``, or why it cannot."""
    py_spy = find_py_spy()
    if py_spy is None:
        return "py-spy not found (`pip install --target /tmp/pyspy py-spy`): profile skipped"
    workers = worker_pids(served.proc.pid)
    if not workers:
        return "no worker process found under the server: profile skipped"
    cmd = [py_spy, "record", "--pid", str(workers[0]), "--duration", str(max(1, int(seconds)))]
    cmd += ["--rate", str(PY_SPY_RATE), "--format", "raw", "--threads", "--nonblocking"]
    cmd += ["--output", str(folder / "spike-profile.txt")]
    return cleanup.start(cmd, env=dict(os.environ), log=folder / "py-spy.log")


async def finish_py_spy(
    cleanup: Cleanup, folder: Path, spy: subprocess.Popen[bytes] | str, seconds: float
) -> Profile | str:
    if isinstance(spy, str):
        return spy
    for _ in range(300):
        if spy.poll() is not None:
            break
        await asyncio.sleep(0.1)
    cleanup.stop(spy)
    out = folder / "spike-profile.txt"
    if spy.returncode != 0 or not out.exists():
        tail = (folder / "py-spy.log").read_text(errors="replace")[-300:].strip()
        return f"py-spy failed ({spy.returncode}): {tail}"
    try:
        return analyse_profile(out.read_text(errors="replace"), seconds, PY_SPY_RATE)
    except BenchError as exc:
        return str(exc)


async def steady(
    cleanup: Cleanup,
    folder: Path,
    clients: list[ReppuClient],
    teachers: list[tuple[ReppuClient, list[tuple[int, dt.date]]]],
    served: Served,
    fresh: Fresh,
    args: argparse.Namespace,
) -> Steady:
    """Every device pulls once per interval (start times spread), teachers push changes."""
    result = Steady(len(clients), args.interval)
    result.teachers = len(teachers)
    interval = args.interval
    loop_start = end = 0.0  # set just before the devices start (see below)
    rng = random.Random(args.seed)  # noqa: S311 - a reproducible schedule

    async def device(client: ReppuClient, offset: float) -> None:
        due = loop_start + offset
        while due < end:
            now = time.monotonic()
            if due > now:
                await asyncio.sleep(due - now)
            count = WireCount()
            token = counting.set(count)
            t0 = time.perf_counter()
            try:
                answer, _ = await client.pull()
                brought = len(answer.changes)
                if answer.has_more:
                    brought += (await client.sync(max_pages=MAX_PAGES)).changes
            except Exception as exc:  # counted and shown; the device goes on
                result.failures += 1
                result.first_error = result.first_error or repr(exc)[:300]
                brought = -1
            finally:
                counting.reset(token)
            if brought >= 0:
                result.latencies_ms.append((time.perf_counter() - t0) * 1000)
                result.pulls += 1
                result.wire.add(count)
                result.changes += brought
                result.with_changes += brought > 0
            due += interval
            if due < time.monotonic():
                # The answer came after the next pull was due: like an app's timer, wait one
                # interval from now rather than pull back to back (which would feed the lag).
                result.late += 1
                due = time.monotonic() + interval

    busy: set[int] = set()
    rooms = iter(range(1_000_000))

    async def push_change(index: int) -> None:
        client, lessons = teachers[index]
        lesson, day = lessons[rng.randrange(len(lessons))]
        room = f"B{next(rooms) % 900 + 100}"
        args_ = {"lesson_id": lesson, "on_date": day.isoformat(), "room": room}
        client.queue("lesson.change", args_)
        t0 = time.perf_counter()
        try:
            outcomes = await client.push()
        except Exception as exc:
            result.teacher_rejected[type(exc).__name__] += 1
            return
        finally:
            busy.discard(index)
        result.teacher_latencies_ms.append((time.perf_counter() - t0) * 1000)
        for outcome in outcomes:
            result.teacher_pushes += 1
            if outcome.get("status") == "applied":
                result.teacher_applied += 1
            else:
                result.teacher_rejected[str(outcome.get("code"))] += 1

    async def changes() -> None:
        if not teachers or args.changes_per_second <= 0:
            return
        gap = 1.0 / args.changes_per_second
        due = loop_start
        index = 0
        pending: set[asyncio.Task[None]] = set()
        while due < end:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            for _ in range(len(teachers)):
                index = (index + 1) % len(teachers)
                if index not in busy:
                    busy.add(index)
                    task = asyncio.create_task(push_change(index))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                    break
            due += gap
        if pending:
            await asyncio.gather(*pending)

    async def ticker() -> None:
        while True:
            await asyncio.sleep(5.0)
            elapsed = time.monotonic() - loop_start
            say(
                f"  spike: {elapsed:.0f}/{args.steady:.0f} s, {result.pulls:,} pulls "
                f"({result.pulls / max(elapsed, 0.1):,.0f}/s of {result.target_rate:,.0f}/s "
                f"scheduled), {result.teacher_applied:,} lesson changes"
            )

    offsets = [i * interval / len(clients) for i in range(len(clients))]
    # What the server spends with no request at all (the live stream's poll of partition heads
    # on SQLite, the delivery worker's polls): the rate is subtracted from the per-pull cost.
    idle0 = CpuReading.take([served.proc.pid], fresh.db_name)
    await asyncio.sleep(IDLE_SECONDS)
    idle_server, idle_db, _ = CpuReading.take([served.proc.pid], fresh.db_name).since(idle0)
    result.idle_cpu_per_second = (idle_server + idle_db) / IDLE_SECONDS
    loop_start = time.monotonic() + 0.5
    end = loop_start + args.steady
    cpu0 = CpuReading.take([served.proc.pid], fresh.db_name)
    me0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    tick = asyncio.create_task(ticker())
    spy = start_py_spy(cleanup, folder, served, args.steady)
    try:
        await asyncio.gather(
            *(device(cl, off) for cl, off in zip(clients, offsets, strict=True)), changes()
        )
    finally:
        tick.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tick
    result.profile = await finish_py_spy(cleanup, folder, spy, args.steady)
    me1 = resource.getrusage(resource.RUSAGE_SELF)
    result.client_cpu = (me1.ru_utime + me1.ru_stime) - (me0.ru_utime + me0.ru_stime)
    result.seconds = time.monotonic() - max(started, loop_start)
    result.server_cpu, result.database_cpu, result.machine_cpu = CpuReading.take(
        [served.proc.pid], fresh.db_name
    ).since(cpu0)
    return result


# -- one backend ------------------------------------------------------------------------------


def scan_log(log: Path) -> str:
    statuses: Counter[str] = Counter()
    errors: list[str] = []
    for line in log.read_text(errors="replace").splitlines():
        status = re.search(r'HTTP/1\.1" (\d{3})', line)
        if status:
            statuses[status.group(1)] += 1
        elif re.search(r"\b(ERROR|CRITICAL)\b", line) or line.startswith("Traceback"):
            errors.append(line.strip()[:160])
    codes = ", ".join(f"{k}: {v:,}" for k, v in sorted(statuses.items()))
    text = f"status codes {codes or 'none logged'}; {len(errors)} ERROR lines"
    return text + (f", first: `{errors[0]}`" if errors else "")


async def run_session(
    cleanup: Cleanup, backend: str, args: argparse.Namespace, *, spike: bool, peers: bool
) -> Session:
    folder = Path(tempfile.mkdtemp(prefix=f"reppu-bench-spike-{backend}-"))
    cleanup.folders.append(folder)
    fresh: Fresh | None = None
    pouch: Served | None = None
    served: Served | None = None
    session: Session | None = None
    try:
        fresh = await fresh_database(
            cleanup,
            backend,
            folder,
            pupils=args.pupils,
            seed=args.seed,
            admin_url=args.postgres_admin_url,
        )
        session = Session(backend, fresh.version, fresh.seconds)
        everyone = [int(r["person"]) for r in await query(fresh, _PUPILS_SQL)]
        devices = spread(everyone, args.devices if spike else 0)
        peer_pupils = spread(everyone, args.peer_pupils if peers else 0)
        teacher_lessons = await teachers_of(fresh, devices) if devices else {}
        teacher_ids = sorted(teacher_lessons)[: args.teachers]
        persons = devices + peer_pupils + teacher_ids
        say(
            f"{fresh.version}: tokens for {len(devices):,} devices, {len(peer_pupils):,} peer "
            f"pupils and {len(teacher_ids):,} teachers"
        )
        tokens = await mint_tokens(fresh, persons, "bench spike")
        device_tokens = tokens[: len(devices)]
        peer_tokens = tokens[len(devices) : len(devices) + len(peer_pupils)]
        teacher_tokens = tokens[len(devices) + len(peer_pupils) :]
        served = await serve_reppu(cleanup, fresh, workers=args.workers)
        couch_db, couch_seq = "", ""
        if peers:
            pouch, couch_db, couch_seq = await run_peers(
                cleanup, folder, served, fresh, peer_pupils, peer_tokens, args, session
            )
        wrk_token, wrk_cursor = "", ""
        if spike:
            c = args.concurrency
            async with contextlib.AsyncExitStack() as stack:
                # Many small httpx clients, not one with a big pool: httpcore's pool grows slow
                # with hundreds of requests waiting on it, and the generator would lag behind
                # the schedule for its own sake. Each holds CONNECTIONS_PER_CLIENT connections.
                groups = max(1, args.connections_spike // CONNECTIONS_PER_CLIENT)
                https = [
                    await stack.enter_async_context(
                        counted_client(served.base, CONNECTIONS_PER_CLIENT)
                    )
                    for _ in range(groups)
                ]
                clients = [ReppuClient(https[i % groups], t) for i, t in enumerate(device_tokens)]
                say(f"{fresh.version}: spike: {len(clients):,} first syncs, {c} at a time")
                await asyncio.to_thread(wait_for_quiet, args.quiet_wait)
                session.first = await first_syncs(clients, served, fresh, c)
                f = session.first
                say(
                    f"  first syncs: {f.syncs:,} in {f.seconds:.1f} s ({f.rate:,.0f}/s), p99 "
                    f"{percentile(f.latencies_ms, 99):,.0f} ms, {f.failures} failed"
                )
                teachers = [
                    (ReppuClient(https[i % groups], token), teacher_lessons[t])
                    for i, (t, token) in enumerate(zip(teacher_ids, teacher_tokens, strict=True))
                ]
                say(
                    f"{fresh.version}: spike: every device pulls every {args.interval:g} s for "
                    f"{args.steady:g} s; {len(teachers)} teachers push "
                    f"{args.changes_per_second:g} lesson changes/s"
                )
                session.steady = await steady(
                    cleanup, folder, clients, teachers, served, fresh, args
                )
                s = session.steady
                say(
                    f"  steady: {s.pulls:,} pulls in {s.seconds:.1f} s = {s.rate:,.0f}/s "
                    f"(scheduled {s.target_rate:,.0f}/s), p50/p99 "
                    f"{percentile(s.latencies_ms, 50):.1f}/{percentile(s.latencies_ms, 99):.1f} "
                    f"ms, {s.with_changes:,} brought changes; server CPU "
                    f"{(s.server_cpu + s.database_cpu) / max(1, s.pulls) * 1000:.2f} ms per pull"
                )
                wrk_token = device_tokens[0]
                wrk_cursor = clients[0].store.cursor or ""
                for client in clients + [t[0] for t in teachers]:
                    client.store.db.close()
        elif peers:
            wrk_token = peer_tokens[0]
            async with httpx.AsyncClient(base_url=served.base, timeout=30.0) as http:
                probe = ReppuClient(http, wrk_token)
                await probe.sync(max_pages=MAX_PAGES)
                wrk_cursor = probe.store.cursor or ""
                probe.store.db.close()
        if args.wrk and wrk_cursor:
            await measure_ceiling(
                cleanup,
                folder,
                served,
                fresh,
                pouch,
                couch_db,
                couch_seq,
                wrk_token,
                wrk_cursor,
                args,
                session,
            )
        return session
    finally:
        for proc in (pouch, served):
            if proc is not None:
                cleanup.stop(proc.proc)
        if served is not None and session is not None:
            session.log_lines.append(scan_log(served.log))
        if fresh is not None:
            await release_database(cleanup, fresh)
        cleanup.remove_folder(folder)


async def measure_ceiling(
    cleanup: Cleanup,
    folder: Path,
    served: Served,
    fresh: Fresh,
    pouch: Served | None,
    couch_db: str,
    couch_seq: str,
    token: str,
    cursor: str,
    args: argparse.Namespace,
    session: Session,
) -> None:
    wrk_args = argparse.Namespace(
        wrk_threads=1,
        connections=args.wrk_connections,
        duration=args.wrk_seconds,
        warmup=2.0,
        quiet_wait=args.quiet_wait,
        workers=args.workers,
    )
    script = write_lua(folder, token, cursor)
    say(f"{fresh.version}: ceiling: 'nothing new' pulls/s under wrk")
    ceiling = session.ceiling
    ceiling.reppu = load_with_wrk(
        cleanup,
        wrk_args,
        f"Reppu ({fresh.version})",
        served.base + "/sync/pull",
        script,
        served.proc.pid,
        fresh.db_name,
    )
    if pouch is not None and couch_db:
        get = folder / "changes.lua"
        get.write_text('wrk.method = "GET"\n')
        url = f"{pouch.base}/{couch_db}/_changes?since={couch_seq}"
        ceiling.couch = load_with_wrk(
            cleanup, wrk_args, "pouchdb-server _changes", url, get, pouch.proc.pid
        )
    ceiling.bare = await measure_bare(cleanup, folder, wrk_args, script, access_log=True)


# -- the entry's tables -----------------------------------------------------------------------


def _ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q):,.1f}"


def _phase_row(name: str, p: Phase) -> str:
    w = p.wire
    return (
        f"| {name} | {p.syncs:,} | {p.rate:,.0f} | {_ms(p.latencies_ms, 50)} / "
        f"{_ms(p.latencies_ms, 99)} ms | {p.per_sync(w.round_trips):.1f} | "
        f"{p.per_sync(w.response_bytes):,.0f} B | {p.per_sync(w.response_header_bytes):,.0f} B |"
        f" {p.per_sync(w.request_bytes + w.request_header_bytes):,.0f} B | "
        f"{p.per_sync(p.server_cpu) * 1000:,.2f} ms"
        + (f" + {p.per_sync(p.database_cpu) * 1000:,.2f} ms" if p.database_cpu else "")
        + f" | {p.failures} |"
    )


PHASE_HEAD = [
    "| what | syncs | syncs/s | p50 / p99 | round trips | bodies in | response heads | "
    "request out (heads + bodies) | server CPU per sync (+ PostgreSQL) | failed |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
]


def spike_lines(sessions: list[Session]) -> list[str]:
    done = [s for s in sessions if s.steady and s.first]
    if not done:
        return []
    s0 = done[0].steady
    assert s0 is not None
    lines = [
        f"{s0.devices:,} pupils' devices (spread over the city), each a `ReppuClient` over one "
        "shared httpx client in the benchmark's process (JSON; Accept-Encoding as httpx sends "
        f"it), on the same 2 cores as the server. First syncs, then every device asks "
        f'"anything new?" every {s0.interval:g} s for {s0.seconds:.0f} s while {s0.teachers} '
        "teachers of their classes push `lesson.change`s (a room of a lesson next week: the "
        "group's pupils pull it). Server CPU is that of `reppu serve`'s processes (and of the "
        "PostgreSQL backends serving its database) over the phase, per pull; it includes the "
        "teachers' pushes and the server's idle work, which the next column takes out (the idle "
        f"rate measured for {IDLE_SECONDS:g} s just before).",
        "",
        *PHASE_HEAD,
    ]
    for sess in done:
        assert sess.first is not None
        lines.append(_phase_row(f"first sync, {sess.version}", sess.first))
    lines += [
        "",
        "| backend | pulls/s (scheduled) | p50 / p95 / p99 | bytes per pull: in / heads / out | "
        "pulls with changes | changes pushed (applied) | push p50 | server CPU per pull "
        "(+ PostgreSQL) | of it above idle | late / failed pulls |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for sess in done:
        s = sess.steady
        assert s is not None
        n = max(1, s.pulls)
        w = s.wire
        db = f" + {s.database_cpu / n * 1000:.2f} ms" if s.database_cpu else ""
        rejected = sum(s.teacher_rejected.values())
        lines.append(
            f"| {sess.version} | **{s.rate:,.0f}** ({s.target_rate:,.0f}) | "
            f"{_ms(s.latencies_ms, 50)} / {_ms(s.latencies_ms, 95)} / {_ms(s.latencies_ms, 99)} "
            f"ms | {w.response_bytes / n:,.0f} / {w.response_header_bytes / n:,.0f} / "
            f"{(w.request_bytes + w.request_header_bytes) / n:,.0f} B | {s.with_changes:,} | "
            f"{s.teacher_pushes + rejected:,} ({s.teacher_applied:,}) | "
            f"{_ms(s.teacher_latencies_ms, 50)} ms | {s.server_cpu / n * 1000:.2f} ms{db} | "
            f"{s.busy_cpu_per_pull * 1000:.2f} ms | {s.late:,} / {s.failures:,} |"
        )
    for sess in done:
        s = sess.steady
        assert s is not None
        if s.first_error or s.teacher_rejected:
            lines.append(
                f"\n{sess.version}: first failed pull `{s.first_error or '-'}`; teachers' "
                f"refusals {dict(s.teacher_rejected) or 'none'}."
            )
    return lines


def peers_lines(sessions: list[Session]) -> list[str]:
    done = [s for s in sessions if s.peers and s.peers.couch_first]
    if not done:
        return []
    p0 = done[0].peers
    assert p0 is not None
    v = p0.versions
    lines = [
        f"pouchdb-server {v.get('pouchdb-server', '?')} (LevelDB, Node {v.get('node', '?')}), "
        f"one database per pupil holding that pupil's records from Reppu's own first sync "
        f"({p0.pupils:,} pupils, {p0.docs:,} documents, loaded in {p0.load_seconds:.1f} s). "
        "The client side of the CouchDB replication protocol is `scripts/peers/couch.py` "
        "(info, checkpoint, `_changes`, `_bulk_get`, checkpoint write); Reppu's side is the "
        f"reference client. Both at {p0.concurrency} at a time, over the same counting "
        "httpx transport; server CPU is the server's processes' (for pouchdb-server, its node "
        "process).",
        "",
        *PHASE_HEAD,
    ]
    for sess in done:
        p = sess.peers
        assert p is not None
        for phase in (p.reppu_first, p.couch_first, p.reppu_nothing, p.couch_nothing):
            if phase is not None:
                lines.append(_phase_row(f"{phase.label} ({sess.version})", phase))
    return lines


def ceiling_lines(sessions: list[Session], wrk_seconds: float, connections: int) -> list[str]:
    done = [s for s in sessions if s.ceiling.reppu]
    if not done:
        return ["Not measured (wrk is not installed: `apt-get install -y wrk`)."]
    lines = [
        f"`wrk -t1 -c{connections} -d{wrk_seconds:.0f}s` after a 2 s warm-up, on the same 2 cores"
        " as the servers. Reppu: a synced device's cursor POSTed with its token (answer `{}`); "
        "bare Litestar: `{}` from a handler under uvicorn with `reppu serve`'s options (workers, "
        "access log on); pouchdb-server: `GET /{db}/_changes?since=<last_seq>` of a pupil's "
        "database (no auth, a single node process).",
        "",
        "| server | req/s | p50 | p99 | errors | CPU: server / PostgreSQL / wrk / other |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for sess in done:
        for r in (sess.ceiling.reppu, sess.ceiling.bare, sess.ceiling.couch):
            if r is None:
                continue
            db = "-" if r.database_share is None else f"{r.database_share:.0%}"
            lines.append(
                f"| {r.label} | **{r.rps:,.0f}** | {r.p50_ms:.2f} ms | {r.p99_ms:.2f} ms | "
                f"{r.bad:,} | {r.server_share:.0%} / {db} / {r.wrk_share:.0%} / "
                f"{r.other_share:.0%} |"
            )
    return lines
