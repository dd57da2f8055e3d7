"""What every route needs from the process: its settings and its open database engine."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from piccolo.engine.base import Engine

from server.db.engine import write_transaction
from server.db.sync_tables import SyncEpoch
from server.live import LiveHub
from server.live_access import StreamAccess
from server.recent import RecentLookups
from server.settings import Settings


async def sync_epoch(engine: Engine[Any]) -> str:
    """This database's sync epoch (``SyncEpoch``), made on first use.

    Two processes making it at once both insert; both then read the first row, so they agree.
    """
    row = await SyncEpoch.select(SyncEpoch.epoch).order_by(SyncEpoch.id).first()
    if row is None:
        async with write_transaction(engine):
            await SyncEpoch.insert(SyncEpoch(epoch=secrets.token_hex(16)))
        row = await SyncEpoch.select(SyncEpoch.epoch).order_by(SyncEpoch.id).first()
        assert row is not None
    return str(row["epoch"])


async def renew_sync_epoch(engine: Engine[Any]) -> str:
    """Give the database a new sync epoch (after a restore); the new epoch.

    Every cursor signed before it is refused from then on (``sync.bad_cursor``), and its
    device starts over. Server processes keep the key they derived: restart them.
    """
    epoch = secrets.token_hex(16)
    async with write_transaction(engine):
        await SyncEpoch.delete(force=True)
        await SyncEpoch.insert(SyncEpoch(epoch=epoch))
    return epoch


@dataclass(slots=True)
class AppState:
    """Built by ``create_app``; the engine is set when the app's lifespan opens the database."""

    settings: Settings
    live: LiveHub
    recent: RecentLookups
    _engine: Engine[Any] | None = field(default=None)
    _cursor_key: bytes | None = field(default=None)
    wake_worker: Callable[[], None] = field(default=lambda: None)
    """Tell this process's delivery worker that something was enqueued (no-op without one)."""
    stream_access: StreamAccess = field(init=False)
    """The live streams' access checks, many streams in one lookup."""

    def __post_init__(self) -> None:
        self.stream_access = StreamAccess(lambda: self.engine)

    @property
    def engine(self) -> Engine[Any]:
        if self._engine is None:
            raise RuntimeError("the database is not open: the app's lifespan has not started")
        return self._engine

    def open(self, engine: Engine[Any]) -> None:
        self._engine = engine
        self._cursor_key = None

    async def cursor_key(self) -> bytes:
        """The key pull cursors are signed with: the secret key and this database's epoch."""
        if self._cursor_key is None:
            epoch = await sync_epoch(self.engine)
            self._cursor_key = hmac.new(
                self.settings.secret_key.encode(), f"cursor:{epoch}".encode(), hashlib.sha256
            ).digest()
        return self._cursor_key
