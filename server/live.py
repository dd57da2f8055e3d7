"""Live pokes: "pull now" to every open stream whose partitions just changed.

Only pokes travel here; data travels through pull. Each server process has one
:class:`LiveHub`, which learns of changes from the database itself, so a change made through
any process reaches streams held by every process:

- PostgreSQL: the write path sends ``NOTIFY reppu_sync, '<partitions>'`` in its transaction
  (delivered at commit); the hub holds one connection that ``LISTEN`` s.
- SQLite: the hub reads the partition heads that moved, every ``poll_seconds``. That serves
  every worker process on the machine that shares the file.

What the hub hears also keeps :class:`HeadCache` honest, which answers "nothing new" pulls
without the database, and tells the process when an account was disabled or signed out
everywhere (``reppu_revoked`` on PostgreSQL, the ``account_event`` trail on SQLite), so that
the tokens it keeps for a few seconds (``server/recent.py``) are forgotten in every process,
not only in the one that acted. A change made in another process is heard of within moments (at once
on PostgreSQL, within ``poll_seconds`` on SQLite); until then a pull may be told "nothing
new", never told to skip anything, and the poke that follows brings it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

import asyncpg
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine

from server.db.bulk import run_sql
from server.db.signin_tables import AccountEvent
from server.db.sync_tables import PartitionState
from server.settings import Settings

log = logging.getLogger("reppu.live")
CHANNEL = "reppu_sync"
REVOKED_CHANNEL = "reppu_revoked"
REVOKING_EVENTS = ("account.disabled", "account.signed_out", "account.device_signed_out")
"""The ``account_event`` kinds after which no process may keep an account's tokens."""


async def announce_revocation(engine: Engine[Any]) -> None:
    """Tell every server process that tokens were revoked; call in the revoking transaction
    (after writing its ``account_event``). On PostgreSQL a NOTIFY, delivered at commit; on
    SQLite the event row itself is what the other processes' hubs poll for."""
    if isinstance(engine, PostgresEngine):
        await run_sql(f"SELECT pg_notify('{REVOKED_CHANNEL}', '')")


