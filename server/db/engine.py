"""Building, binding and closing the database engine of a Reppu process.

SQLite (the embedded default) and PostgreSQL (a city) are both reached through Piccolo. The
differences that matter are kept here, and nowhere else:

- SQLite runs in WAL mode (readers never wait for the writer) with foreign keys on, a busy
  timeout, and ``synchronous=NORMAL`` (safe in WAL: a power cut may lose the last commits,
  never corrupt the file). Write transactions are ``BEGIN IMMEDIATE``: a deferred transaction
  that reads and then writes fails at once with "database is locked" when another writer got
  there first, and the busy timeout does not help a lock upgrade (measured in STACK_NOTES).
- SQLite reads outside a transaction (a plain ``SELECT``) and :func:`read_snapshot` take a
  connection from a small pool of long-lived read connections (``query_only``), opened by
  :func:`open_database`: Piccolo alone opens a new connection, with a thread of its own, for
  every query outside a transaction, and a thread start plus a connect cost more than most
  reads (the morning spike's profile, docs/benchmarks.md). Everything else (a transaction,
  a write outside one, an engine that was not opened) keeps Piccolo's own way.
- PostgreSQL goes through asyncpg with a pool started by :func:`open_database`; without it
  every query reconnects (6.3 ms against 0.3 ms for a one-row read).
"""

from __future__ import annotations

import asyncio
import collections
import fcntl
import os
import sqlite3
import weakref
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import aiosqlite
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


class _ReadPool:
    """Up to ``size`` long-lived read connections to one SQLite file, lent one at a time.

    A connection is opened when one is needed and none is free, up to ``size``; a borrower
    past that waits for the next one given back. The connections are ``query_only`` (a write
    sent here by mistake fails instead of bypassing the writer queue) and in autocommit, so
    between borrowers none holds a read snapshot: a read after a commit sees it.
    """

    def __init__(self, engine: SQLiteEngine, size: int) -> None:
        self._engine = engine
        self._size = size
        self._idle: list[aiosqlite.Connection] = []
        self._waiters: collections.deque[asyncio.Future[aiosqlite.Connection]] = collections.deque()
        self._opened = 0
        self._closed = False
        self._closing: set[asyncio.Future[None]] = set()

    async def acquire(self) -> aiosqlite.Connection:
        if self._closed:
            raise RuntimeError("the SQLite read pool is closed")
        if self._idle:
            return self._idle.pop()
        if self._opened < self._size:
            self._opened += 1
            try:
                return await self._open()
            except BaseException:
                self._opened -= 1
                self._wake_one_to_open()
                raise
        waiter: asyncio.Future[aiosqlite.Connection] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(waiter.result())  # handed over just as it was cancelled
            else:
                self._waiters.remove(waiter)
            raise

    async def _open(self) -> aiosqlite.Connection:
        connection = await aiosqlite.connect(**self._engine.connection_kwargs)
        try:
            connection.row_factory = dict_factory  # type: ignore[assignment]
            await connection.execute("PRAGMA query_only = ON")
        except BaseException:
            await connection.close()
            raise
        return connection

    def release(self, connection: aiosqlite.Connection) -> None:
        """Give ``connection`` back: to the first borrower waiting, else to the idle list."""
        if self._closed:
            self.discard(connection)
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self._idle.append(connection)

    def discard(self, connection: aiosqlite.Connection) -> None:
        """Close ``connection`` instead of giving it back (its state is unknown)."""
        self._opened -= 1
        closing = asyncio.ensure_future(connection.close())
        self._closing.add(closing)  # held, or the loop could drop the task half done
        closing.add_done_callback(self._closing.discard)
        self._wake_one_to_open()

    def _wake_one_to_open(self) -> None:
        # A slot came free with no connection to hand over: the first waiter opens its own.
        while self._waiters and not self._closed:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._opened += 1
                opening = asyncio.ensure_future(self._open())

                def hand_over(
                    done: asyncio.Future[aiosqlite.Connection],
                    waiter: asyncio.Future[aiosqlite.Connection] = waiter,
                ) -> None:
                    if done.cancelled() or done.exception() is not None:
                        self._opened -= 1
                        if not waiter.done():
                            waiter.set_exception(
                                done.exception() or RuntimeError("opening was cancelled")
                            )
                        return
                    if waiter.done():
                        self.release(done.result())
                    else:
                        waiter.set_result(done.result())

                opening.add_done_callback(hand_over)
                return

    async def close(self) -> None:
        """Close the idle connections now; a connection still lent is closed when given back."""
        self._closed = True
        idle, self._idle = self._idle, []
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(RuntimeError("the SQLite read pool is closed"))
        self._waiters.clear()
        for connection in idle:
            self._opened -= 1
            await connection.close()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


