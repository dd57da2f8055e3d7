"""A day's timetable, built offline from the synced records."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from clients.python.store import LocalStore


@dataclass(frozen=True, slots=True)
class Slot:
    """One lesson as it happens on a date: the weekly plan with that date's change applied."""

    lesson_id: int
    group_id: int
    subject: str
    starts_at: dt.time
    ends_at: dt.time
    room: str | None
    teacher_name: str | None
    cancelled: bool = False
    substitute_teacher_name: str | None = None
    note: str | None = None
    changed: bool = False
    """True when a dated change applies (cancelled, substitute, room or time)."""


def _time(value: str) -> dt.time:
    return dt.time.fromisoformat(value)


def day_timetable(
    store: LocalStore, day: dt.date, group_ids: Iterable[int] | None = None
) -> list[Slot]:
    """The lessons of ``day`` (of ``group_ids`` only, if given), in time order."""
    groups = None if group_ids is None else set(group_ids)
    changes: dict[int, dict[str, Any]] = {
        c["lesson_id"]: c
        for c in store.records("lesson_change").values()
        if c["on_date"] == day.isoformat()
    }
    slots = []
    for lesson in store.records("lesson").values():
        if lesson["weekday"] != day.isoweekday():
            continue
        if groups is not None and lesson["group_id"] not in groups:
            continue
        if dt.date.fromisoformat(lesson["valid_from"]) > day:
            continue
        if lesson.get("valid_to") and dt.date.fromisoformat(lesson["valid_to"]) < day:
            continue
        change = changes.get(lesson["id"], {})
        slots.append(
            Slot(
                lesson_id=lesson["id"],
                group_id=lesson["group_id"],
                subject=lesson["subject"],
                starts_at=_time(change.get("starts_at") or lesson["starts_at"]),
                ends_at=_time(change.get("ends_at") or lesson["ends_at"]),
                room=change.get("room") or lesson.get("room"),
                teacher_name=lesson.get("teacher_name"),
                cancelled=bool(change.get("cancelled", False)),
                substitute_teacher_name=change.get("substitute_teacher_name"),
                note=change.get("note"),
                changed=bool(change),
            )
        )
    return sorted(slots, key=lambda s: (s.starts_at, s.subject))
