"""A pupil's effective status in a lesson, derived from every mark and notice about it.

Marks and notices arrive in any order: a teacher's phone syncs an hour after a guardian's
report, two teachers correct each other, a principal overrules a leave decision from a
device that was offline. The status is therefore a pure function of the *set* of events,
never of their order of arrival:

- **The mark** is the teacher's observation. Of several marks for one pupil in one lesson
  (corrections), the one made last wins, by the device's clamped clock; ties are broken by
  the installation's id and its mutation id, which are the act's own, so every server
  reaches the same winner.
- **Cover** is what explains an absence: a report or an explanation whose span overlaps the
  lesson, or approved leave (whose decision is, again, the last one made). Pending or denied
  leave covers nothing. Leave is preferred over a report when both cover; among several of
  one kind, the earliest made (then the lowest id) is named.
- The status follows from the two, as in this table (also in ``docs/absences.md``):

  ============  ======================  =====================
  mark          cover                   status
  ============  ======================  =====================
  present       any                     ``present``
  late          any                     ``late``
  absent        approved leave          ``on_leave``
  absent        report or explanation   ``excused``
  absent        none                    ``unexplained``
  none          leave or report         ``expected_absent``
  none          none                    (no status: nothing to show)
  ============  ======================  =====================

  A present mark is not overridden by a report: the pupil came after all, and the report
  stays in the trail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from schemas.absences import AttendanceStatus, LeaveDecision, MarkStatus, NoticeKind, Reason

_DAY_END = dt.time(23, 59, 59, 999999)


@dataclass(frozen=True, slots=True)
class Act:
    """Who made an act, and when by their device: the key that orders concurrent acts."""

    occurred_at: dt.datetime
    client_id: str
    mutation_id: int

    def key(self) -> tuple[dt.datetime, str, int]:
        return (self.occurred_at, self.client_id, self.mutation_id)


@dataclass(frozen=True, slots=True)
class Mark:
    act: Act
    status: MarkStatus
    actor_id: int
    late_minutes: int | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    act: Act
    decision: LeaveDecision


@dataclass(frozen=True, slots=True)
class Notice:
    id: int
    kind: NoticeKind
    reason: Reason
    act: Act
    from_date: dt.date
    to_date: dt.date
    from_time: dt.time | None = None
    to_time: dt.time | None = None

    def span(self) -> tuple[dt.datetime, dt.datetime]:
        start = dt.datetime.combine(self.from_date, self.from_time or dt.time(0, 0))
        end = dt.datetime.combine(self.to_date, self.to_time or _DAY_END)
        return start, end

    def covers(self, on_date: dt.date, starts_at: dt.time, ends_at: dt.time) -> bool:
        """Does the notice's span overlap the lesson held on ``on_date``?"""
        start, end = self.span()
        lesson_start = dt.datetime.combine(on_date, starts_at)
        lesson_end = dt.datetime.combine(on_date, ends_at)
        return start < lesson_end and lesson_start < end


def last_decision(decisions: Iterable[Decision]) -> LeaveDecision | None:
    """The decision made last (see the module's docstring); None if there is none."""
    latest = max(decisions, key=lambda d: d.act.key(), default=None)
    return latest.decision if latest else None


def last_mark(marks: Iterable[Mark]) -> Mark | None:
    return max(marks, key=lambda m: m.act.key(), default=None)


@dataclass(frozen=True, slots=True)
class Effective:
    status: AttendanceStatus
    mark: Mark | None
    notice: Notice | None


def effective_status(
    marks: Iterable[Mark],
    notices: Iterable[tuple[Notice, LeaveDecision | None]],
    on_date: dt.date,
    starts_at: dt.time,
    ends_at: dt.time,
) -> Effective | None:
    """The status of one pupil in one lesson held on ``on_date`` from ``starts_at`` to
    ``ends_at``, from all its marks and all the pupil's notices (each leave with its
    :func:`last_decision`); None when there is nothing to show."""
    mark = last_mark(marks)
    leave: list[Notice] = []
    told: list[Notice] = []
    for notice, decision in notices:
        if not notice.covers(on_date, starts_at, ends_at):
            continue
        if notice.kind == NoticeKind.LEAVE:
            if decision == LeaveDecision.APPROVED:
                leave.append(notice)
        else:
            told.append(notice)
    cover_list = leave or told
    cover = min(cover_list, key=lambda n: (n.act.key(), n.id)) if cover_list else None
    if mark is None:
        if cover is None:
            return None
        return Effective(AttendanceStatus.EXPECTED_ABSENT, None, cover)
    if mark.status == MarkStatus.PRESENT:
        return Effective(AttendanceStatus.PRESENT, mark, None)
    if mark.status == MarkStatus.LATE:
        return Effective(AttendanceStatus.LATE, mark, None)
    if cover is None:
        return Effective(AttendanceStatus.UNEXPLAINED, mark, None)
    if cover.kind == NoticeKind.LEAVE:
        return Effective(AttendanceStatus.ON_LEAVE, mark, cover)
    return Effective(AttendanceStatus.EXCUSED, mark, cover)


ABSENT_STATUSES = frozenset(
    {AttendanceStatus.UNEXPLAINED, AttendanceStatus.EXCUSED, AttendanceStatus.ON_LEAVE}
)
"""Statuses that count as a missed lesson (an absence hour)."""


def school_days(from_date: dt.date, to_date: dt.date) -> int:
    """Monday-to-Friday days from ``from_date`` to ``to_date``, both included."""
    days = 0
    day = from_date
    while day <= to_date:
        if day.isoweekday() <= 5:
            days += 1
        day += dt.timedelta(days=1)
    return days
