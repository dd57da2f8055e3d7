"""The city while it is being generated: the rows so far plus the plans the stages share.

Every stage (structure, families, timetable, changes) reads and extends one :class:`Draft`.
Ids are the position of a row in its table plus one, so they start at 1 and follow the order
of generation, which is fixed by the seed.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from schemas.core import MembershipRole
from server.demo.city import City


@dataclass(slots=True)
class Municipality:
    """A municipality with its school year (term) and address details."""

    id: int
    index: int
    """Position in ``Draft.municipalities``."""
    name: str
    domain: str
    """Staff e-mail domain, under the reserved ``.example`` top-level domain (RFC 2606)."""
    postcode: str
    """The first three digits of the municipality's postcodes."""
    immigrant_share: float
    """Share of the Finnish schools' families that speak another language at home."""
    term_id: int = 0


@dataclass(slots=True)
class HomeClass:
    """A home class of a school and the pupils (indices into the pupil arrays) in it."""

    group_id: int
    school: int
    grade: int
    name: str
    room: str
    pupils: list[int] = field(default_factory=list)
    class_teacher: int | None = None


@dataclass(slots=True)
class School:
    """A school: its organisation row, its classes and the teachers hired so far."""

    id: int
    index: int
    municipality: int
    language: str
    name: str
    classes: list[int] = field(default_factory=list)
    """Indices into ``Draft.classes``."""
    a2_code: str = "SAA2"
    rooms_used: int = 0
    teachers: list[int] = field(default_factory=list)
    """Every teacher's person id, in the order hired."""
    by_family: dict[str, list[int]] = field(default_factory=dict)
    """Subject teachers by qualification (``curriculum.TEACHER_FAMILY``)."""


@dataclass(slots=True)
class Draft:
    """Everything generated so far, and the generator that all stages draw from."""

    rng: random.Random
    city: City
    term_starts_on: dt.date
    term_ends_on: dt.date
    first_school_day: dt.date
    last_school_day: dt.date
    municipalities: list[Municipality] = field(default_factory=list)
    schools: list[School] = field(default_factory=list)
    classes: list[HomeClass] = field(default_factory=list)
    # Per pupil (index 0..pupils-1), parallel arrays rather than one object per pupil.
    pupil_class: list[int] = field(default_factory=list)
    pupil_person: list[int] = field(default_factory=list)
    pupil_language: list[str] = field(default_factory=list)
    pupil_worldview: list[str] = field(default_factory=list)
    # Per teacher person id: weekly load and the (weekday, period) cells they teach in.
    teacher_load: dict[int, int] = field(default_factory=dict)
    teacher_busy: dict[int, set[int]] = field(default_factory=dict)
    teacher_room: dict[int, str] = field(default_factory=dict)
    # Teacher memberships: (group id, person id) pairs in first-taught order.
    teaching: dict[tuple[int, int], None] = field(default_factory=dict)
    # Lessons for later stages: (lesson id, school index, weekday, period).
    lesson_slots: list[tuple[int, int, int, int]] = field(default_factory=list)
    guardians_by_municipality: dict[int, list[int]] = field(default_factory=dict)
    itinerant: dict[tuple[int, str], list[int]] = field(default_factory=dict)
    """Teachers who travel between schools, by (municipality index, qualification)."""

    def add_person(
        self,
        given: str,
        family: str,
        language: str,
        birth_date: dt.date | None,
        *,
        turvakielto: bool = False,
        email: str | None = None,
        phone: str | None = None,
        street_address: str | None = None,
    ) -> int:
        """Append a person row and return its id."""
        person_id = len(self.city.person) + 1
        self.city.person.append(
            (
                person_id,
                given,
                family,
                language,
                birth_date,
                turvakielto,
                email,
                phone,
                street_address,
                # Nobody's contact details go to a co-guardian outside their household.
                False,
                None,  # ui_language: nobody has chosen one yet (server/language.py)
            )
        )
        return person_id

    def add_group(
        self, school: School, name: str, kind: str, grade: int | None, subject: str | None
    ) -> int:
        """Append a school group of this term and return its id."""
        group_id = len(self.city.school_group) + 1
        term_id = self.municipalities[school.municipality].term_id
        self.city.school_group.append((group_id, school.id, term_id, name, kind, grade, subject))
        return group_id

    def add_membership(
        self, group_id: int, person_id: int, role: str, valid_from: dt.date, valid_to: dt.date
    ) -> None:
        """Append a membership row."""
        self.city.membership.append(
            (len(self.city.membership) + 1, group_id, person_id, role, valid_from, valid_to)
        )

    def add_pupil_membership(self, group_id: int, person_id: int) -> None:
        """A pupil in a group for the whole school year."""
        self.add_membership(
            group_id, person_id, MembershipRole.PUPIL.value, self.term_starts_on, self.term_ends_on
        )

    def next_room(self, school: School) -> str:
        """A new room code of the school: wing letter, floor, number ("A101", "B214")."""
        n = school.rooms_used
        school.rooms_used += 1
        return f"{'ABCDEFGH'[n // 36 % 8]}{1 + n % 36 // 12}{1 + n % 12:02d}"
