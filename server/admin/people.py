"""A school's people of one role, a page at a time, with their accounts' state.

Who belongs to a school as what, today (Europe/Helsinki), read from the dated ties of
``docs/data-model.md``:

- ``pupil``: a pupil membership of one of the school's groups;
- ``teacher``: a teacher membership of one of its groups, or a teacher staff role at it;
- ``principal``: a principal staff role at it;
- ``admin``: an admin staff role at it or at its municipality (the admins who manage it);
- ``guardian``: a guardianship of one of its pupils.

Access is checked by the caller (:func:`server.admin.authority.check_admins_school`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from schemas.admin import AccountState, AdminPerson, PeoplePage
from schemas.core import Role, StaffRoleKind
from server.access import load_access_facts, marks
from server.clock import school_today, utc_now
from server.db.tables import Account, AuthToken, Person
from sync.policy import AccessFacts, roles_on

_HOLDS = "{t}.valid_from <= {{}} AND ({t}.valid_to IS NULL OR {t}.valid_to >= {{}})"
"""A tie of table alias ``t`` holds today (two placeholders: today, today)."""

_PUPILS = (
    'SELECT m.person AS id FROM membership m JOIN school_group g ON g.id = m."group" '
    "WHERE g.school = {} AND m.role = 'pupil' AND " + _HOLDS.format(t="m")
)
_GROUP_TEACHERS = (
    'SELECT m.person AS id FROM membership m JOIN school_group g ON g.id = m."group" '
    "WHERE g.school = {} AND m.role = 'teacher' AND " + _HOLDS.format(t="m")
)


def _staff(organisations: int) -> str:
    """Staff of a role at any of ``organisations`` organisations (placeholders: each
    organisation, the role, today, today)."""
    return (
        f"SELECT r.person AS id FROM staff_role r WHERE r.organisation IN ({marks(organisations)}) "
        "AND r.role = {} AND " + _HOLDS.format(t="r")
    )


_GUARDIANS = (
    "SELECT w.guardian AS id FROM guardianship w JOIN membership m ON m.person = w.pupil "
    'JOIN school_group g ON g.id = m."group" '
    "WHERE g.school = {} AND m.role = 'pupil' AND "
    + _HOLDS.format(t="m")
    + " AND "
    + _HOLDS.format(t="w")
)


def _sources(role: Role, school: int, city: int, day: dt.date) -> list[tuple[str, list[Any]]]:
    """The queries (and their arguments) whose union is the school's people of ``role``."""
    if role == Role.PUPIL:
        return [(_PUPILS, [school, day, day])]
    if role == Role.GUARDIAN:
        return [(_GUARDIANS, [school, day, day, day, day])]
    if role == Role.TEACHER:
        return [
            (_GROUP_TEACHERS, [school, day, day]),
            (_staff(1), [school, StaffRoleKind.TEACHER.value, day, day]),
        ]
    if role == Role.PRINCIPAL:
        return [(_staff(1), [school, StaffRoleKind.PRINCIPAL.value, day, day])]
    # Role.ADMIN: the school's own admins and its municipality's, who manage it.
    return [(_staff(2), [school, city, StaffRoleKind.ADMIN.value, day, day])]


async def _page_of_ids(role: Role, school: int, city: int, after: int, limit: int) -> list[int]:
    """Up to ``limit`` ids above ``after``, ascending."""
    sources = _sources(role, school, city, school_today())
    union = " UNION ".join(sql for sql, _ in sources)
    args = [arg for _, source_args in sources for arg in source_args]
    rows = await Person.raw(
        f"SELECT DISTINCT id FROM ({union}) AS found WHERE id > {{}} ORDER BY id LIMIT {{}}",
        *args,
        after,
        limit,
    )
    return [int(r["id"]) for r in rows]


async def _live_devices(account_ids: list[int]) -> dict[int, int]:
    if not account_ids:
        return {}
    rows = await AuthToken.raw(
        "SELECT account, COUNT(*) AS devices FROM auth_token "
        f"WHERE account IN ({marks(len(account_ids))}) AND revoked_at IS NULL "
        "AND expires_at > {} GROUP BY account",
        *account_ids,
        utc_now(),
    )
    return {int(r["account"]): int(r["devices"]) for r in rows}


async def list_school_people(
    *, school: int, city: int, role: Role, after: int, limit: int
) -> PeoplePage:
    """One page of the school's people of ``role``, in id order after ``after``."""
    ids = await _page_of_ids(role, school, city, after, limit + 1)
    more = len(ids) > limit
    ids = ids[:limit]
    if not ids:
        return PeoplePage(school_id=school, role=role, people=[])
    names = {
        int(r["id"]): r
        for r in await Person.select(Person.id, Person.given_name, Person.family_name).where(
            Person.id.is_in(ids)
        )
    }
    accounts = {
        int(r["person"]): r
        for r in await Account.select(Account.id, Account.person, Account.disabled).where(
            Account.person.is_in(ids)
        )
    }
    devices = await _live_devices([int(a["id"]) for a in accounts.values()])
    facts = await load_access_facts(ids)
    day = school_today()
    people = []
    for person in ids:
        account = accounts.get(person)
        if account is None:
            state = AccountState.NONE
        else:
            state = AccountState.DISABLED if account["disabled"] else AccountState.ACTIVE
        people.append(
            AdminPerson(
                id=person,
                given_name=names[person]["given_name"],
                family_name=names[person]["family_name"],
                roles=sorted(roles_on(facts.get(person, AccessFacts(person)), day)),
                account=state,
                devices=devices.get(int(account["id"]), 0) if account else 0,
            )
        )
    return PeoplePage(
        school_id=school, role=role, people=people, next_cursor=ids[-1] if more else None
    )
