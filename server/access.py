"""Loading the facts the access policy (``sync/policy.py``) decides from.

The policy is pure; this module is its only reader of the database. It loads every
membership, guardianship and staff role of the people asked about in four queries, whatever
their number, so a route deciding about a viewer and a target costs the same as one person.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from schemas.core import GuardianshipKind, MembershipRole, OrganisationKind, StaffRoleKind
from server.db.tables import Person, SchoolGroup
from sync.policy import (
    AccessFacts,
    GroupRef,
    GroupTie,
    StaffTie,
    Validity,
    WardTie,
    household_of,
)


def _validity(row: dict[str, Any]) -> Validity:
    return Validity(valid_from=row["valid_from"], valid_to=row["valid_to"])


def marks(count: int) -> str:
    """``count`` bound-parameter placeholders for a raw query, comma-separated."""
    return ", ".join("{}" for _ in range(count))


# Prebuilt SQL: this runs on every authenticated sync request, and building the same joins
# with Piccolo's query builder cost more than the queries themselves (py-spy, see
# docs/benchmarks.md). ``{ids}`` is filled with one bound placeholder per id.
_PEOPLE = (
    "SELECT id, turvakielto, street_address, shares_contact_with_guardians FROM person "
    "WHERE id IN ({ids})"
)
_WARDS = (
    "SELECT guardian, pupil, kind, valid_from, valid_to FROM guardianship WHERE guardian IN ({ids})"
)
_GROUPS = (
    'SELECT m.person, m."group" AS group_id, g.school AS school_id, '
    "s.parent AS municipality_id, m.role, m.valid_from, m.valid_to FROM membership m "
    'JOIN school_group g ON g.id = m."group" JOIN organisation s ON s.id = g.school '
    "WHERE m.person IN ({ids})"
)
_STAFF = (
    "SELECT r.person, r.organisation AS organisation_id, o.kind AS organisation_kind, "
    "o.parent AS parent_id, r.role, r.valid_from, r.valid_to FROM staff_role r "
    "JOIN organisation o ON o.id = r.organisation WHERE r.person IN ({ids})"
)


async def _rows(sql: str, ids: list[int]) -> list[dict[str, Any]]:
    if not ids:
        return []
    return list(await Person.raw(sql.format(ids=marks(len(ids))), *ids))


async def load_access_facts(person_ids: Iterable[int]) -> dict[int, AccessFacts]:
    """The facts of each existing person among ``person_ids`` (unknown ids are left out)."""
    ids = sorted(set(person_ids))
    if not ids:
        return {}
    people = await _rows(_PEOPLE, ids)
    wards = await _rows(_WARDS, ids)
    pupils = sorted({int(w["pupil"]) for w in wards} | set(ids))
    groups: dict[int, list[GroupTie]] = defaultdict(list)
    for row in await _rows(_GROUPS, pupils):
        groups[row["person"]].append(
            GroupTie(
                group_id=row["group_id"],
                school_id=row["school_id"],
                municipality_id=row["municipality_id"],
                role=MembershipRole(row["role"]),
                validity=_validity(row),
            )
        )
    wards_of: dict[int, list[WardTie]] = defaultdict(list)
    for row in wards:
        wards_of[row["guardian"]].append(
            WardTie(
                pupil_id=row["pupil"],
                kind=GuardianshipKind(row["kind"]),
                validity=_validity(row),
                pupil_groups=tuple(groups.get(row["pupil"], ())),
            )
        )
    staff_of: dict[int, list[StaffTie]] = defaultdict(list)
    for row in await _rows(_STAFF, ids):
        is_city = row["organisation_kind"] == OrganisationKind.MUNICIPALITY
        staff_of[row["person"]].append(
            StaffTie(
                organisation_id=row["organisation_id"],
                municipality_id=row["organisation_id"] if is_city else row["parent_id"],
                role=StaffRoleKind(row["role"]),
                validity=_validity(row),
            )
        )
    return {
        p["id"]: AccessFacts(
            person_id=p["id"],
            turvakielto=bool(p["turvakielto"]),
            groups=tuple(groups.get(p["id"], ())),
            wards=tuple(wards_of.get(p["id"], ())),
            staff=tuple(staff_of.get(p["id"], ())),
            household=household_of(p["street_address"]),
            shares_contact_with_guardians=bool(p["shares_contact_with_guardians"]),
        )
        for p in people
    }


async def load_group_refs(group_ids: Iterable[int]) -> dict[int, GroupRef]:
    """The policy's view of each existing group among ``group_ids``: its school and city."""
    ids = sorted(set(group_ids))
    if not ids:
        return {}
    rows = await SchoolGroup.select(
        SchoolGroup.id, SchoolGroup.school, SchoolGroup.school._.parent.as_alias("city")
    ).where(SchoolGroup.id.is_in(ids))
    return {r["id"]: GroupRef(r["id"], r["school"], r["city"]) for r in rows}
