"""Compaction of the change log: ``reppu compact``.

Two kinds of row go:

1. **Superseded changes.** A change of a record in a partition that a later change of the
   same record in the same partition replaces. No client needs it: one behind it will
   receive the later change anyway. This never strands a cursor, so it can run at any time.
2. **Old deletions** (tombstones) at or below ``cutoff``: once the partition no longer holds
   the record, the tombstone only matters to a client positioned before it. Removing it
   raises the partition's *horizon*; a client positioned below the horizon is sent the
   partition afresh on its next pull (it clears its copy and receives the current state),
   rather than an error that strands the user.

After compaction a partition's log is its current state plus recent deletions: exactly what
a client new to the partition receives as its snapshot. Each run leaves a ``compaction_run``
row (when, how much went), which an admin sees in ``GET /admin/sync-health``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from piccolo.engine.base import Engine

from server.clock import utc_now
from server.db.engine import write_transaction
from server.db.sync_tables import ChangeLog, CompactionRun, PartitionState
from server.leases import to_the_end

DEFAULT_KEEP_POSITIONS = 1_000_000
"""By default, deletions among the newest million changes are kept."""


@dataclass(frozen=True, slots=True)
class CompactionReport:
    superseded: int
    tombstones: int
    partitions_with_new_horizon: int
    rows_left: int


async def compact(
    engine: Engine[Any], *, keep_positions: int = DEFAULT_KEEP_POSITIONS
) -> CompactionReport:
    """Compact the log in one write transaction; deletions newer than the newest
    ``keep_positions`` changes are kept."""
    async with write_transaction(engine):
        before = await ChangeLog.count()
        await ChangeLog.raw(
            "DELETE FROM change_log WHERE EXISTS (SELECT 1 FROM change_log newer "
            "WHERE newer.partition = change_log.partition "
            "AND newer.record_type = change_log.record_type "
            "AND newer.record_id = change_log.record_id AND newer.id > change_log.id)"
        )
        after_superseded = await ChangeLog.count()
        newest = (
            await ChangeLog.select(ChangeLog.id).order_by(ChangeLog.id, ascending=False).first()
        )
        newest_id = int(newest["id"]) if newest else 0
        # The newest row always stays: SQLite hands out max(id) + 1, and a position must
        # never be handed out twice.
        cutoff = min(newest_id - keep_positions, newest_id - 1)
        removed = await ChangeLog.raw(
            "DELETE FROM change_log WHERE data IS NULL AND id <= {} RETURNING partition, id",
            cutoff,
        )
        horizons = await _raise_horizons(removed)
        left = await ChangeLog.count()
        report = CompactionReport(
            superseded=before - after_superseded,
            tombstones=after_superseded - left,
            partitions_with_new_horizon=len(horizons),
            rows_left=left,
        )
        # Recorded with the run itself, so the record never claims a run that rolled back.
        await CompactionRun.insert(
            CompactionRun(
                finished_at=utc_now(),
                superseded=report.superseded,
                tombstones=report.tombstones,
                partitions_with_new_horizon=report.partitions_with_new_horizon,
                rows_left=report.rows_left,
            )
        )
    return report


async def _raise_horizons(removed: list[dict[str, Any]]) -> dict[str, int]:
    """Raise each partition's horizon to the newest deletion removed from it.

    Horizons come from the rows actually deleted, so a deletion committed meanwhile is either
    removed and counted, or neither."""
    horizons: dict[str, int] = {}
    for row in removed:
        horizons[row["partition"]] = max(horizons.get(row["partition"], 0), int(row["id"]))
    # In name order, as the write path locks partitions, so that neither waits for the other
    # crosswise (PostgreSQL would end one of them as a deadlock).
    for partition, horizon in sorted(horizons.items()):
        await PartitionState.update({PartitionState.horizon: horizon}).where(
            (PartitionState.partition == partition) & (PartitionState.horizon < horizon)
        )
    return horizons


async def remove_deletions_up_to(engine: Engine[Any], position: int, *, batch: int) -> int:
    """Remove the deletions at or below ``position`` (the newest row always stays) with the
    changes they supersede, oldest first, ``batch`` deletions per short write transaction,
    raising horizons as :func:`compact` does; returns how many deletions went. Retention
    (``server/retention.py``) calls it.

    Oldest first, so that what a partition has lost is always a prefix of its deletions: a
    client between two batches is either below the horizon (sent the partition afresh) or
    sees every deletion after its position.
    """
    total = 0
    while removed := await to_the_end(_remove_deletions_batch(engine, position, batch)):
        total += removed
    return total


async def _remove_deletions_batch(engine: Engine[Any], position: int, batch: int) -> int:
    async with write_transaction(engine):
        newest = (
            await ChangeLog.select(ChangeLog.id).order_by(ChangeLog.id, ascending=False).first()
        )
        cutoff = min(position, (int(newest["id"]) if newest else 0) - 1)
        found = await ChangeLog.raw(
            "SELECT id FROM change_log WHERE data IS NULL AND id <= {} ORDER BY id LIMIT {}",
            cutoff,
            batch,
        )
        ids = [int(r["id"]) for r in found]
        if not ids:
            return 0
        marks = ", ".join("{}" for _ in ids)
        # First the changes these deletions supersede: without its deletion, a record's older
        # state would come back to life for a client that starts the partition afresh.
        await ChangeLog.raw(
            "DELETE FROM change_log WHERE EXISTS (SELECT 1 FROM change_log gone "
            f"WHERE gone.id IN ({marks}) AND gone.partition = change_log.partition "
            "AND gone.record_type = change_log.record_type "
            "AND gone.record_id = change_log.record_id AND gone.id > change_log.id)",
            *ids,
        )
        removed = await ChangeLog.raw(
            f"DELETE FROM change_log WHERE id IN ({marks}) RETURNING partition, id", *ids
        )
        await _raise_horizons(removed)
    return len(removed)
