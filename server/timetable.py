"""Timetables as synced records: groups, their weekly lessons, and dated lesson changes.

Each record lives in its group's partition (``group:<id>``), which the policy gives to the
group's pupils and teachers and to the guardians of its pupils. The functions here read
domain rows and turn them into :class:`RecordWrite` s for the one write path
(``server/sync_store.py``); the mutations that change lessons are in ``server/mutations.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from schemas.core import GroupKind, PartitionKind
from schemas.sync import GroupRecord, LessonChangeRecord, LessonRecord
from server.db.tables import Lesson, LessonChange, SchoolGroup
from server.sync_store import RecordWrite


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


def _lesson_write(r: dict[str, Any]) -> RecordWrite:
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
        group_partition(r["group"]),
    )


async def lesson_writes(lesson_ids: Iterable[int] | None = None) -> list[RecordWrite]:
    """The lesson records of ``lesson_ids`` (all lessons if None)."""
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
        query = query.where(Lesson.id.is_in(list(lesson_ids) or [-1]))
    return [_lesson_write(r) for r in await query]


def _change_write(r: dict[str, Any]) -> RecordWrite:
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
        group_partition(r["group_id"]),
    )


async def lesson_change_writes(change_ids: Iterable[int] | None = None) -> list[RecordWrite]:
    """The lesson-change records of ``change_ids`` (all of them if None)."""
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
    return [_change_write(r) for r in await query]


async def all_timetable_writes() -> list[RecordWrite]:
    """Every timetable record, for building the sync state of a freshly loaded database."""
    return [*(await group_writes()), *(await lesson_writes()), *(await lesson_change_writes())]
