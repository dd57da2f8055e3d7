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
import contextlib
import contextvars
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

    @property
    def idle(self) -> int:
        """Connections open and waiting for a borrower."""
        return len(self._idle)

    @property
    def in_use(self) -> int:
        """Connections lent (or being opened) now."""
        return self._opened - len(self._idle)

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
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.release(waiter.result())  # handed over just as it was cancelled
            else:
                with contextlib.suppress(ValueError):  # or a release already passed it by
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
                                RuntimeError("opening a read connection was cancelled")
                                if done.cancelled()
                                else done.exception()  # type: ignore[arg-type]
                            )
                        self._wake_one_to_open()  # the slot is free for the next in line
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


GROUP_MOST = 16
"""Most write transactions of one process that share one SQLite commit (group commit)."""


class _WriteGroup:
    """One ``BEGIN IMMEDIATE`` ... ``COMMIT`` that writers of this process take turns in, each
    inside a savepoint of its own: a writer that fails rolls back to its savepoint, and only
    its own work is undone."""

    def __init__(self, transaction: SQLiteTransaction, connection: Any, file: int) -> None:
        self.transaction = transaction
        self.connection = connection
        self.file = file
        self.members = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # A failed commit is answered to the members waiting for it; none may be left.
        self.done.add_done_callback(lambda done: done.cancelled() or done.exception())


class _Writers:
    """This process's writers of one database (per event loop): their queue, the group that
    is open, and the tasks that will commit groups."""

    def __init__(self) -> None:
        self.queue = asyncio.Lock()
        self.group: _WriteGroup | None = None
        self.closers: set[asyncio.Future[None]] = set()


_writers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, _Writers]] = (
    weakref.WeakKeyDictionary()
)
_writer_files: dict[str, int] = {}


def _writers_of(engine: SQLiteEngine) -> _Writers:
    """This process's writers of ``engine`` (per event loop)."""
    by_engine = _writers.setdefault(asyncio.get_running_loop(), {})
    return by_engine.setdefault(id(engine), _Writers())


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


async def _end_group(writers: _Writers, group: _WriteGroup, *, commit: bool) -> None:
    """Commit (or roll back) ``group`` and let the writer file go; the caller holds the queue.
    Its members waiting for the commit get the outcome through ``group.done``."""
    if writers.group is group:
        writers.group = None
    try:
        await group.connection.execute("COMMIT" if commit else "ROLLBACK")
    except BaseException as exc:
        if commit:
            with contextlib.suppress(BaseException):
                await group.connection.execute("ROLLBACK")
        if not group.done.done():
            group.done.set_exception(
                exc if isinstance(exc, Exception) else RuntimeError("the commit was cancelled")
            )
        if not isinstance(exc, Exception):
            raise
    else:
        if not group.done.done():
            if commit:
                group.done.set_result(None)
            else:
                group.done.set_exception(RuntimeError("the write group was rolled back"))
    finally:
        fcntl.flock(group.file, fcntl.LOCK_UN)
        with contextlib.suppress(Exception):
            await group.connection.close()


async def _close_group(writers: _Writers, group: _WriteGroup) -> None:
    """Commit ``group`` once the writers now waiting in line have had their turn in it."""
    async with writers.queue:
        if writers.group is group:
            await _end_group(writers, group, commit=True)


class _SQLiteWriter:
    """``BEGIN IMMEDIATE``, after waiting in line for the writer, with group commit.

    SQLite has one writer. Left to themselves, concurrent write transactions wait in
    SQLite's busy handler, which sleeps and retries (up to 100 ms a sleep) rather than
    waiting in line: at 200 roll calls at once most timed out, and between two processes
    the writer sat idle during the sleeps (measured: docs/benchmarks.md). So a writer first
    queues on this process's lock, then on an exclusive ``flock`` of a lock file beside the
    database, which the kernel hands over the moment it is let go; only then does it
    ``BEGIN IMMEDIATE``. Other programs writing the file (none of ours) still meet the busy
    handler. A transaction opened inside another (Piccolo nests them) does not queue again.

    **Group commit.** The writers of this process that were waiting in line when one
    finished share its transaction (up to :data:`GROUP_MOST`): each in turn runs inside a
    ``SAVEPOINT`` of its own (the first, alone in it until it is done, needs none: its
    failure rolls the transaction back), and the group commits once after the last of them,
    so a burst of pushes pays for one ``BEGIN IMMEDIATE``, one connection, one hand-over of
    the lock file and one ``COMMIT`` per group, not per push. A writer whose work raises
    rolls back to its savepoint (only its own work is undone) and gets its exception at
    once; one that succeeds returns only after the group's ``COMMIT``, so "returned" still means
    "committed", and a failed commit fails every member of the group (none of it was
    applied). The commit runs in a task of its own, queued behind the writers that were
    waiting, so a member cancelled meanwhile never leaves the group open.
    """

    def __init__(self, engine: SQLiteEngine) -> None:
        self._engine = engine
        self._nested: SQLiteTransaction | None = None
        self._writers: _Writers | None = None
        self._group: _WriteGroup | None = None
        self._savepoint = ""
        self._context: contextvars.Token[Any] | None = None

    async def __aenter__(self) -> SQLiteTransaction:
        engine = self._engine
        if engine.current_transaction.get() is not None:
            self._nested = engine.transaction(transaction_type=TransactionType.immediate)
            return await self._nested.__aenter__()
        writers = _writers_of(engine)
        while True:
            await writers.queue.acquire()
            group = writers.group
            if group is None or group.members < GROUP_MOST:
                break
            # Full: wait for its commit (queued behind us), then queue again.
            writers.queue.release()
            with contextlib.suppress(Exception):
                await asyncio.shield(group.done)
        if group is None:
            group = await self._open_group(writers)  # lets the queue go itself if it fails
        group.members += 1
        if group.members > 1:
            # The first writer needs no savepoint: it is alone in the group until it is done,
            # so its failure rolls the whole transaction back (two statements fewer for it).
            self._savepoint = f"writer_{group.members}"
            joining = asyncio.ensure_future(
                group.connection.execute(f"SAVEPOINT {self._savepoint}")
            )
            try:
                await asyncio.shield(joining)
            except asyncio.CancelledError:
                # The statement runs to its end; then this writer leaves as one that failed
                # (its savepoint undone), and the others in the group are not touched.
                joining.add_done_callback(lambda done: self._left_early(writers, group, done))
                raise
            except BaseException:
                self._abandon(writers, group)
                raise
        self._writers, self._group = writers, group
        self._context = engine.current_transaction.set(group.transaction)
        return group.transaction

    def _abandon(self, writers: _Writers, group: _WriteGroup) -> None:
        """Roll the whole group back and let the queue go, in a task of its own (so that a
        cancelled writer still does it): after a savepoint statement failed, the group's
        connection is in a state nobody can vouch for, so none of the group commits; and a
        first writer that fails is still alone in its group."""
        closing = asyncio.ensure_future(self._fail_group(writers, group))
        writers.closers.add(closing)
        closing.add_done_callback(writers.closers.discard)
        closing.add_done_callback(lambda _: writers.queue.release())

    def _left_early(
        self, writers: _Writers, group: _WriteGroup, joining: asyncio.Future[Any]
    ) -> None:
        """A writer cancelled while its ``SAVEPOINT`` ran: undo that savepoint and let the
        queue go, once the statement is done (or roll the group back if it failed)."""
        if joining.cancelled() or joining.exception() is not None:
            self._abandon(writers, group)
            return
        self._track(writers, self._leave(writers, group, failed=True))

    @staticmethod
    def _track(writers: _Writers, work: Any) -> asyncio.Future[None]:
        task: asyncio.Future[None] = asyncio.ensure_future(work)
        writers.closers.add(task)
        task.add_done_callback(writers.closers.discard)
        return task

    async def _open_group(self, writers: _Writers) -> _WriteGroup:
        engine = self._engine
        descriptor = _writer_file(engine)
        try:
            await _take_writer_file(descriptor, writers.queue)
        except asyncio.CancelledError:
            raise  # the queue is let go with the file, once its thread has it
        except BaseException:
            writers.queue.release()
            raise
        try:
            transaction = engine.transaction(transaction_type=TransactionType.immediate)
            connection = await engine.get_connection()
            try:
                await connection.execute("BEGIN IMMEDIATE")
            except BaseException:
                await connection.close()
                raise
        except BaseException:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
            writers.queue.release()
            raise
        transaction.connection = connection
        group = _WriteGroup(transaction, connection, descriptor)
        writers.group = group
        return group

    async def _fail_group(self, writers: _Writers, group: _WriteGroup) -> None:
        with contextlib.suppress(Exception):
            await _end_group(writers, group, commit=False)

    async def __aexit__(self, *exc_info: Any) -> bool:
        if self._nested is not None:
            return bool(await self._nested.__aexit__(*exc_info))
        writers, group, context = self._writers, self._group, self._context
        assert writers is not None
        assert group is not None
        assert context is not None
        with contextlib.suppress(ValueError, RuntimeError):
            # Raises only when left in another context than it was entered in (an async
            # generator closed by the event loop): the writer must still let everything go.
            self._engine.current_transaction.reset(context)
        failed = exc_info[1] is not None
        # What follows runs to its end even if this writer is cancelled meanwhile: a savepoint
        # statement cut off half-way would otherwise cost every writer of the group its work.
        await asyncio.shield(self._track(writers, self._leave(writers, group, failed=failed)))
        if failed:
            return False
        await asyncio.shield(group.done)
        return True

    async def _leave(self, writers: _Writers, group: _WriteGroup, *, failed: bool) -> None:
        """Close this writer's part of ``group`` and let the queue go."""
        if not self._savepoint:  # the group's first writer
            if failed:
                self._abandon(writers, group)  # nobody else is in it yet
                return
        else:
            try:
                if failed:
                    await group.connection.execute(f"ROLLBACK TO {self._savepoint}")
                await group.connection.execute(f"RELEASE {self._savepoint}")
            except BaseException:
                self._abandon(writers, group)
                raise
        if group.members == 1:
            # The group's first writer: its commit waits for those now in line to join.
            self._track(writers, _close_group(writers, group))
        writers.queue.release()


