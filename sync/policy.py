"""The one access policy: what a person may read and do, on a given day.

Every route, the sync engine and the notification fan-out decide access here and nowhere else.
The policy is a pure function of :class:`AccessFacts` (a person's memberships, guardianships
and staff roles, with their validity periods) and a date; the server loads the facts
(``server/access.py``), this module decides. Deny by default: a permission exists only where
a rule below grants it, and each grant names its reason, so a test or an audit can tell why.

``readable_partitions`` has a twin in SQL for the notification fan-out
(``server.access.readers_condition``, tested to agree in ``tests/server/test_access_sql.py``):
change a rule here, change it there.

Partitions are the units synced data lives in (``schemas.core.PartitionKind`` says what each
holds). A person reads:

==========================  ===============================================================
who                         partitions
==========================  ===============================================================
anyone                      ``inbox:<self>``
a pupil                     ``person:<self>``, each current group, its school and city
a guardian (either kind)    ``person:<child>``, the child's current groups, school and city,
                            and the ``*-guardians`` partition of each
a teacher of a group        ``group:<g>``, ``group-staff:<g>`` and ``group-guardians:<g>``
staff of a school           ``school:<s>``, ``school-staff:<s>``, ``school-guardians:<s>``,
                            the city and ``municipality-guardians:<m>``
an admin of a municipality  ``municipality:<m>`` and ``municipality-guardians:<m>``
==========================  ===============================================================

The ``*-guardians`` partitions hold what is for the guardians and not for the pupils (a
bulletin to a class's guardians): a pupil never reads them.

A right-to-information-only guardian reads what a custodial one reads but may not act for the
child. An ended guardianship or membership grants nothing from the day after its last day.

Having made something grants nothing on its own: the author of a bulletin or the sender of a
form request reads its report only through a tie that holds today (:class:`SentRef`).

Two guardians of one child see each other's name, but each other's contact details only when
they live at the same address (:func:`household_of`) or when the roster lets the child's other
guardians see them (``AccessFacts.shares_contact_with_guardians``): in a separated family the
other parent's address is not the school's to give.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from schemas.core import GuardianshipKind, MembershipRole, PartitionKind, Role, StaffRoleKind


@dataclass(frozen=True, slots=True, order=True)
class Partition:
    """A unit of synced data, named ``kind:id`` on the wire."""

    kind: PartitionKind
    id: int

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.id}"

    @classmethod
    def parse(cls, name: str) -> Partition:
        """The partition named ``kind:id``; ValueError if the name is not one."""
        kind, sep, ident = name.rpartition(":")
        if not sep or not ident.isdigit():
            raise ValueError(f"not a partition name: {name!r}")
        return cls(PartitionKind(kind), int(ident))


@dataclass(frozen=True, slots=True)
class Validity:
    """A period of days, both ends inclusive; ``valid_to`` None means still open."""

    valid_from: dt.date
    valid_to: dt.date | None

    def holds_on(self, day: dt.date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True, slots=True)
class GroupTie:
    """A membership of a person in a group, with the group's school and that school's city."""

    group_id: int
    school_id: int
    municipality_id: int
    role: MembershipRole
    validity: Validity


@dataclass(frozen=True, slots=True)
class WardTie:
    """A guardianship seen from the guardian: the pupil, its kind, and the pupil's groups."""

    pupil_id: int
    kind: GuardianshipKind
    validity: Validity
    pupil_groups: tuple[GroupTie, ...]


@dataclass(frozen=True, slots=True)
class StaffTie:
    """A staff role at a school or a municipality."""

    organisation_id: int
    municipality_id: int
    """The organisation itself when it is a municipality."""
    role: StaffRoleKind
    validity: Validity


