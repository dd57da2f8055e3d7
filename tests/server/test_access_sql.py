"""The policy's readers as SQL (``server.access.readers_condition``) agree with the policy.

The fan-out decides who of a whole audience may read an item's partition in SQL, not by
loading each candidate's facts into ``sync.policy.readable_partitions``. Both must say the
same thing: for every person of the test city (with the odd ties added below), every
partition a notification can live in, and days before, on and after the ties change, the
people the SQL lets in are exactly those the policy lets read the partition. Runs on both
backends.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.core import (
    GuardianshipKind,
    MembershipRole,
    OrganisationKind,
    PartitionKind,
    StaffRoleKind,
)
from server.access import load_access_facts, readers_condition
from server.db.tables import (
    Guardianship,
    Membership,
    Organisation,
    Person,
    SchoolGroup,
    StaffRole,
)
from sync.policy import Partition, readable_partitions
from tests.city import City

_GROUP_KINDS = (PartitionKind.GROUP, PartitionKind.GROUP_GUARDIANS, PartitionKind.GROUP_STAFF)
_ORG_KINDS = (
    PartitionKind.SCHOOL,
    PartitionKind.SCHOOL_GUARDIANS,
    PartitionKind.SCHOOL_STAFF,
    PartitionKind.MUNICIPALITY,
    PartitionKind.MUNICIPALITY_GUARDIANS,
)
_PERSON_KINDS = (PartitionKind.PERSON, PartitionKind.INBOX)


async def _odd_ties(c: City) -> None:
    """Ties the hand-written city lacks, each one a rule's edge: an admin's role at a school
    (no school partitions), a teacher's role at the city itself, a pupil who also teaches a
    group (their guardians read it as a ward's group), staff roles that ended yesterday or
    start tomorrow, and a second city whose school shares nothing with the first."""
    yesterday, tomorrow = c.today - dt.timedelta(days=1), c.today + dt.timedelta(days=1)
    edge_admin = Person(given_name="Eila", family_name="Admin")
    city_teacher = Person(given_name="Kalle", family_name="Kaupunki")
    gone, coming = Person(given_name="Mennyt", family_name="M"), Person(given_name="Tuleva")
    for person in (edge_admin, city_teacher, gone, coming):
        await person.save()
    other_city = Organisation(kind=OrganisationKind.MUNICIPALITY, name="Espoo")
    await other_city.save()
    other_school = Organisation(kind=OrganisationKind.SCHOOL, name="Tapiola", parent=other_city.id)
    await other_school.save()
    roles = [
        (edge_admin.id, c.school_b, StaffRoleKind.ADMIN, c.today, None),
        (city_teacher.id, c.city, StaffRoleKind.TEACHER, c.today, None),
        (gone.id, c.school_a, StaffRoleKind.TEACHER, c.today - dt.timedelta(days=30), yesterday),
        (coming.id, other_school.id, StaffRoleKind.PRINCIPAL, tomorrow, None),
    ]
    await StaffRole.insert(
        *(
            StaffRole(person=p, organisation=o, role=r, valid_from=f, valid_to=t)
            for p, o, r, f, t in roles
        )
    )
    await Membership.insert(
        Membership(
            group=c.class_3c,
            person=c.aino,
            role=MembershipRole.TEACHER,
            valid_from=c.today,
            valid_to=None,
        )
    )


async def _ids(sql: str) -> list[int]:
    return [int(r["id"]) for r in await Person.raw(sql)]


async def _readers(partitions: list[Partition], day: dt.date) -> set[int]:
    """Everyone ``readers_condition`` lets read one of ``partitions`` on ``day``."""
    condition, args = readers_condition("p.id", partitions, day)
    # The condition holds only bound markers; its values go as arguments.
    rows = await Person.raw(f"SELECT p.id FROM person p WHERE {condition}", *args)  # noqa: S608
    return {int(r["id"]) for r in rows}


async def test_sql_readers_are_the_policys_readers(fx_city: City) -> None:
    c = fx_city
    await _odd_ties(c)
    people = await _ids("SELECT id FROM person ORDER BY id")
    groups = await _ids("SELECT id FROM school_group ORDER BY id")
    organisations = await _ids("SELECT id FROM organisation ORDER BY id")
    assert await SchoolGroup.count() == len(groups)
    assert await Organisation.count() >= 5
    partitions = [Partition(k, g) for k in _GROUP_KINDS for g in groups]
    partitions += [Partition(k, o) for k in _ORG_KINDS for o in organisations]
    partitions += [Partition(k, p) for k in _PERSON_KINDS for p in people]
    assert {p.kind for p in partitions} == set(PartitionKind), "a kind left untested"
    facts = await load_access_facts(people)
    days = [c.today + dt.timedelta(days=n) for n in (-120, -1, 0, 1, 400)]
    granted = 0
    for day in days:
        readable = {p: readable_partitions(facts[p], day) for p in people}
        for partition in partitions:
            by_sql = await _readers([partition], day)
            by_policy = {p for p in people if partition in readable[p]}
            assert by_sql == by_policy, (str(partition), day)
            granted += len(by_policy)
    assert granted > 200  # the comparison is not between empty sets


async def test_several_partitions_are_any_of_them(fx_city: City) -> None:
    c = fx_city
    wanted = [
        Partition(PartitionKind.GROUP_STAFF, c.class_5a),
        Partition(PartitionKind.INBOX, c.mother),
    ]
    assert await _readers(wanted, c.today) == {c.teacher, c.mother}
    assert await _readers([], c.today) == set()


_DAYS = st.integers(min_value=-3, max_value=3)
_TIES = settings(
    max_examples=25,
    deadline=None,
    # The city is made once for the test; each example's ties are removed after it.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _validity(c: City, start: int, length: int | None) -> tuple[dt.date, dt.date | None]:
    first = c.today + dt.timedelta(days=start)
    return first, None if length is None else first + dt.timedelta(days=length)


@_TIES
@given(data=st.data())
async def test_random_ties_give_the_same_readers(fx_city: City, data: st.DataObject) -> None:
    """Random memberships, guardianships and staff roles among the city's people, each with
    a validity that may start or end around today: the SQL's readers are the policy's."""
    c = fx_city
    people = [c.aino, c.eero, c.olli, c.mother, c.father, c.teacher, c.principal, c.admin]
    groups = [c.class_5a, c.class_5b, c.math_a, c.class_3c]
    organisations = [c.city, c.school_a, c.school_b]
    pick = st.sampled_from
    validity = st.tuples(_DAYS, st.none() | st.integers(min_value=0, max_value=3))
    memberships = data.draw(
        st.lists(st.tuples(pick(groups), pick(people), pick(list(MembershipRole)), validity),
                 max_size=4),
        label="memberships",
    )  # fmt: skip
    wards = data.draw(
        st.lists(st.tuples(pick(people), pick(people), validity), max_size=3), label="wards"
    )
    staff = data.draw(
        st.lists(st.tuples(pick(people), pick(organisations), pick(list(StaffRoleKind)), validity),
                 max_size=3),
        label="staff",
    )  # fmt: skip
    made: list[Membership | Guardianship | StaffRole] = []
    for g, p, role, (start, length) in memberships:
        first, last = _validity(c, start, length)
        made.append(Membership(group=g, person=p, role=role, valid_from=first, valid_to=last))
    for guardian, pupil, (start, length) in wards:
        first, last = _validity(c, start, length)
        made.append(
            Guardianship(
                guardian=guardian,
                pupil=pupil,
                kind=GuardianshipKind.CUSTODIAL,
                valid_from=first,
                valid_to=last,
            )
        )
    for p, o, role, (start, length) in staff:
        first, last = _validity(c, start, length)
        made.append(StaffRole(person=p, organisation=o, role=role, valid_from=first, valid_to=last))
    for row in made:
        await row.save()
    try:
        partitions = [Partition(k, g) for k in _GROUP_KINDS for g in groups]
        partitions += [Partition(k, o) for k in _ORG_KINDS for o in organisations]
        partitions += [Partition(k, p) for k in _PERSON_KINDS for p in people]
        facts = await load_access_facts(people)
        readable = {p: readable_partitions(facts[p], c.today) for p in people}
        for partition in partitions:
            by_policy = {p for p in people if partition in readable[p]}
            by_sql = await _readers([partition], c.today) & set(people)
            assert by_sql == by_policy, (str(partition), memberships, wards, staff)
    finally:
        for row in made:
            await type(row).delete().where(type(row).id == row.id)
