"""Building, binding and closing the database engine of a Reppu process.

SQLite (the embedded default) and PostgreSQL (a city) are both reached through Piccolo. The
differences that matter are kept here, and nowhere else:

- SQLite runs in WAL mode (readers never wait for the writer) with foreign keys on, a busy
  timeout, and ``synchronous=NORMAL`` (safe in WAL: a power cut may lose the last commits,
  never corrupt the file). Write transactions are ``BEGIN IMMEDIATE``: a deferred transaction
  that reads and then writes fails at once with "database is locked" when another writer got
  there first, and the busy timeout does not help a lock upgrade (measured in STACK_NOTES).
- PostgreSQL goes through asyncpg with a pool started by :func:`open_database`; without it
  every query reconnects (6.3 ms against 0.3 ms for a one-row read).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from piccolo.apps.migrations.tables import Migration
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine, PostgresTransaction
from piccolo.engine.sqlite import SQLiteEngine, SQLiteTransaction, TransactionType
from piccolo.table import Table

from server.db.schema import EVERY_TABLE
from server.settings import Settings

DUPLICATE = (sqlite3.IntegrityError, asyncpg.UniqueViolationError)
"""What either engine raises when an insert breaks a unique key."""

PICCOLO_CONF_MODULE = "server.db.piccolo_conf"
SQLITE_BUSY_TIMEOUT_SECONDS = 10.0


class _SQLiteConnection(sqlite3.Connection):
    """A sqlite3 connection with Reppu's per-connection pragmas applied as it opens."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.execute("PRAGMA synchronous = NORMAL")
        self.execute("PRAGMA foreign_keys = ON")


def build_engine(settings: Settings) -> Engine[Any]:
    """The Piccolo engine for ``settings.database_url``; no connection is opened yet."""
    if settings.is_sqlite:
        path = settings.sqlite_path
        path.parent.mkdir(parents=True, exist_ok=True)
        return SQLiteEngine(
            path=str(path), timeout=SQLITE_BUSY_TIMEOUT_SECONDS, factory=_SQLiteConnection
        )
    # No extensions: Piccolo would otherwise CREATE EXTENSION uuid-ossp, which needs rights a
    # city's database role may not have, for a feature we do not use.
    return PostgresEngine(config={"dsn": settings.database_url}, extensions=())


def bind_engine(engine: Engine[Any]) -> None:
    """Make ``engine`` the one every Reppu table and Piccolo's migration runner use.

    Piccolo keeps the engine per table class and finds the migration runner's through the
    ``PICCOLO_CONF`` module; both are pointed at ``engine`` here, so a process (or a test)
    can choose its database after import.
    """
    import importlib

    os.environ.setdefault("PICCOLO_CONF", PICCOLO_CONF_MODULE)
    conf = importlib.import_module(PICCOLO_CONF_MODULE)
    conf.DB = engine  # type: ignore[attr-defined]
    tables: tuple[type[Table], ...] = (*EVERY_TABLE, Migration)
    for table in tables:
        table._meta.db = engine


def write_transaction(engine: Engine[Any]) -> SQLiteTransaction | PostgresTransaction:
    """A transaction for work that writes: ``BEGIN IMMEDIATE`` on SQLite, plain on PostgreSQL."""
    if isinstance(engine, SQLiteEngine):
        return engine.transaction(transaction_type=TransactionType.immediate)
    assert isinstance(engine, PostgresEngine)
    return engine.transaction()


async def prepare_sqlite_file(engine: SQLiteEngine) -> None:
    """Switch the file to WAL mode. The mode is stored in the file, so this runs once per start."""
    connection = await engine.get_connection()
    try:
        await connection.execute("PRAGMA journal_mode = WAL")
    finally:
        await connection.close()


@asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[Engine[Any]]:
    """Build, bind and open the engine for the life of a process (or a test)."""
    engine = build_engine(settings)
    bind_engine(engine)
    if isinstance(engine, SQLiteEngine):
        await prepare_sqlite_file(engine)
    elif isinstance(engine, PostgresEngine):
        await engine.start_connection_pool(
            min_size=1, max_size=settings.database_pool_size, command_timeout=60
        )
    try:
        yield engine
    finally:
        if isinstance(engine, PostgresEngine):
            await engine.close_connection_pool()


@asynccontextmanager
async def read_snapshot(engine: Engine[Any]) -> AsyncIterator[None]:
    """Reads that see one consistent state of the database, whatever commits meanwhile.

    PostgreSQL: a REPEATABLE READ transaction. SQLite in WAL: a deferred transaction, whose
    first read fixes the snapshot.
    """
    async with engine.transaction():
        if isinstance(engine, PostgresEngine):
            await engine.run_ddl("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield
