"""Scale-out: three delivery workers and two API servers on one PostgreSQL database (issue 16).

A city runs several API servers and several delivery workers against one PostgreSQL. This test
starts exactly that as real processes (``tests/cluster.py``): ``reppu migrate`` and
``reppu demo --pupils 1000`` on a fresh database, the push-service emulator
(``tests/push_service.py``), two ``reppu serve`` (their in-process worker off) and three
``reppu worker``, all under libfaketime at the suite's default instant, a school day, so that
roll calls have lessons (pinned with ``now``: ``REPPU_TEST_NOW`` cannot move it to a
weekend). Every guardian of the city gets one or two devices subscribed to the emulator (every
third guardian two), written straight into ``auth_token`` and ``push_subscription`` as
``scripts/bench_storm.py`` does. Then, through both servers at once, three hard moments:

1. **Storm.** The city's admin sends urgent bulletins (``bulletin.send`` through
   ``POST /sync/push``), two to every guardian of the municipality and one to each school's
   guardians, all at once, alternating between the servers; the three workers expand the
   outbox and send. Proved with the emulator's own records (it checked
   each push's VAPID token and decrypted it): every subscription of every guardian the
   bulletin's audience holds (computed here by SQL from guardianship and membership, not by
   the fan-out's code) got exactly one push per bulletin (counted per subscription and
   ``Topic``: no double, no miss, nothing else); every delivery row of the bulletins ended
   ``sent``; every outbox entry is done; the emulator refused nothing.
2. **Roll-call burst.** Forty teachers, each with a home class of their own and a lesson of
   it today, log in (half through each server) and push their class's marks at once
   (``attendance.mark`` per pupil, one client id per phone and mutation ids 1..n, some pupils
   absent or late), half through each server; every fourth teacher's batch is also sent to
   the other server at the same moment (a retry racing the original). Then every batch is
   sent again through the other server. Proved: every answer acknowledges each mutation once,
   ``applied``, and the repeats answer the same; each mark is stored exactly once
   (``roll_mark`` per client and mutation id) with one recorded result (``sync_mutation``);
   each touched partition's change log has no duplicate and no gap (each attendance record's
   versions run 1, 2, ... without a hole or a repeat; the partition's head, count and checksum
   in ``partition_state`` are those of its log); a full pull through the *other* server, by
   the reference client (``clients/python``, which checks every partition's checksum), holds
   every mark; and the guardians of the absent pupils got exactly one push per absence
   topic, every delivery ``sent``.

3. **A worker killed mid-storm.** The storm again; once a tenth of its pushes are through,
   the worker holding the most claims (preferring one that is expanding an outbox entry) is
   stopped (SIGSTOP, so it claims and sends nothing more), the deliveries it holds are noted,
   and it is killed (SIGKILL, its process group). Which worker took which claim is recorded
   for the test by a trigger, from each worker's ``application_name``. Proved: every device
   got every bulletin, nothing went outside an audience; a push went twice only for a
   delivery the dead worker held (it may have sent without recording), never three times;
   every delivery ended ``sent``, every outbox entry done, all within 120 s of the kill (the
   renewed 20-second leases of ``server/leases.py``: the old 5-minute hold fails here). A
   fresh fourth worker then takes the dead one's place for the module's other tests.

It was seen to fail where it should: with the workers' claim stripped of ``FOR UPDATE SKIP
LOCKED``, 1,200 of the storm's 5,234 pushes went twice; without the lock on the client's row,
a retry racing its original got a 500; with a partition head left behind, all 929 touched
partitions disagreed with their logs; with ``HOLD`` back at 5 minutes, the 400 deliveries the
killed worker held were still waiting 120 s after the kill.

Nothing here measures time: the waits are timeouts, there to fail instead of hang (the
killed worker's one is short on purpose). Marked slow (about 75 s on 2 busy cores); under
``CI=true`` PostgreSQL and libfaketime are required, elsewhere their absence skips it loudly.
The throughput of 1 and 2 workers is measured by ``scripts/bench_storm.py --workers 1,2``,
not here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio

from clients.python import ReppuClient
from schemas.sync import SCHEMA_VERSION
from tests.cluster import Cluster, connect, start_cluster, wait_for_line
from tests.conftest import DEFAULT_TEST_NOW

INSTANT = DEFAULT_TEST_NOW
"""A Tuesday of term at 10:15 in Helsinki: the roll calls' lessons take place today."""
pytestmark = [pytest.mark.slow, pytest.mark.now(INSTANT)]

