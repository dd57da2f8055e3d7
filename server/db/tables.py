"""The school's core data as Piccolo tables. ``docs/data-model.md`` explains each one.

Conventions, chosen on purpose against Piccolo's defaults:
- Foreign keys are NOT NULL unless the model says otherwise, ``ON DELETE RESTRICT`` (a row
  that others point to is never removed behind their back) and indexed.
- Validity periods are two dates, both inclusive: ``valid_from`` is the first day the row
  holds, ``valid_to`` the last (NULL: still open). A pupil moving class on 2026-01-12 has the
  old membership end on 2026-01-11 and the new one start on 2026-01-12.
- Closed vocabularies (roles, kinds) are short strings checked by the code that writes them;
  ``schemas/core.py`` holds the values.
- Composite indexes and unique constraints, which Piccolo's column options cannot express,
  are created by the second migration.
"""

from __future__ import annotations

from typing import TypeVar

from piccolo.columns import (
    Boolean,
    Date,
    ForeignKey,
    Integer,
    OnDelete,
    Serial,
    Time,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table

T = TypeVar("T", bound=Table)


def _fk(references: type[T], *, null: bool = False, index: bool = True) -> ForeignKey[T]:
    """A foreign key with Reppu's defaults. ``index=False`` only where a composite index of
    the second migration starts with this column and so serves its look-ups."""
    return ForeignKey(references=references, null=null, on_delete=OnDelete.restrict, index=index)


class Organisation(Table, tablename="organisation"):
    """A municipality or a school; a school's ``parent`` is its municipality."""

    id = Serial(primary_key=True)

    kind = Varchar(length=16)
    name = Varchar(length=200)
    parent: ForeignKey[Organisation] = ForeignKey(
        references="self", null=True, on_delete=OnDelete.restrict, index=True
    )
    language = Varchar(length=8, default="fi")


class Term(Table, tablename="term"):
    """A school year or term of an organisation."""

    id = Serial(primary_key=True)

    organisation = _fk(Organisation)
    name = Varchar(length=100)
    starts_on = Date()
    ends_on = Date()


class Person(Table, tablename="person"):
    """One row per human: pupil, guardian or staff member, or several of these at once."""

    id = Serial(primary_key=True)

    given_name = Varchar(length=100)
    family_name = Varchar(length=100)
    language = Varchar(length=8, default="fi")
    """The school's records' language (ISO 639); every roster import sets it again."""
    birth_date = Date(null=True, default=None)
    turvakielto = Boolean(default=False)
    """Address protection: contact details are never shown to other families."""
    email = Varchar(length=200, null=True, default=None)
    phone = Varchar(length=40, null=True, default=None)
    street_address = Varchar(length=200, null=True, default=None)
    """One household is one address, compared as ``sync.policy.household_of`` says."""
    shares_contact_with_guardians = Boolean(default=False)
    """The roster lets the other guardians of this person's children see their contact
    details though they live elsewhere (``docs/data-model.md``)."""
    ui_language = Varchar(length=8, null=True, default=None)
    """The language the person chose (``fi``, ``sv`` or ``en``), or None: never set by an
    import (``server/language.py``)."""


class Account(Table, tablename="account"):
    """A person's login, kept apart from ``person`` so that secrets never travel with its rows."""

    id = Serial(primary_key=True)

    person: ForeignKey[Person] = ForeignKey(
        references=Person, null=False, on_delete=OnDelete.restrict, unique=True, index=True
    )
    username = Varchar(length=100, unique=True, index=True)
    password_hash = Varchar(length=200)
    disabled = Boolean(default=False)


class SchoolGroup(Table, tablename="school_group"):
    """A home class or a teaching group of a school."""

    id = Serial(primary_key=True)

    school = _fk(Organisation)
    term = _fk(Term, null=True)
    name = Varchar(length=100)
    kind = Varchar(length=16)
    grade = Integer(null=True, default=None)
    subject = Varchar(length=100, null=True, default=None)


class Membership(Table, tablename="membership"):
    """A person in a group as pupil or teacher, for a validity period."""

    id = Serial(primary_key=True)

    group = _fk(SchoolGroup, index=False)
    person = _fk(Person, index=False)
    role = Varchar(length=16)
    valid_from = Date()
    valid_to = Date(null=True, default=None)


class StaffRole(Table, tablename="staff_role"):
    """A person working for a school or municipality as teacher, principal or admin."""

    id = Serial(primary_key=True)

    person = _fk(Person, index=False)
    organisation = _fk(Organisation, index=False)
    role = Varchar(length=16)
    valid_from = Date()
    valid_to = Date(null=True, default=None)


class Guardianship(Table, tablename="guardianship"):
    """A guardian of a pupil: custodial, or with a right to information only."""

    id = Serial(primary_key=True)

    guardian = _fk(Person, index=False)
    pupil = _fk(Person, index=False)
    kind = Varchar(length=16)
    valid_from = Date()
    valid_to = Date(null=True, default=None)


class Lesson(Table, tablename="lesson"):
    """A recurring weekly lesson of a group."""

    id = Serial(primary_key=True)

    group = _fk(SchoolGroup, index=False)
    subject = Varchar(length=100)
    teacher = _fk(Person, null=True)
    room = Varchar(length=40, null=True, default=None)
    weekday = Integer()
    """ISO weekday: 1 is Monday, 7 is Sunday."""
    starts_at = Time()
    ends_at = Time()
    valid_from = Date()
    valid_to = Date(null=True, default=None)


class LessonChange(Table, tablename="lesson_change"):
    """A dated change to one occurrence of a lesson: cancelled, substitute, room or time."""

    id = Serial(primary_key=True)

    lesson = _fk(Lesson, index=False)
    on_date = Date()
    cancelled = Boolean(default=False)
    substitute_teacher = _fk(Person, null=True)
    room = Varchar(length=40, null=True, default=None)
    starts_at = Time(null=True, default=None)
    ends_at = Time(null=True, default=None)
    note = Varchar(length=200, null=True, default=None)


class AuthToken(Table, tablename="auth_token"):
    """A bearer token bound to one named device. Only its SHA-256 is stored."""

    id = Serial(primary_key=True)

    account = _fk(Account)
    token_hash = Varchar(length=64, unique=True, index=True)
    device_name = Varchar(length=100)
    created_at = Timestamptz()
    expires_at = Timestamptz()
    revoked_at = Timestamptz(null=True, default=None)


class LoginFailure(Table, tablename="login_failure"):
    """A failed login, counted per account and per address to rate-limit guessing.

    Kept in the database, not in memory, so that every server process sees the same count.
    """

    id = Serial(primary_key=True)

    key = Varchar(length=200)
    failed_at = Timestamptz()


ALL_TABLES: tuple[type[Table], ...] = (
    Organisation,
    Term,
    Person,
    Account,
    SchoolGroup,
    Membership,
    StaffRole,
    Guardianship,
    Lesson,
    LessonChange,
    AuthToken,
    LoginFailure,
)
