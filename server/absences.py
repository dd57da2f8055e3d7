"""Roll call, absence notices and leave: the mutations and their synced records.

Each handler runs inside the push's write transaction (``server/push.py``). It decides access
through the one policy, keeps the act itself (``roll_mark``, ``absence_notice``,
``leave_decision``: who, which installation and device, when by the device's clock, when
received), then derives the effective status of every lesson the act touches from *all* the
acts about it (``sync/attendance.py``), and writes the changed ``attendance`` rows and their
records through the one write path. Deriving from the whole set, never from the previous
status, is what makes the outcome independent of the order in which phones sync.

``docs/absences.md`` describes the model, the rules and every rejection.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from piccolo.engine.postgres import PostgresEngine

from schemas.absences import (
    EXPLAIN_DAYS_BACK,
    MAX_LEAVE_DAYS,
    MAX_NOTICE_DAYS,
    AttendanceRecord,
    AttendanceStatus,
    LeaveDecideArgs,
    LeaveDecision,
    MarkArgs,
    MarkStatus,
    NoticeArgs,
    NoticeKind,
    NoticeRecord,
    Reason,
)
from schemas.core import GroupKind, MembershipRole, PartitionKind
from schemas.sync import MutationCode
from server.access import load_access_facts, marks
from server.clock import school_today
from server.db.absence_tables import (
    AbsenceNotice,
    Attendance,
    LeaveDecisionRow,
    SchoolSettings,
)
from server.db.bulk import insert_values, run_sql
from server.db.tables import (
    Lesson,
    LessonChange,
    Membership,
    Person,
    SchoolGroup,
)
from server.fanout import enqueue_many
from server.messaging import names
from server.mutations import MutationContext, MutationRejectedError
from server.sync_store import RecordWrite, write_records
from sync.attendance import (
    Act,
    Decision,
    Effective,
    Mark,
    Notice,
    effective_status,
    last_decision,
    school_days,
)
from sync.policy import (
    AccessFacts,
    Action,
    GroupRef,
    OccurrenceRef,
    Partition,
    SchoolRef,
    decide,
)

DEFAULT_LEAVE_TEACHER_MAX_DAYS = 3


def _refuse(code: MutationCode, reason: str, field: str | None = None) -> MutationRejectedError:
    return MutationRejectedError(code, reason, field)


@dataclass(frozen=True, slots=True)
class Slot:
    """One lesson occurrence as held: its lesson, group, day and (possibly moved) times."""

    lesson_id: int
    group_id: int
    on_date: dt.date
    starts_at: dt.time
    ends_at: dt.time


# --- records -----------------------------------------------------------------------------


def _pupil_partition(pupil_id: int) -> str:
    return str(Partition(PartitionKind.PERSON, pupil_id))


def _staff_partition(group_id: int) -> str:
    return str(Partition(PartitionKind.GROUP_STAFF, group_id))


def _attendance_record(row: dict[str, Any], reason: str | None) -> RecordWrite:
    record = AttendanceRecord(
        id=row["id"],
        v=0,
        pupil_id=row["pupil"],
        lesson_id=row["lesson"],
        on_date=row["on_date"],
        status=row["status"],
        late_minutes=row["late_minutes"],
        note=row["note"],
        notice_id=row["notice"],
        reason=Reason(reason) if reason else None,
        marked_by=row["marked_by"],
    )
    partitions = frozenset({_pupil_partition(row["pupil"]), _staff_partition(row["group"])})
    return RecordWrite("attendance", row["id"], record, partitions)


async def notice_write(notice_id: int, pupil: AccessFacts, day: dt.date) -> RecordWrite:
    """The notice's record, held by the pupil's partition and the staff partitions of the
    pupil's groups on ``day`` (so the teachers see it at roll call)."""
    n = await AbsenceNotice.select().where(AbsenceNotice.id == notice_id).first()
    assert n is not None
    who = await names([n["author"], *([n["decided_by"]] if n["decided_by"] else [])])
    record = NoticeRecord(
        id=n["id"],
        v=0,
        pupil_id=n["pupil"],
        kind=NoticeKind(n["kind"]),
        from_date=n["from_date"],
        to_date=n["to_date"],
        from_time=n["from_time"],
        to_time=n["to_time"],
        reason=Reason(n["reason"]),
        note=n["note"],
        author_id=n["author"],
        author_name=who.get(n["author"], ""),
        decision=LeaveDecision(n["decision"]) if n["decision"] else None,
        decided_by=n["decided_by"],
        decided_by_name=who.get(n["decided_by"]) if n["decided_by"] else None,
        decision_note=n["decision_note"],
    )
    partitions = {_pupil_partition(n["pupil"])}
    partitions.update(
        _staff_partition(g.group_id) for g in pupil.groups_on(day, MembershipRole.PUPIL)
    )
    return RecordWrite("absence_notice", n["id"], record, frozenset(partitions))