PUPILS = 1000
SERVERS = 2
WORKERS = 3
TEACHERS = 40
PASSWORD = "reppu-demo"
HELSINKI = ZoneInfo("Europe/Helsinki")
SETTLE_TIMEOUT = 240.0
"""Seconds the workers get to send everything (the emulator decrypts every push)."""
AFTER_SETTLED = 2.0
"""Seconds to wait once everything is recorded as sent, for a stray double to show up."""
HTTP_TIMEOUT = 120.0


@dataclass
class Deployment:
    cluster: Cluster
    devices: dict[int, list[str]]
    """Guardian -> the emulator tokens of their devices."""


@pytest_asyncio.fixture(scope="module")
async def fx_deployment(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deployment]:
    """The processes up, every guardian with one or two devices; stopped and dropped after."""
    cluster = await start_cluster(
        tmp_path_factory.mktemp("reppu-scale-out"),
        dt.datetime.fromisoformat(INSTANT),
        pupils=PUPILS,
        servers=SERVERS,
        workers=WORKERS,
    )
    try:
        yield Deployment(cluster, await _add_devices(cluster))
        cluster.check_alive()
        assert cluster.errors() == {}, "errors in the processes' logs"
    finally:
        await cluster.stop()


# -- devices ----------------------------------------------------------------------------------


async def _add_devices(cluster: Cluster) -> dict[int, list[str]]:
    """One or two devices per guardian: an auth token and a push subscription each."""
    db = await connect(cluster)
    try:
        guardians = [
            int(r[0])
            for r in await db.fetch("SELECT DISTINCT guardian FROM guardianship ORDER BY 1")
        ]
        accounts = {int(r[0]): int(r[1]) for r in await db.fetch("SELECT person, id FROM account")}
        owners = [g for i, g in enumerate(guardians) for _ in range(2 if i % 3 == 0 else 1)]
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
            answer = await http.post(f"{cluster.emulator}/_admin/subscribe?n={len(owners)}")
            answer.raise_for_status()
            subs: list[dict[str, str]] = answer.json()
        now = cluster.now().replace(microsecond=0)
        devices: dict[int, list[str]] = {}
        async with db.transaction():
            for i, (person, sub) in enumerate(zip(owners, subs, strict=True)):
                digest = hashlib.sha256(f"scale-out-device-{i}".encode()).hexdigest()
                device = await db.fetchval(
                    "INSERT INTO auth_token (account, token_hash, device_name, created_at, "
                    "expires_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                    accounts[person],
                    digest,
                    f"scale-out phone {i}",
                    now,
                    now + dt.timedelta(days=30),
                )
                await db.execute(
                    "INSERT INTO push_subscription (person, device, endpoint, p256dh, auth, "
                    "created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                    person,
                    device,
                    sub["endpoint"],
                    sub["p256dh"],
                    sub["auth"],
                    now,
                )
                devices.setdefault(person, []).append(sub["token"])
        return devices
    finally:
        await db.close()


# -- waiting for the workers ------------------------------------------------------------------


async def _received(cluster: Cluster) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
        answer = await http.get(f"{cluster.emulator}/_admin/received")
        answer.raise_for_status()
        found: list[dict[str, Any]] = answer.json()
        return found


async def _emulator_stats(cluster: Cluster) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
        answer = await http.get(f"{cluster.emulator}/_admin/stats")
        answer.raise_for_status()
        stats: dict[str, Any] = answer.json()
        return stats


async def _settle(cluster: Cluster, db: Any, within: float = SETTLE_TIMEOUT) -> None:
    """Until every outbox entry is done and no delivery is waiting or held by a worker."""
    deadline = time.monotonic() + within
    while True:
        cluster.check_alive()
        open_entries = await db.fetchval("SELECT COUNT(*) FROM outbox WHERE done_at IS NULL")
        waiting = await db.fetchval(
            "SELECT COUNT(*) FROM delivery WHERE status IN ('queued', 'digest') "
            "OR claim IS NOT NULL"
        )
        if open_entries == 0 and waiting == 0:
            break
        assert time.monotonic() < deadline, (
            f"not settled within {within:.0f} s: {open_entries} outbox entries open, "
            f"{waiting} deliveries waiting; emulator {await _emulator_stats(cluster)}"
        )
        await asyncio.sleep(0.5)
    await asyncio.sleep(AFTER_SETTLED)


