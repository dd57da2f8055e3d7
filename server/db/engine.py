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

import asyncio
import fcntl
import os
import sqlite3
import weakref
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import asyncpg
from piccolo.apps.migrations.tables import Migration
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine, PostgresTransaction
from piccolo.engine.sqlite import SQLiteEngine, SQLiteTransaction, TransactionType, dict_factory
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


class _SQLiteEngine(SQLiteEngine):
    """Piccolo's SQLite engine, with statements inside a transaction run in one trip to
    aiosqlite's thread each (``execute_fetchall``), and without the ``PRAGMA foreign_keys =
    1`` Piccolo sends before every one of them. Inside a transaction that pragma does nothing
    (SQLite's own documentation), our connections turn foreign keys on as they open, and it
    cost a thread trip per statement: 18 of the 38 statements of a roll-call mark
    (docs/benchmarks.md). Each trip costs a thread wake-up, more than most statements."""

    async def _run_in_existing_connection(
        self,
        connection: Any,
        query: str,
        args: list[Any] | None = None,
        query_type: str = "generic",
        table: type[Table] | None = None,
    ) -> Any:
        if sqlite3.sqlite_version_info < (3, 35):  # no RETURNING: Piccolo's own way
            return await super()._run_in_existing_connection(
                connection, query, args, query_type, table
            )
        connection.row_factory = dict_factory
        # One trip to aiosqlite's thread, not three (execute, fetch, close).
        return await connection.execute_fetchall(query, args or [])


def build_engine(settings: Settings) -> Engine[Any]:
    """The Piccolo engine for ``settings.database_url``; no connection is opened yet."""
    if settings.is_sqlite:
        path = settings.sqlite_path
        path.parent.mkdir(parents=True, exist_ok=True)
        return _SQLiteEngine(
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


_writer_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)
_writer_files: dict[str, int] = {}


def _writer_lock(engine: SQLiteEngine) -> asyncio.Lock:
    """This process's queue for ``engine``'s one writer (per event loop)."""
    locks = _writer_locks.setdefault(asyncio.get_running_loop(), {})
    return locks.setdefault(id(engine), asyncio.Lock())


def _writer_file(engine: SQLiteEngine) -> int:
    """The descriptor of the database's writer lock file (``<file>-writer``), kept open."""
    path = f"{engine.connection_kwargs['database']}-writer"
    if path not in _writer_files:
        _writer_files[path] = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    return _writer_files[path]


async def _take_writer_file(descriptor: int, queue: asyncio.Lock) -> None:
    """Wait, in a thread, for the lock file that queues the writers of every process.

    A cancelled wait still takes the lock in its thread: the lock and this process's
    ``queue`` (held by the caller) are let go when it does, in that order, so the next writer
    of the process never finds the file held by a writer that is gone.
    """
    taking = asyncio.ensure_future(asyncio.to_thread(fcntl.flock, descriptor, fcntl.LOCK_EX))
    try:
        await asyncio.shield(taking)
    except asyncio.CancelledError:

        def let_go(_: object) -> None:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
            queue.release()

        taking.add_done_callback(let_go)
        raise


class _SQLiteWriter:
    """``BEGIN IMMEDIATE``, after waiting in line for the writer.

    SQLite has one writer. Left to themselves, concurrent write transactions wait in
    SQLite's busy handler, which sleeps and retries (up to 100 ms a sleep) rather than
    waiting in line: at 200 roll calls at once most timed out, and between two processes
    the writer sat idle during the sleeps (measured: docs/benchmarks.md). So a writer first
    queues on this process's lock, then on an exclusive ``flock`` of a lock file beside the
    database, which the kernel hands over the moment it is let go; only then does it
    ``BEGIN IMMEDIATE``. Other programs writing the file (none of ours) still meet the busy
    handler. A transaction opened inside another (Piccolo nests them) does not queue again.
    """

    def __init__(self, engine: SQLiteEngine) -> None:
        self._engine = engine
        self._transaction = engine.transaction(transaction_type=TransactionType.immediate)
        self._lock: asyncio.Lock | None = None
        self._file: int | None = None

    async def __aenter__(self) -> SQLiteTransaction:
        if self._engine.current_transaction.get() is not None:
            return await self._transaction.__aenter__()
        queue = _writer_lock(self._engine)
        await queue.acquire()
        descriptor = _writer_file(self._engine)
        try:
            await _take_writer_file(descriptor, queue)
        except asyncio.CancelledError:
            raise  # the queue is let go with the file, once its thread has it
        except BaseException:
            queue.release()
            raise
        self._lock, self._file = queue, descriptor
        try:
            return await self._transaction.__aenter__()
        except BaseException:
            self._release()
            raise

    async def __aexit__(self, *exc_info: Any) -> bool:
        try:
            return bool(await self._transaction.__aexit__(*exc_info))
        finally:
            self._release()

    def _release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def write_transaction(
    engine: Engine[Any],
) -> AbstractAsyncContextManager[SQLiteTransaction | PostgresTransaction]:
    """A transaction for work that writes: ``BEGIN IMMEDIATE`` (queued in the process) on
    SQLite, plain on PostgreSQL."""
    if isinstance(engine, SQLiteEngine):
        return _SQLiteWriter(engine)
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
