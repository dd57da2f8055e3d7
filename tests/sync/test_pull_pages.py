"""The pull engine on an in-memory store: pages are bounded by records and by bytes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sync.checksum import Tally
from sync.pull import DEFAULT_MAX_BYTES, LogEntry, PartitionHead, latest_changes, pull


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
        return latest_changes(self.entries, ranges, limit)


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


def _history() -> list[LogEntry]:
    """Record 1 written three times, record 2 written then deleted, record 3 written once."""
    rows = [(1, 1, 1), (2, 2, 1), (3, 1, 2), (4, 3, 1), (5, 2, 2), (6, 1, 3)]
    return [
        LogEntry(pos, "group:1", "lesson", rid, v, None if (rid, v) == (2, 2) else b"r%d" % v)
        for pos, rid, v in rows
    ]


async def test_a_fresh_copy_gets_each_live_record_once_and_no_deletions() -> None:
    result = await pull(MemoryStore(_history()), readable={"group:1"}, positions=None, limit=10)
    assert [(e.record_id, e.version) for e in result.entries] == [(3, 1), (1, 3)]
    assert result.positions == {"group:1": 6}
    assert not result.has_more


async def test_a_copy_behind_gets_the_latest_version_of_each_record_and_its_deletions() -> None:
    store = MemoryStore(_history())
    result = await pull(store, readable={"group:1"}, positions={"group:1": 1}, limit=10)
    # Above position 0 the engine cannot tell which records the copy holds: a latest
    # deletion is sent.
    assert [(e.record_id, e.version, e.data) for e in result.entries] == [
        (3, 1, b"r1"),
        (2, 2, None),
        (1, 3, b"r3"),
    ]


async def test_paging_resumes_after_the_cut_and_brings_a_record_changed_above_it() -> None:
    store = MemoryStore(_history())
    first = await pull(store, readable={"group:1"}, positions=None, limit=1)
    # Record 1's latest change (6) lies above the cut: it is not in this page.
    assert [(e.record_id, e.version) for e in first.entries] == [(3, 1)]
    assert first.has_more
    assert first.positions == {"group:1": 4}
    second = await pull(store, readable={"group:1"}, positions=first.positions, limit=1)
    # Position 5 (record 2's deletion) is above the cut: sent, harmless to a copy without it.
    assert [(e.record_id, e.version) for e in second.entries] == [(2, 2)]
    third = await pull(store, readable={"group:1"}, positions=second.positions, limit=1)
    assert [(e.record_id, e.version) for e in third.entries] == [(1, 3)]
    assert not third.has_more