async def _log_in(base: str, username: str) -> str:
    async with httpx.AsyncClient(base_url=base, timeout=HTTP_TIMEOUT) as http:
        answer = await http.post(
            "/auth/login",
            json={"username": username, "password": PASSWORD, "device_name": "scale-out"},
        )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["token"])


# -- the storm --------------------------------------------------------------------------------

_AUDIENCE_SQL = (
    "SELECT DISTINCT g.guardian FROM guardianship g "
    "JOIN membership m ON m.person = g.pupil AND m.role = 'pupil' "
    'JOIN school_group sg ON sg.id = m."group" '
    "JOIN organisation s ON s.id = sg.school "
    "WHERE {where} AND m.valid_from <= $2 AND (m.valid_to IS NULL OR m.valid_to >= $2) "
    "AND g.valid_from <= $2 AND (g.valid_to IS NULL OR g.valid_to >= $2)"
)
"""The guardians a bulletin to an organisation's guardians reaches today (``$1`` its id)."""
_WHERE = {"municipality": "s.parent = $1", "school": "s.id = $1"}
_ADMINS_SQL = (
    "SELECT sr.organisation, a.username FROM staff_role sr "
    "JOIN account a ON a.person = sr.person "
    "JOIN organisation o ON o.id = sr.organisation "
    "WHERE sr.role = 'admin' AND o.kind = 'municipality' ORDER BY sr.organisation, sr.id"
)


@dataclass
class Storm:
    """Urgent bulletins to the whole city twice, then to each school (so some devices are
    outside an audience), sent all at once, alternating between the servers."""

    targets: list[tuple[str, int]]
    audiences: list[set[int]]
    """The guardians each target reaches today (by SQL, not by the fan-out's code)."""
    admin: str
    outbox_before: int

    @classmethod
    async def plan(cls, cluster: Cluster, db: Any) -> Storm:
        today = cluster.now().astimezone(HELSINKI).date()
        city, admin = (await db.fetch(_ADMINS_SQL))[0]
        schools = [
            int(r[0]) for r in await db.fetch("SELECT id FROM organisation WHERE parent = $1", city)
        ]
        targets = [("municipality", city)] * 2 + [("school", s) for s in sorted(schools)]
        audiences = [
            {int(r[0]) for r in await db.fetch(_AUDIENCE_SQL.format(where=_WHERE[kind]), i, today)}
            for kind, i in targets
        ]
        assert all(audiences), "an audience without guardians"
        outbox_before = int(await db.fetchval("SELECT COALESCE(MAX(id), 0) FROM outbox"))
        return cls(targets, audiences, admin, outbox_before)

    async def send(self, cluster: Cluster) -> None:
        token = await _log_in(cluster.servers[0], self.admin)

        async def send(i: int) -> None:
            kind, audience_id = self.targets[i]
            base = cluster.servers[i % SERVERS]
            async with httpx.AsyncClient(base_url=base, timeout=HTTP_TIMEOUT) as http:
                client = ReppuClient(http, token)
                client.queue(
                    "bulletin.send",
                    {
                        "audience": kind,
                        "audience_id": audience_id,
                        "roles": ["guardians"],
                        "title": f"Myrskyvaroitus {i + 1}",
                        "body": "Koulut ovat kiinni huomenna myrskyn vuoksi.",
                        "urgent": True,
                    },
                )
                (result,) = await client.push()
            assert result["status"] == "applied", result

        await asyncio.gather(*(send(i) for i in range(len(self.targets))))

    async def entries(self, db: Any) -> list[Any]:
        """The storm's outbox entries (id, bulletin, title)."""
        entries = await db.fetch(
            "SELECT o.id, o.item_id, b.title FROM outbox o JOIN bulletin b ON b.id = o.item_id "
            "WHERE o.id > $1 AND o.kind = 'bulletin' ORDER BY o.id",
            self.outbox_before,
        )
        assert len(entries) == len(self.targets)
        return list(entries)

    def expected(self, entries: list[Any], devices: dict[int, list[str]]) -> Counter[Any]:
        """(device, topic) once for every device of every guardian of each bulletin's audience
        (the bulletins were sent all at once: each one's audience is found by its title)."""
        bulletins = {int(e["item_id"]): int(e["title"].rsplit(" ", 1)[1]) - 1 for e in entries}
        return Counter(
            (device, f"b{bulletin}")
            for bulletin, i in bulletins.items()
            for guardian in self.audiences[i]
            for device in devices[guardian]
        )