# --- deriving the status -----------------------------------------------------------------


def _act(row: dict[str, Any]) -> Act:
    return Act(row["occurred_at"], row["client_id"], int(row["mutation_id"]))


def _notice(row: dict[str, Any]) -> Notice:
    return Notice(
        id=row["id"],
        kind=NoticeKind(row["kind"]),
        reason=Reason(row["reason"]),
        act=_act(row),
        from_date=row["from_date"],
        to_date=row["to_date"],
        from_time=row["from_time"],
        to_time=row["to_time"],
    )


async def _pupil_slots(pupil: AccessFacts, from_date: dt.date, to_date: dt.date) -> list[Slot]:
    """The lessons the pupil's groups hold from ``from_date`` to ``to_date``, as changed."""
    memberships = [
        g
        for g in pupil.groups
        if g.role == MembershipRole.PUPIL
        and g.validity.valid_from <= to_date
        and (g.validity.valid_to is None or g.validity.valid_to >= from_date)
    ]
    if not memberships:
        return []
    lessons = await Lesson.select(
        Lesson.id,
        Lesson.group,
        Lesson.weekday,
        Lesson.starts_at,
        Lesson.ends_at,
        Lesson.valid_from,
        Lesson.valid_to,
    ).where(
        Lesson.group.is_in(sorted({m.group_id for m in memberships}))
        & (Lesson.valid_from <= to_date)
        & (Lesson.valid_to.is_null() | (Lesson.valid_to >= from_date))
    )
    if not lessons:
        return []
    changes = {
        (c["lesson"], c["on_date"]): c
        for c in await LessonChange.select(
            LessonChange.lesson,
            LessonChange.on_date,
            LessonChange.cancelled,
            LessonChange.starts_at,
            LessonChange.ends_at,
        ).where(
            LessonChange.lesson.is_in([lesson["id"] for lesson in lessons])
            & (LessonChange.on_date >= from_date)
            & (LessonChange.on_date <= to_date)
        )
    }

    def holds(row: dict[str, Any], day: dt.date) -> bool:
        return bool(
            row["valid_from"] <= day and (row["valid_to"] is None or day <= row["valid_to"])
        )

    slots: list[Slot] = []
    day = from_date
    while day <= to_date:
        for lesson in lessons:
            if lesson["weekday"] != day.isoweekday() or not holds(lesson, day):
                continue
            if not any(
                m.group_id == lesson["group"] and m.validity.holds_on(day) for m in memberships
            ):
                continue
            change = changes.get((lesson["id"], day))
            if change is not None and change["cancelled"]:
                continue
            starts, ends = lesson["starts_at"], lesson["ends_at"]
            if change is not None and change["starts_at"] is not None:
                starts, ends = change["starts_at"], change["ends_at"]
            slots.append(Slot(lesson["id"], lesson["group"], day, starts, ends))
        day += dt.timedelta(days=1)
    return slots


