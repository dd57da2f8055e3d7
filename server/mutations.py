"""Mutations: what a handler may rely on, and the timetable's mutations.

Each mutation has a name, a msgspec args type, and a handler (``server/catalogue.py`` lists
them).

A handler runs inside the push's write transaction. It checks permission through the access
policy first, validates against the database, then writes its domain rows and their sync
records through the one write path. It refuses with :class:`MutationRejectedError`; the push
then rolls back whatever the handler wrote and records the rejection instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from piccolo.columns import Column
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine

from schemas.core import StaffRoleKind
from schemas.sync import LessonChangeArgs, LessonRestoreArgs, MutationCode
from server.db.tables import Lesson, LessonChange, StaffRole
from server.fanout import enqueue
from server.sync_store import RecordWrite, write_records
from server.timetable import lesson_change_writes, substitute_writes
from sync.policy import AccessFacts, Action, GroupRef, SchoolRef, decide


class MutationRejectedError(Exception):
    def __init__(self, code: MutationCode, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.field = field


MAX_CLOCK_LAG = dt.timedelta(days=14)
"""The longest a device may have been offline: an act said to be older is dated this old."""


def clamp_device_time(occurred_at: dt.datetime, received_at: dt.datetime) -> dt.datetime:
    """A device's clock reading made believable: never after the server received the act,
    never more than :data:`MAX_CLOCK_LAG` before it, and always with a time zone (UTC if the
    device gave none)."""
    if occurred_at.tzinfo is None:
        occurred_at = occurred_at.replace(tzinfo=dt.UTC)
    return min(max(occurred_at, received_at - MAX_CLOCK_LAG), received_at)


@dataclass(frozen=True, slots=True)
class MutationContext:
    engine: Engine[Any]
    viewer: AccessFacts
    day: dt.date
    """Today in Europe/Helsinki, for the policy."""
    occurred_at: dt.datetime
    """When it happened, by the device's clock, clamped (:func:`clamp_device_time`)."""
    received_at: dt.datetime
    """When the server received the push."""
    client_id: str
    """The installation that sent it (``PushRequest.client_id``)."""
    mutation_id: int
    """Its id in that installation's sequence: with ``client_id``, it names the act."""
    device: str
    """The name the device logged in with, for audit trails."""
    memo: dict[object, Any] = field(default_factory=dict)
    """Shared by the mutations of one push, for look-ups a roll call of 25 would otherwise
    repeat (a lesson's weekly plan, the day's lesson change, a group's pupils on a day).
    ``lesson.change`` and ``lesson.restore`` drop the change they rewrite; another user's
    write committed during the push is seen from the next push on."""
    language: str = "en"
    """The language rejection reasons are given in (``server/rejections.py``)."""


Handler = Callable[[MutationContext, Any], Awaitable[None]]
BatchHandler = Callable[
    [Sequence[tuple[MutationContext, Any]]], Awaitable[list[MutationRejectedError | None]]
]
"""Applies a run of one mutation's consecutive calls at once; one rejection (or None) each."""
Prepare = Callable[[Sequence[tuple[MutationContext, Any]]], Awaitable[None]]
"""Reads, before the push's first write transaction, what the calls' checks will need, into
their shared ``memo``; it writes nothing and refuses nothing."""


@dataclass(frozen=True, slots=True)
class MutationSpec:
    name: str
    args_type: type[Any]
    handler: Handler
    batch: BatchHandler | None = None
    """Optional: the same mutation applied to a run of calls in one go (a roll call is 25
    marks). It must give each call the outcome the handler would give it alone, in order:
    so only for mutations whose checks do not depend on what the calls before them wrote. It
    refuses before it writes anything: it runs without a savepoint of its own."""
    prepare: Prepare | None = None
    """Optional: called once per push with every call of this mutation in it (replays too,
    since the client's position is read only inside the write transaction), before the first
    write transaction. What it keeps in the memo the handler then need not read while it holds
    the writer (SQLite's one writer, PostgreSQL's row locks). The memo's rule holds: a write
    by someone else committed during the push is seen from the next push on."""