async def _got(cluster: Cluster, entries: list[Any]) -> Counter[Any]:
    """(device, topic) of every push the emulator accepted for the bulletins of ``entries``."""
    ours = {f"b{e['item_id']}" for e in entries}
    return Counter((r["token"], r["topic"]) for r in await _received(cluster) if r["topic"] in ours)


async def _statuses(db: Any, entries: list[Any]) -> dict[str, int]:
    return dict(
        await db.fetch(
            "SELECT status, COUNT(*) FROM delivery WHERE outbox = ANY($1::bigint[]) "
            "GROUP BY status",
            [int(e["id"]) for e in entries],
        )
    )


async def test_storm_through_two_servers_and_three_workers(fx_deployment: Deployment) -> None:
    cluster, devices = fx_deployment.cluster, fx_deployment.devices
    db = await connect(cluster)
    try:
        storm = await Storm.plan(cluster, db)
        await storm.send(cluster)
        entries = await storm.entries(db)
        await _settle(cluster, db)

        expected = storm.expected(entries, devices)
        got = await _got(cluster, entries)
        doubles = {k: n for k, n in got.items() if n > 1}
        missed = expected.keys() - got.keys()
        strangers = got.keys() - expected.keys()
        assert (len(doubles), len(missed), len(strangers)) == (0, 0, 0), (
            f"{len(doubles)} pushes sent twice (e.g. {list(doubles.items())[:3]}), "
            f"{len(missed)} missed (e.g. {sorted(missed)[:3]}), "
            f"{len(strangers)} to devices outside the audience (e.g. {sorted(strangers)[:3]})"
        )
        assert sum(got.values()) == sum(expected.values()) == len(expected)
        assert await _statuses(db, entries) == {"sent": len(expected)}
        assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE done_at IS NULL") == 0
        assert (await _emulator_stats(cluster))["refused"] == {}
    finally:
        await db.close()


# -- the roll-call burst ----------------------------------------------------------------------

_CLASSES_SQL = (
    'SELECT m."group", m.person, a.username FROM membership m '
    'JOIN school_group sg ON sg.id = m."group" '
    "JOIN account a ON a.person = m.person "
    "WHERE sg.kind = 'home_class' AND m.role = 'teacher' AND NOT a.disabled "
    "AND m.valid_from <= $1 AND (m.valid_to IS NULL OR m.valid_to >= $1) "
    'ORDER BY m."group", m.person'
)
_PUPILS_SQL = (
    "SELECT person FROM membership WHERE \"group\" = $1 AND role = 'pupil' "
    "AND valid_from <= $2 AND (valid_to IS NULL OR valid_to >= $2) ORDER BY person"
)
_LESSON_SQL = (
    'SELECT l.id FROM lesson l WHERE l."group" = $1 AND l.weekday = $2 '
    "AND l.valid_from <= $3 AND (l.valid_to IS NULL OR l.valid_to >= $3) "
    "AND NOT EXISTS (SELECT 1 FROM lesson_change c WHERE c.lesson = l.id "
    "AND c.on_date = $3 AND c.cancelled) ORDER BY l.starts_at, l.id LIMIT 1"
)


@dataclass
class Teacher:
    person: int
    username: str
    lesson: int
    pupils: list[int]
    server: int
    """Index of the server the teacher logs in and pushes through."""
    token: str = ""

    @property
    def client_id(self) -> str:
        return f"scale-out-phone-{self.person}"

    def mark(self, i: int) -> dict[str, Any]:
        """The i-th pupil's mark: mostly present, every seventh absent, every eleventh late."""
        if i % 7 == 3:
            return {"status": "absent"}
        if i % 11 == 5:
            return {"status": "late", "late_minutes": 1 + i % 20}
        return {"status": "present"}

    def roll_call(self, today: dt.date, occurred_at: dt.datetime) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "client_id": self.client_id,
            "mutations": [
                {
                    "id": i + 1,
                    "name": "attendance.mark",
                    "occurred_at": occurred_at.isoformat(),
                    "args": {
                        "lesson_id": self.lesson,
                        "on_date": today.isoformat(),
                        "pupil_id": pupil,
                        **self.mark(i),
                    },
                }
                for i, pupil in enumerate(self.pupils)
            ],
        }


