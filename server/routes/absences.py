"""Staff views of absences: summaries per group and per school, a pupil's audit trail, and a
school's absence rules. Marks, notices and leave themselves are push mutations
(``server/absences.py``); these routes only read, except the rules.

Every route decides access through the one policy; someone not allowed gets the same 404 as
for a group, school or pupil that does not exist.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from litestar import Request, get, put
from litestar.params import JSONBody, QueryParameter

from schemas.absences import (
    AbsenceEvent,
    AbsenceSummary,
    AttendanceStatus,
    PupilSummary,
    SchoolRules,
)
from schemas.core import MembershipRole, OrganisationKind
from schemas.errors import ErrorCode
from server.access import load_access_facts, marks
from server.clock import school_today
from server.db.absence_tables import (
    AbsenceNotice,
    Attendance,
    LeaveDecisionRow,
    RollMark,
    SchoolSettings,
)
from server.db.tables import Membership, Organisation, Person, SchoolGroup, Term
from server.errors import ReppuError
from server.identity import Principal
from server.routes.ids import PathId
from sync.attendance import ABSENT_STATUSES
from sync.policy import AccessFacts, Action, GroupRef, SchoolRef, decide

MAX_PERIOD_DAYS = 400
FALLBACK_PERIOD_DAYS = 180
"""The period a summary covers when no term holds today and none is asked for."""

FromDate = Annotated[dt.date | None, QueryParameter(name="from", required=False)]
ToDate = Annotated[dt.date | None, QueryParameter(name="to", required=False)]


async def _viewer(principal: Principal) -> AccessFacts:
    facts = await load_access_facts([principal.person_id])
    return facts.get(principal.person_id, AccessFacts(principal.person_id))


def _refused(what: str) -> ReppuError:
    return ReppuError(ErrorCode.NOT_FOUND, f"No such {what}, or not yours to see.")


async def _school(school_id: int) -> SchoolRef | None:
    row = (
        await Organisation.select(Organisation.id, Organisation.parent)
        .where((Organisation.id == school_id) & (Organisation.kind == OrganisationKind.SCHOOL))
        .first()
    )
    return None if row is None else SchoolRef(row["id"], row["parent"])


async def _period(
    school: SchoolRef, first: dt.date | None, last: dt.date | None
) -> tuple[dt.date, dt.date]:
    """The days asked for; by default the term (of the school or its city) holding today."""
    today = school_today()
    if first is None or last is None:
        term = (
            await Term.select(Term.starts_on, Term.ends_on)
            .where(
                Term.organisation.is_in([school.school_id, school.municipality_id])
                & (Term.starts_on <= today)
                & (Term.ends_on >= today)
            )
            .order_by(Term.starts_on, ascending=False)
            .first()
        )
        default = (
            (term["starts_on"], term["ends_on"])
            if term
            else (today - dt.timedelta(days=FALLBACK_PERIOD_DAYS), today)
        )
        first = first or default[0]
        last = last or default[1]
    if last < first or (last - first).days + 1 > MAX_PERIOD_DAYS:
        raise ReppuError(
            ErrorCode.REQUEST_INVALID,
            f"Give a period of 1 to {MAX_PERIOD_DAYS} days, its start before its end.",
            field="to",
        )
    return first, last


_SUMMARY = (
    "SELECT pupil, "
    "SUM(CASE WHEN status = {{}} THEN 1 ELSE 0 END) AS unexplained, "
    "SUM(CASE WHEN status IN ({statuses}) THEN 1 ELSE 0 END) AS absent, "
    "SUM(CASE WHEN status = {{}} THEN 1 ELSE 0 END) AS late, "
    "SUM(CASE WHEN marked_by IS NOT NULL THEN 1 ELSE 0 END) AS marked "
    "FROM attendance WHERE pupil IN ({pupils}) "
    "AND on_date >= {{}} AND on_date <= {{}} GROUP BY pupil"
)
"""Filled with bound-parameter placeholders only."""


async def _summary(pupils: list[int], first: dt.date, last: dt.date) -> AbsenceSummary:
    absent = sorted(s.value for s in ABSENT_STATUSES)
    counts: dict[int, dict[str, Any]] = {}
    if pupils:
        rows = await Attendance.raw(
            _SUMMARY.format(statuses=marks(len(absent)), pupils=marks(len(pupils))),
            AttendanceStatus.UNEXPLAINED.value,
            *absent,
            AttendanceStatus.LATE.value,
            *pupils,
            first,
            last,
        )
        counts = {r["pupil"]: r for r in rows}
    names = {
        r["id"]: f"{r['given_name']} {r['family_name']}"
        for r in (
            await Person.select(Person.id, Person.given_name, Person.family_name).where(
                Person.id.is_in(pupils)
            )
            if pupils
            else []
        )
    }
    summaries = []
    for pupil in sorted(pupils, key=lambda p: (names.get(p, ""), p)):
        found = counts.get(pupil, {})
        summaries.append(
            PupilSummary(
                pupil_id=pupil,
                name=names.get(pupil, ""),
                unexplained=int(found.get("unexplained") or 0),
                absent_lessons=int(found.get("absent") or 0),
                late=int(found.get("late") or 0),
                lessons_marked=int(found.get("marked") or 0),
            )
        )
    return AbsenceSummary(from_date=first, to_date=last, pupils=summaries)


async def _pupils_of(group_ids: list[int], day: dt.date) -> list[int]:
    if not group_ids:
        return []
    rows = await Membership.select(Membership.person).where(
        Membership.group.is_in(group_ids)
        & (Membership.role == MembershipRole.PUPIL)
        & (Membership.valid_from <= day)
        & (Membership.valid_to.is_null() | (Membership.valid_to >= day))
    )
    return sorted({r["person"] for r in rows})


@get("/groups/{group_id:int}/absences", tags=["absences"], summary="A group's absences")
async def group_absences(
    request: Request[Principal, Any, Any],
    group_id: PathId,
    from_date: FromDate = None,
    to_date: ToDate = None,
) -> AbsenceSummary:
    """Per pupil of the group today: unexplained absences, lessons missed (absence hours),
    late arrivals and lessons marked, over all their lessons in the period (by default the
    current term). For the group's teachers and the school's principals."""
    today = school_today()
    viewer = await _viewer(request.user)
    row = (
        await SchoolGroup.select(
            SchoolGroup.id, SchoolGroup.school, SchoolGroup.school._.parent.as_alias("city")
        )
        .where(SchoolGroup.id == group_id)
        .first()
    )
    if row is None:
        raise _refused("group")
    school = SchoolRef(row["school"], row["city"])
    group = GroupRef(group_id, school.school_id, school.municipality_id)
    if not (
        decide(viewer, Action.TEACH_GROUP, group, today)
        or decide(viewer, Action.MANAGE_SCHOOL, school, today)
    ):
        raise _refused("group")
    first, last = await _period(school, from_date, to_date)
    return await _summary(await _pupils_of([group_id], today), first, last)


@get("/schools/{school_id:int}/absences", tags=["absences"], summary="A school's absences")
async def school_absences(
    request: Request[Principal, Any, Any],
    school_id: PathId,
    from_date: FromDate = None,
    to_date: ToDate = None,
) -> AbsenceSummary:
    """The same as a group's, for every pupil of the school today. For its principals and
    the city's admins."""
    today = school_today()
    viewer = await _viewer(request.user)
    school = await _school(school_id)
    if school is None or not decide(viewer, Action.MANAGE_SCHOOL, school, today):
        raise _refused("school")
    first, last = await _period(school, from_date, to_date)
    groups = [
        r["id"]
        for r in await SchoolGroup.select(SchoolGroup.id).where(SchoolGroup.school == school_id)
    ]
    return await _summary(await _pupils_of(groups, today), first, last)


