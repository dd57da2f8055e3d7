"""The convergence property over the real stack, as a Hypothesis state machine.

Several devices of different roles run the reference client (``clients/python``) against the
app in-process, over HTTP, on SQLite and on PostgreSQL. Hypothesis chooses the steps: the
teacher's device changing and restoring lessons (pushed at once while it is online, queued
while it is not), a pupil changing class and back, a guardianship ending and starting again,
compaction, devices going offline and coming back, a device pulling one page of any size and
keeping or losing the answer (an interrupted sync), and full syncs. Whenever a device syncs
fully, and for every device at the end of each example, it must hold exactly what a fresh
device of the same person receives, with no partition needing repair.

This joins ``tests/sync/test_convergence_property.py`` (the same property as a state machine
over an in-memory store) and ``tests/server/test_sync_convergence.py`` (the real stack, with
seeded ``random``).

How it runs: a Hypothesis machine is synchronous and runs many examples, so the test is a
plain (sync) test driving an event loop of its own through :class:`asyncio.Runner`
(pytest-asyncio's session loop is not running while a sync test runs, and a runner given a
``loop_factory`` leaves the thread's current loop alone). On that loop it opens its own
engine on the session's database (``fx_settings``: migrated, and skipped or failed like every
storage test when PostgreSQL is missing) and the app over it. Every example starts from the
same world: the city, its timetable with sync state seeded, and a token for each person. On
PostgreSQL the tables are emptied and the world built again (about 0.1 s); on SQLite, where
each query opens a connection and building takes several times that, the world is built once
and copied back into the file with SQLite's backup API before each further example. Engines
are bound per table class for the whole process, so at the end the session's engine is bound
again for the tests that follow.

About 20-30 s a backend when it passes. A failure is shrunk to a few steps, which takes a
minute or two more; Hypothesis's example database then replays it first on the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import sqlite3
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest
from argon2 import PasswordHasher
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test
from piccolo.engine.base import Engine

from clients.python import LocalStore, ReppuClient
from schemas.sync import SCHEMA_VERSION
from server import identity
from server.app import create_app
from server.clock import school_today
from server.compaction import compact
from server.db.engine import bind_engine, open_database
from server.db.tables import Guardianship, Membership
from server.settings import Settings
from server.sync_store import seed_sync_state
from server.timetable import all_timetable_writes
from tests.city import PASSWORD, City, add_timetable, build_city
from tests.conftest import _empty_all_tables
from tests.devices import next_weekday

T = TypeVar("T")

PEOPLE = ("aino", "eero", "olli", "mother", "father", "teacher", "principal")
WRITER = "teacher"
"""The device that changes lessons; it also syncs like any other."""
LESSONS = ("5a-1", "5b-3", "ma-1", "3c-3")
"""One lesson of each group (``tests/city.add_timetable``), so that restorations often meet
changes; each is changed on its next occurrence."""
LESSON_EDITS: tuple[dict[str, Any], ...] = ({"cancelled": True}, {"room": "B2"}, {"note": "Trip"})
PAGE_LIMITS = st.sampled_from([1, 2, 3, 5, 500])
MAX_SYNC_PAGES = 500
"""Far more than a full sync at one record a page takes here: a sync that repairs for ever
fails quickly instead of running ten thousand pages."""

MACHINE_SETTINGS = settings(
    max_examples=30,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    # Not ``explain``: once a failure is found it traces every line run while shrinking, here
    # the whole web and database stack, which made shrinking ten times slower and its
    # "explanation" only ever pointed at this file.
    phases=[phase for phase in Phase if phase is not Phase.explain],
)
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
"""Every PostgreSQL example logs seven people in: at argon2's real cost (0.2 s a check) that
alone would take most of the time."""


@dataclass
class Base:
    """What every example starts from: the city, the lessons by key, a token per person."""

    city: City
    lessons: dict[str, int]
    tokens: dict[str, str]


@dataclass
class World:
    """What lives for the whole test: the loop, the engine, the app's HTTP client."""

    runner: asyncio.Runner
    app_settings: Settings
    engine: Engine[Any]
    http: httpx.AsyncClient
    base: Base | None = None
    snapshot: sqlite3.Connection | None = field(default=None, repr=False)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coroutine)

    def fresh_base(self) -> Base:
        """Put the database in the state every example starts from, and describe it."""
        if not self.app_settings.is_sqlite:
            return self.run(self._build())
        path = str(self.app_settings.sqlite_path)
        if self.base is None or self.snapshot is None:
            self.base = self.run(self._build())
            self.snapshot = sqlite3.connect(":memory:")
            with contextlib.closing(sqlite3.connect(path)) as live:
                live.backup(self.snapshot)
        else:
            # No connection is open between steps: Piccolo's SQLite engine opens one a query.
            with contextlib.closing(sqlite3.connect(path)) as live:
                self.snapshot.backup(live)
        return self.base

    async def _build(self) -> Base:
        await _empty_all_tables(self.engine)
        city = await build_city(school_today())
        lessons = await add_timetable(city)
        await seed_sync_state(self.engine, await all_timetable_writes())
        tokens = {}
        for name in PEOPLE:
            answer = await self.http.post(
                "/auth/login", json={"username": name, "password": PASSWORD, "device_name": "t"}
            )
            assert answer.status_code == 200, answer.text
            tokens[name] = answer.json()["token"]
        return Base(city, {key: lessons[key] for key in LESSONS}, tokens)


