"""A small hand-written school world for storage, policy and API tests.

Two schools of one city; a family with children in both schools; a separated family with a
custodial and a right-to-information-only guardian; a guardianship that has ended; a pupil
who changes class today; a teacher of three groups; a principal; an admin; a guardian under
turvakielto. Everything is dated relative to ``today`` so the world holds on any day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from schemas.core import (
    GroupKind,
    GuardianshipKind,
    MembershipRole,
    OrganisationKind,
    StaffRoleKind,
)
from server.db.tables import (
    Account,
    Guardianship,
    Lesson,
    Membership,
    Organisation,
    Person,
    SchoolGroup,
    StaffRole,
    Term,
)
from server.identity import hash_password

PASSWORD = "correct horse battery"


@dataclass
class City:
    today: dt.date
    city: int = 0
    school_a: int = 0
    school_b: int = 0
    class_5a: int = 0
    class_5b: int = 0
    math_a: int = 0
    class_3c: int = 0
    aino: int = 0
    """Pupil at school A; moves from 5A to 5B today."""
    eero: int = 0
    """Aino's brother, at school B."""
    olli: int = 0
    """A pupil of another family, in 5A."""
    mother: int = 0
    """Custodial guardian of Aino and Eero: children in two schools."""
    father: int = 0
    """Separated; right to information only about Aino."""
    olli_parent: int = 0
    """Custodial guardian of Olli, under turvakielto."""
    former_guardian: int = 0
    """Was Olli's guardian until yesterday."""
    teacher: int = 0
    """Teaches 5A, 5B and maths at school A."""
    principal: int = 0
    admin: int = 0


async def _person(given: str, family: str, **extra: object) -> int:
    row = Person(
        given_name=given,
        family_name=family,
        email=f"{given.lower()}@example.fi",
        phone="+358 40 000 0000",
        street_address=f"{family}inkatu 1, Vantaa",
        **extra,
    )
    await row.save()
    return int(row.id)


async def _account(person: int, username: str, password_hash: str) -> None:
    await Account(person=person, username=username, password_hash=password_hash).save()


async def build_city(today: dt.date, *, with_accounts: bool = True) -> City:
    """Insert the world into the bound database and return its ids."""
    c = City(today=today)
    long_ago = today - dt.timedelta(days=90)
    yesterday = today - dt.timedelta(days=1)

    city = Organisation(kind=OrganisationKind.MUNICIPALITY, name="Vantaa")
    await city.save()
    c.city = int(city.id)
    ids = []
    for name in ("Koivukylän koulu", "Myyrmäen koulu"):
        school = Organisation(kind=OrganisationKind.SCHOOL, name=name, parent=c.city)
        await school.save()
        ids.append(int(school.id))
    c.school_a, c.school_b = ids
    term = Term(
        organisation=c.city,
        name="2026-2027",
        starts_on=long_ago,
        ends_on=today + dt.timedelta(days=200),
    )
    await term.save()

    async def group(school: int, name: str, kind: GroupKind) -> int:
        row = SchoolGroup(school=school, term=term.id, name=name, kind=kind)
        await row.save()
        return int(row.id)

    c.class_5a = await group(c.school_a, "5A", GroupKind.HOME_CLASS)
    c.class_5b = await group(c.school_a, "5B", GroupKind.HOME_CLASS)
    c.math_a = await group(c.school_a, "MA5", GroupKind.TEACHING_GROUP)
    c.class_3c = await group(c.school_b, "3C", GroupKind.HOME_CLASS)

    c.aino = await _person("Aino", "Virtanen")
    c.eero = await _person("Eero", "Virtanen")
    c.olli = await _person("Olli", "Korhonen")
    c.mother = await _person("Maria", "Virtanen")
    c.father = await _person("Mikko", "Lahtinen")
    c.olli_parent = await _person("Sara", "Korhonen", turvakielto=True)
    c.former_guardian = await _person("Timo", "Korhonen")
    c.teacher = await _person("Tiina", "Opettaja")
    c.principal = await _person("Pekka", "Rehtori")
    c.admin = await _person("Anna", "Admin")

    memberships = [
        (c.class_5a, c.aino, MembershipRole.PUPIL, long_ago, yesterday),
        (c.class_5b, c.aino, MembershipRole.PUPIL, today, None),
        (c.math_a, c.aino, MembershipRole.PUPIL, long_ago, None),
        (c.class_3c, c.eero, MembershipRole.PUPIL, long_ago, None),
        (c.class_5a, c.olli, MembershipRole.PUPIL, long_ago, None),
        (c.class_5a, c.teacher, MembershipRole.TEACHER, long_ago, None),
        (c.class_5b, c.teacher, MembershipRole.TEACHER, long_ago, None),
        (c.math_a, c.teacher, MembershipRole.TEACHER, long_ago, None),
    ]
    await Membership.insert(
        *(
            Membership(group=g, person=p, role=r, valid_from=f, valid_to=t)
            for g, p, r, f, t in memberships
        )
    )
    guardianships = [
        (c.mother, c.aino, GuardianshipKind.CUSTODIAL, None),
        (c.mother, c.eero, GuardianshipKind.CUSTODIAL, None),
        (c.father, c.aino, GuardianshipKind.INFORMATION_ONLY, None),
        (c.olli_parent, c.olli, GuardianshipKind.CUSTODIAL, None),
        (c.former_guardian, c.olli, GuardianshipKind.CUSTODIAL, yesterday),
    ]
    await Guardianship.insert(
        *(
            Guardianship(guardian=g, pupil=p, kind=k, valid_from=long_ago, valid_to=t)
            for g, p, k, t in guardianships
        )
    )
    staff = [
        (c.teacher, c.school_a, StaffRoleKind.TEACHER),
        (c.principal, c.school_a, StaffRoleKind.PRINCIPAL),
        (c.admin, c.city, StaffRoleKind.ADMIN),
    ]
    await StaffRole.insert(
        *(
            StaffRole(person=p, organisation=o, role=r, valid_from=long_ago, valid_to=None)
            for p, o, r in staff
        )
    )
    if with_accounts:
        # One hash for all: argon2 is slow on purpose, and the tests need no distinct salts.
        password_hash = hash_password(PASSWORD)
        for name in [
            "aino",
            "eero",
            "olli",
            "mother",
            "father",
            "olli_parent",
            "former_guardian",
            "teacher",
            "principal",
            "admin",
        ]:
            await _account(getattr(c, name), name, password_hash)
    return c


async def add_timetable(c: City) -> dict[str, int]:
    """Two lessons a week (Monday and Wednesday) in 5A, 5B, MA5 and 3C; ids by "<group>-<day>"."""
    ids: dict[str, int] = {}
    monday = c.today - dt.timedelta(days=c.today.weekday())
    for group, name in (
        (c.class_5a, "5a"),
        (c.class_5b, "5b"),
        (c.math_a, "ma"),
        (c.class_3c, "3c"),
    ):
        for weekday, subject in ((1, "Maths"), (3, "Finnish")):
            lesson = Lesson(
                group=group,
                subject=subject,
                teacher=c.teacher,
                room="A1",
                weekday=weekday,
                starts_at=dt.time(8, 15),
                ends_at=dt.time(9, 0),
                valid_from=monday - dt.timedelta(days=60),
                valid_to=None,
            )
            await lesson.save()
            ids[f"{name}-{weekday}"] = int(lesson.id)
    return ids