async def _derive(
    slots: Mapping[int, Sequence[Slot]],
    span: tuple[dt.date, dt.date],
    *,
    only_slots: bool = False,
) -> list[RecordWrite]:
    """Bring each pupil's ``attendance`` rows from ``span[0]`` to ``span[1]`` in line with
    every act about them: the pupil's ``slots`` held in that span, and any lesson that
    already has a row or a mark there (a lesson cancelled after it was reported keeps its row
    only if marked). With ``only_slots``, just the ``slots``: a mark touches its own lesson
    alone. A handful of statements, however many pupils."""
    first, last = span
    pupils = sorted(slots)
    people = marks(len(pupils))
    if isinstance(Person._meta.db, PostgresEngine):
        # Two transactions deriving one pupil take turns, the second reading the first's
        # acts once committed; else each would derive from its own act alone. (NO KEY: the
        # acts' foreign keys to the pupil only share-lock the key, and must not wait.)
        await run_sql(_LOCK_PUPILS.format(pupils=people), *pupils)
    # A mark touches its own lessons only: the pupils' other marks that day are not read.
    lessons = sorted({s.lesson_id for held in slots.values() for s in held}) if only_slots else []
    only = f" AND lesson IN ({marks(len(lessons))})" if lessons else ""
    mark_rows = await run_sql(
        _MARKS.format(pupils=people, lessons=only), *pupils, first, last, *lessons
    )
    notice_rows = await run_sql(_NOTICES.format(pupils=people), *pupils, last, first)
    leave_ids = [n["id"] for n in notice_rows if n["kind"] == NoticeKind.LEAVE]
    decisions: dict[int, list[Decision]] = {}
    if leave_ids:
        for d in await LeaveDecisionRow.select().where(LeaveDecisionRow.notice.is_in(leave_ids)):
            decisions.setdefault(d["notice"], []).append(
                Decision(_act(d), LeaveDecision(d["decision"]))
            )
    notices: dict[int, list[tuple[Notice, LeaveDecision | None]]] = {}
    for n in notice_rows:
        notices.setdefault(n["pupil"], []).append(
            (_notice(n), last_decision(decisions.get(n["id"], [])))
        )
    reasons = {n["id"]: n["reason"] for n in notice_rows}
    marks_of: dict[tuple[int, int, dt.date], list[Mark]] = {}
    for m in mark_rows:
        marks_of.setdefault((m["pupil"], m["lesson"], m["on_date"]), []).append(
            Mark(
                act=_act(m),
                status=MarkStatus(m["status"]),
                actor_id=m["actor"],
                late_minutes=m["late_minutes"],
                note=m["note"],
            )
        )
    existing = {
        (a["pupil"], a["lesson"], a["on_date"]): a
        for a in await run_sql(
            _ATTENDANCE.format(pupils=people, lessons=only), *pupils, first, last, *lessons
        )
    }
    by_key = {(pupil, s.lesson_id, s.on_date): s for pupil, held in slots.items() for s in held}
    if only_slots:
        existing = {k: v for k, v in existing.items() if k in by_key}
    missing = [] if only_slots else sorted({k for k in [*existing, *marks_of] if k not in by_key})
    if missing:
        # Marked or recorded lessons the timetable no longer holds on that day (cancelled or
        # ended since): judged at their weekly plan's times.
        plan = {
            lesson["id"]: lesson
            for lesson in await Lesson.select(
                Lesson.id, Lesson.group, Lesson.starts_at, Lesson.ends_at
            ).where(Lesson.id.is_in(sorted({k[1] for k in missing})))
        }
        for pupil, lesson_id, on_date in missing:
            lesson = plan[lesson_id]
            by_key[(pupil, lesson_id, on_date)] = Slot(
                lesson_id, lesson["group"], on_date, lesson["starts_at"], lesson["ends_at"]
            )

    rows: list[tuple[dict[str, Any], str | None]] = []
    new: list[tuple[tuple[int, int, dt.date], Slot, dict[str, Any], str | None]] = []
    deleted: list[int] = []
    for key, slot in sorted(by_key.items()):
        pupil = key[0]
        found = effective_status(
            marks_of.get(key, []),
            notices.get(pupil, []),
            slot.on_date,
            slot.starts_at,
            slot.ends_at,
        )
        row = existing.get(key)
        if found is None:
            if row is not None:
                deleted.append(int(row["id"]))
            continue
        values = _values(found)
        reason = reasons.get(found.notice.id) if found.notice else None
        if row is None:
            new.append((key, slot, values, reason))
        elif any(row[name] != value for name, value in values.items()):
            await Attendance.update(
                {getattr(Attendance, name): value for name, value in values.items()}
            ).where(Attendance.id == row["id"])
            rows.append(({**row, **values}, reason))
    if deleted:
        await Attendance.delete().where(Attendance.id.is_in(deleted))
    if new:
        inserted = await insert_values(
            "attendance",
            ("pupil", "lesson", "group", "on_date", *_VALUE_COLUMNS),
            [
                (key[0], slot.lesson_id, slot.group_id, slot.on_date, *values.values())
                for key, slot, values, _ in new
            ],
            tail="RETURNING id, pupil, lesson, on_date",
        )
        ids = {(r["pupil"], r["lesson"], str(r["on_date"])[:10]): r["id"] for r in inserted}
        for key, slot, values, reason in new:
            row = {
                "id": ids[(key[0], key[1], key[2].isoformat())],
                "pupil": key[0],
                "lesson": slot.lesson_id,
                "group": slot.group_id,
                "on_date": slot.on_date,
                **values,
            }
            rows.append((row, reason))
    writes = [RecordWrite("attendance", i, None, frozenset()) for i in deleted]
    writes += [_attendance_record(row, reason) for row, reason in rows]
    return writes