@contextlib.contextmanager
def open_world(app_settings: Settings) -> Iterator[World]:
    """A private event loop with an engine on the session's database and the app over it."""
    with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
        stack = contextlib.AsyncExitStack()
        try:
            engine = runner.run(stack.enter_async_context(open_database(app_settings)))
            app = create_app(app_settings, engine=engine)
            stack.push_async_callback(app.state.reppu.live.stop)
            transport = httpx.ASGITransport(
                app=app,  # type: ignore[arg-type]  # Litestar's ASGI types are narrower
                client=("127.0.0.1", 50000),
            )
            http = runner.run(
                stack.enter_async_context(
                    httpx.AsyncClient(transport=transport, base_url="http://reppu.test")
                )
            )
            world = World(runner, app_settings, engine, http)
            try:
                yield world
            finally:
                if world.snapshot is not None:
                    world.snapshot.close()
        finally:
            runner.run(stack.aclose())


async def _place_pupil(c: City, moved: bool) -> None:
    """Olli is in 5A, or has left 5A for 5B today (the seeded test's class change)."""
    long_ago, yesterday = c.today - dt.timedelta(days=90), c.today - dt.timedelta(days=1)
    await Membership.delete().where(Membership.person == c.olli)
    if not moved:
        await Membership.insert(
            Membership(group=c.class_5a, person=c.olli, role="pupil", valid_from=long_ago)
        )
        return
    await Membership.insert(
        Membership(
            group=c.class_5a, person=c.olli, role="pupil", valid_from=long_ago, valid_to=yesterday
        ),
        Membership(group=c.class_5b, person=c.olli, role="pupil", valid_from=c.today),
    )


async def _set_custody(c: City, ended: bool) -> None:
    """The mother's guardianship of Eero is open, or ended yesterday."""
    end = c.today - dt.timedelta(days=1) if ended else None
    await Guardianship.update({Guardianship.valid_to: end}).where(
        (Guardianship.guardian == c.mother) & (Guardianship.pupil == c.eero)
    )


async def _pull_page(phone: ReppuClient, limit: int, keep: bool) -> None:
    """One pull of at most ``limit`` records; the answer is applied, or lost on the way.
    What is applied must check out: a partition is summed up only once it is complete."""
    if keep:
        phone.page_limit = limit
        _, mismatched = await phone.pull()
        assert mismatched == [], mismatched
        return
    body: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "limit": limit}
    if phone.store.cursor:
        body["cursor"] = phone.store.cursor
    answer = await phone.http.post("/sync/pull", json=body, headers=phone.headers)
    assert answer.status_code == 200, answer.text


