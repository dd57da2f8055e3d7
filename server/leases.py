"""Leases that stay short because they are renewed: a heartbeat for work held in the database.

The worker holds rows (an outbox entry being expanded, a batch of deliveries being sent) by
writing a ``lease_until`` into them. A lease long enough for the slowest batch would keep a
killed worker's rows from everyone for that long, an urgent bulletin among them; so leases are
short and a :class:`Heartbeat` renews them while the work goes on. A worker that dies stops
renewing, and its rows are free again within one lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

log = logging.getLogger("reppu.leases")
T = TypeVar("T")


async def to_the_end(work: Awaitable[T]) -> T:
    """Await ``work``, letting it finish even if the caller is cancelled meanwhile.

    A transaction cut off between its BEGIN and its COMMIT would keep its connection (and on
    SQLite the database's write lock) forever; a worker being stopped must first finish the
    transaction it is in. The cancellation is raised once the work is done.
    """
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await task
        raise


class Heartbeat:
    """Calls ``beat`` every ``every`` seconds until stopped; a failed beat is logged and the
    next one tries again (a lease renewed four times per its length survives three misses)."""

    def __init__(self, beat: Callable[[], Awaitable[None]], every: float, what: str) -> None:
        self._beat, self._every, self._what = beat, every, what
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            try:
                await to_the_end(self._beat())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("renewing the lease of %s failed; retrying", self._what)

    async def stop(self) -> None:
        """Stop beating; a beat under way finishes first (its transaction is never cut).

        ``asyncio.wait``, not ``await`` of the task inside ``suppress(CancelledError)``: that
        would also swallow a cancellation of the caller (a worker being stopped), which would
        then carry on as if nothing had happened.
        """
        self._task.cancel()
        await asyncio.wait([self._task])
