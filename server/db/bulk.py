"""Bulk inserts through the drivers' own fast paths, in one transaction.

Piccolo inserts run at about 30,000 rows/s; ``executemany`` on one SQLite connection does over
a million and asyncpg's binary COPY about 290,000 (STACK_NOTES). Values must already be in
the form the driver stores: on SQLite, dates and times as ISO text, booleans as 0/1.
Every table's ``id`` must be given; on PostgreSQL its sequence is moved past the largest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite
from piccolo.apps.migrations.tables import Migration
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine

CHUNK_ROWS = 50_000

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class Rows:
    """Rows for one table; ``columns`` must start with ``id``."""

    table: str
    columns: tuple[str, ...]
    rows: Sequence[tuple[Any, ...]]


def _quote(name: str) -> str:
    return f'"{name}"'


def _no_progress(stage: str, done: int, total: int) -> None:
    del stage, done, total


async def bulk_insert(
    engine: Engine[Any], batches: Sequence[Rows], progress: Progress | None = None
) -> None:
    """Insert every batch in one transaction, or nothing."""
    report = progress or _no_progress
    total, done = sum(len(b.rows) for b in batches), 0
    if isinstance(engine, SQLiteEngine):
        async with aiosqlite.connect(**engine.connection_kwargs) as connection:
            await connection.execute("BEGIN IMMEDIATE")
            try:
                for batch in batches:
                    columns = ", ".join(_quote(c) for c in batch.columns)
                    marks = ", ".join("?" for _ in batch.columns)
                    sql = f"INSERT INTO {_quote(batch.table)} ({columns}) VALUES ({marks})"
                    for start in range(0, len(batch.rows), CHUNK_ROWS):
                        chunk = batch.rows[start : start + CHUNK_ROWS]
                        await connection.executemany(sql, chunk)
                        done += len(chunk)
                        report(f"write {batch.table}", done, total)
                await connection.execute("COMMIT")
            except BaseException:
                await connection.execute("ROLLBACK")
                raise
        return
    assert isinstance(engine, PostgresEngine)
    pool = engine.pool
    connection = await (pool.acquire() if pool is not None else engine.get_new_connection())
    try:
        async with connection.transaction():
            for batch in batches:
                for start in range(0, len(batch.rows), CHUNK_ROWS):
                    chunk = batch.rows[start : start + CHUNK_ROWS]
                    await connection.copy_records_to_table(
                        batch.table, records=chunk, columns=list(batch.columns)
                    )
                    done += len(chunk)
                    report(f"write {batch.table}", done, total)
                if batch.rows:
                    await connection.execute(
                        "SELECT setval(pg_get_serial_sequence($1, 'id'), $2)",
                        _quote(batch.table),
                        max(int(row[0]) for row in batch.rows),
                    )
    finally:
        if pool is not None:
            await pool.release(connection)
        else:
            await connection.close()


VALUES_CHUNK = 2000
"""Rows per multi-row ``INSERT``: far below either engine's limit of bound parameters."""


async def insert_values(
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    tail: str = "",
) -> list[dict[str, Any]]:
    """``INSERT INTO table (columns) VALUES (...), (...) tail`` over the bound engine, in the
    current transaction if there is one, a chunk of rows per statement; the rows ``tail``
    returns (``RETURNING ...``). For hot write paths: Piccolo builds an object and converts
    every value of every row in Python first, which cost more than the statement itself.
    Values are bound as Piccolo's raw queries bind them."""
    answered: list[dict[str, Any]] = []
    for start in range(0, len(rows), VALUES_CHUNK):
        chunk = rows[start : start + VALUES_CHUNK]
        answered.extend(
            await run_sql(
                values_sql(table, columns, len(chunk)) + (f" {tail}" if tail else ""),
                *(value for r in chunk for value in r),
            )
        )
    return answered


def values_sql(table: str, columns: Sequence[str], count: int) -> str:
    """``INSERT INTO table (columns) VALUES`` with ``count`` rows of ``{}`` placeholders (for
    :func:`run_sql`; at most :data:`VALUES_CHUNK` rows)."""
    head = f"INSERT INTO {_quote(table)} ({', '.join(_quote(c) for c in columns)}) VALUES "
    row = "(" + ", ".join("{}" for _ in columns) + ")"
    return head + ", ".join(row for _ in range(count))


async def run_sql(sql: str, *args: Any) -> list[dict[str, Any]]:
    """``sql`` with ``{}`` for each bound parameter, as Piccolo's ``raw``, but straight on the
    current transaction's connection (aiosqlite's, asyncpg's): Piccolo's query string checks
    and converts every argument in Python (isinstance calls by the thousand for a roll call,
    the biggest share of its CPU after the drivers). Outside a transaction, Piccolo's own
    path. ``sql`` holds no other braces."""
    engine = Migration._meta.db
    transaction = engine.current_transaction.get()
    if transaction is None:
        return list(await Migration.raw(sql, *args))
    if isinstance(engine, SQLiteEngine):
        # One trip to aiosqlite's thread, not three (execute, fetch, close).
        return list(await transaction.connection.execute_fetchall(sql.replace("{}", "?"), args))
    parts = sql.split("{}")
    numbered = parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))
    return [dict(row) for row in await transaction.connection.fetch(numbered, *args)]
