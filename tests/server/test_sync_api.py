"""The sync protocol over HTTP, on SQLite and PostgreSQL: pull, paging, partitions, push."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import msgspec
import pytest
from piccolo.engine.base import Engine

from clients.python import day_timetable
from schemas.sync import MAX_PUSH_MUTATIONS
from server.db.sync_tables import ChangeLog, SyncEpoch, SyncMutation
from server.db.tables import LessonChange, Membership
from server.settings import Settings
from server.timetable import roll_window
from tests.city import City
from tests.conftest import AppMaker, log_in_as
from tests.devices import change, device, next_weekday, records

VERSION = 1


async def test_first_sync_of_a_pupil(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int]
) -> None:
    c = fx_city
    pupil = await device(fx_client, "aino")
    report = await pupil.sync()
    assert report.pages == 1
    assert report.repaired == []
    assert pupil.store.partitions() == {
        f"inbox:{c.aino}", f"person:{c.aino}", f"group:{c.class_5b}", f"group:{c.math_a}",
        f"school:{c.school_a}", f"municipality:{c.city}",
    }  # fmt: skip
    lessons = records(pupil, "lesson")
    assert len(lessons) == 4
    assert {r["group_id"] for r in lessons.values()} == {c.class_5b, c.math_a}
    assert {g["kind"] for g in records(pupil, "group").values()} == {"home_class", "teaching_group"}


async def test_nothing_new_is_small_and_keeps_the_cursor(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int]
) -> None:
    mother = await device(fx_client, "mother")
    await mother.sync()
    answer = await fx_client.post(
        "/sync/pull",
        json={"schema_version": VERSION, "cursor": mother.store.cursor},
        headers=mother.headers,
    )
    assert answer.json() == {}  # nothing new, and the cursor is unchanged
    assert len(answer.content) == 2


async def test_pages_resume_where_they_stopped(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int]
) -> None:
    paged = await device(fx_client, "mother", page_limit=3)
    report = await paged.sync()
    assert report.pages > 2
    assert report.repaired == []
    whole = await device(fx_client, "mother")
    assert (await whole.sync()).pages == 1
    assert paged.store.records() == whole.store.records()


async def test_an_interrupted_first_sync_resumes_from_the_last_page(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int]
) -> None:
    phone = await device(fx_client, "mother", page_limit=4)
    first, _ = await phone.pull()
    assert first.has_more
    kept = len(phone.store.records())
    # The connection drops here; later the app goes on from its stored cursor.
    second, _ = await phone.pull()
    assert {
        (type(ch.record).__name__, ch.record.id) for ch in second.changes if hasattr(ch, "record")
    }.isdisjoint(
        {(type(ch.record).__name__, ch.record.id) for ch in first.changes if hasattr(ch, "record")}
    )
    assert len(phone.store.records()) > kept
    await phone.sync()
    fresh = await device(fx_client, "mother")
    await fresh.sync()
    assert phone.store.records() == fresh.store.records()


async def test_a_cancelled_lesson_reaches_its_pupils_and_no_one_else(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int]
) -> None:
    c = fx_city
    pupil, guardian, other = [await device(fx_client, n) for n in ("aino", "father", "eero")]
    for client in (pupil, guardian, other):
        await client.sync()
    teacher = await device(fx_client, "teacher")
    monday = next_weekday(c.today, 1)
    lesson = fx_timetable["5b-1"]
    result = await change(
        teacher, "lesson.change", lesson_id=lesson, on_date=monday, cancelled=True
    )
    assert result == {"id": 1, "status": "applied"}
    for client in (pupil, guardian):
        report = await client.sync()
        assert report.repaired == []
        changed = records(client, "lesson_change")
        assert [(r["lesson_id"], r["on_date"], r["cancelled"]) for r in changed.values()] == [
            (lesson, monday.isoformat(), True)
        ]
    await other.sync()
    assert records(other, "lesson_change") == {}

    # Restored: the change leaves the devices again.
    result = await change(teacher, "lesson.restore", lesson_id=lesson, on_date=monday)
    assert result["status"] == "applied"
    await pupil.sync()
    assert records(pupil, "lesson_change") == {}


async def test_a_pupil_who_changes_class_loses_the_old_class_and_gets_the_new(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int]
) -> None:
    c = fx_city
    olli = await device(fx_client, "olli")
    await olli.sync()
    assert {r["group_id"] for r in records(olli, "lesson").values()} == {c.class_5a}
    # Olli moves from 5A to 5B today.
    await Membership.update({Membership.valid_to: c.today - dt.timedelta(days=1)}).where(
        (Membership.person == c.olli) & (Membership.group == c.class_5a)
    )
    await Membership.insert(
        Membership(group=c.class_5b, person=c.olli, role="pupil", valid_from=c.today)
    )
    answer, mismatched = await olli.pull()
    assert answer.removed == [f"group:{c.class_5a}"]
    assert answer.added == [f"group:{c.class_5b}"]
    assert mismatched == []
    assert {r["group_id"] for r in records(olli, "lesson").values()} == {c.class_5b}
    assert not any(r["group_id"] == c.class_5a for r in records(olli, "lesson").values())


async def test_an_ended_guardianship_takes_that_childs_data_away(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int]
) -> None:
    from server.db.tables import Guardianship

    c = fx_city
    mother = await device(fx_client, "mother")
    await mother.sync()
    assert {c.class_3c, c.class_5b} <= {r["group_id"] for r in records(mother, "lesson").values()}
    await Guardianship.update({Guardianship.valid_to: c.today - dt.timedelta(days=1)}).where(
        (Guardianship.guardian == c.mother) & (Guardianship.pupil == c.eero)
    )
    await mother.sync()
    groups = {r["group_id"] for r in records(mother, "lesson").values()}
    assert c.class_3c not in groups  # Eero's class is gone
    assert c.class_5b in groups  # Aino's stays
    assert f"person:{c.eero}" not in mother.store.partitions()


async def test_pushes_apply_once_in_order_and_a_rejection_blocks_nothing(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int]
) -> None:
    c = fx_city
    lesson = fx_timetable["5a-1"]
    monday = next_weekday(c.today, 1).isoformat()
    tuesday = next_weekday(c.today, 2).isoformat()
    teacher = await device(fx_client, "teacher")
    mutations = [
        ("lesson.change", {"lesson_id": lesson, "on_date": monday, "room": "B2"}),
        ("lesson.change", {"lesson_id": lesson, "on_date": tuesday}),
        ("lesson.fly", {}),
        ("lesson.change", {"lesson_id": "x", "on_date": monday}),
        ("lesson.change", {"lesson_id": fx_timetable["3c-1"], "on_date": monday}),
        ("lesson.change", {"lesson_id": lesson, "on_date": monday, "cancelled": True}),
    ]
    body = {
        "schema_version": VERSION,
        "client_id": teacher.client_id,
        "mutations": [
            {"id": i, "name": n, "args": a, "occurred_at": "2026-11-28T08:00:00Z"}
            for i, (n, a) in enumerate(mutations, start=1)
        ],
    }
    results = (await fx_client.post("/sync/push", json=body, headers=teacher.headers)).json()[
        "results"
    ]
    assert [(r["status"], r.get("code")) for r in results] == [
        ("applied", None),
        ("rejected", "mutation.invalid_args"),  # the lesson is on Mondays
        ("rejected", "mutation.unknown"),
        ("rejected", "mutation.invalid_args"),
        ("rejected", "mutation.forbidden"),  # 3C is another school's group
        ("applied", None),
    ]
    assert results[1]["field"] == "$.on_date"
    assert results[3]["field"] == "$.lesson_id"
    stored = await LessonChange.select().where(LessonChange.lesson == lesson)
    assert [(r["cancelled"], r["room"]) for r in stored] == [(True, None)]
    log_rows = await ChangeLog.count()

    # The same batch again (its answer was lost on the way): same answers, nothing re-applied.
    again = await fx_client.post("/sync/push", json=body, headers=teacher.headers)
    assert again.json()["results"] == results
    assert await ChangeLog.count() == log_rows
    assert await SyncMutation.count() == len(mutations)

    # A gap (8 before 7) is refused and not recorded: the client must send 7 first.
    body["mutations"] = [
        {"id": 8, "name": "lesson.restore", "args": {"lesson_id": lesson, "on_date": monday},
         "occurred_at": "2026-11-28T08:00:00Z"}
    ]  # fmt: skip
    gap = (await fx_client.post("/sync/push", json=body, headers=teacher.headers)).json()
    assert gap["results"][0]["code"] == "mutation.out_of_order"
    assert await SyncMutation.count() == len(mutations)


async def test_a_guardian_cannot_change_lessons(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int]
) -> None:
    mother = await device(fx_client, "mother")
    monday = next_weekday(fx_city.today, 1)
    result = await change(
        mother, "lesson.change", lesson_id=fx_timetable["5b-1"], on_date=monday, cancelled=True
    )
    assert result["code"] == "mutation.forbidden"
    assert await LessonChange.count() == 0
    assert mother.store.outcomes()[0]["code"] == "mutation.forbidden"
    assert mother.store.pending() == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"schema_version": 0}, 400, "sync.update_required"),
        ({"schema_version": 99}, 400, "sync.version_unknown"),
        ({"schema_version": VERSION, "cursor": "abc.def"}, 400, "sync.bad_cursor"),
        ({"schema_version": VERSION, "limit": 0}, 422, "request.invalid"),
        ({"schema_version": VERSION, "surprise": 1}, 422, "request.invalid"),
        ({"cursor": None}, 422, "request.invalid"),
        ({"schema_version": VERSION, "cursor": "éabc.def"}, 400, "sync.bad_cursor"),
        ({"schema_version": VERSION, "cursor": "abc.éé"}, 400, "sync.bad_cursor"),
        ({"schema_version": VERSION, "cursor": "a.b.c"}, 400, "sync.bad_cursor"),
    ],
)
async def test_bad_pulls_are_refused(
    fx_client: httpx.AsyncClient, fx_city: City, body: dict[str, Any], status: int, code: str
) -> None:
    headers = await log_in_as(fx_client, "aino")
    answer = await fx_client.post("/sync/pull", json=body, headers=headers)
    assert (answer.status_code, answer.json()["code"]) == (status, code)


async def test_a_forged_cursor_is_refused(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int]
) -> None:
    pupil = await device(fx_client, "aino")
    await pupil.sync()
    assert pupil.store.cursor is not None
    cursor = pupil.store.cursor
    at = len(cursor) // 3  # in the payload, before the signature (sync/cursor.py)
    forged = cursor[:at] + ("B" if cursor[at] == "A" else "A") + cursor[at + 1 :]
    answer = await fx_client.post(
        "/sync/pull",
        json={"schema_version": VERSION, "cursor": forged},
        headers=pupil.headers,
    )
    assert (answer.status_code, answer.json()["code"]) == (400, "sync.bad_cursor")


async def test_bad_pushes_are_refused_and_change_nothing(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int]
) -> None:
    teacher = await device(fx_client, "teacher")
    base = {"schema_version": VERSION, "client_id": teacher.client_id}
    cases = [
        (b"{", 400, "request.malformed"),
        (msgspec.json.encode({**base, "mutations": "no"}), 422, "request.invalid"),
        (msgspec.json.encode({**base, "client_id": "x", "mutations": []}), 422, "request.invalid"),
        (msgspec.json.encode({**base, "schema_version": 0, "mutations": []}), 400,
         "sync.update_required"),
        (b"x" * 2_000_000, 413, "request.too_large"),
    ]  # fmt: skip
    for content, status, code in cases:
        answer = await fx_client.post(
            "/sync/push",
            content=content,
            headers={**teacher.headers, "Content-Type": "application/json"},
        )
        assert (answer.status_code, answer.json()["code"]) == (status, code), content[:40]
    answer = await fx_client.post(
        "/sync/push", content=b"a=b", headers={**teacher.headers, "Content-Type": "text/plain"}
    )
    assert (answer.status_code, answer.json()["code"]) == (415, "request.unsupported_media_type")
    assert await SyncMutation.count() == 0


async def test_another_persons_client_id_is_refused(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int]
) -> None:
    teacher = await device(fx_client, "teacher")
    await change(
        teacher, "lesson.restore", lesson_id=fx_timetable["5a-1"], on_date=dt.date(2020, 1, 6)
    )
    mother = await device(fx_client, "mother")
    answer = await fx_client.post(
        "/sync/push",
        json={"schema_version": VERSION, "client_id": teacher.client_id, "mutations": []},
        headers=mother.headers,
    )
    assert (answer.status_code, answer.json()["code"]) == (409, "sync.client_mismatch")


async def test_messagepack_both_ways(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int]
) -> None:
    headers = await log_in_as(fx_client, "aino")
    packed = await fx_client.post(
        "/sync/pull",
        content=msgspec.msgpack.encode({"schema_version": VERSION}),
        headers={
            **headers,
            "Content-Type": "application/x-msgpack",
            "Accept": "application/x-msgpack",
        },
    )
    assert packed.status_code == 200
    assert packed.headers["content-type"].startswith("application/x-msgpack")
    decoded = msgspec.msgpack.decode(packed.content)
    plain = await fx_client.post("/sync/pull", json={"schema_version": VERSION}, headers=headers)
    assert len(decoded["changes"]) == len(plain.json()["changes"]) > 0
    assert len(packed.content) < len(plain.content)


@pytest.mark.parametrize(("accept", "encoding"), [("br, gzip", "br"), ("gzip", "gzip")])
async def test_large_answers_are_compressed_small_ones_not(
    fx_client: httpx.AsyncClient,
    fx_city: City,
    fx_timetable: dict[str, int],
    accept: str,
    encoding: str,
) -> None:
    headers = {**(await log_in_as(fx_client, "mother")), "Accept-Encoding": accept}
    first = await fx_client.post("/sync/pull", json={"schema_version": VERSION}, headers=headers)
    assert first.headers.get("content-encoding") == encoding
    assert first.json()["changes"]  # httpx decodes it again
    cursor = first.json()["cursor"]
    nothing = await fx_client.post(
        "/sync/pull", json={"schema_version": VERSION, "cursor": cursor}, headers=headers
    )
    assert "content-encoding" not in nothing.headers
    assert nothing.content == b"{}"


async def test_a_guardian_builds_each_childs_day_offline(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int]
) -> None:
    c = fx_city
    teacher = await device(fx_client, "teacher")
    monday = next_weekday(c.today, 1)
    await change(
        teacher, "lesson.change", lesson_id=fx_timetable["5b-1"], on_date=monday, cancelled=True
    )
    mother = await device(fx_client, "mother")
    await mother.sync()
    me = (await fx_client.get("/me", headers=mother.headers)).json()
    groups = {k["person"]["id"]: k["group_ids"] for k in me["children"]}
    assert groups == {c.aino: sorted([c.class_5b, c.math_a]), c.eero: [c.class_3c]}
    # Offline from here: only the local store is read.
    aino_monday = day_timetable(mother.store, monday, groups[c.aino])
    assert [(s.group_id, s.subject, s.cancelled) for s in aino_monday] == [
        (c.class_5b, "Maths", True),
        (c.math_a, "Maths", False),
    ]
    assert aino_monday[0].changed
    assert aino_monday[0].starts_at == dt.time(8, 15)
    eero_monday = day_timetable(mother.store, monday, groups[c.eero])
    assert [(s.group_id, s.cancelled) for s in eero_monday] == [(c.class_3c, False)]
    assert day_timetable(mother.store, monday + dt.timedelta(days=1), groups[c.aino]) == []


async def test_a_server_restart_between_pushes_loses_and_repeats_nothing(
    fx_settings: Settings,
    fx_db: Engine[Any],
    fx_city: City,
    fx_timetable: dict[str, int],
    fx_make_app: AppMaker,
) -> None:
    monday = next_weekday(fx_city.today, 1).isoformat()
    lesson = fx_timetable["5a-1"]

    def fresh_server() -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=fx_make_app(fx_settings, fx_db))
        return httpx.AsyncClient(transport=transport, base_url="http://reppu.test")

    async with fresh_server() as before:
        teacher = await device(before, "teacher")
        teacher.queue("lesson.change", {"lesson_id": lesson, "on_date": monday, "room": "B2"})
        assert [r["status"] for r in await teacher.push()] == ["applied"]
    async with fresh_server() as after:  # a new process: nothing is remembered in memory
        teacher.http = after
        replay = {
            "schema_version": VERSION,
            "client_id": teacher.client_id,
            "mutations": [
                {"id": 1, "name": "lesson.change", "occurred_at": "2026-11-28T08:00:00Z",
                 "args": {"lesson_id": lesson, "on_date": monday, "room": "C3"}},
            ],
        }  # fmt: skip
        answer = await after.post("/sync/push", json=replay, headers=teacher.headers)
        assert answer.json()["results"] == [{"id": 1, "status": "applied"}]
        teacher.queue("lesson.change", {"lesson_id": lesson, "on_date": monday, "note": "Trip"})
        assert [r["id"] for r in await teacher.push()] == [2]
    stored = await LessonChange.select(LessonChange.room, LessonChange.note)
    assert stored == [{"room": None, "note": "Trip"}]  # 1 applied once (B2), then 2 replaced it
    assert await SyncMutation.count() == 2


async def test_values_the_database_cannot_hold_are_rejected_not_500(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int]
) -> None:
    teacher = await device(fx_client, "teacher")
    monday = next_weekday(fx_city.today, 1).isoformat()
    lesson = fx_timetable["5a-1"]
    teacher.queue("lesson.change", {"lesson_id": lesson, "on_date": monday, "note": "a\x00b"})
    teacher.queue("lesson.change", {"lesson_id": 2**31, "on_date": monday})
    teacher.queue("lesson.change", {"lesson_id": lesson, "on_date": monday, "room": "B2"})
    results = await teacher.push()
    assert [(r["status"], r.get("field")) for r in results] == [
        ("rejected", "$.note"),
        ("rejected", "$.lesson_id"),
        ("applied", None),
    ]


async def test_a_value_of_the_wrong_type_is_rejected_not_coerced(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int]
) -> None:
    """A number sent as a string is refused where it stands, as docs/errors.md says (it once
    passed as the number), and so are a string's worth of digits for a boolean."""
    teacher = await device(fx_client, "teacher")
    monday = next_weekday(fx_city.today, 1).isoformat()
    lesson = fx_timetable["5a-1"]
    teacher.queue("lesson.change", {"lesson_id": str(lesson), "on_date": monday, "room": "B2"})
    teacher.queue("lesson.change", {"lesson_id": lesson, "on_date": monday, "cancelled": "1"})
    teacher.queue("message.send", {"to": [str(fx_city.mother)], "subject": "s", "body": "b"})
    teacher.queue("lesson.change", {"lesson_id": lesson, "on_date": monday, "room": "B2"})
    results = await teacher.push()
    assert [(r["status"], r.get("code"), r.get("field")) for r in results] == [
        ("rejected", "mutation.invalid_args", "$.lesson_id"),
        ("rejected", "mutation.invalid_args", "$.cancelled"),
        ("rejected", "mutation.invalid_args", "$.to[0]"),
        ("applied", None, None),
    ]


