"""SQLite's group commit (``server/db/engine.py``): writers of one process that wait in line
share one transaction, each in a savepoint of its own. A writer that fails undoes only its
own work, every other writer's work is committed when its block returns, and nothing is lost."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
import pytest_asyncio
from piccolo.engine.base import Engine

from server.db.engine import open_database, write_transaction
from server.settings import load_settings
from tests.conftest import _base_env


class _RefusedError(Exception):
    pass


@pytest_asyncio.fixture
async def fx_sqlite(tmp_path: Path) -> AsyncIterator[Engine[Any]]:
    env = {**_base_env(tmp_path), "REPPU_DATABASE_URL": f"sqlite:///{tmp_path / 'g.sqlite3'}"}
    async with open_database(load_settings(env)) as engine:
        async with write_transaction(engine):
            await engine.run_ddl("CREATE TABLE t (writer INTEGER, step INTEGER)")
        yield engine


async def _writers(fx_sqlite: Engine[Any]) -> list[int]:
    rows = await fx_sqlite.run_ddl("SELECT writer FROM t ORDER BY writer, step")
    return [int(r["writer"]) for r in rows]


def _task(work: Any) -> asyncio.Task[Any]:
    # Each writer as its own request: a context of its own, outside any transaction.
    return asyncio.create_task(work, context=contextvars.Context())


async def test_a_failing_writer_in_a_group_undoes_only_its_own_work(
    fx_sqlite: Engine[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    first_inside = asyncio.Event()
    let_first_go = asyncio.Event()
    seen_committed: dict[int, list[int]] = {}

    async def write(writer: int) -> None:
        async with write_transaction(fx_sqlite):
            for step in range(3):
                await fx_sqlite.run_ddl(f"INSERT INTO t VALUES ({writer}, {step})")  # noqa: S608
                if writer == 0 and step == 0:
                    first_inside.set()
                    await let_first_go.wait()
            if writer == 2:
                raise _RefusedError
        # Returned: committed, and seen by a read outside the group.
        seen_committed[writer] = await _writers(fx_sqlite)

    opened = 0
    connect = aiosqlite.connect

    def counting_connect(*args: Any, **kwargs: Any) -> aiosqlite.Connection:
        nonlocal opened
        opened += 1
        return connect(*args, **kwargs)

    await asyncio.gather(*(_writers(fx_sqlite) for _ in range(8)))  # the read pool, opened
    first = _task(write(0))
    await first_inside.wait()
    monkeypatch.setattr(aiosqlite, "connect", counting_connect)
    others = [_task(write(writer)) for writer in range(1, 5)]
    await asyncio.sleep(0.05)  # all four wait in line behind the first
    let_first_go.set()
    results = await asyncio.gather(first, *others, return_exceptions=True)

    assert [type(r) for r in results] == [type(None)] * 2 + [_RefusedError] + [type(None)] * 2
    assert await _writers(fx_sqlite) == [0, 0, 0, 1, 1, 1, 3, 3, 3, 4, 4, 4]
    for writer in (0, 1, 3, 4):
        assert seen_committed[writer].count(writer) == 3
    # The four that waited joined the first one's transaction: no connection of their own
    # (the reads after it come from the read pool, opened before).
    assert opened == 0


async def test_nothing_is_lost_under_many_writers(fx_sqlite: Engine[Any]) -> None:
    async def write(writer: int) -> None:
        async with write_transaction(fx_sqlite):
            await fx_sqlite.run_ddl(f"INSERT INTO t VALUES ({writer}, 0)")  # noqa: S608
            await asyncio.sleep(0)
            await fx_sqlite.run_ddl(f"INSERT INTO t VALUES ({writer}, 1)")  # noqa: S608
            if writer % 7 == 3:
                raise _RefusedError

    results = await asyncio.gather(*(_task(write(w)) for w in range(60)), return_exceptions=True)
    refused = {w for w, r in enumerate(results) if isinstance(r, _RefusedError)}
    assert refused == {w for w in range(60) if w % 7 == 3}
    assert all(r is None for w, r in enumerate(results) if w not in refused)
    assert await _writers(fx_sqlite) == sorted(
        [w for w in range(60) if w not in refused for _ in range(2)]
    )


async def test_a_writer_cancelled_in_a_group_leaves_the_others_committed(
    fx_sqlite: Engine[Any],
) -> None:
    first_inside = asyncio.Event()
    let_first_go = asyncio.Event()
    second_inside = asyncio.Event()

    async def write(writer: int) -> None:
        async with write_transaction(fx_sqlite):
            await fx_sqlite.run_ddl(f"INSERT INTO t VALUES ({writer}, 0)")  # noqa: S608
            if writer == 0:
                first_inside.set()
                await let_first_go.wait()
            if writer == 1:
                second_inside.set()
                await asyncio.sleep(3600)

    first = _task(write(0))
    await first_inside.wait()
    second, third = _task(write(1)), _task(write(2))
    await asyncio.sleep(0.05)
    let_first_go.set()
    await second_inside.wait()
    second.cancel()
    await asyncio.wait_for(asyncio.gather(first, third), timeout=10)
    with pytest.raises(asyncio.CancelledError):
        await second
    assert await _writers(fx_sqlite) == [0, 2]
    # And the writer is free for the next one.
    await asyncio.wait_for(_task(write(3)), timeout=10)
    assert await _writers(fx_sqlite) == [0, 2, 3]


async def test_a_lone_writer_that_fails_leaves_nothing_and_the_writer_free(
    fx_sqlite: Engine[Any],
) -> None:
    async def write(writer: int, fail: bool) -> None:
        async with write_transaction(fx_sqlite):
            await fx_sqlite.run_ddl(f"INSERT INTO t VALUES ({writer}, 0)")  # noqa: S608
            if fail:
                raise _RefusedError

    with pytest.raises(_RefusedError):
        await _task(write(1, fail=True))
    await asyncio.wait_for(_task(write(2, fail=False)), timeout=10)
    with pytest.raises(_RefusedError):
        await _task(write(3, fail=True))
    assert await _writers(fx_sqlite) == [2]


@pytest.mark.parametrize("statement", ["SAVEPOINT", "RELEASE"])
async def test_a_writer_cancelled_during_its_savepoint_statement_costs_nobody_else(
    fx_sqlite: Engine[Any], monkeypatch: pytest.MonkeyPatch, statement: str
) -> None:
    """A writer cancelled while its own ``SAVEPOINT`` (joining) or ``RELEASE`` (leaving) runs
    must not roll the group back: the others' work stands and is committed."""
    slow_started = asyncio.Event()
    execute = aiosqlite.Connection.execute

    async def slowly(self: aiosqlite.Connection, sql: str, *args: Any) -> Any:
        slow_started.set()
        await asyncio.sleep(0.3)
        return await execute(self, sql, *args)

    def slow_savepoints(self: aiosqlite.Connection, sql: str, *args: Any) -> Any:
        # Every other statement gets aiosqlite's own answer (awaitable and a context manager).
        if sql.startswith(statement) and sql.endswith("writer_2"):
            return slowly(self, sql, *args)
        return execute(self, sql, *args)

    monkeypatch.setattr(aiosqlite.Connection, "execute", slow_savepoints)
    first_inside = asyncio.Event()
    let_first_go = asyncio.Event()

    async def write(writer: int) -> None:
        async with write_transaction(fx_sqlite):
            await fx_sqlite.run_ddl(f"INSERT INTO t VALUES ({writer}, 0)")  # noqa: S608
            if writer == 0:
                first_inside.set()
                await let_first_go.wait()

    first = _task(write(0))
    await first_inside.wait()
    second, third = _task(write(1)), _task(write(2))
    await asyncio.sleep(0.05)  # both wait in line behind the first
    let_first_go.set()
    await slow_started.wait()
    second.cancel()
    results = await asyncio.gather(first, second, third, return_exceptions=True)
    assert results[0] is None, "the first writer's work was lost"
    assert isinstance(results[1], asyncio.CancelledError)
    assert results[2] is None, "the third writer's work was lost"
    committed = await _writers(fx_sqlite)
    expected = [0, 2] if statement == "SAVEPOINT" else [0, 1, 2]  # a release that ran stands
    assert committed == expected