async def _lesson_for_change(ctx: MutationContext, lesson_id: int, on_date: dt.date) -> Any:
    """The lesson, if this person may change it on ``on_date``; rejects otherwise.

    The occurrence's change is about to be written: what this push has kept of it goes.

    On PostgreSQL the lesson's row is locked until the push's transaction ends, so two
    people changing the same lesson at once take turns (SQLite has one writer anyway).
    """
    ctx.memo.pop(("change", lesson_id, on_date), None)
    if isinstance(ctx.engine, PostgresEngine):
        await Lesson.raw("SELECT id FROM lesson WHERE id = {} FOR UPDATE", lesson_id)
    lesson = (
        await Lesson.select(
            Lesson.id,
            Lesson.group,
            Lesson.group._.school.as_alias("school_id"),
            Lesson.group._.school._.parent.as_alias("municipality_id"),
            Lesson.weekday,
            Lesson.valid_from,
            Lesson.valid_to,
        )
        .where(Lesson.id == lesson_id)
        .first()
    )
    if lesson is None:
        raise MutationRejectedError(
            MutationCode.NOT_FOUND, "That lesson does not exist.", "$.lesson_id"
        )
    group = GroupRef(lesson["group"], lesson["school_id"], lesson["municipality_id"])
    school = SchoolRef(lesson["school_id"], lesson["municipality_id"])
    if not (
        decide(ctx.viewer, Action.TEACH_GROUP, group, ctx.day)
        or decide(ctx.viewer, Action.MANAGE_SCHOOL, school, ctx.day)
    ):
        raise MutationRejectedError(
            MutationCode.FORBIDDEN, "Only the group's teachers and the principal may do this."
        )
    if on_date.isoweekday() != lesson["weekday"] or not (
        lesson["valid_from"] <= on_date
        and (lesson["valid_to"] is None or on_date <= lesson["valid_to"])
    ):
        raise MutationRejectedError(
            MutationCode.INVALID_ARGS, "The lesson does not take place on that date.", "$.on_date"
        )
    return lesson


async def change_lesson(ctx: MutationContext, args: LessonChangeArgs) -> None:
    """``lesson.change``: cancel, substitute, move room or time of one occurrence."""
    lesson = await _lesson_for_change(ctx, args.lesson_id, args.on_date)
    if args.substitute_teacher_id is not None:
        works_there = await StaffRole.exists().where(
            (StaffRole.person == args.substitute_teacher_id)
            & (StaffRole.organisation == lesson["school_id"])
            & StaffRole.role.is_in([StaffRoleKind.TEACHER, StaffRoleKind.PRINCIPAL])
            & (StaffRole.valid_from <= args.on_date)
            & (StaffRole.valid_to.is_null() | (StaffRole.valid_to >= args.on_date))
        )
        if not works_there:
            raise MutationRejectedError(
                MutationCode.INVALID_ARGS,
                "The substitute is not a teacher of this school.",
                "$.substitute_teacher_id",
            )
    if (args.starts_at is None) != (args.ends_at is None) or (
        args.starts_at is not None and args.ends_at is not None and args.starts_at >= args.ends_at
    ):
        raise MutationRejectedError(
            MutationCode.INVALID_ARGS, "A moved lesson needs a start before its end.", "$.ends_at"
        )
    values: dict[Column | str, Any] = {
        LessonChange.cancelled: args.cancelled,
        LessonChange.substitute_teacher: args.substitute_teacher_id,
        LessonChange.room: args.room,
        LessonChange.starts_at: args.starts_at,
        LessonChange.ends_at: args.ends_at,
        LessonChange.note: args.note,
    }
    existing = (
        await LessonChange.select(LessonChange.id, LessonChange.substitute_teacher)
        .where((LessonChange.lesson == args.lesson_id) & (LessonChange.on_date == args.on_date))
        .first()
    )
    if existing is None:
        row = LessonChange(lesson=args.lesson_id, on_date=args.on_date)
        for column, value in values.items():
            assert isinstance(column, Column)
            setattr(row, column._meta.name, value)
        await row.save()
        change_id = int(row.id)
    else:
        change_id = int(existing["id"])
        await LessonChange.update(values).where(LessonChange.id == change_id)
    if 0 <= (args.on_date - ctx.day).days <= 1:
        # Today's and tomorrow's changes are news for the group's pupils and guardians.
        await enqueue("lesson_change", change_id, urgent=False)
    writes = await lesson_change_writes([change_id])
    if args.substitute_teacher_id is not None or (
        existing is not None and existing["substitute_teacher"] is not None
    ):
        # A substitute came, went or changed: the lesson and roster follow them.
        writes += await substitute_writes([args.lesson_id], [lesson["group"]])
    await write_records(ctx.engine, writes)


async def restore_lesson(ctx: MutationContext, args: LessonRestoreArgs) -> None:
    """``lesson.restore``: the occurrence follows the weekly plan again."""
    lesson = await _lesson_for_change(ctx, args.lesson_id, args.on_date)
    existing = (
        await LessonChange.select(LessonChange.id, LessonChange.substitute_teacher)
        .where((LessonChange.lesson == args.lesson_id) & (LessonChange.on_date == args.on_date))
        .first()
    )
    if existing is None:
        return  # Already as planned: restoring again changes nothing.
    await LessonChange.delete().where(LessonChange.id == existing["id"])
    writes = [RecordWrite("lesson_change", int(existing["id"]), None, frozenset())]
    if existing["substitute_teacher"] is not None:
        writes += await substitute_writes([args.lesson_id], [lesson["group"]])
    await write_records(ctx.engine, writes)
