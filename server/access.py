"""Loading the facts the access policy (``sync/policy.py``) decides from.

The policy is pure; this module is its only reader of the database. It loads every
membership, guardianship and staff role of the people asked about in four queries, whatever
their number, so a route deciding about a viewer and a target costs the same as one person.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from schemas.core import (
    GuardianshipKind,
    MembershipRole,
    OrganisationKind,
    PartitionKind,
    StaffRoleKind,
)
from server.db.tables import Person, SchoolGroup
from sync.policy import (
    AccessFacts,
    GroupRef,
    GroupTie,
    Partition,
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


# --- the policy's readers as SQL ---------------------------------------------------------
#
# The fan-out asks "who of these candidates may read partition P today?" for whole audiences
# (a city bulletin: 200,000 guardians). Loading every candidate's facts into Python to ask
# ``sync.policy.readable_partitions`` was nine tenths of the expansion's CPU, so the same
# rules are also written here as one SQL condition per partition kind, for the kinds a
# notification's partitions can be. ``tests/server/test_access_sql.py`` checks that this
# condition and ``readable_partitions`` agree for every person, partition and several days
# of the test city: a change to one without the other fails there.


def _holds(alias: str) -> str:
    return f"{alias}.valid_from <= {{}} AND ({alias}.valid_to IS NULL OR {alias}.valid_to >= {{}})"


def _tie(who: str, role: str, where: str) -> str:
    """One of the person's own memberships holds today, in the right role and place."""
    return (
        'EXISTS (SELECT 1 FROM membership m JOIN school_group g ON g.id = m."group" '
        f"JOIN organisation s ON s.id = g.school WHERE m.person = {who} AND {_holds('m')}"
        f"{role} AND {where})"
    )


def _ward_tie(who: str, where: str) -> str:
    """A guardianship holds today, of a pupil with a membership there today (any role)."""
    return (
        "EXISTS (SELECT 1 FROM guardianship w JOIN membership m ON m.person = w.pupil "
        'JOIN school_group g ON g.id = m."group" JOIN organisation s ON s.id = g.school '
        f"WHERE w.guardian = {who} AND {_holds('w')} AND {_holds('m')} AND {where})"
    )


def _staff_tie(who: str, where: str) -> str:
    return (
        "EXISTS (SELECT 1 FROM staff_role r JOIN organisation o ON o.id = r.organisation "
        f"WHERE r.person = {who} AND {_holds('r')} AND {where})"
    )


_NOT_PUPIL = f" AND m.role <> '{MembershipRole.PUPIL.value}'"
_IS_PUPIL = f" AND m.role = '{MembershipRole.PUPIL.value}'"
_NOT_ADMIN = f" AND r.role <> '{StaffRoleKind.ADMIN.value}'"
_CITY_OF_ORG = (
    f"CASE WHEN o.kind = '{OrganisationKind.MUNICIPALITY.value}' THEN o.id ELSE o.parent END"
)
# Where in the community a partition is: the tie's group, school or city equals its key.
_GROUP, _SCHOOL, _CITY = 'm."group" = {}', "g.school = {}", "s.parent = {}"
# For each kind: where the tie must be, which roles of one's own memberships count (any, or
# adults only), whether a ward's current membership there counts, and which staff roles count
# (None: none; else the condition on the role and its organisation).
_COMMUNITY: dict[PartitionKind, tuple[str, str, bool, str | None]] = {
    PartitionKind.GROUP: (_GROUP, "", True, None),
    PartitionKind.GROUP_GUARDIANS: (_GROUP, _NOT_PUPIL, True, None),
    PartitionKind.GROUP_STAFF: (_GROUP, _NOT_PUPIL, False, None),
    PartitionKind.SCHOOL: (_SCHOOL, "", True, "r.organisation = {}" + _NOT_ADMIN),
    PartitionKind.SCHOOL_GUARDIANS: (_SCHOOL, _NOT_PUPIL, True, "r.organisation = {}" + _NOT_ADMIN),
    PartitionKind.SCHOOL_STAFF: (_SCHOOL, _NOT_PUPIL, False, "r.organisation = {}" + _NOT_ADMIN),
    PartitionKind.MUNICIPALITY: (_CITY, "", True, f"{_CITY_OF_ORG} = {{}}"),
    PartitionKind.MUNICIPALITY_GUARDIANS: (_CITY, _NOT_PUPIL, True, f"{_CITY_OF_ORG} = {{}}"),
}


_FOR_GUARDIANS = frozenset(
    {
        PartitionKind.GROUP_GUARDIANS,
        PartitionKind.SCHOOL_GUARDIANS,
        PartitionKind.MUNICIPALITY_GUARDIANS,
    }
)


def _reads_one(who: str, partition: Partition, day: dt.date) -> tuple[str, list[Any]]:
    kind, key = partition.kind, partition.id
    if kind == PartitionKind.INBOX:
        return f"{who} = {{}}", [key]
    if kind == PartitionKind.PERSON:
        # The pupil themself while a pupil somewhere, or any current guardian of theirs.
        own = _tie(who, _IS_PUPIL, "true")
        ward = (
            f"EXISTS (SELECT 1 FROM guardianship w WHERE w.guardian = {who} AND w.pupil = {{}} "
            f"AND {_holds('w')})"
        )
        return f"({who} = {{}} AND {own}) OR {ward}", [key, day, day, key, day, day]
    where, role, wards, staff = _COMMUNITY[kind]
    terms: list[tuple[str, list[Any]]] = [(_tie(who, role, where), [day, day, key])]
    if wards:
        tie_of_ward: tuple[str, list[Any]] = (_ward_tie(who, where), [day, day, day, day, key])
        # A guardians' partition is asked about guardians above all (a city's bulletin to
        # its guardians): their tie is tried first, so the OR stops after one subquery.
        terms.insert(0 if kind in _FOR_GUARDIANS else 1, tie_of_ward)
    if staff is not None:
        terms.append((_staff_tie(who, staff), [day, day, key]))
    return " OR ".join(t for t, _ in terms), [a for _, values in terms for a in values]


def readers_condition(
    who: str, partitions: Iterable[Partition], day: dt.date
) -> tuple[str, list[Any]]:
    """A SQL condition, true when the person ``who`` (a column or expression) may read one
    of ``partitions`` on ``day`` by ``sync.policy.readable_partitions``, and its bound values
    in order (``{}`` markers, as Piccolo's ``raw`` takes them). KeyError for a kind no
    notification lives in."""
    terms: list[str] = []
    args: list[Any] = []
    for partition in sorted(partitions):
        sql, values = _reads_one(who, partition, day)
        terms.append(f"({sql})")
        args += values
    return ("(" + " OR ".join(terms) + ")" if terms else "false"), args
