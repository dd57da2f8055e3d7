"""'Nothing new' answered from memory: fast, and never at the price of a missed change."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from piccolo.engine.base import Engine

from schemas.core import GroupKind
from schemas.sync import GroupRecord
from server.app import create_app
from server.db.engine import write_transaction
from server.settings import Settings
from server.sync_store import RecordWrite, SqlPullStore, write_records
from sync.cursor import decode_cursor
from tests.city import City
from tests.devices import change, device, next_weekday, records
from tests.sync.test_cursor import encode_format_1


@pytest_asyncio.fixture
async def fx_cached(
    fx_settings: Settings, fx_db: Engine[Any]
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """A client of an app that keeps access lookups for a minute, and that app's state."""
    settings = dataclasses.replace(fx_settings, access_cache_seconds=60)
    app = create_app(settings, engine=fx_db)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://reppu.test") as http:
            yield http, app.state.reppu
    finally:
        # The app's hub watches the database while it runs: stop it with the test.
        await app.state.reppu.live.stop()


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    original = SqlPullStore.heads

    async def counting(self: SqlPullStore, partitions: Any) -> Any:
        calls.append(1)
        return await original(self, partitions)

    monkeypatch.setattr(SqlPullStore, "heads", counting)
    return calls


async def test_nothing_new_needs_no_database(
    fx_cached: tuple[httpx.AsyncClient, Any],
    fx_city: City,
    fx_timetable: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    http, _ = fx_cached
    pupil = await device(http, "aino")
    await pupil.sync()
    await pupil.sync()  # this one reads the heads and remembers them
    reads = _count_reads(monkeypatch)
    for _ in range(5):
        answer, _ = await pupil.pull()
        assert answer.changes == []
        assert answer.cursor is None
    assert reads == []  # answered from memory


async def test_a_change_in_this_process_is_never_hidden_by_the_cache(
    fx_cached: tuple[httpx.AsyncClient, Any], fx_city: City, fx_timetable: dict[str, int]
) -> None:
    http, _ = fx_cached
    pupil = await device(http, "aino")
    await pupil.sync()
    await pupil.sync()
    teacher = await device(http, "teacher")
    monday = next_weekday(fx_city.today, 1)
    await change(
        teacher, "lesson.change", lesson_id=fx_timetable["5b-1"], on_date=monday, cancelled=True
    )
    await pupil.sync()  # at once: the push forgot the partition's head in this process
    assert len(records(pupil, "lesson_change")) == 1


async def test_a_format_1_cursor_in_the_field_is_answered_and_replaced_once_it_moves(
    fx_cached: tuple[httpx.AsyncClient, Any],
    fx_city: City,
    fx_timetable: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    http, state = fx_cached
    for username in ("aino", "mother"):
        holder = await device(http, username)
        await holder.sync()
        assert holder.store.cursor is not None
        key = await state.cursor_key()
        old = encode_format_1(key, *decode_cursor(key, holder.store.cursor))
        # What a "nothing new" pull's body shrank by (tests/sync/test_cursor.py: format 1).
        assert len(holder.store.cursor) * 2 < len(old), (holder.store.cursor, old)
    pupil = await device(http, "aino")
    await pupil.sync()
    await pupil.sync()  # this one reads the heads and remembers them
    key = await state.cursor_key()
    assert pupil.store.cursor is not None
    old = encode_format_1(key, *decode_cursor(key, pupil.store.cursor))
    pupil.store.set_meta("cursor", old)
    reads = _count_reads(monkeypatch)
    answer, _ = await pupil.pull()
    # Read, not refused (a refused cursor would have started the copy afresh), and nothing new
    # is still answered from memory, keeping the cursor the device holds.
    assert (answer.added, answer.changes, answer.cursor, reads) == ([], [], None, [])
    assert pupil.store.cursor == old
    teacher = await device(http, "teacher")
    monday = next_weekday(fx_city.today, 1)
    await change(
        teacher, "lesson.change", lesson_id=fx_timetable["5b-1"], on_date=monday, cancelled=True
    )
    answer, _ = await pupil.pull()
    assert (answer.added, len(answer.changes)) == ([], 1)
    assert "." not in (pupil.store.cursor or ".")  # now format 2


async def test_a_change_made_elsewhere_arrives_once_it_is_heard_of(
    fx_cached: tuple[httpx.AsyncClient, Any],
    fx_db: Engine[Any],
    fx_city: City,
    fx_timetable: dict[str, int],
) -> None:
    http, _ = fx_cached
    pupil = await device(http, "aino")
    await pupil.sync()
    await pupil.sync()
    # Another process writes (here: straight through the write path, no push route).
    group = GroupRecord(
        id=fx_city.class_5b, v=0, name="5B renamed", kind=GroupKind.HOME_CLASS,
        school_id=fx_city.school_a, school_name="Koivukylän koulu",
    )  # fmt: skip
    async with write_transaction(fx_db):
        await write_records(
            fx_db,
            [
                RecordWrite(
                    "group", fx_city.class_5b, group, frozenset({f"group:{fx_city.class_5b}"})
                )
            ],
        )
    deadline = asyncio.get_running_loop().time() + 3
    while True:
        await pupil.sync()
        names = {r["name"] for r in records(pupil, "group").values()}
        if "5B renamed" in names:
            break
        assert asyncio.get_running_loop().time() < deadline, "the change never arrived"
        await asyncio.sleep(0.05)


async def test_logout_is_immediate_in_the_process_that_logged_out(
    fx_cached: tuple[httpx.AsyncClient, Any], fx_city: City
) -> None:
    http, _ = fx_cached
    answer = await http.post(
        "/auth/login",
        json={"username": "aino", "password": "correct horse battery", "device_name": "t"},
    )
    headers = {"Authorization": f"Bearer {answer.json()['token']}"}
    assert (await http.get("/me", headers=headers)).status_code == 200
    assert (await http.post("/auth/logout", headers=headers)).status_code == 204
    assert (await http.get("/me", headers=headers)).status_code == 401