_LOCK_PUPILS = "SELECT id FROM person WHERE id IN ({pupils}) ORDER BY id FOR NO KEY UPDATE"
_VALUE_COLUMNS = ("status", "late_minutes", "note", "notice", "marked_by")
# Filled with bound-parameter placeholders only.
_MARKS = (
    "SELECT pupil, lesson, on_date, status, late_minutes, note, actor, client_id, mutation_id, "
    "occurred_at FROM roll_mark WHERE pupil IN ({pupils}) AND on_date >= {{}} AND on_date <= {{}}"
    "{lessons}"
)
_NOTICES = (
    "SELECT id, pupil, kind, reason, from_date, to_date, from_time, to_time, client_id, "
    "mutation_id, occurred_at FROM absence_notice WHERE pupil IN ({pupils}) "
    "AND from_date <= {{}} AND to_date >= {{}}"
)
_ATTENDANCE = (
    'SELECT id, pupil, lesson, "group", on_date, status, late_minutes, note, notice, marked_by '
    "FROM attendance WHERE pupil IN ({pupils}) AND on_date >= {{}} AND on_date <= {{}}"
    "{lessons}"
)


def _values(found: Effective) -> dict[str, Any]:
    """The derived columns of an ``attendance`` row, in the order of ``_VALUE_COLUMNS``."""
    mark = found.mark
    return {
        "status": found.status.value,
        "late_minutes": mark.late_minutes if mark else None,
        "note": mark.note if mark else None,
        "notice": found.notice.id if found.notice else None,
        "marked_by": mark.actor_id if mark else None,
    }


# --- roll call ---------------------------------------------------------------------------


async def _lesson(ctx: MutationContext, lesson_id: int) -> dict[str, Any] | None:
    key = ("lesson", lesson_id)
    if key not in ctx.memo:
        ctx.memo[key] = (
            await Lesson.select(
                Lesson.id,
                Lesson.group,
                Lesson.group._.school.as_alias("school_id"),
                Lesson.group._.school._.parent.as_alias("municipality_id"),
                Lesson.teacher,
                Lesson.weekday,
                Lesson.starts_at,
                Lesson.ends_at,
                Lesson.valid_from,
                Lesson.valid_to,
            )
            .where(Lesson.id == lesson_id)
            .first()
        )
    found: dict[str, Any] | None = ctx.memo[key]
    return found


async def _group_pupils(ctx: MutationContext, group_id: int, day: dt.date) -> frozenset[int]:
    key = ("pupils", group_id, day)
    if key not in ctx.memo:
        rows = await Membership.select(Membership.person).where(
            (Membership.group == group_id)
            & (Membership.role == MembershipRole.PUPIL)
            & (Membership.valid_from <= day)
            & (Membership.valid_to.is_null() | (Membership.valid_to >= day))
        )
        ctx.memo[key] = frozenset(r["person"] for r in rows)
    pupils: frozenset[int] = ctx.memo[key]
    return pupils


async def _change(ctx: MutationContext, lesson_id: int, on_date: dt.date) -> dict[str, Any] | None:
    """The occurrence's lesson change, if any (kept for the push; ``lesson.change`` and
    ``lesson.restore`` drop what they rewrite)."""
    key = ("change", lesson_id, on_date)
    if key not in ctx.memo:
        ctx.memo[key] = (
            await LessonChange.select(
                LessonChange.cancelled,
                LessonChange.substitute_teacher,
                LessonChange.starts_at,
                LessonChange.ends_at,
            )
            .where((LessonChange.lesson == lesson_id) & (LessonChange.on_date == on_date))
            .first()
        )
    change: dict[str, Any] | None = ctx.memo[key]
    return change


# Filled with bound-parameter placeholders only. The columns and keys are those of the
# Piccolo reads above (``_lesson``, ``_change``, ``_group_pupils``), whose memo they fill.
_PREPARE_LESSONS = (
    'SELECT l.id, l."group", g.school AS school_id, o.parent AS municipality_id, l.teacher, '
    "l.weekday, l.starts_at, l.ends_at, l.valid_from, l.valid_to FROM lesson l "
    'JOIN school_group g ON g.id = l."group" LEFT JOIN organisation o ON o.id = g.school '
    "WHERE l.id IN ({ids})"
)
_PREPARE_CHANGES = (
    "SELECT lesson, on_date, cancelled, substitute_teacher, starts_at, ends_at "
    "FROM lesson_change WHERE lesson IN ({ids}) AND on_date IN ({days})"
)
_PREPARE_PUPILS = (
    'SELECT "group", person, valid_from, valid_to FROM membership '
    'WHERE "group" IN ({ids}) AND role = {{}} AND valid_from <= {{}} '
    "AND (valid_to IS NULL OR valid_to >= {{}})"
)
_CHANGE_KEYS = ("cancelled", "substitute_teacher", "starts_at", "ends_at")
PREPARE_CHUNK = 500
"""Ids per ``IN`` list when a push's marks are prepared: a push is bounded, this is a guard."""


