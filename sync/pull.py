"""The pull: from a client's cursor and a principal's partitions to the next answer.

The engine knows nothing of HTTP or SQL. It reads through :class:`PullStore`, which the server
implements over the database and the tests over memory, and it returns plain data that the
route encodes.

How an answer is made (``docs/sync-protocol.md`` has the whole protocol):

1. Partitions in the cursor that the principal may no longer read are announced ``removed``.
   Partitions it may newly read, partitions the client asks to ``repair``, and partitions whose
   deletions were compacted past the client's position start again from position 0 and are
   announced ``added``: the client clears its copy of them and receives their current state,
   which is what the compacted log of a partition is. A copy started afresh remembers the
   horizon it started under (its *floor*): while it pages up to that horizon it is not behind
   a compacted deletion, since deletions below the floor were gone before it began.
2. Every partition's *head* (its newest change), count and checksum are read together. A
   partition is behind when the client's position is below its head.
3. Changes of the behind partitions are read in log order, each partition from its position
   up to its head, at most ``limit`` of them and about ``max_bytes`` of record data (never
   fewer than one). Of each record only its latest change in that range is read: the versions
   before it would be overwritten on the client anyway. A partition read from position 0 (a
   copy started afresh) also leaves out the records whose latest change is a deletion, since
   the fresh copy never held them: it arrives as its current state, compacted or not. If that
   cut the answer, every partition's new
   position is the last change sent (capped at its head), so the next page resumes exactly
   there; otherwise every partition is at its head. A record left out of a page because its
   latest change lies above the cut is in a later page, since that change is.
4. Partitions brought to their head by this answer get a summary (count and checksum as of
   that head) for the client to check. So do the partitions the client asks to ``check``
   that it may read and that are at their head after this answer, even when nothing in them
   changed: a damaged copy of a quiet partition is found that way. A partition it may not
   read gets no summary, whatever it asks (deny by default).

"Nothing new" costs one read of the heads and no read of the log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sync.checksum import Tally

DEFAULT_MAX_BYTES = 256 * 1024
"""About how much record data one answer carries, before encoding and compression."""
ENTRY_OVERHEAD_BYTES = 48
"""What a change costs on the wire besides its record (op, partition, type, id)."""


@dataclass(frozen=True, slots=True)
class PartitionHead:
    """A partition's newest change, and what it adds up to at that change."""

    head: int = 0
    tally: Tally = field(default_factory=Tally)
    horizon: int = 0
    """Deletions at or below this position were compacted away: a client positioned below it
    may miss one, so it starts the partition again."""


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One change of one record in one partition."""

    position: int
    partition: str
    record_type: str
    record_id: int
    version: int
    data: bytes | None
    """The record as JSON (``None`` for a deletion), exactly as the write path stored it."""


def _fitting(entries: Sequence[LogEntry], max_bytes: int) -> int:
    """How many of ``entries``, from the first, fit in ``max_bytes`` (at least one)."""
    total = 0
    for count, entry in enumerate(entries):
        total += ENTRY_OVERHEAD_BYTES + len(entry.data or b"")
        if total > max_bytes:
            return max(1, count)
    return len(entries)


class PullStore(Protocol):
    async def heads(self, partitions: Iterable[str]) -> dict[str, PartitionHead]:
        """The head of each partition; a partition with no changes yet may be left out."""
        ...

    async def changes(
        self, ranges: Mapping[str, tuple[int, int]], limit: int
    ) -> Sequence[LogEntry]:
        """Changes with ``after < position <= upto`` for each ``partition: (after, upto)``,
        in position order, at most ``limit``: of each record only its latest change in its
        partition's range, and none whose latest change is a deletion where ``after`` is 0
        (:func:`latest_changes` says it over a list)."""
        ...


def latest_changes(
    log: Iterable[LogEntry], ranges: Mapping[str, tuple[int, int]], limit: int
) -> list[LogEntry]:
    """What :meth:`PullStore.changes` reads, over a log in position order (for memory stores)."""
    latest: dict[tuple[str, str, int], LogEntry] = {}
    for entry in log:
        if entry.partition in ranges:
            after, upto = ranges[entry.partition]
            if after < entry.position <= upto:
                latest[(entry.partition, entry.record_type, entry.record_id)] = entry
    found = sorted(latest.values(), key=lambda e: e.position)
    return [e for e in found if e.data is not None or ranges[e.partition][0] > 0][:limit]


@dataclass(frozen=True, slots=True)
class PullResult:
    positions: dict[str, int]
    floors: dict[str, int]
    """Per partition copied afresh under a horizon, that horizon, until the copy passes it."""
    has_more: bool
    added: list[str]
    removed: list[str]
    entries: Sequence[LogEntry]
    summaries: dict[str, Tally]


async def pull(
    store: PullStore,
    *,
    readable: Iterable[str],
    positions: Mapping[str, int] | None,
    limit: int,
    repair: Iterable[str] = (),
    floors: Mapping[str, int] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    check: Iterable[str] = (),
) -> PullResult:
    """The next answer for a client at ``positions`` (None: a first sync)."""
    readable = set(readable)
    known = dict(positions or {})
    floor_of = dict(floors or {})
    removed = sorted(p for p in known if p not in readable)
    start_over = {p for p in readable if p not in known} | (set(repair) & readable)
    heads = await store.heads(readable)
    for partition in readable - start_over:
        state = heads.get(partition, PartitionHead())
        if state.horizon > max(known[partition], floor_of.get(partition, 0)):
            start_over.add(partition)
        elif known[partition] > state.head:
            # Past the newest change: the database was restored from a backup, say. The
            # client's copy cannot be trusted, so it is sent afresh.
            start_over.add(partition)
    current = {p: 0 if p in start_over else known[p] for p in readable}
    floor_of = {p: f for p, f in floor_of.items() if p in readable and p not in start_over}
    for partition in start_over:
        floor_of[partition] = heads.get(partition, PartitionHead()).horizon

    behind = {
        p: (pos, heads[p].head) for p, pos in current.items() if p in heads and pos < heads[p].head
    }
    entries: Sequence[LogEntry] = []
    has_more = False
    if behind:
        fetched = await store.changes(behind, limit + 1)
        kept = _fitting(fetched[:limit], max_bytes)
        has_more = len(fetched) > kept
        entries = fetched[:kept]
    last = entries[-1].position if has_more else None
    new_positions = dict(current)
    summaries: dict[str, Tally] = {}
    for partition, (_, head) in behind.items():
        new_positions[partition] = head if last is None else min(head, last)
        if new_positions[partition] == head:
            summaries[partition] = heads[partition].tally
    for partition in start_over:
        if partition not in behind:
            # Nothing to send: the partition is empty. Its summary confirms the client's
            # (cleared) copy is right.
            summaries[partition] = heads.get(partition, PartitionHead()).tally
    for partition in set(check) & readable:
        # Only at the head does the summary describe what the client holds once this answer
        # is applied; a partition still behind gets its summary when a later page brings it
        # there, as every partition does.
        state = heads.get(partition, PartitionHead())
        if partition not in summaries and new_positions[partition] == state.head:
            summaries[partition] = state.tally
    return PullResult(
        positions=new_positions,
        # A floor matters only while the copy is below it.
        floors={p: f for p, f in floor_of.items() if f > new_positions[p]},
        has_more=has_more,
        added=sorted(start_over),
        removed=removed,
        entries=entries,
        summaries=summaries,
    )
