"""The pull engine on an in-memory store: pages are bounded by records and by bytes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sync.checksum import Tally
from sync.pull import DEFAULT_MAX_BYTES, LogEntry, PartitionHead, pull


class MemoryStore:
    """A change log in a list; the pull's reads over it."""

    def __init__(self, entries: list[LogEntry]) -> None:
        self.entries = entries

    async def heads(self, partitions: Iterable[str]) -> dict[str, PartitionHead]:
        wanted = set(partitions)
        heads: dict[str, PartitionHead] = {}
        for e in self.entries:
            if e.partition in wanted:
                heads[e.partition] = PartitionHead(head=e.position, tally=Tally())
        return heads

    async def changes(
        self, ranges: Mapping[str, tuple[int, int]], limit: int
    ) -> Sequence[LogEntry]:
        found = [
            e
            for e in self.entries
            if e.partition in ranges
            and ranges[e.partition][0] < e.position <= ranges[e.partition][1]
        ]
        return found[:limit]


def _log(count: int, size: int) -> list[LogEntry]:
    return [
        LogEntry(i, "group:1" if i % 2 else "group:2", "lesson", i, 1, b"x" * size)
        for i in range(1, count + 1)
    ]


async def test_pages_are_bounded_by_bytes_and_resume_exactly() -> None:
    store = MemoryStore(_log(40, 20_000))  # 800 kB of records
    positions = None
    seen: list[int] = []
    pages = 0
    while True:
        result = await pull(store, readable={"group:1", "group:2"}, positions=positions, limit=500)
        pages += 1
        size = sum(len(e.data or b"") for e in result.entries)
        assert size <= DEFAULT_MAX_BYTES
        seen += [e.position for e in result.entries]
        positions = result.positions
        if not result.has_more:
            break
    assert seen == list(range(1, 41))  # each change once, in order
    assert pages == 4


async def test_one_record_larger_than_a_page_still_moves_on() -> None:
    store = MemoryStore(_log(3, DEFAULT_MAX_BYTES * 2))
    result = await pull(store, readable={"group:1", "group:2"}, positions=None, limit=500)
    assert [e.position for e in result.entries] == [1]
    assert result.has_more


async def test_pages_are_bounded_by_records() -> None:
    store = MemoryStore(_log(10, 10))
    result = await pull(store, readable={"group:1", "group:2"}, positions=None, limit=4)
    assert [e.position for e in result.entries] == [1, 2, 3, 4]
    assert result.has_more
    assert result.positions == {"group:1": 4, "group:2": 4}


async def test_a_position_past_the_head_starts_the_partition_afresh() -> None:
    """After a restore from backup, say: the client's copy cannot be trusted."""
    store = MemoryStore(_log(4, 10))
    result = await pull(store, readable={"group:1"}, positions={"group:1": 99}, limit=10)
    assert result.added == ["group:1"]
    assert [e.position for e in result.entries] == [1, 3]