def _chunked(values: Sequence[Any]) -> list[Sequence[Any]]:
    return [values[i : i + PREPARE_CHUNK] for i in range(0, len(values), PREPARE_CHUNK)]


async def prepare_marks(calls: Sequence[tuple[MutationContext, MarkArgs]]) -> None:
    """Before the push's write transaction: the lessons its marks are for, those lessons'
    changes on the marks' days and their groups' pupils on those days, read in three
    statements for the whole push and kept in the push's memo, where :func:`_check_mark`
    finds them. A roll call then checks its 25 marks without a read while it holds the
    writer. What is already in the memo is not read again."""
    if not calls:
        return
    memo = calls[0][0].memo
    lesson_ids = sorted({a.lesson_id for _, a in calls if ("lesson", a.lesson_id) not in memo})
    for chunk in _chunked(lesson_ids):
        found = {
            int(r["id"]): r
            for r in await run_sql(_PREPARE_LESSONS.format(ids=marks(len(chunk))), *chunk)
        }
        for lesson_id in chunk:
            memo[("lesson", lesson_id)] = found.get(lesson_id)
    held = [(a, memo[("lesson", a.lesson_id)]) for _, a in calls]
    wanted = sorted(
        {
            (a.lesson_id, a.on_date)
            for a, lesson in held
            if lesson is not None and ("change", a.lesson_id, a.on_date) not in memo
        }
    )
    if wanted:
        days = sorted({d for _, d in wanted})
        for chunk in _chunked(sorted({lesson for lesson, _ in wanted})):
            rows = await run_sql(
                _PREPARE_CHANGES.format(ids=marks(len(chunk)), days=marks(len(days))),
                *chunk,
                *days,
            )
            changes = {
                (int(r["lesson"]), r["on_date"]): {k: r[k] for k in _CHANGE_KEYS} for r in rows
            }
            for key in wanted:
                if key[0] in chunk:
                    memo[("change", *key)] = changes.get(key)
    occasions = sorted(
        {
            (int(lesson["group"]), a.on_date)
            for a, lesson in held
            if lesson is not None and ("pupils", lesson["group"], a.on_date) not in memo
        }
    )
    if occasions:
        first, last = min(d for _, d in occasions), max(d for _, d in occasions)
        for chunk in _chunked(sorted({group for group, _ in occasions})):
            rows = await run_sql(
                _PREPARE_PUPILS.format(ids=marks(len(chunk))),
                *chunk,
                MembershipRole.PUPIL.value,
                last,
                first,
            )
            for group, day in occasions:
                if group in chunk:
                    memo[("pupils", group, day)] = frozenset(
                        int(r["person"])
                        for r in rows
                        if int(r["group"]) == group
                        and r["valid_from"] <= day
                        and (r["valid_to"] is None or r["valid_to"] >= day)
                    )


async def _check_mark(ctx: MutationContext, args: MarkArgs) -> Slot:
    """The occurrence a mark is for, if the mark may be made; rejects otherwise."""
    lesson = await _lesson(ctx, args.lesson_id)
    if lesson is None:
        raise _refuse(MutationCode.NOT_FOUND, "That lesson does not exist.", "$.lesson_id")
    on_date = args.on_date
    if on_date.isoweekday() != lesson["weekday"] or not (
        lesson["valid_from"] <= on_date
        and (lesson["valid_to"] is None or on_date <= lesson["valid_to"])
    ):
        raise _refuse(
            MutationCode.INVALID_ARGS, "The lesson does not take place on that date.", "$.on_date"
        )
    change = await _change(ctx, args.lesson_id, on_date)
    group = GroupRef(lesson["group"], lesson["school_id"], lesson["municipality_id"])
    target = OccurrenceRef(
        group, lesson["teacher"], change["substitute_teacher"] if change else None
    )
    if not decide(ctx.viewer, Action.MARK_ROLL_CALL, target, ctx.day):
        raise _refuse(
            MutationCode.FORBIDDEN,
            "Only the lesson's teacher, the group's teachers or the day's substitute may mark"
            " its roll call.",
        )
    if change is not None and change["cancelled"]:
        raise _refuse(
            MutationCode.INVALID_ARGS, "The lesson was cancelled on that date.", "$.on_date"
        )
    marked_on = school_today(ctx.occurred_at)
    if marked_on < on_date:
        raise _refuse(
            MutationCode.INVALID_ARGS, "Roll call is marked on the lesson's day.", "$.on_date"
        )
    if marked_on > on_date:
        raise _refuse(
            MutationCode.TOO_LATE,
            "Roll call can be marked and corrected only on the lesson's day.",
            "$.on_date",
        )
    if args.pupil_id not in await _group_pupils(ctx, lesson["group"], on_date):
        raise _refuse(
            MutationCode.INVALID_ARGS,
            "That pupil is not in the lesson's group on that date.",
            "$.pupil_id",
        )
    if (args.status == MarkStatus.LATE) != (args.late_minutes is not None):
        raise _refuse(
            MutationCode.INVALID_ARGS,
            "Late needs the minutes late, and only late has them.",
            "$.late_minutes",
        )
    starts, ends = lesson["starts_at"], lesson["ends_at"]
    if change is not None and change["starts_at"] is not None:
        starts, ends = change["starts_at"], change["ends_at"]
    return Slot(args.lesson_id, lesson["group"], on_date, starts, ends)


