"""The access policy, table-driven: who reads which partitions, and who may do what.

The world is the one of ``tests/city.py`` written as facts, so that the same cases can be
checked here without a database and in ``tests/server/test_access_facts.py`` with one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.core import GuardianshipKind, MembershipRole, Role, StaffRoleKind
from schemas.core import PartitionKind as K
from sync.policy import (
    AccessFacts,
    Action,
    CityRef,
    GroupRef,
    GroupTie,
    OccurrenceRef,
    Partition,
    SchoolRef,
    SentRef,
    StaffTie,
    Validity,
    WardTie,
    decide,
    household_of,
    readable_partitions,
    roles_on,
)

D = dt.date(2027, 1, 12)  # the day Aino moves from 5A to 5B
BEFORE = D - dt.timedelta(days=1)
LONG_AGO = D - dt.timedelta(days=90)
CITY, SCHOOL_A, SCHOOL_B = 1, 2, 3
G5A, G5B, MA5, G3C = 10, 11, 12, 13
AINO, EERO, OLLI = 100, 101, 102
MOTHER, FATHER, OLLI_PARENT, FORMER, TEACHER, PRINCIPAL, ADMIN, STRANGER = range(200, 208)

OPEN = Validity(LONG_AGO, None)


def tie(group: int, role: MembershipRole, validity: Validity = OPEN) -> GroupTie:
    school = SCHOOL_B if group == G3C else SCHOOL_A
    return GroupTie(group, school, CITY, role, validity)


PUPIL = MembershipRole.PUPIL
AINO_GROUPS = (
    tie(G5A, PUPIL, Validity(LONG_AGO, BEFORE)),
    tie(G5B, PUPIL, Validity(D, None)),
    tie(MA5, PUPIL),
)
EERO_GROUPS = (tie(G3C, PUPIL),)
OLLI_GROUPS = (tie(G5A, PUPIL),)


def ward(pupil: int, kind: GuardianshipKind, until: dt.date | None = None) -> WardTie:
    groups = {AINO: AINO_GROUPS, EERO: EERO_GROUPS, OLLI: OLLI_GROUPS}[pupil]
    return WardTie(pupil, kind, Validity(LONG_AGO, until), groups)


CUSTODIAL, INFO = GuardianshipKind.CUSTODIAL, GuardianshipKind.INFORMATION_ONLY
FACTS = {
    AINO: AccessFacts(AINO, groups=AINO_GROUPS),
    EERO: AccessFacts(EERO, groups=EERO_GROUPS),
    OLLI: AccessFacts(OLLI, groups=OLLI_GROUPS),
    MOTHER: AccessFacts(
        MOTHER,
        wards=(ward(AINO, CUSTODIAL), ward(EERO, CUSTODIAL)),
        household=household_of("Virtaseninkatu 1, Vantaa"),
    ),
    # Separated from the mother: another address.
    FATHER: AccessFacts(
        FATHER, wards=(ward(AINO, INFO),), household=household_of("Lahtisenkatu 2, Vantaa")
    ),
    OLLI_PARENT: AccessFacts(OLLI_PARENT, turvakielto=True, wards=(ward(OLLI, CUSTODIAL),)),
    FORMER: AccessFacts(FORMER, wards=(ward(OLLI, CUSTODIAL, until=BEFORE),)),
    TEACHER: AccessFacts(
        TEACHER,
        groups=tuple(tie(g, MembershipRole.TEACHER) for g in (G5A, G5B, MA5)),
        staff=(StaffTie(SCHOOL_A, CITY, StaffRoleKind.TEACHER, OPEN),),
    ),
    PRINCIPAL: AccessFacts(
        PRINCIPAL, staff=(StaffTie(SCHOOL_A, CITY, StaffRoleKind.PRINCIPAL, OPEN),)
    ),
    ADMIN: AccessFacts(ADMIN, staff=(StaffTie(CITY, CITY, StaffRoleKind.ADMIN, OPEN),)),
    STRANGER: AccessFacts(STRANGER),
}


def parts(*names: str) -> frozenset[Partition]:
    return frozenset(Partition.parse(n) for n in names)


PARTITION_CASES = [
    # A pupil: self, own groups, school, city. Moved today: 5B, no longer 5A.
    ("pupil after moving class", AINO, D, parts(
        "inbox:100", "person:100", "group:11", "group:12", "school:2", "municipality:1")),
    ("pupil before moving class", AINO, BEFORE, parts(
        "inbox:100", "person:100", "group:10", "group:12", "school:2", "municipality:1")),
    # A guardian of two children in two schools sees both, and both schools, and what is for
    # their guardians alone (the pupils above read no *-guardians partition).
    ("guardian of children in two schools", MOTHER, D, parts(
        "inbox:200", "person:100", "person:101", "group:11", "group:12", "group:13",
        "school:2", "school:3", "municipality:1", "group-guardians:11", "group-guardians:12",
        "group-guardians:13", "school-guardians:2", "school-guardians:3",
        "municipality-guardians:1")),
    # Right to information only: reads the child's data; nothing of the half-sibling.
    ("information-only guardian", FATHER, D, parts(
        "inbox:201", "person:100", "group:11", "group:12", "school:2", "municipality:1",
        "group-guardians:11", "group-guardians:12", "school-guardians:2",
        "municipality-guardians:1")),
    ("turvakielto guardian", OLLI_PARENT, D, parts(
        "inbox:202", "person:102", "group:10", "school:2", "municipality:1",
        "group-guardians:10", "school-guardians:2", "municipality-guardians:1")),
    # A guardianship that ended yesterday grants nothing today, everything yesterday.
    ("ended guardianship, today", FORMER, D, parts("inbox:203")),
    ("ended guardianship, last day", FORMER, BEFORE, parts(
        "inbox:203", "person:102", "group:10", "school:2", "municipality:1",
        "group-guardians:10", "school-guardians:2", "municipality-guardians:1")),
    ("teacher of three groups", TEACHER, D, parts(
        "inbox:204", "group:10", "group:11", "group:12", "group-staff:10", "group-staff:11",
        "group-staff:12", "school:2", "school-staff:2", "municipality:1",
        "group-guardians:10", "group-guardians:11", "group-guardians:12",
        "school-guardians:2", "municipality-guardians:1")),
    ("principal", PRINCIPAL, D, parts(
        "inbox:205", "school:2", "school-staff:2", "municipality:1", "school-guardians:2",
        "municipality-guardians:1")),
    ("admin", ADMIN, D, parts("inbox:206", "municipality:1", "municipality-guardians:1")),
    ("nobody in particular", STRANGER, D, parts("inbox:207")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("who", "day", "expected"),
    [case[1:] for case in PARTITION_CASES],
    ids=[case[0] for case in PARTITION_CASES],
)
def test_readable_partitions(who: int, day: dt.date, expected: frozenset[Partition]) -> None:
    assert readable_partitions(FACTS[who], day) == expected


A, B = SchoolRef(SCHOOL_A, CITY), SchoolRef(SCHOOL_B, CITY)
GROUP = {g: GroupRef(g, SCHOOL_B if g == G3C else SCHOOL_A, CITY) for g in (G5A, G5B, MA5, G3C)}
P = FACTS

DECISION_CASES = [
    # (viewer, action, target, day, allowed)
    (MOTHER, Action.ACT_FOR_PUPIL, P[AINO], D, True),
    (MOTHER, Action.ACT_FOR_PUPIL, P[EERO], D, True),
    (FATHER, Action.ACT_FOR_PUPIL, P[AINO], D, False),  # information only: read, never act
    (FATHER, Action.READ_PUPIL_RECORD, P[AINO], D, True),
    (FATHER, Action.READ_PUPIL_RECORD, P[EERO], D, False),
    (MOTHER, Action.READ_PERSON, P[OLLI], D, False),  # another family
    (MOTHER, Action.READ_PUPIL_RECORD, P[OLLI], D, False),
    (MOTHER, Action.READ_CONTACT_DETAILS, P[OLLI_PARENT], D, False),  # turvakielto
    (TEACHER, Action.READ_CONTACT_DETAILS, P[OLLI_PARENT], D, False),  # turvakielto
    (PRINCIPAL, Action.READ_CONTACT_DETAILS, P[OLLI_PARENT], D, True),
    (ADMIN, Action.READ_CONTACT_DETAILS, P[OLLI_PARENT], D, True),
    (OLLI_PARENT, Action.READ_CONTACT_DETAILS, P[OLLI_PARENT], D, True),  # self
    (FATHER, Action.READ_PERSON, P[MOTHER], D, True),  # guardians of one child: the name
    (FATHER, Action.READ_CONTACT_DETAILS, P[MOTHER], D, False),  # ... but they live apart
    (TEACHER, Action.READ_CONTACT_DETAILS, P[MOTHER], D, True),  # a pupil's guardian
    (FORMER, Action.READ_PUPIL_RECORD, P[OLLI], D, False),  # ended yesterday
    (FORMER, Action.READ_PUPIL_RECORD, P[OLLI], BEFORE, True),
    (FORMER, Action.ACT_FOR_PUPIL, P[OLLI], D, False),
    (TEACHER, Action.READ_PUPIL_RECORD, P[OLLI], D, True),  # teaches 5A
    (TEACHER, Action.READ_PUPIL_RECORD, P[EERO], D, False),  # another school
    (PRINCIPAL, Action.READ_PUPIL_RECORD, P[AINO], D, True),
    (PRINCIPAL, Action.READ_PUPIL_RECORD, P[EERO], D, False),
    (AINO, Action.READ_PERSON, P[TEACHER], D, True),
    (AINO, Action.READ_CONTACT_DETAILS, P[TEACHER], D, True),  # work contact of own school
    (AINO, Action.READ_PERSON, P[OLLI], D, False),  # a classmate is another family
    (AINO, Action.READ_CONTACT_DETAILS, P[OLLI_PARENT], D, False),
    (AINO, Action.ACT_FOR_PUPIL, P[AINO], D, False),
    (AINO, Action.READ_PUPIL_RECORD, P[AINO], D, True),
    (EERO, Action.READ_PERSON, P[MOTHER], D, True),
    (STRANGER, Action.READ_PERSON, P[AINO], D, False),
    (STRANGER, Action.READ_PERSON, P[TEACHER], D, False),
    (TEACHER, Action.TEACH_GROUP, GROUP[G5A], D, True),
    (TEACHER, Action.TEACH_GROUP, GROUP[G3C], D, False),
    (MOTHER, Action.TEACH_GROUP, GROUP[G5B], D, False),
    (MOTHER, Action.READ_GROUP, GROUP[G3C], D, True),
    (FATHER, Action.READ_GROUP, GROUP[G3C], D, False),
    (OLLI_PARENT, Action.READ_GROUP, GROUP[G5B], D, False),
    (AINO, Action.READ_GROUP, GROUP[G5A], D, False),  # left 5A yesterday
    (PRINCIPAL, Action.READ_GROUP, GROUP[G5B], D, True),
    (PRINCIPAL, Action.MANAGE_SCHOOL, A, D, True),
    (PRINCIPAL, Action.MANAGE_SCHOOL, B, D, False),
    (ADMIN, Action.MANAGE_SCHOOL, B, D, True),
    (TEACHER, Action.MANAGE_SCHOOL, A, D, False),
    (ADMIN, Action.MANAGE_CITY, CityRef(CITY), D, True),
    (ADMIN, Action.MANAGE_CITY, CityRef(CITY + 1000), D, False),  # another city
    (PRINCIPAL, Action.MANAGE_CITY, CityRef(CITY), D, False),
    (MOTHER, Action.MANAGE_CITY, CityRef(CITY), D, False),
    (TEACHER, Action.READ_GROUP, A, D, False),  # an action that does not fit its target
]


@pytest.mark.parametrize(
    ("viewer", "action", "target", "day", "allowed"),
    DECISION_CASES,
    ids=[f"{v}-{a.value}-{i}" for i, (v, a, *_) in enumerate(DECISION_CASES)],
)
def test_decide(viewer: int, action: Action, target: object, day: dt.date, allowed: bool) -> None:
    decision = decide(FACTS[viewer], action, target, day)  # type: ignore[arg-type]
    assert decision.allowed is allowed, decision.reason
    assert bool(decision) is allowed


def _facts(person: int, **changes: object) -> AccessFacts:
    return dataclasses.replace(FACTS[person], **changes)  # type: ignore[arg-type]


# The same father, living with the mother (the address written differently), or apart with
# the mother's line in the roster letting the child's other guardians see her contact.
SAME_HOME = _facts(FATHER, household=household_of("  VIRTASENINKATU 1,vantaa "))
SHARED_MOTHER = _facts(MOTHER, shares_contact_with_guardians=True)
PROTECTED_MOTHER = _facts(MOTHER, turvakielto=True, shares_contact_with_guardians=True)
NO_HOME = _facts(FATHER, household=None)
HOMELESS_MOTHER = _facts(MOTHER, household=None)
# A teacher whose job and groups ended yesterday, as a OneRoster delta leaves them.
FORMER_TEACHER = _facts(
    TEACHER,
    groups=tuple(tie(g, MembershipRole.TEACHER, Validity(LONG_AGO, BEFORE)) for g in (G5A, G5B)),
    staff=(StaffTie(SCHOOL_A, CITY, StaffRoleKind.TEACHER, Validity(LONG_AGO, BEFORE)),),
)
# Sent by the teacher: a form request to 5B, a bulletin to 5B, one to the school, one to the city.
FORM_5B = SentRef(TEACHER, CITY, SCHOOL_A, G5B)
BULLETIN_5B = SentRef(TEACHER, CITY, SCHOOL_A, G5B)
BULLETIN_SCHOOL_B = SentRef(TEACHER, CITY, SCHOOL_B)
BULLETIN_CITY = SentRef(ADMIN, CITY)
LESSON_3C = OccurrenceRef(GROUP[G3C], teacher_id=TEACHER, substitute_id=None)
LESSON_5A = OccurrenceRef(GROUP[G5A], teacher_id=PRINCIPAL, substitute_id=TEACHER)

# (case, viewer, action, target, the rule that decides: its reason, or "denied")
REASON_CASES = [
    ("co-guardians at one address", SAME_HOME, Action.READ_CONTACT_DETAILS, P[MOTHER],
     "guardians of the same pupil, one household"),
    ("co-guardians apart", P[FATHER], Action.READ_CONTACT_DETAILS, P[MOTHER], "denied"),
    ("co-guardians apart: still the name", P[FATHER], Action.READ_PERSON, P[MOTHER],
     "guardians of the same pupil"),
    ("co-guardians apart, the roster shares", P[FATHER], Action.READ_CONTACT_DETAILS,
     SHARED_MOTHER, "guardians of the same pupil, shared by the roster"),
    ("the roster shares one way only", SHARED_MOTHER, Action.READ_CONTACT_DETAILS, P[FATHER],
     "denied"),
    ("no address is no household", NO_HOME, Action.READ_CONTACT_DETAILS, HOMELESS_MOTHER,
     "denied"),
    ("turvakielto wins over the household", SAME_HOME, Action.READ_CONTACT_DETAILS,
     PROTECTED_MOTHER, "denied"),
    ("turvakielto wins over the roster", P[FATHER], Action.READ_CONTACT_DETAILS,
     PROTECTED_MOTHER, "denied"),
    ("a guardian's own child, any address", P[FATHER], Action.READ_CONTACT_DETAILS, P[AINO],
     "guardian of the pupil"),
    ("staff still see a guardian's contact", P[TEACHER], Action.READ_CONTACT_DETAILS,
     P[FATHER], "staff of the person's school"),
    # What was sent: the author reads the report only through today's ties.
    ("the sender who teaches the group", P[TEACHER], Action.READ_RESPONSES, FORM_5B,
     "teacher of the group"),
    ("the sender whose ties ended", FORMER_TEACHER, Action.READ_RESPONSES, FORM_5B, "denied"),
    ("the school's principal", P[PRINCIPAL], Action.READ_RESPONSES, FORM_5B,
     "principal of the school"),
    ("the city's admin", P[ADMIN], Action.READ_RESPONSES, FORM_5B, "admin of the school's city"),
    ("a guardian of the group", P[MOTHER], Action.READ_RESPONSES, FORM_5B, "denied"),
    ("the author who teaches the group", P[TEACHER], Action.READ_DELIVERY, BULLETIN_5B,
     "author, teacher of the group"),
    ("the author whose ties ended", FORMER_TEACHER, Action.READ_DELIVERY, BULLETIN_5B, "denied"),
    ("the author, no longer at that school", P[TEACHER], Action.READ_DELIVERY,
     BULLETIN_SCHOOL_B, "denied"),
    ("not the author", P[TEACHER], Action.READ_DELIVERY, SentRef(PRINCIPAL, CITY, SCHOOL_A),
     "denied"),
    ("a city bulletin's admin", P[ADMIN], Action.READ_DELIVERY, BULLETIN_CITY, "admin of the city"),
    ("a report is not a person", P[ADMIN], Action.READ_PERSON, BULLETIN_CITY, "denied"),
    # A lesson the timetable names someone for: only while they work at the school.
    ("named for a lesson elsewhere", P[TEACHER], Action.READ_LESSON, LESSON_3C, "denied"),
    ("substitute at own school", P[TEACHER], Action.READ_LESSON, LESSON_5A,
     "reader of the group"),
    ("named, but the job ended", FORMER_TEACHER, Action.READ_LESSON,
     OccurrenceRef(GROUP[MA5], TEACHER, None), "denied"),
    ("a pupil's guardian", P[MOTHER], Action.READ_LESSON, LESSON_3C, "reader of the group"),
    # Form definitions: the staff of the school or, for a city's, of the city.
    ("definitions, a teacher's school", P[TEACHER], Action.USE_FORM_DEFINITIONS, A,
     "staff of the school"),
    ("definitions, another school", P[TEACHER], Action.USE_FORM_DEFINITIONS, B, "denied"),
    ("definitions, the city's admin", P[ADMIN], Action.USE_FORM_DEFINITIONS, B,
     "admin of the school's city"),
    ("definitions of the city", P[TEACHER], Action.USE_FORM_DEFINITIONS, CityRef(CITY),
     "staff in the city"),
    ("definitions, a guardian", P[MOTHER], Action.USE_FORM_DEFINITIONS, A, "denied"),
    ("definitions, after the job", FORMER_TEACHER, Action.USE_FORM_DEFINITIONS, A, "denied"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("viewer", "action", "target", "reason"),
    [case[1:] for case in REASON_CASES],
    ids=[case[0] for case in REASON_CASES],
)
def test_the_rule_that_decides(
    viewer: AccessFacts, action: Action, target: object, reason: str
) -> None:
    decision = decide(viewer, action, target, D)  # type: ignore[arg-type]
    assert (decision.allowed, decision.reason) == (reason != "denied", reason)


def test_households_compare_normalised_addresses() -> None:
    assert household_of(" Koivukuja 3 B,  01300 VANTAA ") == "koivukuja 3 b, 01300 vantaa"
    assert household_of("koivukuja 3 b,01300 Vantaa") == household_of("KOIVUKUJA 3 B, 01300 VANTAA")
    assert household_of("Koivukuja 3 A, 01300 Vantaa") != household_of(
        "Koivukuja 3 B, 01300 Vantaa"
    )
    assert household_of("\uff2boivukuja 3") == household_of(
        "koivukuja 3"
    )  # NFKC: full-width letters
    assert household_of(None) is None
    assert household_of(" , ") is None


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        (AINO, {Role.PUPIL}),
        (MOTHER, {Role.GUARDIAN}),
        (FATHER, {Role.GUARDIAN}),
        (FORMER, set()),
        (TEACHER, {Role.TEACHER}),
        (PRINCIPAL, {Role.PRINCIPAL}),
        (ADMIN, {Role.ADMIN}),
        (STRANGER, set()),
    ],
)
def test_roles_on(who: int, expected: set[Role]) -> None:
    assert roles_on(FACTS[who], D) == expected


def test_partition_names_round_trip() -> None:
    for name in ("person:1", "group-staff:42", "school-staff:7", "inbox:9"):
        assert str(Partition.parse(name)) == name
    for bad in ("person", "person:", "person:x", "nope:1", ":1"):
        with pytest.raises(ValueError, match=r"."):
            Partition.parse(bad)
    assert Partition.parse("group:3") == Partition(K.GROUP, 3)


# Deny by default, as a property: whatever ties a person has, none of which holds on the day,
# they read their inbox and nothing else, and every decision about others is a refusal.
_past = st.dates(min_value=dt.date(2020, 1, 1), max_value=BEFORE)


@st.composite
def _validity_before_d(draw: st.DrawFn) -> Validity:
    start = draw(_past)
    end = draw(st.dates(min_value=start, max_value=BEFORE))
    return Validity(start, end)


@st.composite
def _expired_facts(draw: st.DrawFn) -> AccessFacts:
    ids = st.integers(min_value=1, max_value=50)
    groups = draw(
        st.lists(
            st.builds(
                GroupTie, ids, ids, ids, st.sampled_from(MembershipRole), _validity_before_d()
            )
        )
    )
    wards = draw(
        st.lists(
            st.builds(
                WardTie,
                ids,
                st.sampled_from(GuardianshipKind),
                _validity_before_d(),
                st.just(tuple(groups)),
            )
        )
    )
    staff = draw(
        st.lists(
            st.builds(StaffTie, ids, ids, st.sampled_from(StaffRoleKind), _validity_before_d())
        )
    )
    return AccessFacts(1000, draw(st.booleans()), tuple(groups), tuple(wards), tuple(staff))


@given(viewer=_expired_facts(), action=st.sampled_from(Action))
def test_nothing_is_granted_by_ties_that_have_ended(viewer: AccessFacts, action: Action) -> None:
    assert readable_partitions(viewer, D) == {Partition(K.INBOX, 1000)}
    assert roles_on(viewer, D) == frozenset()
    # Having sent something grants nothing on its own either.
    sent = [SentRef(viewer.person_id, CITY, school, group) for school, group in
            ((SCHOOL_A, G5A), (SCHOOL_A, None), (None, None))]  # fmt: skip
    named = [OccurrenceRef(GROUP[G5A], viewer.person_id, viewer.person_id)]
    for target in (*FACTS.values(), *GROUP.values(), A, B, *sent, *named):
        assert not decide(viewer, action, target, D)
