"""The sync engine's storage: the one write path for synced records, and the pull's reads.

Every change to synced data goes through :func:`write_records`, inside the caller's write
transaction, together with the domain row it reflects. For each record it writes

- a change-log row per partition that gains, keeps or loses the record (the record's JSON, or
  NULL where the partition loses it),
- the record's placement and version (``sync_record``),
- each touched partition's head, count and checksum (``partition_state``),

so the change, its log entries and the partition summaries commit or vanish together.

**No change is skipped.** On PostgreSQL, positions come from a sequence, and transactions can
commit in another order than the one in which they took their positions; a reader that saw
position 12 and moved its cursor past 11 would never see an 11 committed later. The write
path therefore locks the ``sync_record`` rows of the records it writes (in key order) and
then the ``partition_state`` rows of every partition it touches (in name order), so that two
writers never deadlock, *before* it takes positions. Writers to one partition
take positions and commit one after another, and the pull reads each partition only up to
its committed head. Writers to different partitions still run side by side. SQLite has one
writer at a time (``BEGIN IMMEDIATE``), so the question does not arise there.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine

from schemas.sync import Record
from server.db.bulk import VALUES_CHUNK, Rows, bulk_insert, insert_values, run_sql, values_sql
from server.db.sync_tables import ChangeLog, PartitionState
from sync.checksum import Tally, record_digest
from sync.pull import LogEntry, PartitionHead

_json = msgspec.json.Encoder()
_changed: contextvars.ContextVar[dict[str, int] | None] = contextvars.ContextVar(
    "reppu_changed_partitions", default=None
)


@contextlib.contextmanager
def collect_changes() -> Iterator[dict[str, int]]:
    """Gather the partitions that ``write_records`` changes inside the block (this task's),
    each with its new head."""
    changed: dict[str, int] = {}
    token = _changed.set(changed)
    try:
        yield changed
    finally:
        _changed.reset(token)


@dataclass(frozen=True, slots=True)
class RecordWrite:
    """A record's new state and the partitions that hold it; ``record`` None deletes it."""

    record_type: str
    record_id: int
    record: Record | None
    partitions: frozenset[str]


def _placement(text: str) -> frozenset[str]:
    return frozenset(text.split()) if text else frozenset()


CHUNK_ROWS = 2000
"""Rows per statement where a statement lists rows: far below either engine's limit of bound
parameters."""


def _chunks(rows: Sequence[tuple[Any, ...]]) -> Iterator[Sequence[tuple[Any, ...]]]:
    for first in range(0, len(rows), CHUNK_ROWS):
        yield rows[first : first + CHUNK_ROWS]


_STATE_COLUMNS = ("partition", "head", "record_count", "checksum", "horizon")
_RECORD_COLUMNS = ("record_type", "record_id", "version", "partitions")
_EMPTY_CHECKSUM = "0000000000000000"


async def _lock_partitions(engine: Engine[Any], partitions: Sequence[str]) -> dict[str, Any]:
    """Create missing ``partition_state`` rows, lock them (PostgreSQL), return them by name."""
    await insert_values(
        "partition_state",
        _STATE_COLUMNS,
        [(p, 0, 0, _EMPTY_CHECKSUM, 0) for p in partitions],
        tail="ON CONFLICT (partition) DO NOTHING",
    )
    lock = " ORDER BY partition FOR UPDATE" if isinstance(engine, PostgresEngine) else ""
    found: dict[str, Any] = {}
    for chunk in _chunks([(p,) for p in partitions]):
        rows = await run_sql(
            f"SELECT id, partition, head, record_count, checksum FROM partition_state "
            f"WHERE partition IN ({', '.join('{}' for _ in chunk)}){lock}",
            *(p for (p,) in chunk),
        )
        found.update({row["partition"]: row for row in rows})
    return found


NOTIFY_BYTES = 7900
"""PostgreSQL refuses a notification payload of 8000 bytes or more."""


def _notify_payloads(heads: Mapping[str, int]) -> Iterator[str]:
    """``<partition>@<head>`` words, space-separated, in payloads under ``NOTIFY_BYTES`` each
    (a large write, such as an import, touches thousands of partitions). The head lets a
    listener that already poked for it (the writing process) skip it: one poke per write."""
    payload = ""
    for partition, head in heads.items():
        name = f"{partition}@{head}"
        if payload and len(payload.encode()) + 1 + len(name.encode()) > NOTIFY_BYTES:
            yield payload
            payload = ""
        payload = f"{payload} {name}" if payload else name
    if payload:
        yield payload


async def write_records(engine: Engine[Any], writes: Iterable[RecordWrite]) -> set[str]:
    """Record ``writes`` in the sync tables; returns the partitions that changed.

    Call once per write transaction, after writing the domain rows the records reflect (one
    call takes all its locks in a fixed order; two calls could take them crosswise). However
    many records and partitions, it runs a fixed handful of statements, each over all rows.
    """
    # One write per record: the last one given wins.
    writes = list({(w.record_type, w.record_id): w for w in writes}.values())
    if not writes:
        return set()
    keys = sorted({(w.record_type, w.record_id) for w in writes})
    existing: dict[tuple[str, int], dict[str, Any]] = {}
    # Each record's version and placement are read under a lock (PostgreSQL), records in key
    # order and then partitions in name order, so that two writers of one record take turns
    # and never both build on the same old version. A record new to sync gets its row first
    # (version 0, in no partition), so that it too can be locked: two first writes of one
    # record then take turns as well.
    await insert_values(
        "sync_record",
        _RECORD_COLUMNS,
        [(record_type, record_id, 0, "") for record_type, record_id in keys],
        tail="ON CONFLICT (record_type, record_id) DO NOTHING",
    )
    lock = " ORDER BY record_id FOR UPDATE" if isinstance(engine, PostgresEngine) else ""
    for record_type in sorted({k[0] for k in keys}):
        ids = [(k[1],) for k in keys if k[0] == record_type]
        for chunk in _chunks(ids):
            rows = await run_sql(
                "SELECT id, record_type, record_id, version, partitions FROM sync_record "
                f"WHERE record_type = {{}} AND record_id IN ({', '.join('{}' for _ in chunk)})"
                f"{lock}",
                record_type,
                *(i for (i,) in chunk),
            )
            existing.update({(r["record_type"], int(r["record_id"])): r for r in rows})

    touched = sorted(
        {
            p
            for w in writes
            for p in w.partitions | _placement(existing[(w.record_type, w.record_id)]["partitions"])
        }
    )
    if not touched:
        return set()
    states = await _lock_partitions(engine, touched)
    tallies = {p: Tally.from_hex(s["record_count"], s["checksum"]) for p, s in states.items()}

    log_rows: list[tuple[Any, ...]] = []
    placements: list[tuple[Any, ...]] = []
    for write in writes:
        before = existing[(write.record_type, write.record_id)]
        old_version = int(before["version"])
        old_partitions = _placement(before["partitions"])
        new_partitions = write.partitions if write.record is not None else frozenset()
        version = old_version + 1
        data = None
        if write.record is not None:
            data = _json.encode(msgspec.structs.replace(write.record, v=version)).decode()
        old_digest = record_digest(write.record_type, write.record_id, old_version)
        new_digest = record_digest(write.record_type, write.record_id, version)
        for partition in sorted(old_partitions | new_partitions):
            if partition in old_partitions:
                tallies[partition] = tallies[partition].remove(old_digest)
            if partition in new_partitions:
                tallies[partition] = tallies[partition].add(new_digest)
            log_rows.append(
                (
                    partition,
                    write.record_type,
                    write.record_id,
                    version,
                    data if partition in new_partitions else None,
                )
            )
        placements.append(
            (write.record_type, write.record_id, version, " ".join(sorted(new_partitions)))
        )
    # The rows are locked above: these upserts only update them.
    await insert_values(
        "sync_record",
        _RECORD_COLUMNS,
        placements,
        tail="ON CONFLICT (record_type, record_id) DO UPDATE SET version = excluded.version, "
        "partitions = excluded.partitions",
    )
    inserted = await insert_values(
        "change_log",
        ("partition", "record_type", "record_id", "version", "data"),
        log_rows,
        tail="RETURNING id, partition",
    )
    heads: dict[str, int] = {}
    for row in inserted:
        heads[row["partition"]] = max(heads.get(row["partition"], 0), int(row["id"]))
    # Positions only grow, but never trust that: a head never goes back.
    new_heads = {p: max(int(states[p]["head"]), heads.get(p, 0)) for p in touched}
    state_rows = [
        (
            partition,
            new_heads[partition],
            tallies[partition].count,
            tallies[partition].hex,
            0,  # not updated: only new rows take it
        )
        for partition in touched
    ]
    state_tail = (
        "ON CONFLICT (partition) DO UPDATE SET head = excluded.head, "
        "record_count = excluded.record_count, checksum = excluded.checksum"
    )
    # Delivered at commit, to every server process listening (the live stream).
    payloads = list(_notify_payloads(new_heads)) if isinstance(engine, PostgresEngine) else []
    if payloads and len(state_rows) <= VALUES_CHUNK:
        # One round trip for both: a data-modifying WITH runs to its end whatever the query
        # that follows it reads.
        await run_sql(
            f"WITH heads AS ({values_sql('partition_state', _STATE_COLUMNS, len(state_rows))} "
            f"{state_tail}) SELECT pg_notify('reppu_sync', {{}})",
            *(value for row in state_rows for value in row),
            payloads.pop(0),
        )
    else:
        await insert_values("partition_state", _STATE_COLUMNS, state_rows, tail=state_tail)
    for payload in payloads:
        await run_sql("SELECT pg_notify('reppu_sync', {})", payload)
    collector = _changed.get()
    if collector is not None:
        for partition, head in new_heads.items():
            collector[partition] = max(head, collector.get(partition, 0))
    return set(touched)


class SqlPullStore:
    """The pull's reads, over the bound Piccolo engine (SQLite or PostgreSQL)."""

    def __init__(self) -> None:
        self.last_heads: dict[str, PartitionHead] = {}
        """The heads the last ``heads`` call read (for the in-memory head cache)."""

    async def heads(self, partitions: Iterable[str]) -> dict[str, PartitionHead]:
        names = list(partitions)
        if not names:
            return {}
        rows = await PartitionState.select(
            PartitionState.partition,
            PartitionState.head,
            PartitionState.record_count,
            PartitionState.checksum,
            PartitionState.horizon,
        ).where(PartitionState.partition.is_in(names))
        self.last_heads = {
            r["partition"]: PartitionHead(
                head=int(r["head"]),
                tally=Tally.from_hex(r["record_count"], r["checksum"]),
                horizon=int(r["horizon"]),
            )
            for r in rows
        }
        return self.last_heads

    async def changes(
        self, ranges: Mapping[str, tuple[int, int]], limit: int
    ) -> Sequence[LogEntry]:
        if not ranges:
            return []
        # Of each record only its latest change up to the partition's head ("newer" is looked
        # up in the change_log_record_position index); from position 0 (a fresh copy), no deletions.
        wanted = ", ".join("({}, CAST({} AS BIGINT), CAST({} AS BIGINT))" for _ in ranges)
        args: list[Any] = []
        for partition, (after, upto) in ranges.items():
            args.extend((partition, after, upto))
        rows = await ChangeLog.raw(
            f"WITH wanted (partition, low, high) AS (VALUES {wanted}) "
            "SELECT c.id, c.partition, c.record_type, c.record_id, c.version, c.data "
            "FROM wanted JOIN change_log c ON c.partition = wanted.partition "
            "AND c.id > wanted.low AND c.id <= wanted.high "
            "WHERE (c.data IS NOT NULL OR wanted.low > 0) "
            "AND NOT EXISTS (SELECT 1 FROM change_log newer "
            "WHERE newer.record_type = c.record_type AND newer.record_id = c.record_id "
            "AND newer.partition = c.partition "
            "AND newer.id > c.id AND newer.id <= wanted.high) "
            "ORDER BY c.id LIMIT {}",
            *args,
            limit,
        )
        return [
            LogEntry(
                position=int(r["id"]),
                partition=r["partition"],
                record_type=r["record_type"],
                record_id=int(r["record_id"]),
                version=int(r["version"]),
                data=None if r["data"] is None else r["data"].encode(),
            )
            for r in rows
        ]


class SyncStateNotEmptyError(RuntimeError):
    """The sync state can only be seeded into an empty change log."""


async def seed_sync_state(
    engine: Engine[Any],
    writes: Sequence[RecordWrite],
    progress: Callable[[str, int, int], None] | None = None,
) -> int:
    """Write the sync state of records already in the database, in bulk; returns log rows.

    For a database filled around the write path (the demo city's bulk load, a first
    import): every record gets version 1 and one log row per partition, and every partition
    its head, count and checksum. Refuses a change log that is not empty, since clients
    already hold positions in it.
    """
    if await ChangeLog.exists():
        raise SyncStateNotEmptyError("the change log is not empty: sync state exists already")
    log: list[tuple[Any, ...]] = []
    records: list[tuple[Any, ...]] = []
    tallies: dict[str, Tally] = {}
    heads: dict[str, int] = {}
    for write in writes:
        assert write.record is not None
        data = _json.encode(msgspec.structs.replace(write.record, v=1)).decode()
        digest = record_digest(write.record_type, write.record_id, 1)
        for partition in sorted(write.partitions):
            position = len(log) + 1
            log.append((position, partition, write.record_type, write.record_id, 1, data))
            tallies[partition] = tallies.get(partition, Tally()).add(digest)
            heads[partition] = position
        placement = " ".join(sorted(write.partitions))
        records.append((len(records) + 1, write.record_type, write.record_id, 1, placement))
    states = [
        (i, partition, heads[partition], tally.count, tally.hex, 0)
        for i, (partition, tally) in enumerate(sorted(tallies.items()), start=1)
    ]
    await bulk_insert(
        engine,
        [
            Rows(
                "change_log",
                ("id", "partition", "record_type", "record_id", "version", "data"),
                log,
            ),
            Rows(
                "sync_record", ("id", "record_type", "record_id", "version", "partitions"), records
            ),
            Rows(
                "partition_state",
                ("id", "partition", "head", "record_count", "checksum", "horizon"),
                states,
            ),
        ],
        progress,
    )
    return len(log)