@dataclass(frozen=True, slots=True)
class AccessFacts:
    """Everything the policy needs to know about one person, over all time."""

    person_id: int
    turvakielto: bool = False
    groups: tuple[GroupTie, ...] = ()
    wards: tuple[WardTie, ...] = ()
    staff: tuple[StaffTie, ...] = ()
    household: str | None = None
    """The person's home address as :func:`household_of` compares it; None without one."""
    shares_contact_with_guardians: bool = False
    """The roster lets the other guardians of this person's children see their contact
    details even outside one household (OneRoster ``metadata.fi.shareContactWithGuardians``)."""

    def groups_on(self, day: dt.date, role: MembershipRole | None = None) -> list[GroupTie]:
        return [
            g for g in self.groups if g.validity.holds_on(day) and (role is None or g.role == role)
        ]

    def wards_on(self, day: dt.date, kind: GuardianshipKind | None = None) -> list[WardTie]:
        return [
            w for w in self.wards if w.validity.holds_on(day) and (kind is None or w.kind == kind)
        ]

    def staff_on(self, day: dt.date, role: StaffRoleKind | None = None) -> list[StaffTie]:
        return [
            s for s in self.staff if s.validity.holds_on(day) and (role is None or s.role == role)
        ]

    def school_ids_on(self, day: dt.date) -> set[int]:
        """Schools this person belongs to today as pupil, teacher or staff (not as guardian)."""
        schools = {g.school_id for g in self.groups_on(day)}
        schools.update(
            s.organisation_id for s in self.staff_on(day) if s.role != StaffRoleKind.ADMIN
        )
        return schools

    def family_school_ids_on(self, day: dt.date) -> set[int]:
        """Schools of this person's current wards."""
        return {
            g.school_id
            for w in self.wards_on(day)
            for g in w.pupil_groups
            if g.validity.holds_on(day)
        }

    def municipality_ids_on(self, day: dt.date) -> set[int]:
        cities = {g.municipality_id for g in self.groups_on(day)}
        cities.update(s.municipality_id for s in self.staff_on(day))
        cities.update(
            g.municipality_id
            for w in self.wards_on(day)
            for g in w.pupil_groups
            if g.validity.holds_on(day)
        )
        return cities


def household_of(street_address: str | None) -> str | None:
    """What makes two addresses one household: the address Unicode-normalised (NFKC),
    casefolded, each comma-separated part with its whitespace collapsed, empty parts dropped.
    ``"Koivukuja 3 B,  01300 VANTAA"`` and ``"koivukuja 3 b, 01300 Vantaa"`` are one household;
    a different staircase, flat or postcode is another. No address is no household."""
    if not street_address:
        return None
    text = unicodedata.normalize("NFKC", street_address).casefold()
    parts = (" ".join(part.split()) for part in text.split(","))
    return ", ".join(part for part in parts if part) or None


def roles_on(facts: AccessFacts, day: dt.date) -> frozenset[Role]:
    """The roles a person has on ``day``; a person may have several (a teacher who is a parent)."""
    roles: set[Role] = set()
    if facts.groups_on(day, MembershipRole.PUPIL):
        roles.add(Role.PUPIL)
    if facts.wards_on(day):
        roles.add(Role.GUARDIAN)
    if facts.groups_on(day, MembershipRole.TEACHER) or facts.staff_on(day, StaffRoleKind.TEACHER):
        roles.add(Role.TEACHER)
    if facts.staff_on(day, StaffRoleKind.PRINCIPAL):
        roles.add(Role.PRINCIPAL)
    if facts.staff_on(day, StaffRoleKind.ADMIN):
        roles.add(Role.ADMIN)
    return frozenset(roles)


def readable_partitions(facts: AccessFacts, day: dt.date) -> frozenset[Partition]:
    """The partitions ``facts.person_id`` may read on ``day``. See the module's table."""
    kind = PartitionKind
    found: set[Partition] = {Partition(kind.INBOX, facts.person_id)}

    def add_community(tie: GroupTie, *, adult: bool) -> None:
        found.add(Partition(kind.GROUP, tie.group_id))
        found.add(Partition(kind.SCHOOL, tie.school_id))
        found.add(Partition(kind.MUNICIPALITY, tie.municipality_id))
        if adult:
            found.add(Partition(kind.GROUP_GUARDIANS, tie.group_id))
            found.add(Partition(kind.SCHOOL_GUARDIANS, tie.school_id))
            found.add(Partition(kind.MUNICIPALITY_GUARDIANS, tie.municipality_id))

    for tie in facts.groups_on(day):
        pupil = tie.role == MembershipRole.PUPIL
        add_community(tie, adult=not pupil)
        if pupil:
            found.add(Partition(kind.PERSON, facts.person_id))
        else:
            found.add(Partition(kind.GROUP_STAFF, tie.group_id))
            found.add(Partition(kind.SCHOOL_STAFF, tie.school_id))
    for ward in facts.wards_on(day):
        found.add(Partition(kind.PERSON, ward.pupil_id))
        for tie in ward.pupil_groups:
            if tie.validity.holds_on(day):
                add_community(tie, adult=True)
    for staff in facts.staff_on(day):
        found.add(Partition(kind.MUNICIPALITY, staff.municipality_id))
        found.add(Partition(kind.MUNICIPALITY_GUARDIANS, staff.municipality_id))
        if staff.role != StaffRoleKind.ADMIN:
            found.add(Partition(kind.SCHOOL, staff.organisation_id))
            found.add(Partition(kind.SCHOOL_STAFF, staff.organisation_id))
            found.add(Partition(kind.SCHOOL_GUARDIANS, staff.organisation_id))
    return frozenset(found)


