"""The convergence property of the pull engine and the reference client, as a Hypothesis
state machine: writes, deletions, access changes, compaction, pages of any size and
interrupted pulls in any order; after a full sync the device holds exactly the current
state of what its person may read.

The store is in memory (a test double of ``server/sync_store.py`` with the same rules:
per-record versions, a log row per partition gained, kept or lost, tallies, compaction with
horizons); the client is the real ``clients.python.LocalStore``. The same property over the
real databases and HTTP is ``tests/server/test_sync_convergence.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence

import msgspec
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from clients.python import LocalStore
from schemas.core import GroupKind
from schemas.sync import Delete, GroupRecord, PartitionSummary, PullResponse, Upsert
from sync.checksum import Tally, record_digest
from sync.pull import LogEntry, PartitionHead, latest_changes, pull

PARTITIONS = ("group:1", "group:2", "group:3", "school:1")
RECORDS = range(1, 9)


class MemorySyncStore:
    def __init__(self) -> None:
        self.log: list[LogEntry] = []
        self.position = 0
        self.version: dict[int, int] = {}
        self.placement: dict[int, frozenset[str]] = {}
        self.current: dict[int, bytes] = {}
        self.state: dict[str, PartitionHead] = {}

    def write(self, record_id: int, partitions: frozenset[str], name: str | None) -> None:
        """Write (``name`` given) or delete the record; the write path's rules."""
        old_v = self.version.get(record_id, 0)
        old_p = self.placement.get(record_id, frozenset())
        new_p = partitions if name is not None else frozenset()
        if not old_p | new_p:
            return
        version = old_v + 1
        data = None
        if name is not None:
            record = GroupRecord(
                id=record_id, v=version, name=name, kind=GroupKind.HOME_CLASS, school_id=1,
                school_name="S",
            )  # fmt: skip
            data = msgspec.json.encode(record)
            self.current[record_id] = data
        else:
            self.current.pop(record_id, None)
        for partition in sorted(old_p | new_p):
            head = self.state.get(partition, PartitionHead())
            tally = head.tally
            if partition in old_p:
                tally = tally.remove(record_digest("group", record_id, old_v))
            if partition in new_p:
                tally = tally.add(record_digest("group", record_id, version))
            self.position += 1
            self.log.append(
                LogEntry(self.position, partition, "group", record_id, version,
                         data if partition in new_p else None)
            )  # fmt: skip
            self.state[partition] = PartitionHead(self.position, tally, head.horizon)
        self.version[record_id] = version
        self.placement[record_id] = new_p

    def compact(self, keep: int) -> None:
        latest: dict[tuple[str, int], int] = {}
        for e in self.log:
            latest[(e.partition, e.record_id)] = e.position
        self.log = [e for e in self.log if latest[(e.partition, e.record_id)] == e.position]
        cutoff = self.position - keep
        for e in self.log:
            if e.data is None and e.position <= cutoff:
                head = self.state[e.partition]
                horizon = max(head.horizon, e.position)
                self.state[e.partition] = PartitionHead(head.head, head.tally, horizon)
        self.log = [e for e in self.log if not (e.data is None and e.position <= cutoff)]

    async def heads(self, partitions: Iterable[str]) -> dict[str, PartitionHead]:
        return {p: self.state[p] for p in partitions if p in self.state}

    async def changes(
        self, ranges: Mapping[str, tuple[int, int]], limit: int
    ) -> Sequence[LogEntry]:
        return latest_changes(self.log, ranges, limit)


_record = msgspec.json.Decoder(GroupRecord)


class Device:
    """The reference client's store, fed by the engine directly (no HTTP)."""

    def __init__(self) -> None:
        self.store = LocalStore()
        self.positions: dict[str, int] | None = None
        self.floors: dict[str, int] = {}

    def pull(
        self, server: MemorySyncStore, readable: set[str], limit: int, apply: bool
    ) -> tuple[bool, list[str]]:
        result = asyncio.run(
            pull(
                server, readable=readable, positions=self.positions, limit=limit, floors=self.floors
            )
        )
        if not apply:
            return True, []  # the answer was lost on the way
        answer = PullResponse(
            cursor="c",
            has_more=result.has_more,
            added=result.added,
            removed=result.removed,
            changes=[
                Upsert(partition=e.partition, record=_record.decode(e.data))
                if e.data is not None
                else Delete(partition=e.partition, type="group", id=e.record_id)
                for e in result.entries
            ],
            summaries=[
                PartitionSummary(partition=p, count=t.count, checksum=t.hex)
                for p, t in result.summaries.items()
            ],
        )
        mismatched = self.store.apply(answer)
        self.positions, self.floors = result.positions, result.floors
        return result.has_more, mismatched

    def sync(self, server: MemorySyncStore, readable: set[str], limit: int) -> None:
        for _ in range(1000):
            has_more, mismatched = self.pull(server, readable, limit, apply=True)
            assert mismatched == [], "a checksum did not match after applying"
            if not has_more:
                return
        raise AssertionError("sync did not finish")


class Convergence(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.server = MemorySyncStore()
        self.readable: set[str] = {"group:1", "school:1"}
        self.device = Device()

    @rule(
        record_id=st.sampled_from(RECORDS),
        partitions=st.sets(st.sampled_from(PARTITIONS), min_size=1, max_size=2),
        name=st.sampled_from(["5A", "5B", "6C"]),
    )
    def write(self, record_id: int, partitions: set[str], name: str) -> None:
        self.server.write(record_id, frozenset(partitions), name)

    @rule(record_id=st.sampled_from(RECORDS))
    def delete(self, record_id: int) -> None:
        self.server.write(record_id, frozenset(), None)

    @rule(readable=st.sets(st.sampled_from(PARTITIONS)))
    def access_changes(self, readable: set[str]) -> None:
        self.readable = readable

    @rule(keep=st.sampled_from([0, 2, 1000]))
    def compact(self, keep: int) -> None:
        self.server.compact(keep)

    @rule(limit=st.integers(min_value=1, max_value=6), apply=st.booleans())
    def pull_one_page(self, limit: int, apply: bool) -> None:
        _, mismatched = self.device.pull(self.server, self.readable, limit, apply)
        assert mismatched == []

    @rule(limit=st.integers(min_value=1, max_value=6))
    def sync_fully(self, limit: int) -> None:
        self.device.sync(self.server, self.readable, limit)
        self.check_converged()

    def check_converged(self) -> None:
        expected = {
            ("group", rid): msgspec.json.decode(data)
            for rid, data in self.server.current.items()
            if self.server.placement[rid] & self.readable
        }
        assert self.device.store.records() == expected
        assert self.device.store.partitions() == self.readable
        for partition in self.readable:
            head = self.server.state.get(partition, PartitionHead())
            assert self.device.store.tally(partition) == head.tally

    @invariant()
    def tallies_match_placement(self) -> None:
        for partition, head in self.server.state.items():
            tally = Tally()
            for rid, placed in self.server.placement.items():
                if partition in placed:
                    tally = tally.add(record_digest("group", rid, self.server.version[rid]))
            assert head.tally == tally


TestConvergence = Convergence.TestCase
TestConvergence.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
