"""Substitute cover: who stands in for a lesson in the sync window, and may still do so today.

A lesson change may name a substitute teacher. While the change is in the sync window, the
change, its lesson and the group's roster also go to the substitute's own inbox partition, so
their phone shows the lesson to cover and can take its roll call offline
(``server/timetable.py``, ``server/rosters.py``). Being named by a lesson change is no tie of its
own: it is written once and may outlive the substitute's job. So the placement asks the policy
each time it is computed (``sync/policy.py``, ``lesson.mark_roll_call`` for that occurrence,
which holds only while the substitute works at the school today), and whatever ends or starts
a staff role places the cover of that person afresh (:func:`server.timetable.cover_writes`).

This module is the one both timetables and rosters place substitutes by, so neither imports
the other for it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from schemas.core import PartitionKind
from server.access import load_access_facts, load_group_refs
from server.clock import school_today
from server.db.tables import LessonChange
from sync.policy import Action, OccurrenceRef, decide


def sync_window(today: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last day whose lesson changes are synced: this week and next."""
    monday = today - dt.timedelta(days=today.weekday())
    return monday, monday + dt.timedelta(days=13)


def inboxes(people: Iterable[int]) -> frozenset[str]:
    return frozenset(f"{PartitionKind.INBOX.value}:{p}" for p in people)


async def substitutes(
    today: dt.date | None = None,
    *,
    lesson_ids: Iterable[int] | None = None,
    group_ids: Iterable[int] | None = None,
    change_ids: Iterable[int] | None = None,
) -> tuple[dict[int, set[int]], dict[int, set[int]]]:
    """The substitutes named by lesson changes in the sync window of ``today`` who may cover
    them today, by lesson and by group (of the given lessons, groups or changes; all if none
    is given). A substitute whose job at the school has ended is left out."""
    day = today or school_today()
    start, end = sync_window(day)
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
    if change_ids is not None:
        query = query.where(LessonChange.id.is_in(list(change_ids) or [-1]))
    rows = await query
    refs = await load_group_refs(r["group_id"] for r in rows)
    facts = await load_access_facts(r["substitute_teacher"] for r in rows)
    by_lesson: dict[int, set[int]] = {}
    by_group: dict[int, set[int]] = {}
    for r in rows:
        substitute, ref = r["substitute_teacher"], refs.get(r["group_id"])
        viewer = facts.get(substitute)
        if ref is None or viewer is None:
            continue
        if not decide(viewer, Action.MARK_ROLL_CALL, OccurrenceRef(ref, None, substitute), day):
            continue
        by_lesson.setdefault(r["lesson"], set()).add(substitute)
        by_group.setdefault(r["group_id"], set()).add(substitute)
    return by_lesson, by_group
