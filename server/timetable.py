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
substitute's phone shows the lesson to cover and can take its roll call offline. Whatever
writes or removes a change rewrites those three (:func:`substitute_writes`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from piccolo.engine.base import Engine

from schemas.core import GroupKind, PartitionKind
from schemas.sync import GroupRecord, LessonChangeRecord, LessonRecord
from server.clock import school_today
from server.db.engine import write_transaction
from server.db.tables import Lesson, LessonChange, SchoolGroup
from server.sync_store import RecordWrite, write_records

ROLL_BATCH = 500


def sync_window(today: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last day whose lesson changes are synced: this week and next."""
    monday = today - dt.timedelta(days=today.weekday())
    return monday, monday + dt.timedelta(days=13)


def group_partition(group_id: int) -> frozenset[str]:
    return frozenset({f"{PartitionKind.GROUP.value}:{group_id}"})


def inboxes(people: Iterable[int]) -> frozenset[str]:
    return frozenset(f"{PartitionKind.INBOX.value}:{p}" for p in people)


async def substitutes(
    today: dt.date | None = None,
    *,
    lesson_ids: Iterable[int] | None = None,
    group_ids: Iterable[int] | None = None,
) -> tuple[dict[int, set[int]], dict[int, set[int]]]:
    """The substitutes named by lesson changes in the sync window of ``today``, by lesson and
    by group (of the given lessons or groups; all if neither is given)."""
    start, end = sync_window(today or school_today())
    query = LessonChange.select(
        LessonChange.lesson,
        LessonChange.lesson._.group.as_alias("group_id"),
        LessonChange.substitute_teacher,
    ).where(
        LessonChange.substitute_teacher.is_not_null()
        & (LessonChange.on_date >= start)
        & (LessonChange.on_date <= end)
    )
    if lesson_ids is not None:
        query = query.where(LessonChange.lesson.is_in(list(lesson_ids) or [-1]))
    if group_ids is not None:
        query = query.where(LessonChange.lesson._.group.is_in(list(group_ids) or [-1]))
    by_lesson: dict[int, set[int]] = {}
    by_group: dict[int, set[int]] = {}
    for r in await query:
        by_lesson.setdefault(r["lesson"], set()).add(r["substitute_teacher"])
        by_group.setdefault(r["group_id"], set()).add(r["substitute_teacher"])
    return by_lesson, by_group


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


def _change_write(r: dict[str, Any], window: tuple[dt.date, dt.date]) -> RecordWrite:
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
        | inboxes([r["substitute_teacher"]] if r["substitute_teacher"] is not None else [])
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
    return [_change_write(r, window) for r in await query]


async def roll_window(engine: Engine[Any], today: dt.date | None = None) -> int:
    """Bring the changes that entered the sync window in, and those that left it out.

    Idempotent: it looks for changes whose placement disagrees with the window, so running
    it twice, or in two processes, does the work once. Returns the changes rewritten.
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
    return len(rows)


async def substitute_writes(
    lesson_ids: Iterable[int], group_ids: Iterable[int], today: dt.date | None = None
) -> list[RecordWrite]:
    """The lessons and rosters whose substitutes may have changed, placed afresh: call it
    with the lesson and group of every change written or removed that names a substitute."""
    from server.rosters import roster_writes  # rosters places by this module's substitutes

    lessons, groups = set(lesson_ids), set(group_ids)
    if not lessons and not groups:
        return []
    return [
        *(await lesson_writes(lessons, today=today)),
        *(await roster_writes(groups, today)),
    ]


async def all_timetable_writes() -> list[RecordWrite]:
    """Every timetable record and every group's roster (``server/rosters.py``), for building
    the sync state of a freshly loaded database."""
    from server.rosters import roster_writes  # rosters places by this module's substitutes

    return [
        *(await group_writes()),
        *(await lesson_writes()),
        *(await lesson_change_writes()),
        *(await roster_writes()),
    ]