async def mark_attendance_batch(
    calls: Sequence[tuple[MutationContext, MarkArgs]],
) -> list[MutationRejectedError | None]:
    """``attendance.mark`` for a run of calls (a roll call): each checked alone, then all
    the accepted marks written, derived and recorded together."""
    outcomes: list[MutationRejectedError | None] = []
    accepted: list[tuple[MutationContext, MarkArgs, Slot]] = []
    for ctx, args in calls:
        try:
            slot = await _check_mark(ctx, args)
        except MutationRejectedError as refused:
            outcomes.append(refused)
            continue
        outcomes.append(None)
        accepted.append((ctx, args, slot))
    if not accepted:
        return outcomes
    await insert_values(
        "roll_mark",
        (
            "pupil",
            "lesson",
            "on_date",
            "status",
            "late_minutes",
            "note",
            "actor",
            "client_id",
            "mutation_id",
            "device",
            "occurred_at",
            "received_at",
        ),
        [
            (
                args.pupil_id,
                args.lesson_id,
                args.on_date,
                args.status.value,
                args.late_minutes,
                args.note,
                ctx.viewer.person_id,
                ctx.client_id,
                ctx.mutation_id,
                ctx.device[:100],
                ctx.occurred_at,
                ctx.received_at,
            )
            for ctx, args, _ in accepted
        ],
    )
    slots: dict[int, list[Slot]] = {}
    for _, args, slot in accepted:
        slots.setdefault(args.pupil_id, []).append(slot)
    days = [slot.on_date for _, _, slot in accepted]
    writes = await _derive(slots, (min(days), max(days)), only_slots=True)
    today = accepted[0][0].day
    await _tell_guardians(today, writes)
    await write_records(accepted[0][0].engine, writes)
    return outcomes


async def mark_attendance(ctx: MutationContext, args: MarkArgs) -> None:
    """``attendance.mark``: one pupil's mark at one lesson occurrence's roll call."""
    (refused,) = await mark_attendance_batch([(ctx, args)])
    if refused is not None:
        raise refused


_TOLD = (
    "SELECT DISTINCT a.pupil FROM outbox o JOIN attendance a ON a.id = o.item_id "
    "WHERE o.kind = 'absence' AND a.on_date = {{}} AND a.pupil IN ({pupils}) "
    "AND a.status = 'unexplained'"
)
"""Pupils whose guardians are already told of an absence that day that still stands (one
corrected since was dropped unsent); placeholders only."""


async def _tell_guardians(today: dt.date, writes: list[RecordWrite]) -> None:
    """Queue the guardians' notification of an unexplained absence today: once a day per
    pupil, however many lessons are missed. The worker drops it if the mark is corrected or
    explained before it is sent."""
    first_of: dict[int, int] = {}
    for w in writes:
        record = w.record
        if (
            isinstance(record, AttendanceRecord)
            and record.status == AttendanceStatus.UNEXPLAINED
            and record.on_date == today
        ):
            first_of.setdefault(record.pupil_id, w.record_id)
    if not first_of:
        return
    told = await run_sql(_TOLD.format(pupils=marks(len(first_of))), today, *first_of)
    untold = sorted(set(first_of) - {r["pupil"] for r in told})
    await enqueue_many("absence", [first_of[pupil] for pupil in untold], urgent=False)


# --- notices and leave -------------------------------------------------------------------


async def _pupil(pupil_id: int, refused: str | None = None) -> AccessFacts:
    """The pupil's access facts. With ``refused`` (the reason a caller who may not act for the
    pupil is given), an id that is nobody gets that very answer, ``mutation.forbidden``: a
    ``not_found`` there would tell any signed-in caller which ids are pupils."""
    facts = (await load_access_facts([pupil_id])).get(pupil_id)
    if facts is None:
        if refused is not None:
            raise _refuse(MutationCode.FORBIDDEN, refused, "$.pupil_id")
        raise _refuse(MutationCode.NOT_FOUND, "That pupil does not exist.", "$.pupil_id")
    return facts


