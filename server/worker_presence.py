"""Is a delivery worker alive? Each worker beats into ``worker_heartbeat`` every few seconds.

A worker runs inside every ``reppu serve`` process by default, or as ``reppu worker`` on a
machine of its own; either way nothing else in the database says that one is running. A
worker that stops cleanly deletes its row; one that was killed simply stops beating, and is
no longer counted once its last beat is :data:`ALIVE_WITHIN` old. Rows of workers gone for
:data:`FORGET_AFTER` are deleted by the beats of the living.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import secrets
import socket
from dataclasses import dataclass
from typing import Any

from piccolo.engine.base import Engine

from server.clock import utc_now
from server.db.bulk import run_sql
from server.db.engine import write_transaction

log = logging.getLogger("reppu.worker")

BEAT_EVERY = 5.0
"""Seconds between two beats of one worker."""
ALIVE_WITHIN = dt.timedelta(seconds=30)
"""A worker whose last beat is younger than this counts as alive: six beats, so a worker held
up a while behind SQLite's writer or a slow PostgreSQL is not declared dead."""
FORGET_AFTER = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class WorkerSeen:
    id: str
    age_seconds: float
    """Seconds since its last beat."""


class Presence:
    """One worker's heartbeat: :meth:`run` beats until cancelled, then leaves."""

    def __init__(self, engine: Engine[Any], *, every: float = BEAT_EVERY) -> None:
        self.engine = engine
        self.every = every
        self.host = socket.gethostname()[:255]
        self.pid = os.getpid()
        self.id = f"{self.host[:60]}:{self.pid}:{secrets.token_hex(4)}"
        self.started_at = utc_now()

    async def beat(self) -> None:
        now = utc_now()
        async with write_transaction(self.engine):
            await run_sql(
                "INSERT INTO worker_heartbeat (id, host, pid, started_at, beat_at) "
                "VALUES ({}, {}, {}, {}, {}) "
                "ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at",
                self.id,
                self.host,
                self.pid,
                self.started_at,
                now,
            )
            await run_sql("DELETE FROM worker_heartbeat WHERE beat_at < {}", now - FORGET_AFTER)

    async def leave(self) -> None:
        async with write_transaction(self.engine):
            await run_sql("DELETE FROM worker_heartbeat WHERE id = {}", self.id)

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self.beat()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    # The database is away: the worker's own loops say so too; keep trying.
                    log.warning("worker heartbeat failed: %s", type(exc).__name__)
                await asyncio.sleep(self.every)
        finally:
            try:
                await asyncio.shield(self.leave())
            except Exception as exc:
                log.warning("worker heartbeat: could not leave: %s", type(exc).__name__)


async def workers_seen() -> list[WorkerSeen]:
    """Every worker with a row, youngest beat first, with its age now."""
    now = utc_now()
    rows = await run_sql("SELECT id, beat_at FROM worker_heartbeat ORDER BY beat_at DESC")
    return [
        WorkerSeen(str(row["id"]), max(0.0, (now - row["beat_at"]).total_seconds())) for row in rows
    ]


def alive(seen: list[WorkerSeen]) -> list[WorkerSeen]:
    limit = ALIVE_WITHIN.total_seconds()
    return [w for w in seen if w.age_seconds < limit]