def other(t: Teacher) -> int:
    """The server the teacher does not use."""
    return (t.server + 1) % SERVERS


async def _choose_teachers(db: Any, today: dt.date) -> list[Teacher]:
    """Home classes with a teacher of their own (each teacher once) and a lesson today."""
    chosen: list[Teacher] = []
    used: set[int] = set()
    groups_done: set[int] = set()
    for group, person, username in await db.fetch(_CLASSES_SQL, today):
        if group in groups_done or person in used:
            continue
        lesson = await db.fetchval(_LESSON_SQL, group, today.isoweekday(), today)
        pupils = [int(r[0]) for r in await db.fetch(_PUPILS_SQL, group, today)]
        if lesson is None or not pupils:
            continue
        groups_done.add(group)
        used.add(person)
        chosen.append(Teacher(person, username, int(lesson), pupils, len(chosen) % SERVERS))
        if len(chosen) == TEACHERS:
            return chosen
    raise AssertionError(f"only {len(chosen)} home classes with a teacher and a lesson today")


async def _post(base: str, token: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=base, timeout=HTTP_TIMEOUT) as http:
        answer = await http.post(
            "/sync/push", json=body, headers={"Authorization": f"Bearer {token}"}
        )
    assert answer.status_code == 200, answer.text
    results: list[dict[str, Any]] = answer.json()["results"]
    return results


def _digest(record_type: str, record_id: int, version: int) -> int:
    raw = hashlib.sha256(f"{record_type}:{record_id}:{version}".encode()).digest()
    return int.from_bytes(raw[:8], "big")


async def _check_change_log(db: Any, partitions: list[str]) -> None:
    """No duplicate and no gap in each partition's log; its summary is that of its log."""
    rows = await db.fetch(
        "SELECT id, partition, record_type, record_id, version, data IS NULL AS gone "
        "FROM change_log WHERE partition = ANY($1::text[]) ORDER BY id",
        partitions,
    )
    states = {
        r["partition"]: r
        for r in await db.fetch(
            "SELECT partition, head, record_count, checksum FROM partition_state "
            "WHERE partition = ANY($1::text[])",
            partitions,
        )
    }
    versions: dict[tuple[str, str, int], list[int]] = {}
    latest: dict[tuple[str, str, int], tuple[int, bool]] = {}
    heads: dict[str, int] = {}
    for r in rows:
        key = (r["partition"], r["record_type"], int(r["record_id"]))
        versions.setdefault(key, []).append(int(r["version"]))
        latest[key] = (int(r["version"]), bool(r["gone"]))
        heads[r["partition"]] = int(r["id"])
    problems = []
    for key, seen in versions.items():
        if len(set(seen)) != len(seen) or seen != sorted(seen):
            problems.append(f"{key}: versions {seen} repeat or go back")
        elif key[1] == "attendance" and seen != list(range(1, len(seen) + 1)):
            problems.append(f"{key}: versions {seen} have a gap")
    for partition in partitions:
        held = [
            (key[1], key[2], v)
            for key, (v, gone) in latest.items()
            if key[0] == partition and not gone
        ]
        checksum = f"{sum(_digest(*h) for h in held) % 2**64:016x}"
        state = states.get(partition)
        found = None if state is None else (state["head"], state["record_count"], state["checksum"])
        if found != (heads.get(partition), len(held), checksum):
            problems.append(
                f"{partition}: partition_state {found}, its log says "
                f"{(heads.get(partition), len(held), checksum)}"
            )
    assert problems == [], f"{len(problems)} change-log faults: {problems[:5]}"