def _check_span(args: NoticeArgs, max_days: int) -> None:
    if args.to_date < args.from_date:
        raise _refuse(MutationCode.INVALID_ARGS, "The span ends before it starts.", "$.to_date")
    if (args.to_date - args.from_date).days + 1 > max_days:
        raise _refuse(
            MutationCode.INVALID_ARGS,
            f"One notice covers at most {max_days} days; send another for the rest.",
            "$.to_date",
        )
    if (
        args.from_date == args.to_date
        and args.from_time is not None
        and args.to_time is not None
        and args.from_time >= args.to_time
    ):
        raise _refuse(MutationCode.INVALID_ARGS, "The span ends before it starts.", "$.to_time")


async def _age_rule_allows(ctx: MutationContext, pupil: AccessFacts) -> bool:
    """May the pupil explain their own absences: old enough by one of their schools' rules?"""
    schools = sorted({g.school_id for g in pupil.groups_on(ctx.day, MembershipRole.PUPIL)})
    if not schools:
        return False
    ages = [
        r["pupils_explain_from_age"]
        for r in await SchoolSettings.select(SchoolSettings.pupils_explain_from_age).where(
            SchoolSettings.school.is_in(schools)
        )
        if r["pupils_explain_from_age"] is not None
    ]
    person = await Person.select(Person.birth_date).where(Person.id == pupil.person_id).first()
    if not ages or person is None or person["birth_date"] is None:
        return False
    born: dt.date = person["birth_date"]
    today = ctx.day
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    return bool(age >= min(ages))


async def _store_notice(
    ctx: MutationContext, args: NoticeArgs, kind: NoticeKind, pupil: AccessFacts
) -> None:
    inserted = await AbsenceNotice.insert(
        AbsenceNotice(
            pupil=args.pupil_id,
            kind=kind.value,
            from_date=args.from_date,
            to_date=args.to_date,
            from_time=args.from_time,
            to_time=args.to_time,
            reason=args.reason.value,
            note=args.note,
            author=ctx.viewer.person_id,
            client_id=ctx.client_id,
            mutation_id=ctx.mutation_id,
            device=ctx.device[:100],
            occurred_at=ctx.occurred_at,
            received_at=ctx.received_at,
        )
    ).returning(AbsenceNotice.id)
    await _write_notice(ctx, int(inserted[0]["id"]), pupil, args.from_date, args.to_date)


async def _write_notice(
    ctx: MutationContext, notice_id: int, pupil: AccessFacts, first: dt.date, last: dt.date
) -> None:
    slots = await _pupil_slots(pupil, first, last)
    writes = await _derive({pupil.person_id: slots}, (first, last))
    writes.append(await notice_write(notice_id, pupil, ctx.day))
    await write_records(ctx.engine, writes)


async def report_absence(ctx: MutationContext, args: NoticeArgs) -> None:
    """``absence.report``: a custodial guardian tells ahead that the pupil will be away."""
    refused = "Only the pupil's custodial guardians may report absences."
    pupil = await _pupil(args.pupil_id, refused)
    if not decide(ctx.viewer, Action.ACT_FOR_PUPIL, pupil, ctx.day):
        raise _refuse(MutationCode.FORBIDDEN, refused, "$.pupil_id")
    _check_span(args, MAX_NOTICE_DAYS)
    if args.from_date < school_today(ctx.occurred_at):
        raise _refuse(
            MutationCode.INVALID_ARGS,
            "A report is made ahead, from today on; explain past days with absence.explain.",
            "$.from_date",
        )
    await _store_notice(ctx, args, NoticeKind.REPORT, pupil)


async def explain_absence(ctx: MutationContext, args: NoticeArgs) -> None:
    """``absence.explain``: why the pupil was away, told afterwards."""
    refused = (
        "Only the pupil's custodial guardians (or the pupil, where the school allows it at"
        " the pupil's age) may explain absences."
    )
    pupil = await _pupil(args.pupil_id, refused)
    if not (
        decide(ctx.viewer, Action.ACT_FOR_PUPIL, pupil, ctx.day)
        or (ctx.viewer.person_id == pupil.person_id and await _age_rule_allows(ctx, pupil))
    ):
        raise _refuse(MutationCode.FORBIDDEN, refused, "$.pupil_id")
    _check_span(args, MAX_NOTICE_DAYS)
    today = school_today(ctx.occurred_at)
    if args.to_date > today:
        raise _refuse(
            MutationCode.INVALID_ARGS,
            "An explanation is about days that have been; report coming ones with absence.report.",
            "$.to_date",
        )
    if args.from_date < today - dt.timedelta(days=EXPLAIN_DAYS_BACK):
        raise _refuse(
            MutationCode.TOO_LATE,
            f"Absences can be explained for {EXPLAIN_DAYS_BACK} days; ask the school.",
            "$.from_date",
        )
    await _store_notice(ctx, args, NoticeKind.EXPLANATION, pupil)