class Action(StrEnum):
    """What a person may ask to do. Each names its target kind after the dot."""

    READ_PERSON = "person.read"
    """See a person's name and role in the viewer's school life."""
    READ_CONTACT_DETAILS = "person.read_contact_details"
    """See a person's e-mail, phone and street address."""
    READ_PUPIL_RECORD = "person.read_pupil_record"
    """Read a pupil's own school data (absences, forms about the pupil)."""
    ACT_FOR_PUPIL = "person.act_for_pupil"
    """Report or explain an absence, sign a form: custodial guardians only."""
    READ_GROUP = "group.read"
    TEACH_GROUP = "group.teach"
    """Mark roll call, message the group's guardians."""
    MANAGE_SCHOOL = "school.manage"
    """School-wide bulletins and staff views of a school."""
    MANAGE_CITY = "municipality.manage"
    """City-wide bulletins: the city's admins."""
    MARK_ROLL_CALL = "lesson.mark_roll_call"
    """Mark who is present at one lesson occurrence."""
    READ_LESSON = "lesson.read"
    """See a lesson occurrence in one's timetable (its group, room, teacher and changes)."""
    READ_RESPONSES = "sent.read_responses"
    """See a form request's answers and signatures: pupil records of its group."""
    READ_DELIVERY = "sent.read_delivery"
    """See whom a bulletin reached, by name and channel (never contact details)."""
    USE_FORM_DEFINITIONS = "organisation.use_form_definitions"
    """Read (and so send) a school's or a city's form definitions."""


@dataclass(frozen=True, slots=True)
class GroupRef:
    group_id: int
    school_id: int
    municipality_id: int


@dataclass(frozen=True, slots=True)
class SchoolRef:
    school_id: int
    municipality_id: int


@dataclass(frozen=True, slots=True)
class CityRef:
    municipality_id: int


@dataclass(frozen=True, slots=True)
class OccurrenceRef:
    """One dated occurrence of a lesson: its group, its teacher and that day's substitute."""

    group: GroupRef
    teacher_id: int | None
    substitute_id: int | None


@dataclass(frozen=True, slots=True)
class SentRef:
    """Something a person sent out (a form request, a bulletin): its author, and where it went:
    a school (and a group of it), or a whole city when ``school_id`` is None."""

    author_id: int
    municipality_id: int
    school_id: int | None = None
    group_id: int | None = None


Target = AccessFacts | GroupRef | SchoolRef | CityRef | OccurrenceRef | SentRef


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer, with the rule that gave it (``denied`` when none did)."""

    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


DENIED = Decision(False, "denied")


def _grant(reason: str) -> Decision:
    return Decision(True, reason)


def _is_guardian_of(guardian: AccessFacts, pupil_id: int, day: dt.date) -> bool:
    return any(w.pupil_id == pupil_id for w in guardian.wards_on(day))


def _is_custodian_of(guardian: AccessFacts, pupil_id: int, day: dt.date) -> bool:
    return any(w.pupil_id == pupil_id for w in guardian.wards_on(day, GuardianshipKind.CUSTODIAL))


CO_GUARDIANS = "guardians of the same pupil"


def _family_ties(viewer: AccessFacts, target: AccessFacts, day: dt.date) -> str | None:
    """How two people are family in Reppu's eyes today, or None."""
    if _is_guardian_of(viewer, target.person_id, day):
        return "guardian of the pupil"
    if _is_guardian_of(target, viewer.person_id, day):
        return "pupil of the guardian"
    shared = {w.pupil_id for w in viewer.wards_on(day)} & {w.pupil_id for w in target.wards_on(day)}
    if shared:
        return CO_GUARDIANS
    return None