async def test_roll_call_burst_through_two_servers(fx_deployment: Deployment) -> None:
    cluster = fx_deployment.cluster
    today = cluster.now().astimezone(HELSINKI).date()
    db = await connect(cluster)
    try:
        teachers = await _choose_teachers(db, today)
        outbox_before = int(await db.fetchval("SELECT COALESCE(MAX(id), 0) FROM outbox"))
        gate = asyncio.Semaphore(4)  # argon2: a few logins at a time

        async def log_in(t: Teacher) -> None:
            async with gate:
                t.token = await _log_in(cluster.servers[t.server], t.username)

        await asyncio.gather(*(log_in(t) for t in teachers))

        # The burst: everyone at once, half through each server; every fourth teacher's
        # phone also sends its batch to the other server at the same moment.
        bodies = {t.person: t.roll_call(today, cluster.now()) for t in teachers}
        sends = [(t, t.server) for t in teachers]
        sends += [(t, other(t)) for i, t in enumerate(teachers) if i % 4 == 0]
        answers = await asyncio.gather(
            *(_post(cluster.servers[s], t.token, bodies[t.person]) for t, s in sends)
        )
        for (t, _), results in zip(sends, answers, strict=True):
            assert [r["id"] for r in results] == list(range(1, len(t.pupils) + 1))
            assert {r["status"] for r in results} == {"applied"}, results
        # The same batches again through the other server: answered as before, nothing new.
        again = await asyncio.gather(
            *(_post(cluster.servers[other(t)], t.token, bodies[t.person]) for t in teachers)
        )
        first: dict[int, list[dict[str, Any]]] = {}
        for (t, _), results in zip(sends, answers, strict=True):
            assert first.setdefault(t.person, results) == results  # the racing pair agrees
        for t, results in zip(teachers, again, strict=True):
            assert results == first[t.person]

        clients = [t.client_id for t in teachers]
        marks = sum(len(t.pupils) for t in teachers)
        stored = await db.fetch(
            "SELECT client_id, mutation_id, COUNT(*) AS n FROM roll_mark "
            "WHERE client_id = ANY($1::text[]) GROUP BY client_id, mutation_id",
            clients,
        )
        assert len(stored) == marks
        assert {r["n"] for r in stored} == {1}
        recorded = await db.fetch(
            "SELECT c.client_id, m.mutation_id, COUNT(*) AS n, MIN(m.status) AS status "
            "FROM sync_mutation m JOIN sync_client c ON c.id = m.client "
            "WHERE c.client_id = ANY($1::text[]) GROUP BY c.client_id, m.mutation_id",
            clients,
        )
        assert len(recorded) == marks
        assert {(r["n"], r["status"]) for r in recorded} == {(1, "applied")}
        positions = dict(
            await db.fetch(
                "SELECT client_id, last_mutation_id FROM sync_client "
                "WHERE client_id = ANY($1::text[])",
                clients,
            )
        )
        assert positions == {t.client_id: len(t.pupils) for t in teachers}
        rows = await db.fetch(
            'SELECT id, pupil, lesson, "group" FROM attendance '
            "WHERE on_date = $1 AND lesson = ANY($2::int[])",
            today,
            [t.lesson for t in teachers],
        )
        assert len(rows) == marks
        partitions = sorted(
            {f"person:{r['pupil']}" for r in rows} | {f"group-staff:{r['group']}" for r in rows}
        )
        await _check_change_log(db, partitions)

        # Each teacher's full pull through the other server holds every mark of the class.
        async def pull(t: Teacher) -> None:
            base = cluster.servers[other(t)]
            async with httpx.AsyncClient(base_url=base, timeout=HTTP_TIMEOUT) as http:
                client = ReppuClient(http, t.token)
                report = await client.sync()
            assert report.repaired == []
            marked = {
                r["pupil_id"]: r
                for r in client.store.records("attendance").values()
                if r["lesson_id"] == t.lesson and r["on_date"] == today.isoformat()
            }
            assert sorted(marked) == sorted(t.pupils)
            for i, pupil in enumerate(t.pupils):
                want = t.mark(i)
                status = {"absent": "unexplained"}.get(want["status"], want["status"])
                got = marked[pupil]
                assert (got["status"], got.get("late_minutes"), got["marked_by"]) == (
                    status,
                    want.get("late_minutes"),
                    t.person,
                )

        gate = asyncio.Semaphore(8)

        async def pull_gated(t: Teacher) -> None:
            async with gate:
                await pull(t)

        await asyncio.gather(*(pull_gated(t) for t in teachers))

        # The absences' notifications: each guardian's devices told once per absence.
        await _settle(cluster, db)
        entries = await db.fetch(
            "SELECT id FROM outbox WHERE id > $1 AND kind = 'absence'", outbox_before
        )
        absent = sum(1 for t in teachers for i in range(len(t.pupils)) if i % 7 == 3)
        assert len(entries) == absent
        planned = await db.fetch(
            "SELECT d.status, d.channel, s.endpoint, a.pupil, a.on_date FROM delivery d "
            "JOIN outbox o ON o.id = d.outbox JOIN attendance a ON a.id = o.item_id "
            "LEFT JOIN push_subscription s ON s.id = d.target AND d.channel = 'webpush' "
            "WHERE o.id = ANY($1::bigint[])",
            [int(e["id"]) for e in entries],
        )
        assert {(p["status"], p["channel"]) for p in planned} == {("sent", "webpush")}
        expected = Counter(
            (p["endpoint"].rsplit("/", 1)[1], f"a{p['pupil']}-{p['on_date']}") for p in planned
        )
        assert set(expected.values()) == {1}
        topics = {topic for _, topic in expected}
        got = Counter(
            (r["token"], r["topic"]) for r in await _received(cluster) if r["topic"] in topics
        )
        assert got == expected
        assert (await _emulator_stats(cluster))["refused"] == {}
    finally:
        await db.close()