async def settle_writes(engine: Engine[Any]) -> None:
    """Wait until this process's committed write groups have closed their connections (a
    group's connection is closed in a task of its own after the commit). Before something
    that needs the SQLite file to itself, such as a restore in a test."""
    if not isinstance(engine, SQLiteEngine):
        return
    writers = _writers_of(engine)
    while writers.closers:
        await asyncio.gather(*list(writers.closers), return_exceptions=True)


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


async def _keep_session(connection: asyncpg.Connection) -> None:
    """What a pooled connection needs on its way back to the pool beyond asyncpg's own rollback
    of a transaction left open: nothing. asyncpg's default reset (``SELECT
    pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``) is a round trip for every
    statement run outside a transaction, a sixth of a roll call's statements, for session state
    Reppu never leaves on a pooled connection: no advisory locks, cursors or session settings
    (``SET LOCAL`` and ``SET TRANSACTION`` end with the transaction), and the live stream
    listens on a connection of its own (``server/live.py``)."""
    del connection


async def start_postgres_pool(engine: PostgresEngine, max_size: int) -> None:
    """Start ``engine``'s connection pool as every Reppu process runs it: one way, so that a
    pool started again (after a restore) is not a different pool (asyncpg's reset back)."""
    await engine.start_connection_pool(
        min_size=1, max_size=max_size, command_timeout=60, reset=_keep_session
    )


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
        await start_postgres_pool(engine, settings.database_pool_size)
    try:
        yield engine
    finally:
        if isinstance(engine, PostgresEngine):
            await engine.close_connection_pool()
        elif isinstance(engine, _SQLiteEngine):
            await engine.close_read_pool()


def connection_counts(engine: Engine[Any]) -> tuple[int, int]:
    """``(in use, idle)`` connections of this process's pool: asyncpg's pool on PostgreSQL,
    the read connections on SQLite (its writer is one connection, always open)."""
    if isinstance(engine, PostgresEngine):
        pool = engine.pool
        if pool is None:
            return 0, 0
        idle = pool.get_idle_size()
        return pool.get_size() - idle, idle
    if isinstance(engine, _SQLiteEngine) and engine._read_pool is not None:
        return engine._read_pool.in_use, engine._read_pool.idle
    return 0, 0


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
