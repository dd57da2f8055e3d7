"""PostgreSQL's connection pool (``server/db/engine.py``): a connection goes back to the pool
without asyncpg's session reset, a round trip Reppu has no use for, but never with a
transaction still open."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine

from server.db.bulk import run_sql


async def test_a_pooled_connection_goes_back_without_a_reset_but_never_in_a_transaction(
    fx_db: Engine[Any], fx_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if fx_backend != "postgres":
        pytest.skip("PostgreSQL's connection pool")
    assert isinstance(fx_db, PostgresEngine)
    assert fx_db.pool is not None
    sent: list[str] = []
    execute = asyncpg.connection.Connection.execute

    async def spy(self: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> Any:
        sent.append(query)
        return await execute(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.connection.Connection, "execute", spy)
    # Outside a transaction: a connection taken from the pool and given back.
    assert await run_sql("SELECT 1 AS one") == [{"one": 1}]
    assert not [q for q in sent if "pg_advisory_unlock_all" in q or "RESET ALL" in q]
    # A connection given back inside a transaction still has it rolled back.
    connection = await fx_db.pool.acquire()
    await connection.execute("BEGIN")
    await connection.execute("CREATE TEMPORARY TABLE left_open (n integer)")
    await fx_db.pool.release(connection)
    assert "ROLLBACK" in sent
    for _ in range(fx_db.pool.get_size()):
        async with fx_db.pool.acquire() as pooled:
            assert not pooled.is_in_transaction()
            assert await pooled.fetchval("SELECT to_regclass('pg_temp.left_open')") is None
