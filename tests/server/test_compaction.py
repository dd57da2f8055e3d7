"""Compaction keeps every client converging, and re-sends a partition to one left behind."""

from __future__ import annotations

from typing import Any

import httpx
from piccolo.engine.base import Engine

from server.compaction import compact
from server.db.sync_tables import ChangeLog
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
