"""Loading a demo city through the database drivers' bulk paths, in one transaction.

Piccolo inserts ran at about 30,000 rows/s; the drivers' own bulk paths at 290,000 (asyncpg
COPY) to over a million (sqlite3 ``executemany``) rows/s (STACK_NOTES). A full-scale city is
about 2.5 million rows, so the loader goes around Piccolo:

- SQLite: one connection built like Piccolo's own (same pragmas), ``BEGIN IMMEDIATE``, and
  ``executemany`` per table in chunks. Values are written in the text forms Piccolo's SQLite
  engine writes and its converters read back: dates ``YYYY-MM-DD``, times ``HH:MM:SS``,
  timestamps with a time zone ``str()`` of the UTC datetime (``2026-11-28 07:30:00+00:00``),
  booleans 0/1.
- PostgreSQL: one pooled asyncpg connection, binary ``COPY`` per table in chunks, then each
  table's id sequence is set past the largest id, so that later inserts do not collide.

Either way the load refuses a database that already has rows in any table it would fill.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import aiosqlite
from piccolo.columns import Boolean, Date, Time, Timestamptz
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine
from piccolo.querystring import QueryString
from piccolo.table import Table

from server.db.tables import ALL_TABLES
from server.demo.city import COLUMNS, City, TableRows
from server.demo.generate import DEMO_LOGINS, generate_city
from server.demo.progress import Progress, no_progress
from server.sync_store import seed_sync_state
from server.timetable import all_timetable_writes

CHUNK_ROWS = 50_000
"""Rows per ``executemany`` or COPY call: large enough to amortise a call, small enough to
report progress every fraction of a second."""


class DemoCityError(RuntimeError):
    """The demo city cannot be loaded into this database (it is not empty)."""


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What ``load_demo_city`` did: the rows written and how long each half took."""

    pupils: int
    seed: int
    today: dt.date
    rows: dict[str, int]
    generate_seconds: float
    load_seconds: float
    logins: dict[str, str]
    """The demo logins (username -> description); every one has the demo password."""
    sync_seconds: float = 0.0
    """Time to write the sync state (change log, partition heads) of the loaded records."""
    sync_log_rows: int = 0

    def describe(self) -> str:
        """A few lines for a person at a terminal: what was loaded, and how fast."""
        total = sum(self.rows.values())
        lines = [
            f"Demo city loaded: {self.pupils:,} pupils (seed {self.seed}, school year of "
            f"{self.today.isoformat()}), {total:,} rows.",
            f"Generated in {self.generate_seconds:.1f} s, loaded in {self.load_seconds:.1f} s, "
            f"sync state ({self.sync_log_rows:,} change-log rows) in {self.sync_seconds:.1f} s.",
        ]
        lines += [f"  {table:<14} {count:>10,}" for table, count in self.rows.items() if count]
        return "\n".join(lines)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sqlite_value(column: object) -> Callable[[Any], object] | None:
    """How Piccolo's SQLite engine stores a value of this column type (None: as it is)."""
    if isinstance(column, Timestamptz):
        # Piccolo converts aware datetimes to UTC and stores str(): "2026-11-28 07:30:00+00:00".
        return lambda value: str(value.astimezone(dt.UTC))
    if isinstance(column, (Date, Time)):
        return lambda value: value.isoformat()
    if isinstance(column, Boolean):
        return int
    return None


Rows = Sequence[tuple[object, ...]]


def _sqlite_rows(table: type[Table], data: TableRows) -> Callable[[Rows], list[tuple[object, ...]]]:
    """A function turning a chunk of the table's rows into SQLite's stored forms."""
    columns = {c._meta.db_column_name: c for c in table._meta.columns}
    converters = [
        (index, converter)
        for index, name in enumerate(data.columns)
        if (converter := _sqlite_value(columns[name])) is not None
    ]

    def convert(chunk: Rows) -> list[tuple[object, ...]]:
        if not converters:
            return list(chunk)
        out: list[tuple[object, ...]] = []
        for row in chunk:
            values = list(row)
            for index, converter in converters:
                if values[index] is not None:
                    values[index] = converter(values[index])
            out.append(tuple(values))
        return out

    return convert


def _tables_by_name() -> dict[str, type[Table]]:
    return {table._meta.tablename: table for table in ALL_TABLES}


def _refusal(filled: list[str]) -> DemoCityError:
    return DemoCityError(
        "the demo city loads only into an empty database, and this one already has rows in: "
        + ", ".join(filled)
        + ". Use a fresh database (for SQLite, another REPPU_DATA_DIR)."
    )


async def ensure_empty(engine: Engine[Any]) -> None:
    """Raise :class:`DemoCityError` if any table the demo city fills already has rows.

    ``load_city`` checks again inside its transaction; this early check spares a caller the
    generation of a city that could not be loaded.
    """
    filled = []
    for name in COLUMNS:
        query = f"SELECT EXISTS (SELECT 1 FROM {_quote(name)}) AS filled"  # noqa: S608
        rows = await engine.run_querystring(QueryString(query))
        if rows[0]["filled"]:
            filled.append(name)
    if filled:
        raise _refusal(filled)


