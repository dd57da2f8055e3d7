"""No change is ever skipped, even when writers commit out of position order.

Writers take log positions and then, on purpose, hold their transactions open for a random
while before committing, so that on PostgreSQL a later position could commit before an
earlier one. A reader pulls all the while. When the writers are done and the reader has
caught up, it must hold every record written: a change skipped by a cursor that moved past
an uncommitted position would be missing for ever.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from piccolo.engine.base import Engine

from schemas.core import GroupKind
from schemas.sync import GroupRecord
from server.db.engine import write_transaction
from server.db.sync_tables import ChangeLog, SyncRecord
from server.sync_store import RecordWrite, SqlPullStore, write_records
from sync.checksum import Tally, record_digest
from sync.pull import pull

PARTITIONS = ("group:1", "group:2")
WRITERS = 6
WRITES_EACH = 15


def _record(record_id: int) -> GroupRecord:
    return GroupRecord(
        id=record_id, v=0, name=f"G{record_id}", kind=GroupKind.HOME_CLASS, school_id=1,
        school_name="S",
    )  # fmt: skip


async def _writer(engine: Engine[Any], writer: int, rng: random.Random) -> None:
    for n in range(WRITES_EACH):
        record_id = writer * 1000 + n
        partitions = frozenset(rng.sample(PARTITIONS, rng.randint(1, 2)))
        async with write_transaction(engine):
            await write_records(
                engine, [RecordWrite("group", record_id, _record(record_id), partitions)]
            )
            # Hold the positions taken, uncommitted, while others go ahead.
            await asyncio.sleep(rng.random() * 0.02)


async def test_racing_writers_never_make_a_reader_skip_a_change(fx_db: Engine[Any]) -> None:
    rng = random.Random(7)
    store = SqlPullStore()
    positions: dict[str, int] | None = None
    seen: dict[str, set[int]] = {p: set() for p in PARTITIONS}
    done = asyncio.Event()

    async def read_once() -> None:
        nonlocal positions
        result = await pull(store, readable=PARTITIONS, positions=positions, limit=7)
        for entry in result.entries:
            if entry.data is not None:
                seen[entry.partition].add(entry.record_id)
        positions = result.positions

    async def reader() -> None:
        while not done.is_set():
            await read_once()
            await asyncio.sleep(0.001)

    reading = asyncio.create_task(reader())
    await asyncio.gather(*(_writer(fx_db, w, random.Random(w)) for w in range(WRITERS)))
    done.set()
    await reading
    for _ in range(WRITERS * WRITES_EACH):  # catch up, page by page
        await read_once()
    expected = {p: set() for p in PARTITIONS}
    heads = await store.heads(PARTITIONS)
    for partition in PARTITIONS:
        rows = await store.changes({partition: (0, heads[partition].head)}, 100_000)
        expected[partition] = {r.record_id for r in rows}
    assert sum(len(v) for v in expected.values()) >= WRITERS * WRITES_EACH
    assert seen == expected
    del rng


async def test_racing_writers_of_the_same_records_keep_the_checksums_true(
    fx_db: Engine[Any],
) -> None:
    async def writer(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(WRITES_EACH):
            record_id = rng.randint(1, 4)  # few records: writers collide on them
            partitions = frozenset(rng.sample(PARTITIONS, rng.randint(1, 2)))
            async with write_transaction(fx_db):
                await write_records(
                    fx_db, [RecordWrite("group", record_id, _record(record_id), partitions)]
                )
                await asyncio.sleep(rng.random() * 0.01)

    await asyncio.gather(*(writer(w) for w in range(WRITERS)))
    placed = await SyncRecord.select()
    for partition, head in (await SqlPullStore().heads(PARTITIONS)).items():
        tally = Tally()
        for row in placed:
            if partition in row["partitions"].split():
                tally = tally.add(record_digest("group", row["record_id"], row["version"]))
        assert head.tally == tally, partition
    versions = {row["record_id"]: row["version"] for row in placed}
    writes = await ChangeLog.raw(
        "SELECT record_id, count(DISTINCT version) AS n FROM change_log GROUP BY record_id"
    )
    assert {r["record_id"]: r["n"] for r in writes} == versions  # no version built twice
