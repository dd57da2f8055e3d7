"""The generated demo city: plain row tuples per table, in the column order of the schema.

Rows are tuples, not objects, because a full-scale city has about three million of them; a
tuple of shared values costs a fraction of an object with a ``__dict__``. The column names
below are the database's (``server/db/tables.py``), so the loader can use them verbatim, and a
test checks them against the Piccolo tables.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

OrganisationRow = tuple[int, str, str, int | None, str]
TermRow = tuple[int, int, str, dt.date, dt.date]
PersonRow = tuple[
    int, str, str, str, dt.date | None, bool, str | None, str | None, str | None, bool, str | None
]
AccountRow = tuple[int, int, str, str, bool]
SchoolGroupRow = tuple[int, int, int | None, str, str, int | None, str | None]
MembershipRow = tuple[int, int, int, str, dt.date, dt.date | None]
StaffRoleRow = tuple[int, int, int, str, dt.date, dt.date | None]
GuardianshipRow = tuple[int, int, int, str, dt.date, dt.date | None]
LessonRow = tuple[
    int, int, str, int | None, str | None, int, dt.time, dt.time, dt.date, dt.date | None
]
LessonChangeRow = tuple[
    int, int, dt.date, bool, int | None, str | None, dt.time | None, dt.time | None, str | None
]
AuthTokenRow = tuple[int, int, str, str, dt.datetime, dt.datetime, dt.datetime | None]
LoginFailureRow = tuple[int, str, dt.datetime]

COLUMNS: dict[str, tuple[str, ...]] = {
    table: tuple(columns.split())
    for table, columns in (
        ("organisation", "id kind name parent language"),
        ("term", "id organisation name starts_on ends_on"),
        (
            "person",
            "id given_name family_name language birth_date turvakielto email phone street_address"
            " shares_contact_with_guardians ui_language",
        ),
        ("account", "id person username password_hash disabled"),
        ("school_group", "id school term name kind grade subject"),
        ("membership", "id group person role valid_from valid_to"),
        ("staff_role", "id person organisation role valid_from valid_to"),
        ("guardianship", "id guardian pupil kind valid_from valid_to"),
        ("lesson", "id group subject teacher room weekday starts_at ends_at valid_from valid_to"),
        (
            "lesson_change",
            "id lesson on_date cancelled substitute_teacher room starts_at ends_at note",
        ),
        ("auth_token", "id account token_hash device_name created_at expires_at revoked_at"),
        ("login_failure", "id key failed_at"),
    )
}
"""Every table the demo city may fill, parents before children (the order of loading)."""


@dataclass(frozen=True, slots=True)
class TableRows:
    """One table's rows with the column names they are in the order of."""

    table: str
    columns: tuple[str, ...]
    rows: Sequence[tuple[object, ...]]


@dataclass(slots=True)
class City:
    """A whole demo city, ready to load. Ids are final: each table's start at 1.

    ``demo_people`` maps each documented demo login to its person's id; ``term_starts_on`` and
    the other dates describe the school year the city was generated for.
    """

    organisation: list[OrganisationRow] = field(default_factory=list)
    term: list[TermRow] = field(default_factory=list)
    person: list[PersonRow] = field(default_factory=list)
    account: list[AccountRow] = field(default_factory=list)
    school_group: list[SchoolGroupRow] = field(default_factory=list)
    membership: list[MembershipRow] = field(default_factory=list)
    staff_role: list[StaffRoleRow] = field(default_factory=list)
    guardianship: list[GuardianshipRow] = field(default_factory=list)
    lesson: list[LessonRow] = field(default_factory=list)
    lesson_change: list[LessonChangeRow] = field(default_factory=list)
    auth_token: list[AuthTokenRow] = field(default_factory=list)
    login_failure: list[LoginFailureRow] = field(default_factory=list)
    demo_people: dict[str, int] = field(default_factory=dict)
    today: dt.date = dt.date(2000, 1, 1)
    term_starts_on: dt.date = dt.date(2000, 1, 1)
    term_ends_on: dt.date = dt.date(2000, 1, 1)
    first_school_day: dt.date = dt.date(2000, 1, 1)
    last_school_day: dt.date = dt.date(2000, 1, 1)

    def tables(self) -> tuple[TableRows, ...]:
        """Every table's rows, parents before children."""
        return tuple(
            TableRows(table=name, columns=columns, rows=getattr(self, name))
            for name, columns in COLUMNS.items()
        )

    def counts(self) -> dict[str, int]:
        """Rows per table."""
        return {name: len(getattr(self, name)) for name in COLUMNS}

    def digest(self) -> str:
        """SHA-256 over every row's ``repr``: equal digests mean byte-identical cities."""
        hasher = hashlib.sha256()
        for table in self.tables():
            hasher.update(table.table.encode())
            for row in table.rows:
                hasher.update(repr(row).encode())
        return hasher.hexdigest()
