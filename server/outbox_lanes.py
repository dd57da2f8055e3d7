"""How deep and how old each lane of the notification outbox is, read from the database:
``/metrics`` and the admins' sync health show it (``docs/operations.md``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from server.db.bulk import run_sql
from server.deliver import LANES

EXPAND_LANE = "expand"
"""The outbox entries still to be expanded into deliveries, as a lane of their own."""


def _age(now: dt.datetime, oldest: Any) -> float:
    if oldest is None:
        return 0.0
    if isinstance(oldest, str):  # SQLite's aggregate loses the column's declared type
        oldest = dt.datetime.fromisoformat(oldest)
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=dt.UTC)
    return max(0.0, float((now - oldest).total_seconds()))


async def outbox_lanes(now: dt.datetime) -> list[tuple[str, int, float]]:
    """``(lane, entries waiting, age of the oldest one that is due in seconds)`` per lane."""
    lanes: list[tuple[str, int, float]] = []
    for lane in LANES:
        for urgent in lane.urgent:
            name = (
                lane.name
                if len(lane.urgent) == 1
                else f"{lane.name}:{'urgent' if urgent else 'normal'}"
            )
            rows = await run_sql(
                "SELECT COUNT(*) AS waiting, "
                "MIN(CASE WHEN not_before <= {} THEN not_before END) AS oldest "
                "FROM delivery WHERE status = 'queued' AND channel = {} AND urgent = {}",
                now,
                lane.channel,
                urgent,
            )
            lanes.append((name, int(rows[0]["waiting"]), _age(now, rows[0]["oldest"])))
    rows = await run_sql(
        "SELECT COUNT(*) AS waiting, MIN(created_at) AS oldest FROM outbox "
        "WHERE done_at IS NULL AND expires_at > {}",
        now,
    )
    lanes.append((EXPAND_LANE, int(rows[0]["waiting"]), _age(now, rows[0]["oldest"])))
    return lanes