def _is_plain_read(query: str) -> bool:
    """A statement that can only read: what the read pool's ``query_only`` connections take."""
    return query.lstrip()[:6].upper() == "SELECT"


class _PooledReadTransaction(SQLiteTransaction):
    """A deferred (read) transaction on a connection borrowed from the read pool: its first
    read fixes the snapshot, and the connection goes back to the pool when it ends."""

    def __init__(self, engine: _SQLiteEngine, pool: _ReadPool) -> None:
        super().__init__(engine, transaction_type=TransactionType.deferred)
        self._pool = pool

    async def get_connection(self) -> aiosqlite.Connection:
        return await self._pool.acquire()

    async def __aenter__(self) -> SQLiteTransaction:
        if self._parent is not None:
            return self._parent
        self.connection = await self.get_connection()
        try:
            await self.connection.execute("BEGIN DEFERRED")
        except BaseException:
            self._pool.discard(self.connection)
            raise
        self.context = self.engine.current_transaction.set(self)
        return self

    async def __aexit__(self, exception_type: Any, exception: Any, traceback: Any) -> bool:
        if self._parent is not None:
            return exception is None
        self.engine.current_transaction.reset(self.context)
        try:
            if not self._committed and not self._rolled_back:
                # Nothing was written (query_only): ending it either way just lets go.
                await self.connection.execute("ROLLBACK" if exception is not None else "COMMIT")
        except BaseException:
            self._pool.discard(self.connection)
            raise
        self._pool.release(self.connection)
        return exception is None


class _SQLiteEngine(SQLiteEngine):
    """Piccolo's SQLite engine, with statements inside a transaction run in one trip to
    aiosqlite's thread each (``execute_fetchall``), and without the ``PRAGMA foreign_keys =
    1`` Piccolo sends before every one of them. Inside a transaction that pragma does nothing
    (SQLite's own documentation), our connections turn foreign keys on as they open, and it
    cost a thread trip per statement: 18 of the 38 statements of a roll-call mark
    (docs/benchmarks.md). Each trip costs a thread wake-up, more than most statements.

    Once :meth:`open_read_pool` has run (:func:`open_database` does it), a ``SELECT`` outside
    a transaction runs on a pooled read connection instead of a new one.
    """

    _read_pool: _ReadPool | None = None

    def open_read_pool(self, size: int) -> None:
        """Serve reads outside transactions from up to ``size`` long-lived connections."""
        self._read_pool = _ReadPool(self, size)

    async def close_read_pool(self) -> None:
        pool, self._read_pool = self._read_pool, None
        if pool is not None:
            await pool.close()

    def read_transaction(self) -> SQLiteTransaction:
        """A deferred transaction for reads: on a pooled connection when the pool is open."""
        if self._read_pool is None or self.current_transaction.get() is not None:
            return self.transaction()
        return _PooledReadTransaction(self, self._read_pool)

    async def _run_in_new_connection(
        self,
        query: str,
        args: list[Any] | None = None,
        query_type: str = "generic",
        table: type[Table] | None = None,
    ) -> Any:
        pool = self._read_pool
        if pool is None or query_type != "generic" or not _is_plain_read(query):
            return await super()._run_in_new_connection(query, args, query_type, table)
        connection = await pool.acquire()
        try:
            rows = await connection.execute_fetchall(query, args or [])
        except sqlite3.Error:
            pool.release(connection)  # the statement failed; the connection is sound
            raise
        except BaseException:
            pool.discard(connection)
            raise
        pool.release(connection)
        return rows

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
        if isinstance(engine, _SQLiteEngine):
            engine.open_read_pool(settings.sqlite_read_connections)
    elif isinstance(engine, PostgresEngine):
        await engine.start_connection_pool(
            min_size=1, max_size=settings.database_pool_size, command_timeout=60
        )
    try:
        yield engine
    finally:
        if isinstance(engine, PostgresEngine):
            await engine.close_connection_pool()
        elif isinstance(engine, _SQLiteEngine):
            await engine.close_read_pool()


@asynccontextmanager
async def read_snapshot(engine: Engine[Any]) -> AsyncIterator[None]:
    """Reads that see one consistent state of the database, whatever commits meanwhile.

    PostgreSQL: a REPEATABLE READ transaction. SQLite in WAL: a deferred transaction, whose
    first read fixes the snapshot, on a connection of the read pool (so nothing in it may
    write, as on PostgreSQL). Inside a write transaction both simply read in that one.
    """
    opening = (
        engine.read_transaction() if isinstance(engine, _SQLiteEngine) else engine.transaction()
    )
    async with opening:
        if isinstance(engine, PostgresEngine):
            await engine.run_ddl("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield
