"""Shared fixtures: a migrated database on every backend, and an app with a client.

Storage-touching tests take ``fx_db`` and so run twice, once on SQLite and once on PostgreSQL.
Each PostgreSQL run creates its own database (``reppu_test_<random>``) and drops it at the end,
so runs never collide. Where no PostgreSQL answers, its half is skipped with a loud reason,
except under ``CI=true``, where that is a failure. ``REPPU_TEST_BACKENDS=sqlite`` (a comma list)
runs the storage tests on the named backends only; the clock matrix of ``scripts/test`` uses it.

**The clock.** No test reads the wall clock: every test runs with the process's clock moved by
time-machine to a known instant (``fx_frozen_clock``), and the clock then runs on from there.
The instant is the test's own ``@pytest.mark.now("2026-11-24T10:15:00+02:00")`` where its result
depends on the time of day (quiet hours, a school day, a term), else ``REPPU_TEST_NOW``, else
:data:`DEFAULT_TEST_NOW`. ``scripts/test`` runs the suite again at the hard instants (02:00 and
12:00 Helsinki, weekends, both DST nights, New Year's Eve 23:59, a summer day) with
``REPPU_TEST_NOW`` set, so a test that silently depends on the hour fails there. Browser tests
keep their own clocks (libfaketime for the server, Playwright's for the page) and are left out.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
import time_machine
from litestar import Litestar
from piccolo.engine.base import Engine

from server.app import create_app
from server.clock import school_today
from server.db.engine import bind_engine, open_database
from server.db.migrate import migrate
from server.db.schema import EVERY_TABLE
from server.db.tables import Organisation
from server.settings import Settings, load_settings
from server.sync_store import seed_sync_state
from server.timetable import all_timetable_writes
from tests.city import PASSWORD, City, add_timetable, build_city

POSTGRES_ADMIN_URL = os.environ.get(
    "REPPU_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
BACKENDS = tuple(
    name.strip()
    for name in os.environ.get("REPPU_TEST_BACKENDS", "sqlite,postgres").split(",")
    if name.strip()
)
assert set(BACKENDS) <= {"sqlite", "postgres"}, f"REPPU_TEST_BACKENDS: unknown {BACKENDS}"

DEFAULT_TEST_NOW = "2026-11-24T10:15:00+02:00"
"""A Tuesday of the autumn term in school hours, outside the default quiet hours."""


def suite_now() -> dt.datetime:
    """The instant the suite runs at when a test names none (aware)."""
    raw = os.environ.get("REPPU_TEST_NOW") or DEFAULT_TEST_NOW
    instant = dt.datetime.fromisoformat(raw)
    if instant.tzinfo is None:
        raise ValueError(f"REPPU_TEST_NOW must carry a UTC offset: {raw!r}")
    return instant


@pytest.fixture(scope="session", autouse=True)
def fx_session_clock() -> Iterator[None]:
    """The session's own set-up (migrations, databases) runs at the suite's instant too, so no
    row the suite makes is stamped by the real clock, before or after the tests' instants."""
    with time_machine.travel(suite_now(), tick=True):
        yield


@pytest.fixture(autouse=True)
def fx_frozen_clock(request: pytest.FixtureRequest) -> Iterator[time_machine.Coordinates | None]:
    """Move the process's clock to the test's instant; it runs on from there (``tick``)."""
    if request.node.get_closest_marker("browser") is not None:
        yield None  # the browser tests' server and page keep clocks of their own
        return
    marker = request.node.get_closest_marker("now")
    instant = dt.datetime.fromisoformat(marker.args[0]) if marker is not None else suite_now()
    with time_machine.travel(instant, tick=True) as traveller:
        yield traveller


BACKGROUND_TASKS = frozenset({"reppu-live", "reppu-delivery-worker"})
"""The app's long-lived tasks: none may outlive the test that started it."""


