"""Sync health for a city's admins: the outbox's lanes, how recent bulletins were delivered,
and the last compaction of the change log.

The lanes and the compaction are the whole server's (no person's data is in them); the
bulletins are those of the admin's own cities and their schools. A bulletin is its id and
title, never its body, and its delivery is counted, never listed by person (a bulletin's own
``GET /bulletins/{id}/status`` names its recipients).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any

from schemas.admin import BulletinDelivery, LastCompaction, OutboxLane, SyncHealth
from server.access import marks
from server.db.message_tables import Bulletin
from server.db.sync_tables import CompactionRun
from server.outbox_lanes import outbox_lanes

_OUTCOME = (
    # A delivery folded into a digest went, or did not, with its digest.
    "CASE WHEN d.status = 'digested' THEN COALESCE(g.status, 'queued') ELSE d.status END"
)
_GROUPED = {
    "sent": "sent",
    "queued": "queued",
    "digest": "queued",
    "digested": "queued",
    "failed": "failed",
    "expired": "failed",
    "gone": "gone",
}
"""Delivery statuses as the report counts them; ``off`` and ``unreachable`` (nothing was to
be sent) count only towards ``unreached``."""

_DELIVERIES = (
    f"SELECT d.outbox, {_OUTCOME} AS outcome, COUNT(*) AS n FROM delivery d "
    "LEFT JOIN delivery g ON g.id = d.digest WHERE d.outbox IN ({ids}) GROUP BY d.outbox, outcome"
)
_RECIPIENTS = (
    "SELECT outbox, COUNT(*) AS recipients, SUM(1 - hit) AS unreached FROM ("
    "SELECT d.outbox, d.person, MAX(CASE WHEN "
    f"{_OUTCOME} IN ('sent', 'queued', 'digest', 'digested') THEN 1 ELSE 0 END) AS hit "
    "FROM delivery d LEFT JOIN delivery g ON g.id = d.digest WHERE d.outbox IN ({ids}) "
    "GROUP BY d.outbox, d.person) AS per_person GROUP BY outbox"
)


async def _recent_bulletins(cities: Collection[int], count: int) -> list[dict[str, Any]]:
    city_ids = sorted(cities)
    return list(
        await Bulletin.raw(
            "SELECT b.id, b.title, b.organisation, b.sent_at, o.id AS outbox, o.done_at "
            "FROM bulletin b LEFT JOIN outbox o ON o.kind = 'bulletin' AND o.item_id = b.id "
            f"WHERE b.organisation IN ({marks(len(city_ids))}) OR b.organisation IN "
            f"(SELECT id FROM organisation WHERE parent IN ({marks(len(city_ids))})) "
            "ORDER BY b.sent_at DESC, b.id DESC LIMIT {}",
            *city_ids,
            *city_ids,
            count,
        )
    )


async def bulletin_deliveries(cities: Collection[int], count: int) -> list[BulletinDelivery]:
    """The ``count`` most recent bulletins of ``cities`` and their schools, newest first."""
    bulletins = await _recent_bulletins(cities, count)
    outboxes = sorted({int(b["outbox"]) for b in bulletins if b["outbox"] is not None})
    counts: dict[int, dict[str, int]] = {o: {} for o in outboxes}
    people: dict[int, tuple[int, int]] = {}
    if outboxes:
        ids = marks(len(outboxes))
        for row in await Bulletin.raw(_DELIVERIES.format(ids=ids), *outboxes):
            group = _GROUPED.get(str(row["outcome"]))
            if group is not None:
                tally = counts[int(row["outbox"])]
                tally[group] = tally.get(group, 0) + int(row["n"])
        for row in await Bulletin.raw(_RECIPIENTS.format(ids=ids), *outboxes):
            people[int(row["outbox"])] = (int(row["recipients"]), int(row["unreached"] or 0))
    report = []
    for b in bulletins:
        outbox = int(b["outbox"]) if b["outbox"] is not None else None
        tally = counts.get(outbox, {}) if outbox is not None else {}
        recipients, unreached = people.get(outbox, (0, 0)) if outbox is not None else (0, 0)
        report.append(
            BulletinDelivery(
                bulletin_id=int(b["id"]),
                title=str(b["title"]),
                organisation_id=int(b["organisation"]),
                sent_at=_aware(b["sent_at"]),
                expanded=b["done_at"] is not None,
                recipients=recipients,
                sent=tally.get("sent", 0),
                queued=tally.get("queued", 0),
                failed=tally.get("failed", 0),
                gone=tally.get("gone", 0),
                unreached=unreached,
            )
        )
    return report


def _aware(value: Any) -> dt.datetime:
    """A timestamp read by a raw query: SQLite may hand back text, and naive means UTC."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


async def last_compaction() -> LastCompaction | None:
    row = (
        await CompactionRun.select()
        .order_by(CompactionRun.finished_at, ascending=False)
        .order_by(CompactionRun.id, ascending=False)
        .first()
    )
    if row is None:
        return None
    return LastCompaction(
        finished_at=row["finished_at"],
        superseded=int(row["superseded"]),
        tombstones=int(row["tombstones"]),
        partitions_with_new_horizon=int(row["partitions_with_new_horizon"]),
        rows_left=int(row["rows_left"]),
    )


async def sync_health(cities: Collection[int], *, now: dt.datetime, bulletins: int) -> SyncHealth:
    """What ``GET /admin/sync-health`` answers an admin of ``cities``."""
    lanes = [
        OutboxLane(name=name, depth=depth, oldest_due_seconds=age)
        for name, depth, age in await outbox_lanes(now)
    ]
    return SyncHealth(
        lanes=lanes,
        bulletins=await bulletin_deliveries(cities, bulletins),
        last_compaction=await last_compaction(),
    )
