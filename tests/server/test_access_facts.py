"""The policy on facts loaded from the database, on SQLite and on PostgreSQL.

The pure policy is covered case by case in ``tests/sync/test_policy.py``; this checks that the
loader feeds it the same world from real rows: dates, joins to schools and cities, kinds.
"""

from __future__ import annotations

import datetime as dt

from schemas.core import GuardianshipKind, Role
from server.access import load_access_facts
from server.db.tables import Person
from sync.policy import Action, GroupRef, Partition, decide, readable_partitions, roles_on
from tests.city import City


def names(partitions: frozenset[Partition]) -> set[str]:
    return {str(p) for p in partitions}


async def test_partitions_from_stored_rows(fx_city: City) -> None:
    c = fx_city
    facts = await load_access_facts(
        [c.aino, c.mother, c.father, c.former_guardian, c.teacher, c.principal, c.admin]
    )
    today, yesterday = c.today, c.today - dt.timedelta(days=1)

    assert names(readable_partitions(facts[c.aino], today)) == {
        f"inbox:{c.aino}", f"person:{c.aino}", f"group:{c.class_5b}", f"group:{c.math_a}",
        f"school:{c.school_a}", f"municipality:{c.city}",
    }  # fmt: skip
    assert f"group:{c.class_5a}" in names(readable_partitions(facts[c.aino], yesterday))
    mother = names(readable_partitions(facts[c.mother], today))
    assert {f"person:{c.aino}", f"person:{c.eero}", f"school:{c.school_a}"} <= mother
    assert {f"school:{c.school_b}", f"group:{c.class_3c}"} <= mother
    assert {f"group-guardians:{c.class_5b}", f"school-guardians:{c.school_b}"} <= mother
    assert f"person:{c.olli}" not in mother
    assert names(readable_partitions(facts[c.former_guardian], today)) == {
        f"inbox:{c.former_guardian}"
    }
    assert names(readable_partitions(facts[c.principal], today)) == {
        f"inbox:{c.principal}", f"school:{c.school_a}", f"school-staff:{c.school_a}",
        f"municipality:{c.city}", f"school-guardians:{c.school_a}",
        f"municipality-guardians:{c.city}",
    }  # fmt: skip
    assert names(readable_partitions(facts[c.admin], today)) == {
        f"inbox:{c.admin}",
        f"municipality:{c.city}",
        f"municipality-guardians:{c.city}",
    }
    teacher = readable_partitions(facts[c.teacher], today)
    assert {f"group-staff:{g}" for g in (c.class_5a, c.class_5b, c.math_a)} <= names(teacher)
    assert roles_on(facts[c.teacher], today) == {Role.TEACHER}
    assert roles_on(facts[c.mother], today) == {Role.GUARDIAN}


async def test_kinds_and_protection_survive_storage(fx_city: City) -> None:
    c = fx_city
    facts = await load_access_facts([c.mother, c.father, c.olli_parent, c.olli, c.aino, c.teacher])
    today = c.today
    assert {w.kind for w in facts[c.father].wards} == {GuardianshipKind.INFORMATION_ONLY}
    assert decide(facts[c.mother], Action.ACT_FOR_PUPIL, facts[c.aino], today)
    assert not decide(facts[c.father], Action.ACT_FOR_PUPIL, facts[c.aino], today)
    assert decide(facts[c.father], Action.READ_PUPIL_RECORD, facts[c.aino], today)
    assert facts[c.olli_parent].turvakielto
    assert not decide(facts[c.mother], Action.READ_CONTACT_DETAILS, facts[c.olli_parent], today)
    assert not decide(facts[c.mother], Action.READ_PUPIL_RECORD, facts[c.olli], today)
    group_5a = GroupRef(c.class_5a, c.school_a, c.city)
    assert decide(facts[c.teacher], Action.TEACH_GROUP, group_5a, today)


async def test_unknown_people_are_left_out(fx_city: City) -> None:
    assert await load_access_facts([]) == {}
    assert set(await load_access_facts([fx_city.aino, 999_999])) == {fx_city.aino}


async def test_households_and_the_roster_flag_come_from_stored_rows(fx_city: City) -> None:
    """Co-guardians' contact details by the rule that decides them (``docs/data-model.md``,
    "Households"), from the addresses and flags as stored."""
    c = fx_city
    today = c.today

    async def reason(viewer: int, target: int) -> str:
        facts = await load_access_facts([viewer, target])
        return decide(facts[viewer], Action.READ_CONTACT_DETAILS, facts[target], today).reason

    # The city's mother and father live apart (Virtaneninkatu and Lahtineninkatu).
    assert await reason(c.father, c.mother) == "denied"
    await Person.update({Person.street_address: " VIRTANENINKATU 1,  vantaa"}).where(
        Person.id == c.father
    )
    assert (await load_access_facts([c.father]))[c.father].household == "virtaneninkatu 1, vantaa"
    assert await reason(c.father, c.mother) == "guardians of the same pupil, one household"
    await Person.update(
        {Person.street_address: "Muualla 9, Espoo", Person.shares_contact_with_guardians: True}
    ).where(Person.id == c.mother)
    assert await reason(c.father, c.mother) == "guardians of the same pupil, shared by the roster"
    assert await reason(c.mother, c.father) == "denied"
    await Person.update({Person.turvakielto: True}).where(Person.id == c.mother)
    assert await reason(c.father, c.mother) == "denied"
    assert await reason(c.principal, c.mother) == "principal of the protected person's school"