@get(
    "/pupils/{pupil_id:int}/absence-events",
    tags=["absences"],
    summary="A pupil's absence audit trail",
)
async def pupil_absence_events(
    request: Request[Principal, Any, Any],
    pupil_id: PathId,
    from_date: FromDate = None,
    to_date: ToDate = None,
) -> list[AbsenceEvent]:
    """Every mark, notice and leave decision about the pupil in the period, oldest first:
    who, from which device, when by the device's clock and when the server got it. For the
    principals of the pupil's schools and the city's admins."""
    today = school_today()
    viewer = await _viewer(request.user)
    pupil = (await load_access_facts([pupil_id])).get(pupil_id)
    schools = (
        {SchoolRef(g.school_id, g.municipality_id) for g in pupil.groups_on(today)}
        if pupil
        else set()
    )
    allowed = [s for s in schools if decide(viewer, Action.MANAGE_SCHOOL, s, today)]
    if not allowed:
        raise _refused("pupil")
    first, last = await _period(allowed[0], from_date, to_date)
    events: list[AbsenceEvent] = []
    for m in await RollMark.select().where(
        (RollMark.pupil == pupil_id) & (RollMark.on_date >= first) & (RollMark.on_date <= last)
    ):
        events.append(
            AbsenceEvent(
                kind="mark",
                actor_id=m["actor"],
                device=m["device"],
                occurred_at=m["occurred_at"],
                received_at=m["received_at"],
                lesson_id=m["lesson"],
                on_date=m["on_date"],
                status=m["status"],
            )
        )
    notices = await AbsenceNotice.select().where(
        (AbsenceNotice.pupil == pupil_id)
        & (AbsenceNotice.from_date <= last)
        & (AbsenceNotice.to_date >= first)
    )
    for n in notices:
        events.append(
            AbsenceEvent(
                kind=n["kind"],
                actor_id=n["author"],
                device=n["device"],
                occurred_at=n["occurred_at"],
                received_at=n["received_at"],
                on_date=n["from_date"],
                notice_id=n["id"],
            )
        )
    if notices:
        for d in await LeaveDecisionRow.select().where(
            LeaveDecisionRow.notice.is_in([n["id"] for n in notices])
        ):
            events.append(
                AbsenceEvent(
                    kind="decision",
                    actor_id=d["actor"],
                    device=d["device"],
                    occurred_at=d["occurred_at"],
                    received_at=d["received_at"],
                    status=d["decision"],
                    notice_id=d["notice"],
                )
            )
    events.sort(key=lambda e: (e.received_at, e.occurred_at))
    return events


