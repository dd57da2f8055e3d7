"""Checking quiet partitions over HTTP, on SQLite and PostgreSQL (``docs/sync-protocol.md``,
"Checking quiet partitions"): the reference client finds and repairs a damaged copy of a
partition that did not change; an old client's answers are what they always were; nobody
gets the summary of a partition they may not read."""

from __future__ import annotations

import datetime as dt

import httpx

from schemas.sync import MAX_CHECK
from tests.city import City
from tests.conftest import suite_now
from tests.devices import device, records


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


async def test_a_damaged_copy_of_a_quiet_partition_is_found_and_repaired(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int]
) -> None:
    c = fx_city
    quiet = f"group:{c.class_3c}"  # Eero's class: nothing changes in it here
    mother = await device(fx_client, "mother")
    clock = Clock(suite_now().astimezone(dt.UTC))
    mother.clock = clock
    await mother.sync()
    healthy = mother.store.records()
    lesson = fx_timetable["3c-1"]
    # The app's own database loses a record (a bug, a half-restored backup).
    mother.store.db.execute("DELETE FROM record WHERE type = 'lesson' AND id = ?", (lesson,))
    assert lesson not in records(mother, "lesson")

    soon = await mother.sync()  # the daily check is not due yet: summaries come with changes
    assert soon.checked == []
    assert soon.repaired == []
    assert lesson not in records(mother, "lesson")

    clock.now += dt.timedelta(days=1)
    daily = await mother.sync()
    assert quiet in daily.checked
    assert set(daily.checked) == mother.store.partitions()
    assert daily.repaired == [quiet]
    assert mother.store.records() == healthy


async def test_a_check_answers_with_summaries_that_match_and_keeps_the_cursor(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int]
) -> None:
    c = fx_city
    mother = await device(fx_client, "mother")
    await mother.sync()
    held = sorted(mother.store.partitions())
    answer = await fx_client.post(
        "/sync/pull",
        json={"schema_version": 2, "cursor": mother.store.cursor, "check": held},
        headers=mother.headers,
    )
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"summaries"}  # no cursor: nothing moved
    assert [s["partition"] for s in body["summaries"]] == held
    for summary in body["summaries"]:
        tally = mother.store.tally(summary["partition"])
        assert (summary["count"], summary["checksum"]) == (tally.count, tally.hex)
    assert f"group:{c.class_3c}" in held


async def test_an_old_client_that_does_not_ask_gets_todays_answer(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int]
) -> None:
    mother = await device(fx_client, "mother")
    old = await fx_client.post("/sync/pull", json={"schema_version": 1}, headers=mother.headers)
    new = await fx_client.post("/sync/pull", json={"schema_version": 2}, headers=mother.headers)
    assert old.status_code == new.status_code == 200
    assert old.json() == new.json()  # the same first answer, cursor and all
    nothing_new = await fx_client.post(
        "/sync/pull",
        json={"schema_version": 1, "cursor": old.json()["cursor"]},
        headers=mother.headers,
    )
    assert nothing_new.content == b"{}"


async def test_no_summary_of_a_partition_the_caller_may_not_read(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int]
) -> None:
    c = fx_city
    # Another family's child (Olli), his class, and the brother of a child the father has only
    # a right to information about: none of them is the father's to read.
    foreign = [f"person:{c.olli}", f"inbox:{c.olli}", f"group:{c.class_5a}", f"person:{c.eero}"]
    father = await device(fx_client, "father")
    await father.sync()
    assert not set(foreign) & father.store.partitions()
    answer = await fx_client.post(
        "/sync/pull",
        json={"schema_version": 2, "cursor": father.store.cursor, "check": foreign},
        headers=father.headers,
    )
    assert answer.status_code == 200
    assert answer.content == b"{}"  # as if nothing had been asked
    mixed = await fx_client.post(
        "/sync/pull",
        json={
            "schema_version": 2,
            "cursor": father.store.cursor,
            "check": [*foreign, f"person:{c.aino}"],
        },
        headers=father.headers,
    )
    assert [s["partition"] for s in mixed.json()["summaries"]] == [f"person:{c.aino}"]


async def test_a_check_list_is_bounded(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int]
) -> None:
    mother = await device(fx_client, "mother")
    answer = await fx_client.post(
        "/sync/pull",
        json={"schema_version": 2, "check": [f"group:{i}" for i in range(MAX_CHECK + 1)]},
        headers=mother.headers,
    )
    assert answer.status_code == 422
    assert answer.json()["code"] == "request.invalid"
    assert answer.json()["field"] == "$.check"
