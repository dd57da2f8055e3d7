"""What every route needs from the process: its settings and its open database engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from piccolo.engine.base import Engine

from server.live import LiveHub
from server.recent import RecentLookups
from server.settings import Settings


@dataclass(slots=True)
class AppState:
    """Built by ``create_app``; the engine is set when the app's lifespan opens the database."""

    settings: Settings
    live: LiveHub
    recent: RecentLookups
    _engine: Engine[Any] | None = field(default=None)
    wake_worker: Callable[[], None] = field(default=lambda: None)
    """Tell this process's delivery worker that something was enqueued (no-op without one)."""

    @property
    def engine(self) -> Engine[Any]:
        if self._engine is None:
            raise RuntimeError("the database is not open: the app's lifespan has not started")
        return self._engine

    def open(self, engine: Engine[Any]) -> None:
        self._engine = engine
