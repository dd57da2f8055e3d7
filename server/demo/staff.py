"""School staff: teachers hired as the timetable needs them, principals, admins, the rest.

The project's figures have about 15,000 staff for 160,000 pupils (0.094 per pupil). The
timetable needs fewer teachers than that; the rest are special-needs and resource teachers
(erityisopettaja, resurssiopettaja) who support a few home classes without lessons of their
own in the timetable. Some of them are also guardians of pupils in the city, as in life.
"""

from __future__ import annotations

import datetime as dt

from schemas.core import MembershipRole, StaffRoleKind
from server.demo.draft import Draft, School
from server.demo.names import FINNISH, IMMIGRANT, SWEDISH, NamePool, email_local_part

STAFF_PER_PUPIL = 0.094
ITINERANT_FAMILIES = frozenset({"UO", "UI"})


def is_itinerant(family: str) -> bool:
    """Whether teachers of ``family`` serve every school of the municipality."""
    return family in ITINERANT_FAMILIES or family.startswith("OM-")


STAFF_FROM_GUARDIANS = 0.10
"""Share of the support teachers who are also guardians in the city."""


class Staffing:
    """Creates staff people and their staff roles; keeps e-mail addresses unique."""

    def __init__(self, draft: Draft) -> None:
        self.draft = draft
        self.email_seen: dict[str, int] = {}
        self.staff: dict[int, None] = {}
        """Every staff person id, in the order they joined."""
        self.roles: set[tuple[int, int]] = set()
        """(person, organisation) pairs that have a staff role."""

    def person(self, school_language: str, domain: str, pool: NamePool | None = None) -> int:
        """A new staff member's person row."""
        rng = self.draft.rng
        if pool is None:
            if school_language == "sv":
                pool = SWEDISH if rng.random() < 0.9 else FINNISH
            else:
                pool = FINNISH if rng.random() < 0.95 else SWEDISH
        female = rng.random() < 0.75  # most Finnish teachers are women
        given = rng.choice(pool.women if female else pool.men)
        family = rng.choice(pool.families)
        language = "sv" if pool is SWEDISH else "fi"
        for code, (_, immigrant_pool) in IMMIGRANT.items():
            if pool is immigrant_pool:
                language = code
        local = email_local_part(given, family)
        seen = self.email_seen.get(local, 0) + 1
        self.email_seen[local] = seen
        birth = dt.date(rng.randint(1962, 1999), 1, 1) + dt.timedelta(days=rng.randrange(365))
        return self.draft.add_person(
            given,
            family,
            language,
            birth,
            email=f"{local}{seen if seen > 1 else ''}@{domain}",
            phone=f"+358 040 {rng.randrange(1_000_000, 10_000_000)}",  # see families.phone
        )

    def role(self, person: int, organisation: int, role: StaffRoleKind) -> None:
        """A staff role open since a past 1 August (the day Finnish school contracts start)."""
        rows, draft = self.draft.city.staff_role, self.draft
        since = dt.date(draft.term_starts_on.year - draft.rng.randint(0, 25), 8, 1)
        rows.append((len(rows) + 1, person, organisation, role.value, since, None))
        self.staff[person] = None
        self.roles.add((person, organisation))

    def qualified(self, school: School, family: str) -> list[int]:
        """The teachers a lesson needing ``family`` may go to, in the order they were hired.

        Mother-tongue and minority-religion teachers work for the municipality and travel
        between its schools; everyone else belongs to one school.
        """
        if is_itinerant(family):
            return self.draft.itinerant.setdefault((school.municipality, family), [])
        return school.by_family.get(family, [])

    def join(self, teacher: int, school: School) -> None:
        """Make sure a teacher who teaches at ``school`` has a teacher role there."""
        if (teacher, school.id) not in self.roles:
            self.role(teacher, school.id, StaffRoleKind.TEACHER)
            school.teachers.append(teacher)

    def hire_teacher(self, school: School, family: str, room: str | None = None) -> int:
        """A new teacher of ``school`` qualified for ``family`` (see ``TEACHER_FAMILY``)."""
        draft = self.draft
        domain = draft.municipalities[school.municipality].domain
        pool = IMMIGRANT[family[3:]][1] if family.startswith("OM-") else None
        teacher = self.person(school.language, domain, pool)
        self.join(teacher, school)
        if is_itinerant(family):
            self.qualified(school, family).append(teacher)
        else:
            school.by_family.setdefault(family, []).append(teacher)
        draft.teacher_load[teacher] = 0
        draft.teacher_busy[teacher] = set()
        draft.teacher_room[teacher] = room if room is not None else draft.next_room(school)
        return teacher

    def principals_and_admins(self) -> tuple[list[int], list[int]]:
        """One principal per school and one admin per municipality, as (principals, admins)."""
        draft = self.draft
        principals, admins = [], []
        for school in draft.schools:
            domain = draft.municipalities[school.municipality].domain
            principals.append(self.person(school.language, domain))
            self.role(principals[-1], school.id, StaffRoleKind.PRINCIPAL)
        for municipality in draft.municipalities:
            admins.append(self.person("fi", municipality.domain))
            self.role(admins[-1], municipality.id, StaffRoleKind.ADMIN)
        return principals, admins

    def support_teachers(self, pupils: int) -> None:
        """Top the staff up to the project's ratio with support teachers of the schools."""
        draft, rng = self.draft, self.draft.rng
        missing = round(pupils * STAFF_PER_PUPIL) - len(self.staff)
        if missing <= 0:
            return
        # Spread over the schools in proportion to their pupils.
        sizes = [sum(len(draft.classes[c].pupils) for c in s.classes) for s in draft.schools]
        total = sum(sizes)
        quotas = [missing * size // total for size in sizes]
        for i in range(missing - sum(quotas)):
            quotas[i % len(quotas)] += 1
        for school, quota in zip(draft.schools, quotas, strict=True):
            municipality = draft.municipalities[school.municipality]
            guardians = draft.guardians_by_municipality.get(municipality.index, [])
            for _ in range(quota):
                person = 0
                if guardians and rng.random() < STAFF_FROM_GUARDIANS:
                    candidate = guardians[rng.randrange(len(guardians))]
                    if candidate not in self.staff:
                        person = candidate
                if not person:
                    person = self.person(school.language, municipality.domain)
                self.role(person, school.id, StaffRoleKind.TEACHER)
                for class_index in rng.sample(school.classes, min(3, len(school.classes))):
                    draft.add_membership(
                        draft.classes[class_index].group_id,
                        person,
                        MembershipRole.TEACHER.value,
                        draft.term_starts_on,
                        draft.term_ends_on,
                    )
