"""Roll call, absence notices and leave over the real push: nothing lost, nothing applied
twice, the same status whatever order the phones sync in, and every act refused that the
policy does not allow (with nothing written)."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import secrets
import sqlite3
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from litestar import Litestar
from piccolo.engine.base import Engine

from schemas.absences import MarkArgs, MarkStatus
from schemas.core import GroupKind, GuardianshipKind, MembershipRole, StaffRoleKind
from server import absences
from server.access import load_access_facts
from server.clock import SCHOOL_TIMEZONE, school_today
from server.db.absence_tables import (
    AbsenceNotice,
    Attendance,
    LeaveDecisionRow,
    RollMark,
    SchoolSettings,
)
from server.db.engine import write_transaction
from server.db.tables import (
    Account,
    Guardianship,
    Lesson,
    LessonChange,
    Membership,
    Person,
    SchoolGroup,
    StaffRole,
)
from server.mutations import MutationContext
from server.rosters import roll_rosters
from server.settings import Settings
from server.timetable import roll_window
from tests.city import PASSWORD, City
from tests.conftest import AppMaker
from tests.devices import change, device, records

CLASS_SIZE = 25


def moment(step: int = 0) -> dt.datetime:
    """A device-clock reading earlier today (Helsinki), ``step`` ms apart: increasing in
    ``step``, never in the future, never yesterday."""
    now = dt.datetime.now(dt.UTC)
    start_of_day = dt.datetime.combine(school_today(), dt.time(0, 0), tzinfo=SCHOOL_TIMEZONE)
    base = max(start_of_day.astimezone(dt.UTC), now - dt.timedelta(seconds=100))
    return base + dt.timedelta(milliseconds=step)


@dataclass
class RawDevice:
    """A logged-in installation that pushes exactly the mutations it is given."""

    http: httpx.AsyncClient
    headers: dict[str, str]
    client_id: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    last_id: int = 0

    @classmethod
    async def log_in(cls, http: httpx.AsyncClient, username: str) -> RawDevice:
        answer = await http.post(
            "/auth/login",
            json={"username": username, "password": PASSWORD, "device_name": f"{username}-phone"},
        )
        assert answer.status_code == 200, answer.text
        return cls(http, {"Authorization": f"Bearer {answer.json()['token']}"})

    def mutation(self, name: str, at: dt.datetime | None = None, **args: Any) -> dict[str, Any]:
        self.last_id += 1
        return {
            "id": self.last_id,
            "name": name,
            "args": {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in args.items()},
            "occurred_at": (at or moment()).isoformat(),
        }

    async def push(self, mutations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        body = {"schema_version": 1, "client_id": self.client_id, "mutations": mutations}
        answer = await self.http.post("/sync/push", json=body, headers=self.headers)
        assert answer.status_code == 200, answer.text
        results: list[dict[str, Any]] = answer.json()["results"]
        return results

    async def do(self, name: str, at: dt.datetime | None = None, **args: Any) -> dict[str, Any]:
        """Push one mutation made at ``at`` (a moment ago if None); its result."""
        (result,) = await self.push([self.mutation(name, at, **args)])
        return result


@dataclass
class School:
    """The city plus a lesson today for 5A and for 5B, and class 7C of 25 pupils."""

    city: City
    today: dt.date
    lesson_5a: int = 0
    lesson_5b: int = 0
    lesson_7c: int = 0
    class_7c: int = 0
    pupils_7c: list[int] = field(default_factory=list)
    parent_7c: int = 0
    substitute: int = 0


async def _person_with_account(given: str, username: str) -> int:
    person = Person(given_name=given, family_name="Testinen")
    await person.save()
    some = await Account.select(Account.password_hash).first()
    assert some is not None
    await Account(person=person.id, username=username, password_hash=some["password_hash"]).save()
    return int(person.id)


async def _lesson(group: int, teacher: int, weekday: int, long_ago: dt.date) -> int:
    lesson = Lesson(
        group=group,
        subject="History",
        teacher=teacher,
        room="B2",
        weekday=weekday,
        starts_at=dt.time(0, 0),
        ends_at=dt.time(23, 59),
        valid_from=long_ago,
        valid_to=None,
    )
    await lesson.save()
    return int(lesson.id)


@pytest.fixture
async def fx_school(fx_city: City) -> School:
    c = fx_city
    s = School(city=c, today=c.today)
    long_ago = c.today - dt.timedelta(days=90)
    weekday = c.today.isoweekday()
    # A lesson all day, so that "a lesson today" holds whenever the test runs.
    s.lesson_5a = await _lesson(c.class_5a, c.teacher, weekday, long_ago)
    s.lesson_5b = await _lesson(c.class_5b, c.teacher, weekday, long_ago)
    group = SchoolGroup(school=c.school_a, name="7C", kind=GroupKind.HOME_CLASS)
    await group.save()
    s.class_7c = int(group.id)
    s.lesson_7c = await _lesson(s.class_7c, c.teacher, weekday, long_ago)
    s.parent_7c = await _person_with_account("Iso", "parent_7c")
    for n in range(CLASS_SIZE):
        pupil = Person(given_name=f"Oppilas{n}", family_name="Testinen")
        await pupil.save()
        s.pupils_7c.append(int(pupil.id))
    await Membership.insert(
        Membership(
            group=s.class_7c,
            person=c.teacher,
            role=MembershipRole.TEACHER,
            valid_from=long_ago,
        ),
        *(
            Membership(group=s.class_7c, person=p, role=MembershipRole.PUPIL, valid_from=long_ago)
            for p in s.pupils_7c
        ),
    )
    await Guardianship.insert(
        *(
            Guardianship(
                guardian=s.parent_7c,
                pupil=p,
                kind=GuardianshipKind.CUSTODIAL,
                valid_from=long_ago,
            )
            for p in s.pupils_7c
        )
    )
    s.substitute = await _person_with_account("Sijainen", "substitute")
    await StaffRole(
        person=s.substitute,
        organisation=c.school_a,
        role=StaffRoleKind.TEACHER,
        valid_from=long_ago,
    ).save()
    return s


async def _counts() -> tuple[int, int, int, int]:
    return (
        await RollMark.count(),
        await AbsenceNotice.count(),
        await LeaveDecisionRow.count(),
        await Attendance.count(),
    )


async def _status(pupil: int, lesson: int, day: dt.date) -> str | None:
    row = (
        await Attendance.select(Attendance.status)
        .where(
            (Attendance.pupil == pupil)
            & (Attendance.lesson == lesson)
            & (Attendance.on_date == day)
        )
        .first()
    )
    return None if row is None else str(row["status"])


# --- roll call: nothing lost, nothing twice ----------------------------------------------


async def test_25_offline_marks_replayed_twice_and_across_a_restart_apply_once(
    fx_client: httpx.AsyncClient,
    fx_school: School,
    fx_settings: Settings,
    fx_db: Engine[Any],
    fx_make_app: AppMaker,
) -> None:
    s = fx_school
    teacher = await RawDevice.log_in(fx_client, "teacher")
    marks = [
        teacher.mutation(
            "attendance.mark",
            moment(n),
            lesson_id=s.lesson_7c,
            on_date=s.today,
            pupil_id=pupil,
            status="absent" if n % 5 == 0 else "present",
        )
        for n, pupil in enumerate(s.pupils_7c)
    ]
    first = await teacher.push(marks[:10])
    assert [r["status"] for r in first] == ["applied"] * 10
    # The server restarts: a new app over the same database, nothing kept in memory.
    restarted: Litestar = fx_make_app(fx_settings, fx_db)
    transport = httpx.ASGITransport(app=restarted, client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="http://reppu.test") as http:
        again = RawDevice(http, teacher.headers, teacher.client_id, teacher.last_id)
        # The phone never heard the first answer: it sends all 25, then all 25 once more.
        whole = await again.push(marks)
        replay = await again.push(marks)
    assert [r["status"] for r in whole] == ["applied"] * CLASS_SIZE
    assert replay == whole
    assert await RollMark.count() == CLASS_SIZE
    statuses = {
        r["pupil"]: r["status"]
        for r in await Attendance.select(Attendance.pupil, Attendance.status).where(
            Attendance.lesson == s.lesson_7c
        )
    }
    assert statuses == {
        p: "unexplained" if n % 5 == 0 else "present" for n, p in enumerate(s.pupils_7c)
    }
    # Every mark is kept with who, which installation and device, and both clocks.
    kept = await RollMark.select().where(RollMark.pupil == s.pupils_7c[0]).first()
    assert kept is not None
    assert (kept["actor"], kept["client_id"], kept["device"]) == (
        s.city.teacher,
        teacher.client_id,
        "teacher-phone",
    )
    assert kept["occurred_at"] <= kept["received_at"]


async def test_the_records_reach_the_teacher_and_the_family_but_not_other_families(
    fx_client: httpx.AsyncClient, fx_school: School
) -> None:
    s, c = fx_school, fx_school.city
    teacher = await RawDevice.log_in(fx_client, "teacher")
    result = await teacher.do(
        "attendance.mark",
        lesson_id=s.lesson_5a,
        on_date=s.today,
        pupil_id=c.olli,
        status="late",
        late_minutes=10,
        note="Bussi myöhässä",
    )
    assert result["status"] == "applied", result
    olli_parent = await device(fx_client, "olli_parent")
    await olli_parent.sync()
    (seen,) = records(olli_parent, "attendance").values()
    assert (seen["pupil_id"], seen["status"], seen["late_minutes"]) == (c.olli, "late", 10)
    teacher_view = await device(fx_client, "teacher")
    await teacher_view.sync()
    assert {r["pupil_id"] for r in records(teacher_view, "attendance").values()} == {c.olli}
    for other in ("mother", "father", "aino", "eero", "former_guardian"):
        someone = await device(fx_client, other)
        await someone.sync()
        assert records(someone, "attendance") == {}, other


# --- the same status whatever the order ---------------------------------------------------


async def test_the_report_before_or_after_the_mark_gives_the_same_status(
    fx_client: httpx.AsyncClient, fx_school: School
) -> None:
    s, c = fx_school, fx_school.city
    teacher = await RawDevice.log_in(fx_client, "teacher")
    olli_parent = await RawDevice.log_in(fx_client, "olli_parent")
    mother = await RawDevice.log_in(fx_client, "mother")
    sick: dict[str, Any] = {"from_date": s.today, "to_date": s.today, "reason": "illness"}
    # Olli: the guardian's report arrives first, the teacher's mark an hour later.
    assert (await olli_parent.do("absence.report", pupil_id=c.olli, **sick))["status"] == "applied"
    assert await _status(c.olli, s.lesson_5a, s.today) == "expected_absent"
    mark: dict[str, Any] = {"on_date": s.today, "status": "absent"}
    assert (await teacher.do("attendance.mark", lesson_id=s.lesson_5a, pupil_id=c.olli, **mark))[
        "status"
    ] == "applied"
    # Aino: the other way round.
    assert (await teacher.do("attendance.mark", lesson_id=s.lesson_5b, pupil_id=c.aino, **mark))[
        "status"
    ] == "applied"
    assert await _status(c.aino, s.lesson_5b, s.today) == "unexplained"
    assert (await mother.do("absence.report", pupil_id=c.aino, **sick))["status"] == "applied"
    assert await _status(c.olli, s.lesson_5a, s.today) == "excused"
    assert await _status(c.aino, s.lesson_5b, s.today) == "excused"


EVENTS = ("mark_absent", "mark_present", "mark_absent_later", "report", "leave", "approve")
"""Acts about one pupil's lesson, each with its own device time (in this order)."""