class RealStackConvergence(RuleBasedStateMachine):
    """One example: the world as it starts, an empty device per person, and whatever
    Hypothesis chooses."""

    def __init__(self, world: World) -> None:
        super().__init__()
        self.world = world
        self.failed = False
        self.offline: set[str] = set()
        base = world.fresh_base()
        self.city = base.city
        self.lessons = base.lessons
        self.tokens = base.tokens
        self.phones = {name: ReppuClient(world.http, base.tokens[name]) for name in PEOPLE}

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run one step's work on the world's loop, remembering whether it failed (every
        check of a step is made inside it)."""
        try:
            return self.world.run(coroutine)
        except BaseException:
            self.failed = True
            raise

    # -- writes ---------------------------------------------------------------------------
    def _lesson_mutation(self, name: str, lesson: str, edit: dict[str, Any]) -> None:
        day = next_weekday(self.city.today, int(lesson.rsplit("-", 1)[1]))
        writer = self.phones[WRITER]
        writer.queue(name, {"lesson_id": self.lessons[lesson], "on_date": day.isoformat(), **edit})
        if WRITER not in self.offline:
            self.run(writer.push())

    @rule(lesson=st.sampled_from(LESSONS), edit=st.sampled_from(LESSON_EDITS))
    def teacher_changes_a_lesson(self, lesson: str, edit: dict[str, Any]) -> None:
        self._lesson_mutation("lesson.change", lesson, edit)

    @rule(lesson=st.sampled_from(LESSONS))
    def teacher_restores_a_lesson(self, lesson: str) -> None:
        self._lesson_mutation("lesson.restore", lesson, {})

    # -- access changes and compaction ----------------------------------------------------
    # Each sets a state rather than toggling one, so that the shrinker can drop any step.
    @rule(moved=st.booleans())
    def pupil_changes_class(self, moved: bool) -> None:
        self.run(_place_pupil(self.city, moved))

    @rule(ended=st.booleans())
    def guardianship_ends_or_restarts(self, ended: bool) -> None:
        self.run(_set_custody(self.city, ended))

    @rule(keep=st.sampled_from([0, 2, 1_000_000]))
    def compaction(self, keep: int) -> None:
        self.run(compact(self.world.engine, keep_positions=keep))

    # -- devices --------------------------------------------------------------------------
    @rule(name=st.sampled_from(PEOPLE), offline=st.booleans())
    def goes_offline_or_online(self, name: str, offline: bool) -> None:
        if offline:
            self.offline.add(name)
        else:
            self.offline.discard(name)

    @rule(name=st.sampled_from(PEOPLE), limit=PAGE_LIMITS, keep=st.booleans())
    def pulls_one_page(self, name: str, limit: int, keep: bool) -> None:
        if name not in self.offline:
            self.run(_pull_page(self.phones[name], limit, keep))

    @rule(name=st.sampled_from(PEOPLE), limit=PAGE_LIMITS)
    def syncs_fully(self, name: str, limit: int) -> None:
        if name not in self.offline:
            self.run(self._sync_and_compare(name, limit))

    async def _sync_and_compare(self, name: str, limit: int) -> None:
        """Sync ``name``'s device fully; it must need no repair and hold what a fresh device
        of the same person receives."""
        phone = self.phones[name]
        phone.page_limit = limit
        report = await phone.sync(max_pages=MAX_SYNC_PAGES)
        assert report.repaired == [], (name, report.repaired)
        fresh = ReppuClient(self.world.http, self.tokens[name], LocalStore())
        first = await fresh.sync(max_pages=MAX_SYNC_PAGES)
        assert first.repaired == [], (name, "fresh device", first.repaired)
        assert phone.store.partitions() == fresh.store.partitions(), name
        assert phone.store.records() == fresh.store.records(), name

    # -- the end of an example -------------------------------------------------------------
    async def _everyone_syncs(self) -> None:
        await self.phones[WRITER].push()
        for name in PEOPLE:
            await self._sync_and_compare(name, 500)

    def teardown(self) -> None:
        # After a failing step the failure stands as it is: checking more would only hide it.
        if not self.failed:
            self.run(self._everyone_syncs())


@pytest.mark.slow
def test_every_device_converges_to_a_fresh_copy(
    fx_settings: Settings, fx_db: Engine[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(identity, "_hasher", CHEAP_HASHER)
    try:
        with open_world(fx_settings) as world:
            run_state_machine_as_test(  # type: ignore[no-untyped-call]
                lambda: RealStackConvergence(world), settings=MACHINE_SETTINGS
            )
    finally:
        # The world bound its own engine to every table; give the session's back.
        bind_engine(fx_db)