# -- a worker killed mid-storm ----------------------------------------------------------------

KILL_WITHIN = 120.0
"""Seconds from the kill until everything is sent: well below the 5-minute hold leases had
before they were renewed (``server/leases.py``), so a long hold fails here."""
_OWNERS_SQL = """
CREATE TABLE scale_out_claim_owner (claim text PRIMARY KEY, worker text NOT NULL);
CREATE TABLE scale_out_outbox_owner (outbox bigint PRIMARY KEY, worker text NOT NULL);
CREATE FUNCTION scale_out_note_claims() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO scale_out_claim_owner (claim, worker)
    SELECT DISTINCT claim, current_setting('application_name') FROM new_rows
    WHERE claim IS NOT NULL ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
CREATE FUNCTION scale_out_note_leases() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO scale_out_outbox_owner (outbox, worker)
    SELECT id, current_setting('application_name') FROM new_rows
    WHERE lease_until IS NOT NULL
    ON CONFLICT (outbox) DO UPDATE SET worker = excluded.worker;
    RETURN NULL;
END $$;
CREATE TRIGGER scale_out_note_claims AFTER UPDATE ON delivery
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION scale_out_note_claims();
CREATE TRIGGER scale_out_note_leases AFTER UPDATE ON outbox
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION scale_out_note_leases();
"""
"""Which worker (its connections' ``application_name``, ``tests/cluster.py``) took each claim
and each outbox lease: the claim token is random, so the rows alone do not say."""
_NO_OWNERS_SQL = """
DROP TRIGGER IF EXISTS scale_out_note_claims ON delivery;
DROP TRIGGER IF EXISTS scale_out_note_leases ON outbox;
DROP FUNCTION IF EXISTS scale_out_note_claims();
DROP FUNCTION IF EXISTS scale_out_note_leases();
DROP TABLE IF EXISTS scale_out_claim_owner, scale_out_outbox_owner;
"""
_HELD_SQL = (
    "SELECT o.worker, d.id FROM delivery d JOIN scale_out_claim_owner o ON o.claim = d.claim "
    "WHERE d.status = 'queued' AND d.lease_until > $1"
)
_HELD_OUTBOX_SQL = (
    "SELECT o.worker, e.id FROM outbox e JOIN scale_out_outbox_owner o ON o.outbox = e.id "
    "WHERE e.done_at IS NULL AND e.lease_until > $1"
)


async def _held(cluster: Cluster, db: Any, sql: str) -> dict[str, set[int]]:
    """Worker -> the rows whose lease it holds now (by the processes' clock)."""
    held: dict[str, set[int]] = {}
    for worker, row in await db.fetch(sql, cluster.now()):
        held.setdefault(worker, set()).add(int(row))
    return held


