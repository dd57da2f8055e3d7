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
from zoneinfo import ZoneInfo

from schemas.core import GuardianshipKind, MembershipRole, OrganisationKind, StaffRoleKind
from server.db.tables import Guardianship, Membership, Person, StaffRole
from sync.policy import AccessFacts, GroupTie, StaffTie, Validity, WardTie

SCHOOL_TIMEZONE = ZoneInfo("Europe/Helsinki")


def school_today(now: dt.datetime | None = None) -> dt.date:
    """Today's date where the schools are: validity periods are Helsinki days."""
    return (now or dt.datetime.now(dt.UTC)).astimezone(SCHOOL_TIMEZONE).date()


def _validity(row: dict[str, Any]) -> Validity:
    return Validity(valid_from=row["valid_from"], valid_to=row["valid_to"])


async def _group_ties(person_ids: Iterable[int]) -> dict[int, list[GroupTie]]:
    ids = list(set(person_ids))
    ties: dict[int, list[GroupTie]] = defaultdict(list)
    if not ids:
        return ties
    rows = await Membership.select(
        Membership.person,
        Membership.group.as_alias("group_id"),
        Membership.group._.school._.id.as_alias("school_id"),
        Membership.group._.school._.parent._.id.as_alias("municipality_id"),
        Membership.role,
        Membership.valid_from,
        Membership.valid_to,
    ).where(Membership.person.is_in(ids))
    for row in rows:
        ties[row["person"]].append(
            GroupTie(
                group_id=row["group_id"],
                school_id=row["school_id"],
                municipality_id=row["municipality_id"],
                role=MembershipRole(row["role"]),
                validity=_validity(row),
            )
        )
    return ties


async def load_access_facts(person_ids: Iterable[int]) -> dict[int, AccessFacts]:
    """The facts of each existing person among ``person_ids`` (unknown ids are left out)."""
    ids = list(set(person_ids))
    if not ids:
        return {}
    people = await Person.select(Person.id, Person.turvakielto).where(Person.id.is_in(ids))
    wards = await Guardianship.select(
        Guardianship.guardian,
        Guardianship.pupil,
        Guardianship.kind,
        Guardianship.valid_from,
        Guardianship.valid_to,
    ).where(Guardianship.guardian.is_in(ids))
    groups = await _group_ties([*ids, *(w["pupil"] for w in wards)])
    staff = await StaffRole.select(
        StaffRole.person,
        StaffRole.organisation._.id.as_alias("organisation_id"),
        StaffRole.organisation._.kind.as_alias("organisation_kind"),
        StaffRole.organisation._.parent._.id.as_alias("parent_id"),
        StaffRole.role,
        StaffRole.valid_from,
        StaffRole.valid_to,
    ).where(StaffRole.person.is_in(ids))

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
    for row in staff:
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
        )
        for p in people
    }
