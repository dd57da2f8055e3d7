"""SQLite's reads outside write transactions come from a small pool of long-lived read
connections (``server/db/engine.py``): they must see every commit made before them, a
snapshot must stay one snapshot, and the pool must not grow past its size nor outlive the
process's database."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
import pytest_asyncio
from piccolo.engine.base import Engine

from server.db.engine import open_database, read_snapshot, write_transaction
from server.settings import load_settings
from tests.conftest import _base_env

POOL_SIZE = 2


@pytest_asyncio.fixture
async def fx_sqlite(tmp_path: Path) -> AsyncIterator[Engine[Any]]:
    env = {
        **_base_env(tmp_path),
        "REPPU_DATABASE_URL": f"sqlite:///{tmp_path / 'pool.sqlite3'}",
        "REPPU_SQLITE_READ_CONNECTIONS": str(POOL_SIZE),
    }
    async with open_database(load_settings(env)) as engine:
        async with write_transaction(engine):
            await engine.run_ddl("CREATE TABLE t (x INTEGER)")
        yield engine


async def _count(engine: Engine[Any]) -> int:
    rows = await engine.run_ddl("SELECT count(*) AS n FROM t")
    return int(rows[0]["n"])


def _elsewhere(work: Any) -> asyncio.Task[Any]:
    """``work`` as another request would run it: outside this task's transaction."""
    return asyncio.create_task(work, context=contextvars.Context())


async def _add(engine: Engine[Any]) -> None:
    async with write_transaction(engine):
        await engine.run_ddl("INSERT INTO t (x) VALUES (1)")


async def test_concurrent_reads_share_the_pool(
    fx_sqlite: Engine[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    await _add(fx_sqlite)
    opened = 0
    connect = aiosqlite.connect

    def counting_connect(*args: Any, **kwargs: Any) -> aiosqlite.Connection:
        nonlocal opened
        opened += 1
        return connect(*args, **kwargs)

    monkeypatch.setattr(aiosqlite, "connect", counting_connect)
    counts = await asyncio.gather(*(_count(fx_sqlite) for _ in range(40)))
    assert counts == [1] * 40
    assert opened <= POOL_SIZE  # not a connection (and a thread) per read


async def test_a_read_after_a_commit_sees_it(fx_sqlite: Engine[Any]) -> None:
    # Every pooled connection has read before the write, so none may keep an old snapshot.
    assert await asyncio.gather(*(_count(fx_sqlite) for _ in range(POOL_SIZE * 3))) == [0] * 6
    await _add(fx_sqlite)
    assert await asyncio.gather(*(_count(fx_sqlite) for _ in range(POOL_SIZE * 3))) == [1] * 6


async def test_a_snapshot_stays_one_snapshot(fx_sqlite: Engine[Any]) -> None:
    await _add(fx_sqlite)
    async with read_snapshot(fx_sqlite):
        assert await _count(fx_sqlite) == 1
        # Another task commits meanwhile (and other reads run beside the snapshot).
        await _elsewhere(_add(fx_sqlite))
        assert await _elsewhere(_count(fx_sqlite)) == 2
        assert await _count(fx_sqlite) == 1
    assert await _count(fx_sqlite) == 2


async def test_reads_inside_a_write_transaction_see_its_own_writes(
    fx_sqlite: Engine[Any],
) -> None:
    async with write_transaction(fx_sqlite):
        await fx_sqlite.run_ddl("INSERT INTO t (x) VALUES (1)")
        assert await _count(fx_sqlite) == 1
        async with read_snapshot(fx_sqlite):
            assert await _count(fx_sqlite) == 1
        assert await _elsewhere(_count(fx_sqlite)) == 0  # not committed yet
    assert await _count(fx_sqlite) == 1


async def test_a_snapshot_cannot_write(fx_sqlite: Engine[Any]) -> None:
    with pytest.raises(Exception, match="readonly"):
        async with read_snapshot(fx_sqlite):
            await fx_sqlite.run_ddl("INSERT INTO t (x) VALUES (1)")
    assert await _count(fx_sqlite) == 0  # and the pool still serves after the failure


async def test_the_pool_closes_with_the_database(tmp_path: Path) -> None:
    env = {**_base_env(tmp_path), "REPPU_DATABASE_URL": f"sqlite:///{tmp_path / 'c.sqlite3'}"}
    before = threading.active_count()
    async with open_database(load_settings(env)) as engine:
        await asyncio.gather(*(engine.run_ddl("SELECT 1") for _ in range(10)))
        async with read_snapshot(engine):
            await engine.run_ddl("SELECT 1")
    for _ in range(100):  # aiosqlite's threads end a moment after their close
        if threading.active_count() <= before:
            break
        await asyncio.sleep(0.01)
    assert threading.active_count() <= before


async def test_a_reader_cancelled_while_waiting_for_a_connection_leaks_nothing(
    fx_sqlite: Engine[Any],
) -> None:
    holding = asyncio.Event()
    let_go = asyncio.Event()
    held = 0

    async def hold() -> None:
        nonlocal held
        async with read_snapshot(fx_sqlite):
            await _count(fx_sqlite)
            held += 1
            if held == POOL_SIZE:
                holding.set()
            await let_go.wait()

    holders = [_elsewhere(hold()) for _ in range(POOL_SIZE)]
    await holding.wait()  # every connection is lent
    waiting = [_elsewhere(_count(fx_sqlite)) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert not any(w.done() for w in waiting)
    waiting[1].cancel()
    let_go.set()
    await asyncio.gather(*holders)
    assert [await waiting[0], await waiting[2]] == [0, 0]
    with pytest.raises(asyncio.CancelledError):
        await waiting[1]
    # Every connection came back: as many snapshots at once as the pool holds, again.
    holding.clear()
    let_go.clear()
    held = 0
    again = [_elsewhere(hold()) for _ in range(POOL_SIZE)]
    await asyncio.wait_for(holding.wait(), timeout=10)
    let_go.set()
    await asyncio.gather(*again)