async def test_a_worker_killed_mid_storm_leaves_nothing_behind(fx_deployment: Deployment) -> None:
    """``kill -9`` of a worker that holds claims, once the storm's first pushes are through:
    the survivors take its deliveries (and any outbox entry it was expanding) over within a
    lease, every device gets every bulletin, and only the deliveries the dead worker held can
    go twice (it may have sent them without recording it: at least once)."""
    cluster, devices = fx_deployment.cluster, fx_deployment.devices
    workers = sorted(n for n, _ in cluster.processes if n.startswith("worker-"))
    assert len(workers) == WORKERS
    db = await connect(cluster)
    victim = ""
    try:
        await db.execute(_OWNERS_SQL)
        storm = await Storm.plan(cluster, db)
        accepted_before = int((await _emulator_stats(cluster))["accepted"])
        await storm.send(cluster)
        entries = await storm.entries(db)
        expected = storm.expected(entries, devices)

        # Some pushes through, well before all: the busiest worker is stopped in its tracks
        # (so it claims and sends nothing after the snapshot), its leases noted, then killed.
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while True:
            cluster.check_alive()
            accepted = int((await _emulator_stats(cluster))["accepted"]) - accepted_before
            held = await _held(cluster, db, _HELD_SQL)
            if accepted >= len(expected) // 10 and held:
                break
            assert time.monotonic() < deadline, f"no claims seen; {accepted} pushes accepted"
            await asyncio.sleep(0.05)
        outboxes = await _held(cluster, db, _HELD_OUTBOX_SQL)
        victim = max(held, key=lambda w: (w in outboxes, len(held[w])))
        cluster.freeze(victim)
        accepted = int((await _emulator_stats(cluster))["accepted"]) - accepted_before
        claimed = (await _held(cluster, db, _HELD_SQL)).get(victim, set())
        expanding = (await _held(cluster, db, _HELD_OUTBOX_SQL)).get(victim, set())
        cluster.kill(victim)
        assert claimed, f"{victim} held no claim when it was stopped"
        # Mid-storm, whatever the machine's speed: the victim held claims (above) and the storm
        # was not over, so the survivors have its deliveries to take over.
        assert accepted < len(expected), f"killed too late: {accepted}/{len(expected)} sent"

        await _settle(cluster, db, within=KILL_WITHIN)
        got = await _got(cluster, entries)
        missed = expected.keys() - got.keys()
        strangers = got.keys() - expected.keys()
        assert (len(missed), len(strangers)) == (0, 0), (
            f"{len(missed)} missed (e.g. {sorted(missed)[:3]}), "
            f"{len(strangers)} to devices outside the audience (e.g. {sorted(strangers)[:3]})"
        )
        # A second push only for a delivery the dead worker held, and never a third.
        deliveries = {
            (r["endpoint"].rsplit("/", 1)[1], f"b{r['item_id']}"): int(r["id"])
            for r in await db.fetch(
                "SELECT d.id, s.endpoint, o.item_id FROM delivery d "
                "JOIN outbox o ON o.id = d.outbox JOIN push_subscription s ON s.id = d.target "
                "WHERE d.outbox = ANY($1::bigint[]) AND d.channel = 'webpush'",
                [int(e["id"]) for e in entries],
            )
        }
        doubles = {deliveries[k]: n for k, n in got.items() if n > 1}
        assert set(doubles.values()) <= {2}, f"pushed three times or more: {doubles}"
        assert doubles.keys() <= claimed, (
            f"{len(doubles.keys() - claimed)} deliveries sent twice that {victim} did not hold"
        )
        assert await _statuses(db, entries) == {"sent": len(expected)}
        assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE done_at IS NULL") == 0
        assert (await _emulator_stats(cluster))["refused"] == {}
        print(
            f"killed {victim} after {accepted} of {len(expected)} pushes, holding "
            f"{len(claimed)} deliveries and outbox entries {sorted(expanding)}; "
            f"{len(doubles)} went twice"
        )
    finally:
        try:
            await db.execute(_NO_OWNERS_SQL)
            await db.close()
        finally:
            # A fresh worker in the dead one's place: the module's other tests use three.
            if victim:
                if any(n == victim for n, _ in cluster.processes):
                    cluster.kill(victim)  # stopped, and the test failed before the kill
                cluster.start_worker(f"worker-{WORKERS + 1}")
                await wait_for_line(cluster, f"worker-{WORKERS + 1}", "Delivery worker on")