async def request_leave(ctx: MutationContext, args: NoticeArgs) -> None:
    """``leave.request``: a custodial guardian asks leave for a longer absence."""
    refused = "Only the pupil's custodial guardians may ask for leave."
    pupil = await _pupil(args.pupil_id, refused)
    if not decide(ctx.viewer, Action.ACT_FOR_PUPIL, pupil, ctx.day):
        raise _refuse(MutationCode.FORBIDDEN, refused, "$.pupil_id")
    _check_span(args, MAX_LEAVE_DAYS)
    if args.from_date < school_today(ctx.occurred_at):
        raise _refuse(
            MutationCode.INVALID_ARGS, "Leave is asked ahead, from today on.", "$.from_date"
        )
    await _store_notice(ctx, args, NoticeKind.LEAVE, pupil)


async def _may_decide(ctx: MutationContext, pupil: AccessFacts, school_day_count: int) -> bool:
    """The principal of one of the pupil's schools may decide any leave; a teacher of the
    pupil's home class, leave up to the school's ``leave_teacher_max_days``."""
    ties = pupil.groups_on(ctx.day, MembershipRole.PUPIL)
    for tie in ties:
        if decide(
            ctx.viewer, Action.MANAGE_SCHOOL, SchoolRef(tie.school_id, tie.municipality_id), ctx.day
        ):
            return True
    taught = [
        t
        for t in ties
        if decide(
            ctx.viewer,
            Action.TEACH_GROUP,
            GroupRef(t.group_id, t.school_id, t.municipality_id),
            ctx.day,
        )
    ]
    if not taught:
        return False
    home = {
        r["id"]: r["school"]
        for r in await SchoolGroup.select(SchoolGroup.id, SchoolGroup.school).where(
            SchoolGroup.id.is_in([t.group_id for t in taught])
            & (SchoolGroup.kind == GroupKind.HOME_CLASS)
        )
    }
    if not home:
        return False
    limits = {
        r["school"]: r["leave_teacher_max_days"]
        for r in await SchoolSettings.select(
            SchoolSettings.school, SchoolSettings.leave_teacher_max_days
        ).where(SchoolSettings.school.is_in(sorted(set(home.values()))))
    }
    return any(
        school_day_count <= limits.get(school, DEFAULT_LEAVE_TEACHER_MAX_DAYS)
        for school in home.values()
    )


async def decide_leave(ctx: MutationContext, args: LeaveDecideArgs) -> None:
    """``leave.decide``: approve or deny a leave request; the last decision made stands."""
    notice = await AbsenceNotice.select().where(AbsenceNotice.id == args.leave_id).first()
    if notice is None or notice["kind"] != NoticeKind.LEAVE:
        raise _refuse(MutationCode.NOT_FOUND, "There is no such leave request.", "$.leave_id")
    pupil = await _pupil(notice["pupil"])
    days = school_days(notice["from_date"], notice["to_date"])
    if not await _may_decide(ctx, pupil, days):
        raise _refuse(
            MutationCode.FORBIDDEN,
            "Leave is decided by the pupil's class teacher (up to the school's limit of days)"
            " or the principal.",
        )
    await LeaveDecisionRow.insert(
        LeaveDecisionRow(
            notice=args.leave_id,
            decision=args.decision.value,
            note=args.note,
            actor=ctx.viewer.person_id,
            client_id=ctx.client_id,
            mutation_id=ctx.mutation_id,
            device=ctx.device[:100],
            occurred_at=ctx.occurred_at,
            received_at=ctx.received_at,
        )
    )
    rows = await LeaveDecisionRow.select().where(LeaveDecisionRow.notice == args.leave_id)
    winner = max(rows, key=lambda r: _act(r).key())
    await AbsenceNotice.update(
        {
            AbsenceNotice.decision: winner["decision"],
            AbsenceNotice.decided_by: winner["actor"],
            AbsenceNotice.decision_note: winner["note"],
        }
    ).where(AbsenceNotice.id == args.leave_id)
    await _write_notice(ctx, args.leave_id, pupil, notice["from_date"], notice["to_date"])