class Pokes:
    """One stream's mailbox of changed partitions: what arrives before the stream reads it is
    merged, so a burst of changes is one poke. Lighter than an ``asyncio.Queue`` waited on
    with ``asyncio.wait_for`` (a task per wait): a stream waits on one future and one timer,
    and a city holds tens of thousands of streams."""

    __slots__ = ("_changed", "_waiter")

    def __init__(self) -> None:
        self._changed: set[str] = set()
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, changed: Iterable[str]) -> None:
        self._changed.update(changed)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def empty(self) -> bool:
        return not self._changed

    def get_nowait(self) -> set[str]:
        """What has changed since the last read (empty when nothing has)."""
        changed, self._changed = self._changed, set()
        return changed

    async def get(self) -> set[str]:
        """What has changed, waiting until something has."""
        while not self._changed:
            await self.wait(None)
        return self.get_nowait()

    async def wait(self, seconds: float | None) -> None:
        """Return when something has changed, or after ``seconds`` (None: no limit)."""
        if self._changed:
            return
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        timer = None if seconds is None else loop.call_later(seconds, _wake, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def parse_notification(payload: str) -> dict[str, int | None]:
    """The partitions of a ``reppu_sync`` notification, with their heads: ``<partition>@<head>``
    words (``server/sync_store.py``); a word without ``@<head>`` (as an older server sends)
    is a partition whose head is not known."""
    changed: dict[str, int | None] = {}
    for word in payload.split():
        name, at, head = word.rpartition("@")
        if at and head.isdigit():
            changed[name] = max(int(head), changed.get(name) or 0)
        else:
            changed[word] = None
    return changed


class Subscription:
    """One open stream's interest: its mailbox, and partitions that can change in place."""

    def __init__(self, hub: LiveHub, partitions: set[str]) -> None:
        self.hub = hub
        self.partitions = partitions
        self.queue = Pokes()

    def update(self, partitions: Iterable[str]) -> None:
        """Follow ``partitions`` from now on, without missing a poke on the way."""
        new = set(partitions)
        self.hub._move(self.queue, self.partitions, new)
        self.partitions = new


class HeadCache:
    """Each partition's head as a pull last read it, forgotten as soon as a change to the
    partition is heard of. It lets a "nothing new" pull be answered without the database.

    A read and a notification can cross: a pull's snapshot sees head 10, a change commits
    (11) and is heard of, and only then does the pull store its 10. So a pull takes a
    *ticket* before its snapshot begins, and what it read is kept only for partitions that
    nothing was heard of since the ticket; the rest stays unknown (and goes to the database).
    """

    def __init__(self) -> None:
        self._heads: dict[str, int] = {}
        self._forgotten_at: dict[str, int] = {}
        self._clock = 0
        self._epoch = 0

    def ticket(self) -> tuple[int, int]:
        return self._epoch, self._clock

    def remember(self, ticket: tuple[int, int], heads: Mapping[str, int]) -> None:
        epoch, clock = ticket
        if epoch != self._epoch:
            return
        for partition, head in heads.items():
            if self._forgotten_at.get(partition, 0) <= clock:
                self._heads[partition] = head

    def forget(self, partitions: Iterable[str]) -> None:
        for partition in partitions:
            self._clock += 1
            self._forgotten_at[partition] = self._clock
            self._heads.pop(partition, None)

    def forget_all(self) -> None:
        self._epoch += 1
        self._heads.clear()

    def caught_up(self, positions: Mapping[str, int]) -> bool:
        """True when every partition's known head is exactly the client's position."""
        return all(self._heads.get(p, -1) == position for p, position in positions.items())


class LiveHub:
    """Fans changed partitions out to the subscribers of this process."""

    def __init__(self, settings: Settings, *, poll_seconds: float = 0.25) -> None:
        self.settings = settings
        self.poll_seconds = poll_seconds
        self.heads = HeadCache()
        self.on_revoked: Callable[[], None] | None = None
        """Called when tokens were revoked in any process (and when that may have gone by
        unheard): the app forgets the tokens it keeps."""
        self.listening = False
        """True while changes made anywhere are being heard of; only then is ``heads`` used."""
        self._subscribers: dict[str, set[Pokes]] = {}
        self._poked: dict[str, int] = {}
        """The newest head each subscribed partition was poked for."""
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    def _revoked(self) -> None:
        if self.on_revoked is not None:
            self.on_revoked()

    def publish(self, changed: Mapping[str, int | None] | Iterable[str]) -> None:
        """Poke every subscriber of the ``changed`` partitions, and forget their heads.

        ``changed`` maps each partition to its new head where that is known: a head this hub
        has already poked for (or passed) pokes nobody again. The process that wrote hears of
        its own write twice, at once from the write path and again from the database (the
        NOTIFY, the poll); one write is one poke. A partition without a head (None, or a plain
        list of names) is always poked.
        """
        if not isinstance(changed, Mapping):
            changed = dict.fromkeys(changed)
        self.heads.forget(list(changed))
        for partition, head in changed.items():
            holders = self._subscribers.get(partition)
            if not holders:
                continue
            if head is not None:
                if head <= self._poked.get(partition, -1):
                    continue
                self._poked[partition] = head
            for queue in holders:
                queue.put_nowait((partition,))

    @contextlib.asynccontextmanager
    async def subscribe(self, partitions: Iterable[str]) -> AsyncIterator[Subscription]:
        """A subscription whose queue receives sets of changed partitions while it is open."""
        await self.start()
        subscription = Subscription(self, set())
        subscription.update(partitions)
        try:
            yield subscription
        finally:
            subscription.update(())

    def _move(self, queue: Pokes, old: set[str], new: set[str]) -> None:
        for name in old - new:
            holders = self._subscribers.get(name)
            if holders is not None:
                holders.discard(queue)
                if not holders:
                    del self._subscribers[name]
                    self._poked.pop(name, None)
        for name in new - old:
            self._subscribers.setdefault(name, set()).add(queue)

    async def start(self) -> None:
        """Start watching the database (once); returns when the watch is in place."""
        if self._task is None or self._task.done():
            self._ready.clear()
            watch = self._listen if not self.settings.is_sqlite else self._poll
            self._task = asyncio.create_task(watch(), name="reppu-live")
        await self._ready.wait()

    async def stop(self) -> None:
        self.listening = False
        self.heads.forget_all()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _listen(self) -> None:
        def on_notify(_: Any, __: int, ___: str, payload: str) -> None:
            self.publish(parse_notification(payload))

        while True:
            try:
                connection = await asyncpg.connect(self.settings.database_url)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("live: cannot LISTEN (%s); retrying", type(exc).__name__)
                await asyncio.sleep(1)
                continue
            lost = asyncio.Event()
            connection.add_termination_listener(lambda _, lost=lost: lost.set())
            try:
                await connection.add_listener(CHANNEL, on_notify)
                await connection.add_listener(REVOKED_CHANNEL, lambda *_: self._revoked())
                self._revoked()  # one may have gone by while nobody listened
                if self._ready.is_set():
                    # Reconnected: a change may have gone by unheard, so everyone pulls.
                    self.publish(list(self._subscribers))
                self.heads.forget_all()
                self.listening = True
                self._ready.set()
                await lost.wait()
                self.listening = False
                self.heads.forget_all()
                log.warning("live: LISTEN connection lost; reconnecting")
            finally:
                with contextlib.suppress(Exception):
                    await connection.close()

    async def _poll(self) -> None:
        last = await self._max_head()
        last_event = await self._max_event()
        self.listening = True
        self._ready.set()
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                rows = await PartitionState.select(
                    PartitionState.partition, PartitionState.head
                ).where(PartitionState.head > last)
                events = await AccountEvent.select(AccountEvent.id).where(
                    (AccountEvent.id > last_event) & AccountEvent.kind.is_in(list(REVOKING_EVENTS))
                )
            except Exception as exc:  # the file is busy or gone for a moment: try again
                log.warning("live: cannot read partition heads (%s)", type(exc).__name__)
                self.heads.forget_all()
                self._revoked()
                continue
            if rows:
                last = max(int(r["head"]) for r in rows)
                self.publish({str(r["partition"]): int(r["head"]) for r in rows})
            if events:
                last_event = max(int(e["id"]) for e in events)
                self._revoked()

    @staticmethod
    async def _max_event() -> int:
        row = (
            await AccountEvent.select(AccountEvent.id)
            .order_by(AccountEvent.id, ascending=False)
            .first()
        )
        return 0 if row is None else int(row["id"])

    @staticmethod
    async def _max_head() -> int:
        row = (
            await PartitionState.select(PartitionState.head)
            .order_by(PartitionState.head, ascending=False)
            .first()
        )
        return 0 if row is None else int(row["head"])