def _staff_schools(facts: AccessFacts, day: dt.date, *roles: StaffRoleKind) -> set[int]:
    return {s.organisation_id for s in facts.staff_on(day) if not roles or s.role in roles}


def _admin_cities(facts: AccessFacts, day: dt.date) -> set[int]:
    return {s.municipality_id for s in facts.staff_on(day, StaffRoleKind.ADMIN)}


def _target_schools(target: AccessFacts, day: dt.date) -> set[int]:
    return target.school_ids_on(day) | target.family_school_ids_on(day)


def _decide_about_person(
    viewer: AccessFacts, action: Action, target: AccessFacts, day: dt.date
) -> Decision:
    if viewer.person_id == target.person_id:
        if action == Action.ACT_FOR_PUPIL:
            return DENIED  # Pupils act for themselves through their own rules (age), not here.
        return _grant("self")
    family = _family_ties(viewer, target, day)
    target_schools = _target_schools(target, day)
    principal_of = _staff_schools(viewer, day, StaffRoleKind.PRINCIPAL) & target_schools
    staff_of = _staff_schools(viewer, day, StaffRoleKind.PRINCIPAL, StaffRoleKind.TEACHER)
    staff_of &= target_schools
    admin_of = _admin_cities(viewer, day) & target.municipality_ids_on(day)

    if action == Action.ACT_FOR_PUPIL:
        if _is_custodian_of(viewer, target.person_id, day):
            return _grant("custodial guardian")
        return DENIED

    if action == Action.READ_PUPIL_RECORD:
        if _is_guardian_of(viewer, target.person_id, day):
            return _grant("guardian of the pupil")
        taught = {g.group_id for g in viewer.groups_on(day, MembershipRole.TEACHER)}
        if taught & {g.group_id for g in target.groups_on(day, MembershipRole.PUPIL)}:
            return _grant("teacher of the pupil's group")
        if principal_of & target.school_ids_on(day):
            return _grant("principal of the pupil's school")
        return DENIED

    if action == Action.READ_CONTACT_DETAILS and target.turvakielto:
        # Turvakielto: the address of a protected person is kept even from family (it often
        # protects a parent from the other one); only the school's leadership and the city's
        # administration see it.
        if principal_of:
            return _grant("principal of the protected person's school")
        if admin_of:
            return _grant("admin of the protected person's city")
        return DENIED

    if action == Action.READ_CONTACT_DETAILS and family == CO_GUARDIANS:
        # Co-guardians may live apart (a separated family): their e-mail, phone and address
        # are each other's only within one household or where the roster says so. The
        # school-wide rules below may still grant them (a guardian who teaches there).
        if viewer.household is not None and viewer.household == target.household:
            return _grant("guardians of the same pupil, one household")
        if target.shares_contact_with_guardians:
            return _grant("guardians of the same pupil, shared by the roster")
        family = None

    if action in (Action.READ_PERSON, Action.READ_CONTACT_DETAILS):
        if family:
            return _grant(family)
        if staff_of:
            return _grant("staff of the person's school")
        if admin_of:
            return _grant("admin of the person's city")
        # A staff member's name and work contact are open to the school community they serve.
        target_staff_schools = _staff_schools(
            target, day, StaffRoleKind.TEACHER, StaffRoleKind.PRINCIPAL
        )
        if target_staff_schools & (viewer.school_ids_on(day) | viewer.family_school_ids_on(day)):
            return _grant("staff member of the viewer's school")
        return DENIED

    return DENIED


def _works_at(viewer: AccessFacts, school_id: int, day: dt.date) -> bool:
    return school_id in _staff_schools(viewer, day, StaffRoleKind.TEACHER, StaffRoleKind.PRINCIPAL)


def _decide_about_lesson(viewer: AccessFacts, target: OccurrenceRef, day: dt.date) -> Decision:
    group = target.group
    if decide(viewer, Action.READ_GROUP, group, day):
        return _grant("reader of the group")
    if decide(viewer, Action.TEACH_GROUP, group, day):
        return _grant("teacher of the group")
    # The timetable names a teacher or a substitute, and may outlive their job: the name
    # counts only while they still work at the school.
    named = viewer.person_id in (target.teacher_id, target.substitute_id)
    if named and _works_at(viewer, group.school_id, day):
        return _grant("teacher or substitute of the lesson, staff of the school")
    return DENIED