async def test_every_order_of_arrival_gives_the_same_status(
    fx_client: httpx.AsyncClient, fx_school: School
) -> None:
    s = fx_school
    teacher = await RawDevice.log_in(fx_client, "teacher")
    substitute = await RawDevice.log_in(fx_client, "substitute")
    parent = await RawDevice.log_in(fx_client, "parent_7c")
    principal = await RawDevice.log_in(fx_client, "principal")
    await LessonChange(lesson=s.lesson_7c, on_date=s.today, substitute_teacher=s.substitute).save()
    orders = list(itertools.permutations(range(len(EVENTS))))
    chosen = [orders[0], orders[-1], *orders[1 :: len(orders) // 10]][: len(s.pupils_7c)]
    finals: set[tuple[str | None, str | None]] = set()
    for pupil, order in zip(s.pupils_7c, chosen, strict=False):
        leave_id: int | None = None
        pending = list(order)
        base = moment()  # each act's device time is fixed, whenever it arrives
        while pending:
            step = pending.pop(0)
            at = base + dt.timedelta(milliseconds=10 * step)
            name = EVENTS[step]
            mark = {"lesson_id": s.lesson_7c, "on_date": s.today, "pupil_id": pupil}
            if name == "mark_absent":
                result = await teacher.do("attendance.mark", at, status="absent", **mark)
            elif name == "mark_present":
                result = await substitute.do("attendance.mark", at, status="present", **mark)
            elif name == "mark_absent_later":
                result = await teacher.do("attendance.mark", at, status="absent", **mark)
            elif name == "report":
                result = await parent.do(
                    "absence.report",
                    at,
                    pupil_id=pupil,
                    from_date=s.today,
                    to_date=s.today,
                    reason="appointment",
                    from_time="10:00:00",
                    to_time="11:00:00",
                )
            elif name == "leave":
                result = await parent.do(
                    "leave.request",
                    at,
                    pupil_id=pupil,
                    from_date=s.today,
                    to_date=s.today,
                    reason="family",
                )
                row = (
                    await AbsenceNotice.select(AbsenceNotice.id)
                    .where((AbsenceNotice.pupil == pupil) & (AbsenceNotice.kind == "leave"))
                    .first()
                )
                assert row is not None
                leave_id = int(row["id"])
            else:
                if leave_id is None:  # the decision needs the request's id: later
                    pending.append(step)
                    continue
                result = await principal.do(
                    "leave.decide", at, leave_id=leave_id, decision="approved"
                )
            assert result["status"] == "applied", (name, result)
        row = (
            await Attendance.select(Attendance.status, Attendance.notice)
            .where((Attendance.pupil == pupil) & (Attendance.lesson == s.lesson_7c))
            .first()
        )
        assert row is not None
        notice = (
            await AbsenceNotice.select(AbsenceNotice.kind)
            .where(AbsenceNotice.id == row["notice"])
            .first()
        )
        finals.add((row["status"], notice["kind"] if notice else None))
    # The teacher's later "absent" wins over the substitute's "present"; approved leave
    # explains it, whatever arrived first.
    assert finals == {("on_leave", "leave")}


async def test_a_later_leave_decision_wins_whichever_arrives_first(
    fx_client: httpx.AsyncClient, fx_school: School
) -> None:
    s, c = fx_school, fx_school.city
    mother = await RawDevice.log_in(fx_client, "mother")
    teacher = await RawDevice.log_in(fx_client, "teacher")
    principal = await RawDevice.log_in(fx_client, "principal")
    result = await mother.do(
        "leave.request", pupil_id=c.aino, from_date=s.today, to_date=s.today, reason="family"
    )
    assert result["status"] == "applied", result
    leave = await AbsenceNotice.select(AbsenceNotice.id).first()
    assert leave is not None
    # The principal's denial was made later, but arrives first.
    base = moment()
    denied = await principal.do(
        "leave.decide", base + dt.timedelta(seconds=2), leave_id=leave["id"], decision="denied"
    )
    approved = await teacher.do(
        "leave.decide", base + dt.timedelta(seconds=1), leave_id=leave["id"], decision="approved"
    )
    assert (denied["status"], approved["status"]) == ("applied", "applied")
    final = await AbsenceNotice.select(AbsenceNotice.decision, AbsenceNotice.decided_by).first()
    assert final == {"decision": "denied", "decided_by": c.principal}
    assert await LeaveDecisionRow.count() == 2
    home = await device(fx_client, "mother")
    await home.sync()
    (seen,) = records(home, "absence_notice").values()
    assert (seen["kind"], seen["decision"], seen["decided_by_name"]) == (
        "leave",
        "denied",
        "Pekka Rehtori",
    )


# --- who may do what ----------------------------------------------------------------------


async def _refused(
    device_: RawDevice, name: str, code: str, *, at_field: str | None = None, **args: Any
) -> None:
    """``name`` is rejected with ``code`` (and, if given, ``field`` ``at_field``), and writes
    nothing."""
    before = await _counts()
    result = await device_.do(name, **args)
    assert (result["status"], result.get("code")) == ("rejected", code), result
    if at_field is not None:
        assert result.get("field") == at_field, result
    assert await _counts() == before, "a refused act wrote something"


async def test_roll_call_is_refused_to_anyone_but_the_lessons_teachers_and_substitute(
    fx_client: httpx.AsyncClient, fx_school: School
) -> None:
    s, c = fx_school, fx_school.city
    mark: dict[str, Any] = {
        "lesson_id": s.lesson_5a,
        "on_date": s.today,
        "pupil_id": c.olli,
        "status": "absent",
    }
    for who in ("principal", "substitute", "olli_parent", "olli", "admin"):
        await _refused(
            await RawDevice.log_in(fx_client, who), "attendance.mark", "mutation.forbidden", **mark
        )
    # Made the day's substitute by a lesson change, the substitute may.
    await LessonChange(lesson=s.lesson_5a, on_date=s.today, substitute_teacher=s.substitute).save()
    substitute = await RawDevice.log_in(fx_client, "substitute")
    assert (await substitute.do("attendance.mark", **mark))["status"] == "applied"


async def test_roll_call_rejects_what_does_not_fit(
    fx_client: httpx.AsyncClient, fx_school: School
) -> None:
    s, c = fx_school, fx_school.city
    teacher = await RawDevice.log_in(fx_client, "teacher")
    mark: dict[str, Any] = {"lesson_id": s.lesson_5a, "on_date": s.today}
    invalid = "mutation.invalid_args"
    # Aino left 5A yesterday; Eero was never in it.
    await _refused(teacher, "attendance.mark", invalid, pupil_id=c.aino, status="absent", **mark)
    await _refused(teacher, "attendance.mark", invalid, pupil_id=c.eero, status="absent", **mark)
    await _refused(teacher, "attendance.mark", invalid, pupil_id=c.olli, status="late", **mark)
    await _refused(
        teacher,
        "attendance.mark",
        invalid,
        pupil_id=c.olli,
        status="present",
        late_minutes=5,
        **mark,
    )
    await _refused(teacher, "attendance.mark", invalid, pupil_id=c.olli, status="away", **mark)
    await _refused(
        teacher,
        "attendance.mark",
        "mutation.not_found",
        lesson_id=2**31 - 1,
        on_date=s.today,
        pupil_id=c.olli,
        status="absent",
    )
    tomorrow = s.today + dt.timedelta(days=7)
    await _refused(
        teacher,
        "attendance.mark",
        invalid,
        lesson_id=s.lesson_5a,
        on_date=tomorrow,
        pupil_id=c.olli,
        status="absent",
    )
    await LessonChange(lesson=s.lesson_5a, on_date=s.today, cancelled=True).save()
    await _refused(teacher, "attendance.mark", invalid, pupil_id=c.olli, status="absent", **mark)


async def test_roll_call_is_corrected_the_same_day_but_not_after(
    fx_client: httpx.AsyncClient, fx_school: School
) -> None:
    s, c = fx_school, fx_school.city
    last_week = s.today - dt.timedelta(days=7)
    teacher = await RawDevice.log_in(fx_client, "teacher")
    mark: dict[str, Any] = {"lesson_id": s.lesson_5a, "on_date": last_week, "pupil_id": c.olli}
    # Marked now, for last week's lesson: too late.
    await _refused(teacher, "attendance.mark", "mutation.too_late", status="absent", **mark)
    # Marked on the day by a phone that was offline since: it counts.
    that_day = dt.datetime.combine(last_week, dt.time(9, 0), tzinfo=SCHOOL_TIMEZONE)
    result = await teacher.do("attendance.mark", that_day, status="absent", **mark)
    assert result["status"] == "applied", result
    correction = await teacher.do(
        "attendance.mark", that_day + dt.timedelta(hours=1), status="present", **mark
    )
    assert correction["status"] == "applied"
    assert await _status(c.olli, s.lesson_5a, last_week) == "present"
    # A device clock ahead of the server's is clamped to the time of arrival.
    ahead = await teacher.do(
        "attendance.mark",
        dt.datetime.now(dt.UTC) + dt.timedelta(days=2),
        lesson_id=s.lesson_5a,
        on_date=s.today,
        pupil_id=c.olli,
        status="absent",
    )
    assert ahead["status"] == "applied", ahead
    kept = (
        await RollMark.select(RollMark.occurred_at, RollMark.received_at)
        .where(RollMark.on_date == s.today)
        .first()
    )
    assert kept is not None
    assert kept["occurred_at"] == kept["received_at"]


async def test_notices_are_refused_to_other_families_and_information_only_guardians(
    fx_client: httpx.AsyncClient, fx_school: School
) -> None:
    s, c = fx_school, fx_school.city
    today: dict[str, Any] = {"from_date": s.today, "to_date": s.today, "reason": "illness"}
    forbidden = "mutation.forbidden"
    mother = await RawDevice.log_in(fx_client, "mother")
    father = await RawDevice.log_in(fx_client, "father")
    former = await RawDevice.log_in(fx_client, "former_guardian")
    teacher = await RawDevice.log_in(fx_client, "teacher")
    # The refusal names the pupil as what was refused, so an app can say why in its own
    # words ("only custodial guardians can ...") rather than a bare "you may not".
    who = {"at_field": "$.pupil_id"}
    for name in ("absence.report", "absence.explain", "leave.request"):
        await _refused(mother, name, forbidden, pupil_id=c.olli, **today, **who)  # other family
        await _refused(father, name, forbidden, pupil_id=c.aino, **today, **who)  # info only
        await _refused(former, name, forbidden, pupil_id=c.olli, **today, **who)  # ended
        await _refused(teacher, name, forbidden, pupil_id=c.olli, **today, **who)  # staff
    # An id that is nobody gets the very same answer: a signed-in caller cannot tell which
    # ids are pupils by trying.
    for name in ("absence.report", "absence.explain", "leave.request"):
        await _refused(mother, name, forbidden, pupil_id=2**31 - 1, **today, **who)
        nobody = await mother.do(name, pupil_id=2**31 - 1, **today)
        other_family = await mother.do(name, pupil_id=c.olli, **today)
        same = ("status", "code", "field", "reason")
        assert [nobody.get(k) for k in same] == [other_family.get(k) for k in same]


async def test_notice_spans_are_checked(fx_client: httpx.AsyncClient, fx_school: School) -> None:
    s, c = fx_school, fx_school.city
    mother = await RawDevice.log_in(fx_client, "mother")
    invalid = "mutation.invalid_args"
    day = dt.timedelta(days=1)
    base: dict[str, Any] = {"pupil_id": c.aino, "reason": "illness"}
    await _refused(
        mother, "absence.report", invalid, from_date=s.today - day, to_date=s.today, **base
    )
    await _refused(
        mother, "absence.report", invalid, from_date=s.today, to_date=s.today - day, **base
    )
    await _refused(
        mother, "absence.report", invalid, from_date=s.today, to_date=s.today + 14 * day, **base
    )
    await _refused(
        mother,
        "absence.report",
        invalid,
        from_date=s.today,
        to_date=s.today,
        from_time="12:00:00",
        to_time="10:00:00",
        **base,
    )
    await _refused(
        mother, "absence.explain", invalid, from_date=s.today, to_date=s.today + day, **base
    )
    await _refused(
        mother,
        "absence.explain",
        "mutation.too_late",
        from_date=s.today - 40 * day,
        to_date=s.today - 39 * day,
        **base,
    )
    await _refused(
        mother, "leave.request", invalid, from_date=s.today - day, to_date=s.today, **base
    )
    await _refused(
        mother,
        "absence.report",
        invalid,
        from_date=s.today,
        to_date=s.today,
        pupil_id=c.aino,
        reason="bored",
    )


async def test_an_explanation_excuses_a_past_absence(
    fx_client: httpx.AsyncClient, fx_school: School
) -> None:
    s, c = fx_school, fx_school.city
    last_week = s.today - dt.timedelta(days=7)
    teacher = await RawDevice.log_in(fx_client, "teacher")
    that_day = dt.datetime.combine(last_week, dt.time(9, 0), tzinfo=SCHOOL_TIMEZONE)
    await teacher.do(
        "attendance.mark",
        that_day,
        lesson_id=s.lesson_5a,
        on_date=last_week,
        pupil_id=c.olli,
        status="absent",
    )
    assert await _status(c.olli, s.lesson_5a, last_week) == "unexplained"
    olli_parent = await RawDevice.log_in(fx_client, "olli_parent")
    result = await olli_parent.do(
        "absence.explain",
        pupil_id=c.olli,
        from_date=last_week,
        to_date=last_week,
        reason="illness",
        note="Kuumetta",
    )
    assert result["status"] == "applied", result
    assert await _status(c.olli, s.lesson_5a, last_week) == "excused"


async def test_pupils_explain_their_own_absences_only_where_the_school_allows_at_their_age(
    fx_client: httpx.AsyncClient, fx_school: School
) -> None:
    s, c = fx_school, fx_school.city
    olli = await RawDevice.log_in(fx_client, "olli")
    args: dict[str, Any] = {
        "pupil_id": c.olli,
        "from_date": s.today,
        "to_date": s.today,
        "reason": "illness",
    }
    await _refused(olli, "absence.explain", "mutation.forbidden", **args)
    await SchoolSettings(school=c.school_a, pupils_explain_from_age=15).save()
    await Person.update({Person.birth_date: s.today.replace(year=s.today.year - 14)}).where(
        Person.id == c.olli
    )
    await _refused(olli, "absence.explain", "mutation.forbidden", **args)
    await Person.update({Person.birth_date: dt.date(s.today.year - 16, 1, 1)}).where(
        Person.id == c.olli
    )
    assert (await olli.do("absence.explain", **args))["status"] == "applied"
    # Reporting ahead and asking leave stay with the guardians.
    await _refused(olli, "absence.report", "mutation.forbidden", **args)
    await _refused(olli, "leave.request", "mutation.forbidden", **args)


async def test_longer_leave_is_the_principals_to_decide(
    fx_client: httpx.AsyncClient, fx_school: School
) -> None:
    s, c = fx_school, fx_school.city
    mother = await RawDevice.log_in(fx_client, "mother")
    teacher = await RawDevice.log_in(fx_client, "teacher")
    principal = await RawDevice.log_in(fx_client, "principal")
    olli_parent = await RawDevice.log_in(fx_client, "olli_parent")
    two_weeks: dict[str, Any] = {"from_date": s.today, "to_date": s.today + dt.timedelta(days=13)}
    result = await mother.do("leave.request", pupil_id=c.aino, reason="family", **two_weeks)
    assert result["status"] == "applied", result
    leave = await AbsenceNotice.select(AbsenceNotice.id).first()
    assert leave is not None
    decide: dict[str, Any] = {"leave_id": leave["id"], "decision": "approved"}
    await _refused(teacher, "leave.decide", "mutation.forbidden", **decide)  # over 3 days
    await _refused(olli_parent, "leave.decide", "mutation.forbidden", **decide)
    await _refused(mother, "leave.decide", "mutation.forbidden", **decide)
    await _refused(
        principal, "leave.decide", "mutation.not_found", leave_id=2**31 - 1, decision="approved"
    )
    assert (await principal.do("leave.decide", **decide))["status"] == "applied"
    # With the school's limit raised to ten days, the class teacher may decide it.
    await SchoolSettings(school=c.school_a, leave_teacher_max_days=10).save()
    assert (await teacher.do("leave.decide", **decide))["status"] == "applied"
    # Approved leave makes the day's lessons expected absences.
    assert await _status(c.aino, s.lesson_5b, s.today) == "expected_absent"


# --- staff views ---------------------------------------------------------------------------


async def _headers(http: httpx.AsyncClient, username: str) -> dict[str, str]:
    return (await RawDevice.log_in(http, username)).headers


async def test_staff_summaries_count_each_pupils_absences_and_refuse_others(
    fx_client: httpx.AsyncClient, fx_school: School
) -> None:
    s, c = fx_school, fx_school.city
    teacher = await RawDevice.log_in(fx_client, "teacher")
    parent = await RawDevice.log_in(fx_client, "parent_7c")
    first, second, third = s.pupils_7c[:3]
    mark = {"lesson_id": s.lesson_7c, "on_date": s.today}
    for pupil, status in ((first, "absent"), (second, "absent"), (third, "late")):
        extra = {"late_minutes": 5} if status == "late" else {}
        result = await teacher.do("attendance.mark", pupil_id=pupil, status=status, **mark, **extra)
        assert result["status"] == "applied", result
    result = await parent.do(
        "absence.explain", pupil_id=second, from_date=s.today, to_date=s.today, reason="illness"
    )
    assert result["status"] == "applied", result

    for who, path in (
        ("teacher", f"/groups/{s.class_7c}/absences"),
        ("principal", f"/groups/{s.class_7c}/absences"),
        ("principal", f"/schools/{c.school_a}/absences"),
        ("admin", f"/schools/{c.school_a}/absences"),
    ):
        answer = await fx_client.get(path, headers=await _headers(fx_client, who))
        assert answer.status_code == 200, (who, path, answer.text)
        by_pupil = {p["pupil_id"]: p for p in answer.json()["pupils"]}
        assert set(s.pupils_7c) <= set(by_pupil), (who, path)
        assert (by_pupil[first]["unexplained"], by_pupil[first]["absent_lessons"]) == (1, 1)
        assert (by_pupil[second]["unexplained"], by_pupil[second]["absent_lessons"]) == (0, 1)
        assert (by_pupil[third]["late"], by_pupil[third]["lessons_marked"]) == (1, 1)
        assert by_pupil[s.pupils_7c[3]]["lessons_marked"] == 0
    refused = [
        ("substitute", f"/groups/{s.class_7c}/absences"),
        ("parent_7c", f"/groups/{s.class_7c}/absences"),
        ("pupil", f"/groups/{s.class_7c}/absences"),
        ("teacher", f"/schools/{c.school_a}/absences"),
        ("principal", f"/schools/{c.school_b}/absences"),
        ("mother", f"/schools/{c.school_a}/absences"),
        ("principal", "/groups/2147483647/absences"),
    ]
    for who, path in refused:
        if who == "pupil":
            who = "olli"
        answer = await fx_client.get(path, headers=await _headers(fx_client, who))
        assert (answer.status_code, answer.json()["code"]) == (404, "not_found"), (who, path)
    backwards = await fx_client.get(
        f"/groups/{s.class_7c}/absences",
        params={"from": s.today.isoformat(), "to": (s.today - dt.timedelta(days=1)).isoformat()},
        headers=await _headers(fx_client, "teacher"),
    )
    assert (backwards.status_code, backwards.json()["code"]) == (422, "request.invalid")


async def test_the_audit_trail_shows_every_act_to_the_principal_only(
    fx_client: httpx.AsyncClient, fx_school: School
) -> None:
    s, c = fx_school, fx_school.city
    teacher = await RawDevice.log_in(fx_client, "teacher")
    olli_parent = await RawDevice.log_in(fx_client, "olli_parent")
    mark = {"lesson_id": s.lesson_5a, "on_date": s.today, "pupil_id": c.olli}
    await teacher.do("attendance.mark", status="absent", **mark)
    await teacher.do("attendance.mark", status="present", **mark)
    await olli_parent.do(
        "absence.report", pupil_id=c.olli, from_date=s.today, to_date=s.today, reason="illness"
    )
    path = f"/pupils/{c.olli}/absence-events"
    answer = await fx_client.get(path, headers=await _headers(fx_client, "principal"))
    assert answer.status_code == 200, answer.text
    events = answer.json()
    assert [(e["kind"], e.get("status"), e["device"]) for e in events] == [
        ("mark", "absent", "teacher-phone"),
        ("mark", "present", "teacher-phone"),
        ("report", None, "olli_parent-phone"),
    ]
    for who in ("teacher", "olli_parent", "mother", "olli"):
        refused = await fx_client.get(path, headers=await _headers(fx_client, who))
        assert refused.status_code == 404, who


async def test_a_school_sets_its_own_rules(fx_client: httpx.AsyncClient, fx_school: School) -> None:
    c = fx_school.city
    path = f"/schools/{c.school_a}/rules"
    principal = await _headers(fx_client, "principal")
    assert (await fx_client.get(path, headers=principal)).json() == {
        "pupils_explain_from_age": None,
        "leave_teacher_max_days": 3,
        "pupils_start_conversations": False,
    }
    new = {
        "pupils_explain_from_age": 15,
        "leave_teacher_max_days": 5,
        "pupils_start_conversations": True,
    }
    answer = await fx_client.put(path, json=new, headers=principal)
    assert (answer.status_code, answer.json()) == (200, new)
    assert (await fx_client.get(path, headers=principal)).json() == new
    bad = await fx_client.put(path, json={"leave_teacher_max_days": -1}, headers=principal)
    assert (bad.status_code, bad.json()["code"]) == (422, "request.invalid")
    assert (await SchoolSettings.select().first())["leave_teacher_max_days"] == 5  # type: ignore[index]
    for who in ("teacher", "mother"):
        refused = await fx_client.put(path, json=new, headers=await _headers(fx_client, who))
        assert refused.status_code == 404, who
    other = await fx_client.get(f"/schools/{c.school_b}/rules", headers=principal)
    assert other.status_code == 404


async def test_rosters_reach_the_groups_teachers_for_roll_call_offline(
    fx_client: httpx.AsyncClient, fx_school: School, fx_db: Engine[Any]
) -> None:
    s, c = fx_school, fx_school.city
    # Every group lacks a roster at first; then only the groups whose pupils change today.
    assert await roll_rosters(fx_db) == 5
    assert await roll_rosters(fx_db) == 2  # Aino left 5A yesterday and joined 5B today
    teacher = await device(fx_client, "teacher")
    await teacher.sync()
    rosters = {r["id"]: [p["id"] for p in r["pupils"]] for r in records(teacher, "roster").values()}
    assert rosters[c.class_5a] == [c.olli]
    assert rosters[c.class_5b] == [c.aino]
    assert sorted(rosters[s.class_7c]) == sorted(s.pupils_7c)
    assert c.class_3c not in rosters  # another school's group
    for other in ("substitute", "principal", "mother", "olli_parent", "aino"):
        someone = await device(fx_client, other)
        await someone.sync()
        assert records(someone, "roster") == {}, other


async def test_a_substitute_gets_the_lesson_and_roster_to_cover_and_loses_them_after(
    fx_client: httpx.AsyncClient, fx_school: School, fx_db: Engine[Any]
) -> None:
    s, c = fx_school, fx_school.city
    await roll_rosters(fx_db)
    teacher = await device(fx_client, "teacher")
    substitute = await device(fx_client, "substitute")
    await substitute.sync()
    assert records(substitute, "roster") == {}
    assert records(substitute, "lesson") == {}
    covered = await change(
        teacher,
        "lesson.change",
        lesson_id=s.lesson_5a,
        on_date=s.today,
        substitute_teacher_id=s.substitute,
    )
    assert covered["status"] == "applied", covered
    await substitute.sync()
    # The lesson to cover, its change and its group's roster; nothing of the other groups.
    assert set(records(substitute, "lesson")) == {s.lesson_5a}
    (covering,) = records(substitute, "lesson_change").values()
    assert covering["substitute_teacher_id"] == s.substitute
    assert set(records(substitute, "roster")) == {c.class_5a}
    pupils = [p["id"] for p in records(substitute, "roster")[c.class_5a]["pupils"]]
    assert pupils == [c.olli]
    # The roll call taken from the synced roster is accepted.
    for pupil in pupils:
        substitute.queue(
            "attendance.mark",
            {
                "lesson_id": s.lesson_5a,
                "on_date": s.today.isoformat(),
                "pupil_id": pupil,
                "status": "present",
            },
        )
    assert [r["status"] for r in await substitute.push()] == ["applied"]
    # Back to the plan: the substitute's phone lets go of all three; the teacher keeps them.
    restored = await change(teacher, "lesson.restore", lesson_id=s.lesson_5a, on_date=s.today)
    assert restored["status"] == "applied", restored
    await substitute.sync()
    assert records(substitute, "lesson") == {}
    assert records(substitute, "lesson_change") == {}
    assert records(substitute, "roster") == {}
    await teacher.sync()
    assert c.class_5a in records(teacher, "roster")
    assert s.lesson_5a in records(teacher, "lesson")


async def test_a_substitute_whose_job_ends_loses_the_cover_from_the_phone(
    fx_client: httpx.AsyncClient, fx_school: School, fx_db: Engine[Any]
) -> None:
    """Being named by a lesson change is no tie of its own: once the substitute's staff role
    has ended, the lesson, the change and the roster leave their phone (the daily roll places
    the cover afresh), while the group's teacher keeps all three."""
    s, c = fx_school, fx_school.city
    await roll_rosters(fx_db)
    teacher = await device(fx_client, "teacher")
    substitute = await device(fx_client, "substitute")
    covered = await change(
        teacher,
        "lesson.change",
        lesson_id=s.lesson_5a,
        on_date=s.today,
        substitute_teacher_id=s.substitute,
    )
    assert covered["status"] == "applied", covered
    await substitute.sync()
    assert set(records(substitute, "roster")) == {c.class_5a}
    assert set(records(substitute, "lesson")) == {s.lesson_5a}
    assert len(records(substitute, "lesson_change")) == 1
    # The job ended yesterday (as a OneRoster delta or the role's own end date has it).
    async with write_transaction(fx_db):
        await StaffRole.update({StaffRole.valid_to: s.today - dt.timedelta(days=1)}).where(
            StaffRole.person == s.substitute
        )
    await roll_window(fx_db, s.today)
    await substitute.sync()
    assert records(substitute, "roster") == {}
    assert records(substitute, "lesson") == {}
    assert records(substitute, "lesson_change") == {}
    await teacher.sync()
    assert c.class_5a in records(teacher, "roster")
    assert s.lesson_5a in records(teacher, "lesson")
    assert len(records(teacher, "lesson_change")) == 1


async def test_an_id_sent_twice_in_one_push_is_applied_once_in_its_place(
    fx_client: httpx.AsyncClient, fx_school: School
) -> None:
    s = fx_school
    teacher = await RawDevice.log_in(fx_client, "teacher")
    mark = {"lesson_id": s.lesson_7c, "on_date": s.today, "status": "present"}
    first = teacher.mutation("attendance.mark", pupil_id=s.pupils_7c[0], **mark)
    second = teacher.mutation("attendance.mark", pupil_id=s.pupils_7c[1], **mark)
    results = await teacher.push([first, second, first])
    assert [(r["id"], r["status"]) for r in results] == [
        (first["id"], "applied"),
        (second["id"], "applied"),
        (first["id"], "applied"),
    ]
    assert await RollMark.count() == 2


async def test_two_devices_marking_one_pupil_at_once_agree_on_the_last_mark(
    fx_client: httpx.AsyncClient, fx_school: School
) -> None:
    # On PostgreSQL the two pushes run in parallel transactions: each must derive from both
    # marks, not from its own alone (nor trip over the other's new attendance row).
    s = fx_school
    await LessonChange(lesson=s.lesson_7c, on_date=s.today, substitute_teacher=s.substitute).save()
    teacher = await RawDevice.log_in(fx_client, "teacher")
    substitute = await RawDevice.log_in(fx_client, "substitute")
    base = moment()
    pushes = []
    for n, pupil in enumerate(s.pupils_7c[:8]):
        mark = {"lesson_id": s.lesson_7c, "on_date": s.today, "pupil_id": pupil}
        later = "absent" if n % 2 else "present"
        earlier = "present" if n % 2 else "absent"
        # Each push from an installation of its own: one installation's pushes take turns.
        phone = RawDevice(fx_client, teacher.headers)
        tablet = RawDevice(fx_client, substitute.headers)
        pushes.append(phone.push([phone.mutation("attendance.mark", base, status=earlier, **mark)]))
        later_at = base + dt.timedelta(seconds=1)
        pushes.append(
            tablet.push([tablet.mutation("attendance.mark", later_at, status=later, **mark)])
        )
    for results in await asyncio.gather(*pushes):
        assert [r["status"] for r in results] == ["applied"], results
    for n, pupil in enumerate(s.pupils_7c[:8]):
        expected = "unexplained" if n % 2 else "present"
        assert await _status(pupil, s.lesson_7c, s.today) == expected, n


async def test_a_push_that_fails_among_concurrent_roll_calls_undoes_only_itself(
    fx_client: httpx.AsyncClient, fx_school: School, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On SQLite, pushes waiting for the writer share one transaction (group commit), each in
    # a savepoint: the one that fails must take none of the others down with it.
    s = fx_school
    teacher = await RawDevice.log_in(fx_client, "teacher")
    doomed = s.pupils_7c[3]
    write_records = absences.write_records

    async def failing_for_one_pupil(engine: Engine[Any], writes: list[Any]) -> set[str]:
        if any(w.record is not None and w.record.pupil_id == doomed for w in writes):
            raise RuntimeError("the disk is on fire")
        await asyncio.sleep(0)  # let the others queue behind this push
        return await write_records(engine, writes)

    monkeypatch.setattr(absences, "write_records", failing_for_one_pupil)
    phones = [RawDevice(fx_client, teacher.headers) for _ in s.pupils_7c[:8]]
    mark = {"lesson_id": s.lesson_7c, "on_date": s.today, "status": "present"}
    bodies = [
        {
            "schema_version": 1,
            "client_id": phone.client_id,
            "mutations": [phone.mutation("attendance.mark", pupil_id=pupil, **mark)],
        }
        for phone, pupil in zip(phones, s.pupils_7c[:8], strict=True)
    ]
    answers = await asyncio.gather(
        *(fx_client.post("/sync/push", json=b, headers=teacher.headers) for b in bodies)
    )
    assert [a.status_code for a in answers] == [500 if n == 3 else 200 for n in range(8)]
    marked = {r["pupil"] for r in await RollMark.select(RollMark.pupil)}
    assert marked == set(s.pupils_7c[:8]) - {doomed}
    # Nothing of the failed push was kept: sent again, it applies once.
    monkeypatch.setattr(absences, "write_records", write_records)
    answer = await fx_client.post("/sync/push", json=bodies[3], headers=teacher.headers)
    assert [r["status"] for r in answer.json()["results"]] == ["applied"]
    assert await RollMark.count() == 8


# --- a roll call in one go (server/absences.py: prepare_marks, mark_attendance_batch) ----


async def _written() -> dict[str, int]:
    """How many rows each table of a roll call's write holds."""
    tables = ("roll_mark", "attendance", "change_log", "sync_record", "outbox", "sync_mutation")
    counts = {
        t: int((await RollMark.raw(f"SELECT COUNT(*) AS n FROM {t}"))[0]["n"])  # noqa: S608
        for t in tables
    }
    versions = await RollMark.raw("SELECT SUM(version) AS n FROM sync_record")
    counts["versions"] = int(versions[0]["n"] or 0)
    return counts


async def test_a_roll_call_with_refused_marks_applies_the_rest_each_answered_alone(
    fx_client: httpx.AsyncClient, fx_school: School
) -> None:
    s, c = fx_school, fx_school.city
    # The substitute covers 5A today, but does not teach 7C: one push marks both.
    await LessonChange(lesson=s.lesson_5a, on_date=s.today, substitute_teacher=s.substitute).save()
    substitute = await RawDevice.log_in(fx_client, "substitute")
    day = {"on_date": s.today}
    sent = [
        substitute.mutation(
            "attendance.mark",
            moment(1),
            lesson_id=s.lesson_5a,
            pupil_id=c.olli,
            status="absent",
            **day,
        ),
        substitute.mutation(
            "attendance.mark",
            moment(2),
            lesson_id=s.lesson_7c,
            pupil_id=s.pupils_7c[0],
            status="absent",
            **day,
        ),
        substitute.mutation(
            "attendance.mark",
            moment(3),
            lesson_id=s.lesson_5a,
            pupil_id=c.eero,
            status="absent",
            **day,
        ),
        substitute.mutation(
            "attendance.mark",
            moment(4),
            lesson_id=s.lesson_5a,
            pupil_id=c.olli,
            status="late",
            **day,
        ),
        substitute.mutation(
            "attendance.mark",
            moment(5),
            lesson_id=2**31 - 1,
            pupil_id=c.olli,
            status="absent",
            **day,
        ),
        substitute.mutation(
            "attendance.mark",
            moment(6),
            lesson_id=s.lesson_5a,
            pupil_id=c.olli,
            status="away",
            **day,
        ),
        substitute.mutation(
            "attendance.mark",
            moment(7),
            lesson_id=s.lesson_5a,
            pupil_id=c.olli,
            status="late",
            late_minutes=5,
            **day,
        ),
    ]
    before = await _written()
    results = await substitute.push(sent)
    assert [(r["id"], r["status"], r.get("code")) for r in results] == [
        (sent[0]["id"], "applied", None),
        (sent[1]["id"], "rejected", "mutation.forbidden"),
        (sent[2]["id"], "rejected", "mutation.invalid_args"),  # Eero is not in 5A
        (sent[3]["id"], "rejected", "mutation.invalid_args"),  # late without minutes
        (sent[4]["id"], "rejected", "mutation.not_found"),
        (sent[5]["id"], "rejected", "mutation.invalid_args"),  # no such status
        (sent[6]["id"], "applied", None),
    ]
    assert [r.get("field") for r in results[2:5]] == ["$.pupil_id", "$.late_minutes", "$.lesson_id"]
    after = await _written()
    assert after["roll_mark"] - before["roll_mark"] == 2
    assert after["sync_mutation"] - before["sync_mutation"] == len(sent)
    # Olli's one attendance row, from the later of his two marks; nothing for 7C.
    assert await _status(c.olli, s.lesson_5a, s.today) == "late"
    assert await _status(s.pupils_7c[0], s.lesson_7c, s.today) is None
    assert after["attendance"] - before["attendance"] == 1


async def test_ids_sent_twice_in_a_roll_call_are_applied_once_and_answered_alike(
    fx_client: httpx.AsyncClient, fx_school: School
) -> None:
    s = fx_school
    teacher = await RawDevice.log_in(fx_client, "teacher")
    mark = {"lesson_id": s.lesson_7c, "on_date": s.today}
    sent = [
        teacher.mutation(
            "attendance.mark",
            moment(n),
            pupil_id=p,
            status="absent" if n % 3 else "present",
            **mark,
        )
        for n, p in enumerate(s.pupils_7c[:10])
    ]
    refused = teacher.mutation(
        "attendance.mark", moment(10), pupil_id=s.city.olli, status="absent", **mark
    )
    # Copies of the first, of a middle one and of the refused one, among the rest.
    body = [sent[0], *sent[1:5], sent[0], *sent[5:], sent[4], refused, refused]
    results = await teacher.push(body)
    by_id = {m["id"]: r for m, r in zip(body, results, strict=True)}
    assert [r["id"] for r in results] == [m["id"] for m in body]
    for m, r in zip(body, results, strict=True):
        assert r == by_id[m["id"]]
    assert [by_id[m["id"]]["status"] for m in sent] == ["applied"] * 10
    assert (by_id[refused["id"]]["status"], by_id[refused["id"]]["code"]) == (
        "rejected",
        "mutation.invalid_args",
    )
    assert await RollMark.count() == 10
    statuses = await Attendance.select(Attendance.pupil, Attendance.status).where(
        Attendance.lesson == s.lesson_7c
    )
    assert {r["pupil"]: r["status"] for r in statuses} == {
        p: "unexplained" if n % 3 else "present" for n, p in enumerate(s.pupils_7c[:10])
    }


async def test_a_roll_call_sent_again_after_success_gets_the_same_answers_and_writes_nothing(
    fx_client: httpx.AsyncClient, fx_school: School
) -> None:
    s = fx_school
    teacher = await RawDevice.log_in(fx_client, "teacher")
    mark = {"lesson_id": s.lesson_7c, "on_date": s.today}
    sent = [
        teacher.mutation(
            "attendance.mark",
            moment(n),
            pupil_id=p,
            status="absent" if n % 4 == 0 else "present",
            **mark,
        )
        for n, p in enumerate(s.pupils_7c)
    ]
    sent[7]["args"]["late_minutes"] = 3  # refused: present with minutes late
    first = await teacher.push(sent)
    assert [r["status"] for r in first] == [
        "rejected" if n == 7 else "applied" for n in range(CLASS_SIZE)
    ]
    written = await _written()
    assert written["outbox"] >= 1  # the guardians are told of today's absences
    again = await teacher.push(sent)
    assert again == first
    assert await _written() == written


async def test_a_roll_calls_checks_are_read_once_before_the_write_like_the_handler_reads_them(
    fx_db: Engine[Any], fx_school: School
) -> None:
    # prepare_marks fills the push's memo with what _check_mark would otherwise read inside the
    # write transaction, in the same form: a mark judged from either gets the same answer.
    s, c = fx_school, fx_school.city
    await LessonChange(lesson=s.lesson_5a, on_date=s.today, substitute_teacher=s.substitute).save()
    facts = (await load_access_facts([c.teacher]))[c.teacher]

    def context() -> MutationContext:
        now = dt.datetime.now(dt.UTC)
        return MutationContext(fx_db, facts, s.today, now, now, "c", 1, "d")

    calls = [
        MarkArgs(lesson_id=lesson, on_date=s.today, pupil_id=pupil, status=MarkStatus.PRESENT)
        for lesson, pupil in [(s.lesson_5a, c.olli), (s.lesson_7c, s.pupils_7c[0]), (2**31 - 1, 1)]
    ]
    prepared = context()
    await absences.prepare_marks([(prepared, args) for args in calls])
    read = context()
    for args in calls:
        await absences._lesson(read, args.lesson_id)
        lesson = read.memo[("lesson", args.lesson_id)]
        if lesson is not None:
            await absences._change(read, args.lesson_id, args.on_date)
            await absences._group_pupils(read, lesson["group"], args.on_date)
    assert prepared.memo == read.memo
    assert prepared.memo[("lesson", 2**31 - 1)] is None
    assert prepared.memo[("change", s.lesson_5a, s.today)]["substitute_teacher"] == s.substitute
    assert prepared.memo[("pupils", s.class_7c, s.today)] == frozenset(s.pupils_7c)


async def test_a_value_the_database_refuses_in_a_roll_call_rejects_that_mark_alone(
    fx_client: httpx.AsyncClient, fx_school: School, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The batch runs without a savepoint: when the database refuses a value after some of the
    # batch is written, the whole transaction is undone and applied again mark by mark.
    s = fx_school
    teacher = await RawDevice.log_in(fx_client, "teacher")
    doomed = s.pupils_7c[5]
    insert_values = absences.insert_values

    async def refusing(table: str, columns: Any, rows: Any, **kwargs: Any) -> Any:
        written = await insert_values(table, columns, rows, **kwargs)
        if table == "roll_mark" and any(row[0] == doomed for row in rows):
            raise sqlite3.DataError("a value out of range")
        return written

    monkeypatch.setattr(absences, "insert_values", refusing)
    mark = {"lesson_id": s.lesson_7c, "on_date": s.today, "status": "present"}
    sent = [teacher.mutation("attendance.mark", pupil_id=p, **mark) for p in s.pupils_7c]
    before = await _written()
    results = await teacher.push(sent)
    assert [(r["status"], r.get("code")) for r in results] == [
        ("rejected", "mutation.invalid_args") if p == doomed else ("applied", None)
        for p in s.pupils_7c
    ]
    after = await _written()
    assert after["roll_mark"] - before["roll_mark"] == CLASS_SIZE - 1
    assert after["attendance"] - before["attendance"] == CLASS_SIZE - 1
    assert after["sync_mutation"] - before["sync_mutation"] == CLASS_SIZE
    assert await _status(doomed, s.lesson_7c, s.today) is None
    # Sent again: the same answers, nothing more written.
    assert await teacher.push(sent) == results
    assert await _written() == after