async def _load_sqlite(engine: SQLiteEngine, city: City, progress: Progress) -> dict[str, int]:
    tables = _tables_by_name()
    work = [t for t in city.tables() if t.rows]
    total, done = sum(len(t.rows) for t in work), 0
    # Built from Piccolo's own connection arguments: the same file, busy timeout and the
    # per-connection pragmas of Reppu's connection factory (server.db.engine).
    async with aiosqlite.connect(**engine.connection_kwargs) as connection:
        await connection.execute("PRAGMA foreign_keys = ON")
        await connection.execute("BEGIN IMMEDIATE")
        try:
            filled = []
            for data in city.tables():
                query = f"SELECT 1 FROM {_quote(data.table)} LIMIT 1"  # noqa: S608 (our table)
                cursor = await connection.execute(query)
                if await cursor.fetchone() is not None:
                    filled.append(data.table)
            if filled:
                raise _refusal(filled)
            for data in work:
                convert = _sqlite_rows(tables[data.table], data)
                columns = ", ".join(_quote(c) for c in data.columns)
                marks = ", ".join("?" for _ in data.columns)
                # Only placeholders and our own quoted names go into the statement.
                sql = f"INSERT INTO {_quote(data.table)} ({columns}) VALUES ({marks})"  # noqa: S608
                for start in range(0, len(data.rows), CHUNK_ROWS):
                    chunk = data.rows[start : start + CHUNK_ROWS]
                    await connection.executemany(sql, convert(chunk))
                    done += len(chunk)
                    progress(f"load {data.table}", done, total)
            # Statistics for the query planner, sampled so that they cost a second at most.
            await connection.execute("PRAGMA analysis_limit = 1000")
            await connection.execute("ANALYZE")
            await connection.execute("COMMIT")
        except BaseException:
            await connection.execute("ROLLBACK")
            raise
    return city.counts()


async def _load_postgres(engine: PostgresEngine, city: City, progress: Progress) -> dict[str, int]:
    work = [t for t in city.tables() if t.rows]
    total, done = sum(len(t.rows) for t in work), 0
    pool = engine.pool
    connection = await (pool.acquire() if pool is not None else engine.get_new_connection())
    try:
        async with connection.transaction():
            # Nothing is lost by a delayed commit flush here: a crash means loading again.
            await connection.execute("SET LOCAL synchronous_commit = off")
            names = ", ".join(_quote(t.table) for t in city.tables())
            # Two loads at once: the second waits here, then sees the first one's rows.
            await connection.execute(f"LOCK TABLE {names} IN SHARE ROW EXCLUSIVE MODE")
            filled = []
            for data in city.tables():
                query = f"SELECT EXISTS (SELECT 1 FROM {_quote(data.table)})"  # noqa: S608
                if await connection.fetchval(query):
                    filled.append(data.table)
            if filled:
                raise _refusal(filled)
            for data in work:
                for start in range(0, len(data.rows), CHUNK_ROWS):
                    chunk = data.rows[start : start + CHUNK_ROWS]
                    await connection.copy_records_to_table(
                        data.table, records=chunk, columns=list(data.columns)
                    )
                    done += len(chunk)
                    progress(f"load {data.table}", done, total)
            for data in work:
                await connection.execute(
                    "SELECT setval(pg_get_serial_sequence($1, 'id'), $2)",
                    _quote(data.table),
                    max(cast(int, row[0]) for row in data.rows),
                )
        # Fresh planner statistics, rather than waiting for autovacuum to notice the load.
        await connection.execute("ANALYZE " + ", ".join(_quote(t.table) for t in work))
    finally:
        if pool is not None:
            await pool.release(connection)
        else:
            await connection.close()
    return city.counts()


async def load_city(
    engine: Engine[Any], city: City, progress: Progress | None = None
) -> dict[str, int]:
    """Write every row of ``city`` in one transaction; returns rows per table.

    Raises :class:`DemoCityError`, and writes nothing, if the database already has rows in
    any table the city fills.
    """
    report = progress or no_progress
    if isinstance(engine, SQLiteEngine):
        return await _load_sqlite(engine, city, report)
    if isinstance(engine, PostgresEngine):
        return await _load_postgres(engine, city, report)
    raise TypeError(f"no bulk loader for {type(engine).__name__}")


async def load_demo_city(
    engine: Engine[Any],
    *,
    pupils: int,
    seed: int,
    today: dt.date,
    progress: Progress | None = None,
) -> DemoSummary:
    """Generate the demo city and load it into the (empty, migrated, bound) database."""
    await ensure_empty(engine)
    started = time.perf_counter()
    city = generate_city(pupils=pupils, seed=seed, today=today, progress=progress)
    generated = time.perf_counter()
    rows = await load_city(engine, city, progress)
    loaded = time.perf_counter()
    # The city went around the write path, so its sync state is written in bulk after it:
    # every timetable record in its partitions, so that devices can sync it at once.
    log_rows = await seed_sync_state(engine, await all_timetable_writes(), progress)
    return DemoSummary(
        pupils=pupils,
        seed=seed,
        today=today,
        rows=rows,
        generate_seconds=generated - started,
        load_seconds=loaded - generated,
        logins=dict(DEMO_LOGINS),
        sync_seconds=time.perf_counter() - loaded,
        sync_log_rows=log_rows,
    )
