"""Timetables as synced records: groups, their weekly lessons, and dated lesson changes.

Each record lives in its group's partition (``group:<id>``), which the policy gives to the
group's pupils and teachers and to the guardians of its pupils. A lesson change is synced
while its date is in *this or next week* (Helsinki): a change further ahead is stored and
waits, a past week's leaves the devices. :func:`roll_window` moves changes in and out as the
weeks turn; the delivery worker runs it once a day. The functions here read
domain rows and turn them into :class:`RecordWrite` s for the one write path
(``server/sync_store.py``); the mutations that change lessons are in ``server/mutations.py``.

A substitute named by a lesson change in the window is not one of the group's teachers, so
the change, its lesson and the group's roster (``server/rosters.py``) also go to the
substitute's own inbox partition (``inbox:<person>``) while the change is in the window: the
substitute's phone shows the lesson to cover and can take its roll call offline, for as long
as the substitute works at the school (``server/cover.py``). Whatever writes or removes a
change rewrites those three (:func:`substitute_writes`); whatever starts or ends a staff role
places that person's cover afresh (:func:`cover_writes`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from piccolo.engine.base import Engine

from schemas.core import GroupKind, PartitionKind
from schemas.sync import GroupRecord, LessonChangeRecord, LessonRecord
from server.clock import school_today
from server.cover import inboxes, substitutes, sync_window
from server.db.engine import write_transaction
from server.db.tables import Lesson, LessonChange, SchoolGroup, StaffRole
from server.rosters import roster_writes
from server.sync_store import RecordWrite, write_records

ROLL_BATCH = 500


def group_partition(group_id: int) -> frozenset[str]:
    return frozenset({f"{PartitionKind.GROUP.value}:{group_id}"})


def _name(given: str | None, family: str | None) -> str | None:
    return f"{given} {family}" if given is not None and family is not None else None


async def group_writes(group_ids: Iterable[int] | None = None) -> list[RecordWrite]:
    """The group records of ``group_ids`` (all groups if None)."""
    query = SchoolGroup.select(
        SchoolGroup.id,
        SchoolGroup.name,
        SchoolGroup.kind,
        SchoolGroup.school,
        SchoolGroup.school._.name.as_alias("school_name"),
        SchoolGroup.grade,
        SchoolGroup.subject,
    )
    if group_ids is not None:
        query = query.where(SchoolGroup.id.is_in(list(group_ids) or [-1]))
    return [
        RecordWrite(
            "group",
            r["id"],
            GroupRecord(
                id=r["id"],
                v=0,
                name=r["name"],
                kind=GroupKind(r["kind"]),
                school_id=r["school"],
                school_name=r["school_name"],
                grade=r["grade"],
                subject=r["subject"],
            ),
            group_partition(r["id"]),
        )
        for r in await query
    ]


def _lesson_write(r: dict[str, Any], subs: set[int]) -> RecordWrite:
    return RecordWrite(
        "lesson",
        r["id"],
        LessonRecord(
            id=r["id"],
            v=0,
            group_id=r["group"],
            subject=r["subject"],
            weekday=r["weekday"],
            starts_at=r["starts_at"],
            ends_at=r["ends_at"],
            valid_from=r["valid_from"],
            valid_to=r["valid_to"],
            teacher_id=r["teacher"],
            teacher_name=_name(r["teacher_given"], r["teacher_family"]),
            room=r["room"],
        ),
        group_partition(r["group"]) | inboxes(subs),
    )


async def lesson_writes(
    lesson_ids: Iterable[int] | None = None, *, today: dt.date | None = None
) -> list[RecordWrite]:
    """The lesson records of ``lesson_ids`` (all lessons if None), each also in the inboxes
    of its substitutes in the sync window of ``today``."""
    query = Lesson.select(
        Lesson.id,
        Lesson.group,
        Lesson.subject,
        Lesson.weekday,
        Lesson.starts_at,
        Lesson.ends_at,
        Lesson.valid_from,
        Lesson.valid_to,
        Lesson.teacher,
        Lesson.teacher._.given_name.as_alias("teacher_given"),
        Lesson.teacher._.family_name.as_alias("teacher_family"),
        Lesson.room,
    )
    if lesson_ids is not None:
        lesson_ids = list(lesson_ids)
        query = query.where(Lesson.id.is_in(lesson_ids or [-1]))
    subs, _ = await substitutes(today, lesson_ids=lesson_ids)
    return [_lesson_write(r, subs.get(r["id"], set())) for r in await query]


def _change_write(
    r: dict[str, Any], window: tuple[dt.date, dt.date], covering: set[int]
) -> RecordWrite:
    start, end = window
    synced = start <= r["on_date"] <= end
    return RecordWrite(
        "lesson_change",
        r["id"],
        LessonChangeRecord(
            id=r["id"],
            v=0,
            lesson_id=r["lesson"],
            on_date=r["on_date"],
            cancelled=bool(r["cancelled"]),
            substitute_teacher_id=r["substitute_teacher"],
            substitute_teacher_name=_name(r["sub_given"], r["sub_family"]),
            room=r["room"],
            starts_at=r["starts_at"],
            ends_at=r["ends_at"],
            note=r["note"],
        ),
        group_partition(r["group_id"])
        | inboxes([r["substitute_teacher"]] if r["substitute_teacher"] in covering else [])
        if synced
        else frozenset(),
    )


async def lesson_change_writes(
    change_ids: Iterable[int] | None = None, *, today: dt.date | None = None
) -> list[RecordWrite]:
    """The lesson-change records of ``change_ids`` (all of them if None), in their group's
    partition while in the sync window of ``today`` (default: today), else in none."""
    window = sync_window(today or school_today())
    query = LessonChange.select(
        LessonChange.id,
        LessonChange.lesson,
        LessonChange.lesson._.group.as_alias("group_id"),
        LessonChange.on_date,
        LessonChange.cancelled,
        LessonChange.substitute_teacher,
        LessonChange.substitute_teacher._.given_name.as_alias("sub_given"),
        LessonChange.substitute_teacher._.family_name.as_alias("sub_family"),
        LessonChange.room,
        LessonChange.starts_at,
        LessonChange.ends_at,
        LessonChange.note,
    )
    if change_ids is not None:
        query = query.where(LessonChange.id.is_in(list(change_ids) or [-1]))
    rows = await query
    named = [r["lesson"] for r in rows if r["substitute_teacher"] is not None]
    covering, _ = await substitutes(today, lesson_ids=named) if named else ({}, {})
    return [_change_write(r, window, covering.get(r["lesson"], set())) for r in rows]


async def roll_window(engine: Engine[Any], today: dt.date | None = None) -> int:
    """Bring the changes that entered the sync window in, and those that left it out.

    Idempotent for the window: it looks for changes whose placement disagrees with it, so
    running it twice, or in two processes, moves each change once. The cover of people whose
    staff role started today or ended yesterday is placed afresh on every run, so a second
    run (each delivery worker runs this once a day) writes that same placement again: a few
    redundant change-log rows, never a wrong one. Returns the changes moved.
    """
    today = today or school_today()
    start, end = sync_window(today)
    rows = await LessonChange.raw(
        'SELECT c.id, c.lesson, l."group" AS group_id, c.substitute_teacher FROM lesson_change c '
        "JOIN lesson l ON l.id = c.lesson LEFT JOIN sync_record s "
        "ON s.record_type = 'lesson_change' AND s.record_id = c.id "
        "WHERE (c.on_date BETWEEN {} AND {} AND COALESCE(s.partitions, '') = '') "
        "OR ((c.on_date < {} OR c.on_date > {}) AND COALESCE(s.partitions, '') <> '') "
        "ORDER BY c.id",
        start,
        end,
        start,
        end,
    )
    for first in range(0, len(rows), ROLL_BATCH):
        batch = rows[first : first + ROLL_BATCH]
        covered = [r for r in batch if r["substitute_teacher"] is not None]
        async with write_transaction(engine):
            writes = await lesson_change_writes([int(r["id"]) for r in batch], today=today)
            writes += await substitute_writes(
                [r["lesson"] for r in covered], [r["group_id"] for r in covered], today
            )
            await write_records(engine, writes)
    # Staff roles end and start by date as well as by import: a substitute whose job ended
    # yesterday no longer covers, one whose job starts today does.
    people = await _staff_changed_on(today)
    if people:
        async with write_transaction(engine):
            await write_records(engine, await cover_writes(people, today))
    return len(rows)


async def _staff_changed_on(today: dt.date) -> list[int]:
    """People with a staff role that starts today or ended yesterday."""
    rows = await StaffRole.select(StaffRole.person).where(
        (StaffRole.valid_from == today) | (StaffRole.valid_to == today - dt.timedelta(days=1))
    )
    return sorted({int(r["person"]) for r in rows})


async def substitute_writes(
    lesson_ids: Iterable[int], group_ids: Iterable[int], today: dt.date | None = None
) -> list[RecordWrite]:
    """The lessons and rosters whose substitutes may have changed, placed afresh: call it
    with the lesson and group of every change written or removed that names a substitute."""
    lessons, groups = set(lesson_ids), set(group_ids)
    if not lessons and not groups:
        return []
    return [
        *(await lesson_writes(lessons, today=today)),
        *(await roster_writes(groups, today)),
    ]


async def cover_writes(people: Iterable[int], today: dt.date | None = None) -> list[RecordWrite]:
    """The lesson changes in the sync window that name any of ``people`` as the substitute,
    with their lessons and rosters, placed afresh: call it for the people whose staff roles
    started or ended (an import, the daily roll), since cover lasts only while the job does."""
    wanted = sorted(set(people))
    if not wanted:
        return []
    start, end = sync_window(today or school_today())
    rows = await LessonChange.select(
        LessonChange.id, LessonChange.lesson, LessonChange.lesson._.group.as_alias("group_id")
    ).where(
        LessonChange.substitute_teacher.is_in(wanted)
        & (LessonChange.on_date >= start)
        & (LessonChange.on_date <= end)
    )
    if not rows:
        return []
    return [
        *(await lesson_change_writes([r["id"] for r in rows], today=today)),
        *(
            await substitute_writes(
                [r["lesson"] for r in rows], [r["group_id"] for r in rows], today
            )
        ),
    ]


async def all_timetable_writes() -> list[RecordWrite]:
    """Every timetable record and every group's roster (``server/rosters.py``), for building
    the sync state of a freshly loaded database."""
    return [
        *(await group_writes()),
        *(await lesson_writes()),
        *(await lesson_change_writes()),
        *(await roster_writes()),
    ]
