"""Closed vocabularies of the core data: roles, kinds and partitions."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import msgspec

MAX_ID = 2**31 - 1
"""The largest row id: ids are PostgreSQL ``integer`` (32-bit) columns."""

Id = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]
"""A row id as clients send it: positive, and within the database's 32-bit integer ids."""

NO_NUL = r"^[^\x00]*$"
"""Text may hold any character but NUL, which PostgreSQL cannot store."""


class OrganisationKind(StrEnum):
    MUNICIPALITY = "municipality"
    SCHOOL = "school"


class GroupKind(StrEnum):
    HOME_CLASS = "home_class"
    """A pupil's own class (luokka); every pupil has exactly one at a time."""
    TEACHING_GROUP = "teaching_group"
    """A group formed for one subject, such as an optional language or a mixed-class course."""


class MembershipRole(StrEnum):
    PUPIL = "pupil"
    TEACHER = "teacher"


class StaffRoleKind(StrEnum):
    TEACHER = "teacher"
    PRINCIPAL = "principal"
    ADMIN = "admin"


class GuardianshipKind(StrEnum):
    CUSTODIAL = "custodial"
    """Huoltaja: may read and act for the pupil (report absences, sign forms)."""
    INFORMATION_ONLY = "information_only"
    """Tiedonsaantioikeus: may read the pupil's school data, never act for the pupil."""


class Role(StrEnum):
    """What a person is to Reppu today, derived from memberships, guardianships and staff roles."""

    PUPIL = "pupil"
    GUARDIAN = "guardian"
    TEACHER = "teacher"
    PRINCIPAL = "principal"
    ADMIN = "admin"


class PartitionKind(StrEnum):
    """The units synced data lives in. A partition's name is ``kind:id``."""

    PERSON = "person"
    """A pupil's own data (absences, forms about the pupil): the pupil, their guardians."""
    GROUP = "group"
    """What every member of a group may see: its timetable and its teachers."""
    GROUP_STAFF = "group-staff"
    """A group's staff-only data (roll calls, rosters, absence notices): its teachers."""
    SCHOOL = "school"
    """A school's community data (bulletins): its pupils, their guardians, its staff."""
    SCHOOL_STAFF = "school-staff"
    """A school's staff-only data: its staff."""
    MUNICIPALITY = "municipality"
    """City-wide data: everyone with a current tie to one of its schools."""
    GROUP_GUARDIANS = "group-guardians"
    """Bulletins for a group's guardians (not its pupils): the guardians, the group's teachers."""
    SCHOOL_GUARDIANS = "school-guardians"
    """Bulletins for a school's guardians (not its pupils): the guardians, the school's staff."""
    MUNICIPALITY_GUARDIANS = "municipality-guardians"
    """Bulletins for a city's guardians (not its pupils): the guardians, the city's staff."""
    INBOX = "inbox"
    """A person's own items (messages, receipts, a substitute's covered lessons and rosters):
    that person alone."""