@pytest_asyncio.fixture(autouse=True)
async def fx_no_task_left_behind(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Fail the test that leaves an app's background task running in the session's loop.

    Such a task (an app whose live hub was never stopped) runs on into the tests after it,
    where it meets their monkeypatches and clocks and fails one of them, far from its cause.
    The task is cancelled here, so the next test starts clean either way."""
    before = {task for task in asyncio.all_tasks() if task.get_name() in BACKGROUND_TASKS}
    yield
    left = [
        task
        for task in asyncio.all_tasks()
        if task.get_name() in BACKGROUND_TASKS and task not in before and not task.done()
    ]
    for task in left:
        task.cancel()
    if left:
        await asyncio.gather(*left, return_exceptions=True)
        pytest.fail(
            f"{request.node.nodeid} left running: {sorted(t.get_name() for t in left)} "
            "(stop the app: run it inside app.lifespan(), or stop its live hub)"
        )


def _base_env(data_dir: Path) -> dict[str, str]:
    # Access lookups are not kept between requests here, so that a test changing a membership
    # or revoking a token sees the effect at once; tests/server/test_fast_pull.py keeps them.
    return {
        "REPPU_DATA_DIR": str(data_dir),
        "REPPU_TOKEN_TTL_SECONDS": "3600",
        "REPPU_ACCESS_CACHE_SECONDS": "0",
        # The push-service emulator of tests/push_service.py, over plain http.
        "REPPU_PUSH_HOSTS": "http://push.test:8443",
        # The operator's mail server and a JSON hook standing in for an SMS gateway, both on
        # loopback's discard port where nothing listens; tests that deliver point the worker
        # at a receiver of their own (tests/server/test_channels_ssrf.py).
        "REPPU_SMTP_URL": "mailto://127.0.0.1:9?from=reppu@reppu.test",
        "REPPU_SMS_URL": "json://127.0.0.1:9/sms?:to={phone}",
    }


async def _create_postgres_database() -> str:
    """Create a fresh database and return its URL; skip (or fail in CI) without PostgreSQL."""
    name = f"reppu_test_{secrets.token_hex(4)}"
    try:
        conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        message = f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: the PostgreSQL half must run)")
        pytest.skip("SKIPPING THE POSTGRESQL HALF: " + message)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


async def _drop_postgres_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def fx_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("reppu-data")


@pytest_asyncio.fixture(scope="session", params=BACKENDS)
async def fx_settings(request: pytest.FixtureRequest, fx_data_dir: Path) -> AsyncIterator[Settings]:
    """Settings for one backend with a freshly migrated database, for the whole session."""
    env = _base_env(fx_data_dir)
    postgres_url = None
    if request.param == "sqlite":
        env["REPPU_DATABASE_URL"] = f"sqlite:///{fx_data_dir / 'test.sqlite3'}"
    else:
        postgres_url = await _create_postgres_database()
        env["REPPU_DATABASE_URL"] = postgres_url
    settings = load_settings(env)
    async with open_database(settings):
        await migrate(quiet=True)
    try:
        yield settings
    finally:
        if postgres_url is not None:
            await _drop_postgres_database(postgres_url)


@pytest_asyncio.fixture(scope="session")
async def fx_engine(fx_settings: Settings) -> AsyncIterator[Engine[Any]]:
    """The open engine of the session's backend (pool started on PostgreSQL)."""
    async with open_database(fx_settings) as engine:
        yield engine


async def _empty_all_tables(engine: Engine[Any]) -> None:
    # Children before parents, so that ON DELETE RESTRICT never objects; SQLite checks it row
    # by row, so schools go before the municipalities they point to.
    for table in reversed(EVERY_TABLE):
        if table is Organisation:
            await Organisation.delete().where(Organisation.parent.is_not_null())
        await table.delete(force=True).run()


@pytest_asyncio.fixture
async def fx_db(fx_engine: Engine[Any]) -> AsyncIterator[Engine[Any]]:
    """An empty, migrated database on the current backend; emptied again after the test."""
    bind_engine(fx_engine)
    await _empty_all_tables(fx_engine)
    yield fx_engine
    await _empty_all_tables(fx_engine)


@pytest.fixture
def fx_backend(fx_settings: Settings) -> Iterator[str]:
    return "sqlite" if fx_settings.is_sqlite else "postgres"


@pytest_asyncio.fixture
async def fx_app(fx_settings: Settings, fx_db: Engine[Any]) -> AsyncIterator[Litestar]:
    """The app on the session's backend, sharing the test's open engine. What it starts on first
    use (the live hub's watch) stops with the test: its lifespan would do it, but an ASGI
    transport runs none, and a fixture cannot enter it in one task and leave it in another."""
    app = create_app(fx_settings, engine=fx_db)
    yield app
    await app.state.reppu.live.stop()


AppMaker = Callable[[Settings, Engine[Any]], Litestar]
"""Makes an app on an open engine, as ``fx_make_app`` gives it."""


@pytest_asyncio.fixture
async def fx_make_app() -> AsyncIterator[AppMaker]:
    """Make apps on an open engine (a test's other server processes, or one restarted); what
    each starts on first use (its live hub's watch) stops with the test, as in ``fx_app``."""
    made: list[Litestar] = []

    def make(settings: Settings, engine: Engine[Any]) -> Litestar:
        app = create_app(settings, engine=engine)
        made.append(app)
        return app

    yield make
    for app in made:
        await app.state.reppu.live.stop()


@pytest_asyncio.fixture
async def fx_client(fx_app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process (no network), from 127.0.0.1."""
    transport = httpx.ASGITransport(app=fx_app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://reppu.test") as client:
        yield client


@pytest_asyncio.fixture
async def fx_city(fx_db: Engine[Any]) -> City:
    """The hand-written world of ``tests/city.py``, dated around today in Helsinki."""
    return await build_city(school_today())


async def log_in_as(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD
) -> dict[str, str]:
    """Log in and return the headers that carry the token."""
    answer = await client.post(
        "/auth/login", json={"username": username, "password": password, "device_name": "test"}
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


@pytest_asyncio.fixture
async def fx_timetable(fx_city: City, fx_db: Engine[Any]) -> dict[str, int]:
    """The city's timetable (``tests/city.add_timetable``), with its sync state seeded."""
    ids = await add_timetable(fx_city)
    await seed_sync_state(fx_db, await all_timetable_writes())
    return ids
