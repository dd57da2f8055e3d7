"""Compaction keeps every client converging, and re-sends a partition to one left behind."""

from __future__ import annotations

from typing import Any

import httpx
from piccolo.engine.base import Engine

from schemas.core import GroupKind
from schemas.sync import GroupRecord
from server.compaction import compact
from server.db.engine import write_transaction
from server.db.sync_tables import ChangeLog
from server.sync_store import RecordWrite, SqlPullStore, write_records
from sync.pull import pull
from tests.city import City
from tests.devices import change, device, next_weekday, records


async def test_compaction_keeps_clients_converging(
    fx_db: Engine[Any], fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int]
) -> None:
    c = fx_city
    lesson, monday = fx_timetable["5b-1"], next_weekday(c.today, 1)
    teacher = await device(fx_client, "teacher")
    behind = await device(fx_client, "aino")  # synced once, then offline for long
    await change(teacher, "lesson.change", lesson_id=lesson, on_date=monday, cancelled=True)
    await behind.sync()
    assert len(records(behind, "lesson_change")) == 1
    recent = await device(fx_client, "aino")  # syncs along
    await change(teacher, "lesson.change", lesson_id=lesson, on_date=monday, room="Gym")
    await recent.sync()
    await change(teacher, "lesson.restore", lesson_id=lesson, on_date=monday)
    # Another group's change, so that the deletion is not the newest row (which stays).
    await change(teacher, "lesson.change", lesson_id=fx_timetable["5a-1"], on_date=monday, note="x")
    rows_before = await ChangeLog.count()

    # Superseded rows go; deletions among the newest positions stay.
    report = await compact(fx_db)
    assert report.superseded == 2  # the cancellation and the room change of the one record
    assert report.tombstones == 0
    assert await ChangeLog.count() == rows_before - 2
    await recent.sync()
    assert records(recent, "lesson_change") == {}

    # Now the deletion goes too: a client positioned before it gets the partition afresh.
    report = await compact(fx_db, keep_positions=0)
    assert report.tombstones == 1
    answer, mismatched = await behind.pull()
    assert answer.added == [f"group:{c.class_5b}"]
    assert mismatched == []
    await behind.sync()
    assert records(behind, "lesson_change") == {}
    fresh = await device(fx_client, "aino")
    await fresh.sync()
    assert behind.store.records() == fresh.store.records() == recent.store.records()
    # A client already past the deletion is not disturbed.
    assert (await recent.pull())[0].added == []


async def test_a_position_is_never_handed_out_twice(fx_db: Engine[Any]) -> None:
    """The newest row survives compaction, so SQLite cannot reuse its position."""
    store = SqlPullStore()

    async def write(record_id: int, keep: bool) -> None:
        record = GroupRecord(
            id=record_id, v=0, name="1A", kind=GroupKind.HOME_CLASS, school_id=1, school_name="S"
        )
        placed = frozenset({"group:1"}) if keep else frozenset()
        async with write_transaction(fx_db):
            await write_records(
                fx_db, [RecordWrite("group", record_id, record if keep else None, placed)]
            )

    await write(1, keep=True)
    await write(1, keep=False)
    seen = await pull(store, readable={"group:1"}, positions=None, limit=100)
    await compact(fx_db, keep_positions=0)
    await write(2, keep=True)
    after = await pull(store, readable={"group:1"}, positions=seen.positions, limit=100)
    assert [(e.record_id, e.data is not None) for e in after.entries] == [(2, True)]
    assert after.positions["group:1"] > seen.positions["group:1"]
