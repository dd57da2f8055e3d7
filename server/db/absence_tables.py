"""Roll call, absence notices and leave. ``docs/absences.md`` explains the model.

``roll_mark`` and ``leave_decision`` are append-only: every act is kept, with who made it,
from which installation and device, when by the device's clock and when the server got it.
That is the audit trail; ``attendance`` is derived from it (``sync/attendance.py``).
"""

from __future__ import annotations

from piccolo.columns import (
    BigInt,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    OnDelete,
    Serial,
    Time,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table

from server.db.tables import Lesson, Organisation, Person, SchoolGroup, _fk


class SchoolSettings(Table, tablename="school_settings"):
    """A school's own rules (``GET``/``PUT /schools/{id}/rules``); a school without a row
    follows the defaults below."""

    id = Serial(primary_key=True)

    school: ForeignKey[Organisation] = ForeignKey(
        references=Organisation, null=False, on_delete=OnDelete.restrict, unique=True, index=True
    )
    pupils_explain_from_age = Integer(null=True, default=None)
    """A pupil this old may explain their own absences; NULL: only guardians may."""
    leave_teacher_max_days = Integer(default=3)
    """Leave of up to this many school days is decided by the class teacher; longer leave by
    the principal (who may decide any)."""
    pupils_start_conversations = Boolean(default=False)
    """Pupils may start conversations with the school's staff (they may always reply)."""


class RollMark(Table, tablename="roll_mark"):
    """One mark of one pupil at one lesson's roll call. Corrections are new rows."""

    id = Serial(primary_key=True)

    pupil = _fk(Person, index=False)
    lesson = _fk(Lesson, index=False)
    on_date = Date()
    status = Varchar(length=16)
    late_minutes = Integer(null=True, default=None)
    note = Varchar(length=500, null=True, default=None)
    actor = _fk(Person)
    client_id = Varchar(length=64)
    mutation_id = BigInt()
    device = Varchar(length=100)
    occurred_at = Timestamptz()
    received_at = Timestamptz()


class AbsenceNotice(Table, tablename="absence_notice"):
    """A report ahead, an explanation afterwards, or a leave request (with its decision)."""

    id = Serial(primary_key=True)

    pupil = _fk(Person, index=False)
    kind = Varchar(length=16)
    from_date = Date()
    to_date = Date()
    from_time = Time(null=True, default=None)
    to_time = Time(null=True, default=None)
    reason = Varchar(length=16)
    note = Varchar(length=500, null=True, default=None)
    author = _fk(Person)
    client_id = Varchar(length=64)
    mutation_id = BigInt()
    device = Varchar(length=100)
    occurred_at = Timestamptz()
    received_at = Timestamptz()
    decision = Varchar(length=16, null=True, default=None)
    """Leave only: the decision made last (``leave_decision`` keeps them all)."""
    decided_by = _fk(Person, null=True)
    decision_note = Varchar(length=500, null=True, default=None)


class LeaveDecisionRow(Table, tablename="leave_decision"):
    """One decision on a leave request. A later one (by the device's clock) overrides."""

    id = Serial(primary_key=True)

    notice = _fk(AbsenceNotice)
    decision = Varchar(length=16)
    note = Varchar(length=500, null=True, default=None)
    actor = _fk(Person)
    client_id = Varchar(length=64)
    mutation_id = BigInt()
    device = Varchar(length=100)
    occurred_at = Timestamptz()
    received_at = Timestamptz()


class Attendance(Table, tablename="attendance"):
    """A pupil's effective status in one lesson occurrence, derived from the rows above."""

    id = Serial(primary_key=True)

    pupil = _fk(Person, index=False)
    lesson = _fk(Lesson, index=False)
    group = _fk(SchoolGroup, index=False)
    on_date = Date()
    status = Varchar(length=16)
    late_minutes = Integer(null=True, default=None)
    note = Varchar(length=500, null=True, default=None)
    notice = _fk(AbsenceNotice, null=True)
    marked_by = _fk(Person, null=True)


ABSENCE_TABLES: tuple[type[Table], ...] = (
    SchoolSettings,
    RollMark,
    AbsenceNotice,
    LeaveDecisionRow,
    Attendance,
)