async def test_a_long_offline_outbox_is_sent_in_batches(
    fx_client: httpx.AsyncClient, fx_city: City, fx_timetable: dict[str, int]
) -> None:
    teacher = await device(fx_client, "teacher")
    monday = next_weekday(fx_city.today, 1).isoformat()
    for _ in range(MAX_PUSH_MUTATIONS + 20):
        teacher.queue("lesson.restore", {"lesson_id": fx_timetable["5a-1"], "on_date": monday})
    results = await teacher.push()
    assert len(results) == MAX_PUSH_MUTATIONS + 20
    assert {r["status"] for r in results} == {"applied"}
    assert teacher.store.pending() == []


async def test_a_cursor_from_another_database_is_refused_and_the_client_starts_afresh(
    fx_settings: Settings,
    fx_db: Engine[Any],
    fx_city: City,
    fx_timetable: dict[str, int],
    fx_make_app: AppMaker,
) -> None:
    def server() -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=fx_make_app(fx_settings, fx_db))
        return httpx.AsyncClient(transport=transport, base_url="http://reppu.test")

    async with server() as http:
        pupil = await device(http, "olli")
        await pupil.sync()
        old_cursor = pupil.store.get_meta("cursor")
        assert old_cursor
        lessons = records(pupil, "lesson")
        assert lessons
    # The database is loaded afresh (same secret key): its history is another one, even
    # where its positions happen to look alike.
    await SyncEpoch.delete(force=True)
    async with server() as http:
        answer = await http.post(
            "/sync/pull",
            json={"schema_version": VERSION, "cursor": old_cursor},
            headers=pupil.headers,
        )
        assert (answer.status_code, answer.json()["code"]) == (400, "sync.bad_cursor")
        pupil.http = http
        await pupil.sync()  # the reference client drops its copy and starts again
        assert records(pupil, "lesson") == lessons
        assert pupil.store.get_meta("cursor") != old_cursor


async def test_lesson_changes_sync_for_this_and_next_week_only(
    fx_client: httpx.AsyncClient, fx_db: Engine[Any], fx_city: City, fx_timetable: dict[str, int]
) -> None:
    lesson = fx_timetable["5a-1"]
    monday = next_weekday(fx_city.today, 1)
    later = monday + dt.timedelta(weeks=3)
    teacher = await device(fx_client, "teacher")
    for day in (monday, later):
        result = await change(teacher, "lesson.change", lesson_id=lesson, on_date=day, room="B2")
        assert result["status"] == "applied", result
    pupil = await device(fx_client, "olli")
    await pupil.sync()
    assert [r["on_date"] for r in records(pupil, "lesson_change").values()] == [monday.isoformat()]
    # The weeks turn: three weeks on, the later change is near and the first one is past.
    assert await roll_window(fx_db, later) == 2
    assert await roll_window(fx_db, later) == 0  # nothing left to move
    await pupil.sync()
    assert [r["on_date"] for r in records(pupil, "lesson_change").values()] == [later.isoformat()]
    fresh = await device(fx_client, "olli")
    await fresh.sync()
    assert records(fresh, "lesson_change") == records(pupil, "lesson_change")