def _decide_about_sent(
    viewer: AccessFacts, action: Action, target: SentRef, day: dt.date
) -> Decision:
    """Reports of something sent. The author gets nothing for having written it: they read
    the report through a tie that holds today, like anyone else."""
    school = (
        None if target.school_id is None else SchoolRef(target.school_id, target.municipality_id)
    )
    if school is not None:
        leads = decide(viewer, Action.MANAGE_SCHOOL, school, day)
    else:
        leads = decide(viewer, Action.MANAGE_CITY, CityRef(target.municipality_id), day)
    if leads:
        return leads
    group = (
        None
        if school is None or target.group_id is None
        else GroupRef(target.group_id, school.school_id, school.municipality_id)
    )
    if action == Action.READ_RESPONSES:
        # Answers and signatures are pupil records: the group's teachers read them.
        if group is not None and decide(viewer, Action.TEACH_GROUP, group, day):
            return _grant("teacher of the group")
        return DENIED
    if action == Action.READ_DELIVERY and target.author_id == viewer.person_id:
        if group is not None and decide(viewer, Action.TEACH_GROUP, group, day):
            return _grant("author, teacher of the group")
        if school is not None and _works_at(viewer, school.school_id, day):
            return _grant("author, staff of the school")
        city_staff = {s.municipality_id for s in viewer.staff_on(day)}
        if school is None and target.municipality_id in city_staff:
            return _grant("author, staff of the city")
    return DENIED


def decide(viewer: AccessFacts, action: Action, target: Target, day: dt.date) -> Decision:
    """May ``viewer`` do ``action`` to ``target`` on ``day``? Deny unless a rule grants it."""
    if isinstance(target, AccessFacts):
        return _decide_about_person(viewer, action, target, day)
    if isinstance(target, SentRef):
        if action not in (Action.READ_RESPONSES, Action.READ_DELIVERY):
            return DENIED
        return _decide_about_sent(viewer, action, target, day)
    if isinstance(target, GroupRef):
        if action == Action.READ_GROUP:
            partitions = readable_partitions(viewer, day)
            if Partition(PartitionKind.GROUP, target.group_id) in partitions:
                return _grant("member of the group or guardian of one")
            if target.school_id in _staff_schools(viewer, day, StaffRoleKind.PRINCIPAL):
                return _grant("principal of the group's school")
            return DENIED
        if action == Action.TEACH_GROUP:
            taught = {g.group_id for g in viewer.groups_on(day, MembershipRole.TEACHER)}
            if target.group_id in taught:
                return _grant("teacher of the group")
            return DENIED
        return DENIED
    if isinstance(target, OccurrenceRef):
        if action == Action.READ_LESSON:
            return _decide_about_lesson(viewer, target, day)
        if action != Action.MARK_ROLL_CALL:
            return DENIED
        # The lesson's teacher and the day's substitute are named by the timetable, which
        # may outlive a job: they must still work at the school.
        works_there = _works_at(viewer, target.group.school_id, day)
        if works_there and target.substitute_id == viewer.person_id:
            return _grant("substitute for the occurrence")
        if works_there and target.teacher_id == viewer.person_id:
            return _grant("teacher of the lesson")
        if decide(viewer, Action.TEACH_GROUP, target.group, day):
            return _grant("teacher of the group")
        return DENIED
    if isinstance(target, CityRef):
        if action == Action.MANAGE_CITY and target.municipality_id in _admin_cities(viewer, day):
            return _grant("admin of the city")
        city_staff = {s.municipality_id for s in viewer.staff_on(day)}
        if action == Action.USE_FORM_DEFINITIONS and target.municipality_id in city_staff:
            return _grant("staff in the city")
        return DENIED
    if action == Action.USE_FORM_DEFINITIONS:
        if target.school_id in _staff_schools(viewer, day):
            return _grant("staff of the school")
        return decide(viewer, Action.MANAGE_SCHOOL, target, day)
    if action == Action.MANAGE_SCHOOL:
        if target.school_id in _staff_schools(viewer, day, StaffRoleKind.PRINCIPAL):
            return _grant("principal of the school")
        if target.municipality_id in _admin_cities(viewer, day):
            return _grant("admin of the school's city")
    return DENIED
