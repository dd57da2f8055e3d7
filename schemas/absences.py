"""Roll call, absence notices and leave: the mutations' args and the synced records.

``docs/absences.md`` explains the model and the rules that derive a pupil's status in a
lesson; ``sync/attendance.py`` implements them.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated

import msgspec

from schemas.core import NO_NUL, Id

NOTE = Annotated[str, msgspec.Meta(max_length=500, pattern=NO_NUL)]
MAX_LATE_MINUTES = 240
MAX_NOTICE_DAYS = 14
"""The longest span of one absence report or explanation, in calendar days."""
MAX_LEAVE_DAYS = 120
"""The longest span of one leave request, in calendar days."""
EXPLAIN_DAYS_BACK = 30
"""How far back an absence may still be explained, in days."""


class MarkStatus(StrEnum):
    """What the teacher saw at roll call."""

    PRESENT = "present"
    ABSENT = "absent"
    LATE = "late"


class NoticeKind(StrEnum):
    REPORT = "report"
    """Told ahead: the pupil will be away (today or later)."""
    EXPLANATION = "explanation"
    """Told afterwards: why the pupil was away."""
    LEAVE = "leave"
    """Asked ahead for a longer absence; covers lessons only once approved."""


class Reason(StrEnum):
    ILLNESS = "illness"
    APPOINTMENT = "appointment"
    """A doctor's, dentist's or similar appointment."""
    FAMILY = "family"
    """A family reason: travel, an event, a funeral."""
    OTHER = "other"


class LeaveDecision(StrEnum):
    APPROVED = "approved"
    DENIED = "denied"


class AttendanceStatus(StrEnum):
    """A pupil's effective status in one lesson (``docs/absences.md`` has the table)."""

    PRESENT = "present"
    LATE = "late"
    UNEXPLAINED = "unexplained"
    """Marked absent, and nothing explains it."""
    EXCUSED = "excused"
    """Marked absent, and a report or an explanation covers it."""
    ON_LEAVE = "on_leave"
    """Marked absent, and approved leave covers it."""
    EXPECTED_ABSENT = "expected_absent"
    """Not marked yet, but a report or approved leave says the pupil will be away."""


class MarkArgs(msgspec.Struct, forbid_unknown_fields=True):
    """``attendance.mark``: one pupil at one lesson occurrence's roll call.

    A roll call of 25 pupils is 25 of these, pushed together. A later mark of the same pupil
    in the same lesson, made the same day, corrects the earlier one.
    """

    lesson_id: Id
    on_date: dt.date
    pupil_id: Id
    status: MarkStatus
    late_minutes: Annotated[int, msgspec.Meta(ge=1, le=MAX_LATE_MINUTES)] | None = None
    """Required for ``late``, refused otherwise."""
    note: NOTE | None = None


class NoticeArgs(msgspec.Struct, forbid_unknown_fields=True):
    """``absence.report`` (ahead), ``absence.explain`` (afterwards) and ``leave.request``.

    The span runs from ``from_date`` at ``from_time`` (start of day if left out) to
    ``to_date`` at ``to_time`` (end of day if left out): "Tuesday from 12:00" or "8:00-10:00
    on Friday" or "Monday to Wednesday".
    """

    pupil_id: Id
    from_date: dt.date
    to_date: dt.date
    reason: Reason
    from_time: dt.time | None = None
    """Absent: from the start of ``from_date``."""
    to_time: dt.time | None = None
    """Absent: to the end of ``to_date``."""
    note: NOTE | None = None


class LeaveDecideArgs(msgspec.Struct, forbid_unknown_fields=True):
    """``leave.decide``: approve or deny a leave request. A later decision overrides."""

    leave_id: Id
    decision: LeaveDecision
    note: NOTE | None = None


class AttendanceRecord(msgspec.Struct, tag_field="type", tag="attendance", omit_defaults=True):
    """A pupil's effective status in one lesson occurrence."""

    id: int
    v: int
    pupil_id: int
    lesson_id: int
    on_date: dt.date
    status: AttendanceStatus
    late_minutes: int | None = None
    note: str | None = None
    """The teacher's note at roll call."""
    notice_id: int | None = None
    """The report, explanation or leave that explains (or announces) the absence."""
    reason: Reason | None = None
    marked_by: int | None = None


class NoticeRecord(msgspec.Struct, tag_field="type", tag="absence_notice", omit_defaults=True):
    """A report, explanation or leave request, with the leave's decision."""

    id: int
    v: int
    pupil_id: int
    kind: NoticeKind
    from_date: dt.date
    to_date: dt.date
    reason: Reason
    author_id: int
    author_name: str
    from_time: dt.time | None = None
    to_time: dt.time | None = None
    note: str | None = None
    decision: LeaveDecision | None = None
    """Leave only: None while undecided."""
    decided_by: int | None = None
    decided_by_name: str | None = None
    decision_note: str | None = None


class RosterPupil(msgspec.Struct, omit_defaults=True):
    id: int
    name: str


class RosterRecord(msgspec.Struct, tag_field="type", tag="roster", omit_defaults=True):
    """A group's pupils today, for its teachers' roll call (``id`` is the group's)."""

    id: int
    v: int
    pupils: list[RosterPupil]


class PupilSummary(msgspec.Struct):
    """One pupil's absences over a period, for staff."""

    pupil_id: int
    name: str
    unexplained: int
    """Lessons marked absent that nothing explains."""
    absent_lessons: int
    """Lessons missed for any reason: the absence hours the school must follow."""
    late: int
    lessons_marked: int


class AbsenceSummary(msgspec.Struct):
    from_date: dt.date
    to_date: dt.date
    pupils: list[PupilSummary]


class AbsenceEvent(msgspec.Struct, omit_defaults=True):
    """One act in a pupil's absence trail: who did what, from which device, and when."""

    kind: str
    """``mark``, ``report``, ``explanation``, ``leave`` or ``decision``."""
    actor_id: int
    device: str
    occurred_at: dt.datetime
    """By the device's clock, clamped to the server's receipt."""
    received_at: dt.datetime
    lesson_id: int | None = None
    on_date: dt.date | None = None
    status: str | None = None
    notice_id: int | None = None


class SchoolRules(msgspec.Struct, forbid_unknown_fields=True):
    """A school's own rules (``GET``/``PUT /schools/{id}/rules``)."""

    pupils_explain_from_age: Annotated[int, msgspec.Meta(ge=10, le=30)] | None = None
    """A pupil this old may explain their own absences; None: only guardians may."""
    leave_teacher_max_days: Annotated[int, msgspec.Meta(ge=0, le=60)] = 3
    """Leave of up to this many school days is decided by the class teacher; longer leave
    by the principal."""
    pupils_start_conversations: bool = False
    """Pupils may start conversations with the school's teachers and principals (they may
    always reply to one a member of staff started)."""