async def _rules_school(principal: Principal, school_id: int) -> SchoolRef:
    viewer = await _viewer(principal)
    school = await _school(school_id)
    if school is None or not decide(viewer, Action.MANAGE_SCHOOL, school, school_today()):
        raise _refused("school")
    return school


async def _rules(school_id: int) -> SchoolRules:
    row = await SchoolSettings.select().where(SchoolSettings.school == school_id).first()
    if row is None:
        return SchoolRules()
    return SchoolRules(
        pupils_explain_from_age=row["pupils_explain_from_age"],
        leave_teacher_max_days=row["leave_teacher_max_days"],
        pupils_start_conversations=bool(row["pupils_start_conversations"]),
    )


@get("/schools/{school_id:int}/rules", tags=["absences"], summary="A school's absence rules")
async def get_school_rules(request: Request[Principal, Any, Any], school_id: PathId) -> SchoolRules:
    """For the school's principals and the city's admins."""
    await _rules_school(request.user, school_id)
    return await _rules(school_id)


@put("/schools/{school_id:int}/rules", tags=["absences"], summary="Set a school's absence rules")
async def set_school_rules(
    request: Request[Principal, Any, Any],
    school_id: PathId,
    data: JSONBody[SchoolRules],
) -> SchoolRules:
    """Replace the school's rules. They apply to acts that arrive from now on."""
    await _rules_school(request.user, school_id)
    updated = (
        await SchoolSettings.update(
            {
                SchoolSettings.pupils_explain_from_age: data.pupils_explain_from_age,
                SchoolSettings.leave_teacher_max_days: data.leave_teacher_max_days,
                SchoolSettings.pupils_start_conversations: data.pupils_start_conversations,
            }
        )
        .where(SchoolSettings.school == school_id)
        .returning(SchoolSettings.id)
    )
    if not updated:
        await SchoolSettings(
            school=school_id,
            pupils_explain_from_age=data.pupils_explain_from_age,
            leave_teacher_max_days=data.leave_teacher_max_days,
            pupils_start_conversations=data.pupils_start_conversations,
        ).save()
    return await _rules(school_id)


ABSENCE_ROUTES = [
    group_absences,
    school_absences,
    pupil_absence_events,
    get_school_rules,
    set_school_rules,
]
