"""``generate_city``: a deterministic, realistic demo city as rows, with no I/O.

The same ``pupils``, ``seed`` and ``today`` always give byte-identical rows (``City.digest``).
Stages, each in its own module: structure (municipalities, schools, home classes), families
(pupils, guardians), home-class memberships with the mid-term movers, timetables (teaching
groups, lessons, teachers), the other staff, this week's lesson changes, and accounts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random

from argon2 import PasswordHasher

from server.demo.changes import build_home_memberships, build_lesson_changes
from server.demo.city import City
from server.demo.draft import Draft
from server.demo.families import build_families
from server.demo.progress import Progress, no_progress
from server.demo.staff import Staffing
from server.demo.structure import build_structure, school_year
from server.demo.timetable import build_timetables

DEMO_PASSWORD = "reppu-demo"  # noqa: S105 (public on purpose, see below)
"""The password of every demo account. Public on purpose: a demo city holds no real people."""

DEMO_LOGINS: dict[str, str] = {
    "demo-pupil": "a pupil in grade 3 or 4; their class has a lesson change this school week",
    "demo-guardian": "a custodial guardian of demo-pupil and of a sibling in another school",
    "demo-guardian-info": "a guardian with a right to information only (no custody)",
    "demo-teacher": "a teacher of demo-pupil's school who teaches at least three groups",
    "demo-principal": "the principal of demo-pupil's school",
    "demo-admin": "the admin of the city (the first municipality)",
    "demo-pupil-moved": "a pupil who changed home class in the middle of the term",
    "demo-turvakielto": "a guardian under address protection (turvakielto)",
}
"""The documented demo logins: username -> what the person is."""

_STAGES = (
    "structure",
    "families",
    "home classes",
    "timetables",
    "staff",
    "lesson changes",
    "accounts",
)


def demo_password_hash(seed: int) -> str:
    """One argon2 hash of the demo password, shared by every account of the city.

    Hashing per account would take hours at full scale (argon2 is slow on purpose). The salt
    is derived from the seed so that the generated rows stay byte-identical between runs.
    """
    salt = hashlib.sha256(f"reppu-demo-salt:{seed}".encode()).digest()[:16]
    return PasswordHasher().hash(DEMO_PASSWORD, salt=salt)


def _teacher_groups(draft: Draft) -> dict[int, set[int]]:
    groups: dict[int, set[int]] = {}
    for group_id, person in draft.teaching:
        groups.setdefault(person, set()).add(group_id)
    return groups


def _demo_teacher(draft: Draft, school_index: int, class_group: int) -> int:
    """A teacher of the school who teaches the class and the most groups (at least three)."""
    groups = _teacher_groups(draft)
    school = draft.schools[school_index]
    ranked = sorted(school.teachers, key=lambda t: (class_group not in groups[t], -len(groups[t])))
    for teacher in ranked:
        if len(groups.get(teacher, ())) >= 3:
            return teacher
    busiest = max(groups, key=lambda t: (len(groups[t]), -t))
    if len(groups[busiest]) < 3:
        raise RuntimeError("no teacher in the demo city teaches three groups")
    return busiest


def generate_city(
    *, pupils: int, seed: int, today: dt.date, progress: Progress | None = None
) -> City:
    """Generate a demo city of ``pupils`` pupils for the school year that contains ``today``.

    Raises ValueError for fewer than 500 pupils (too few for classes of 18-25).
    """
    report = progress or no_progress
    starts, ends, first_day, last_day = school_year(today)
    city = City(
        today=today,
        term_starts_on=starts,
        term_ends_on=ends,
        first_school_day=first_day,
        last_school_day=last_day,
    )
    # A string seed is hashed (SHA-512) by random.Random: stable across Python versions.
    draft = Draft(random.Random(f"reppu-demo:{seed}"), city, starts, ends, first_day, last_day)
    total = len(_STAGES)
    report(f"generate: {_STAGES[0]}", 0, total)
    build_structure(draft, pupils)
    report(f"generate: {_STAGES[1]}", 1, total)
    demo = build_families(draft)
    family = demo["two_schools"]
    demo_pupil = family.children[0]
    report(f"generate: {_STAGES[2]}", 2, total)
    movers = build_home_memberships(draft, keep=set(family.children))
    if not movers:
        raise RuntimeError("the demo city has no pupil who changed class")
    report(f"generate: {_STAGES[3]}", 3, total)
    staffing = Staffing(draft)
    build_timetables(draft, staffing)
    report(f"generate: {_STAGES[4]}", 4, total)
    principals, admins = staffing.principals_and_admins()
    staffing.support_teachers(pupils)
    report(f"generate: {_STAGES[5]}", 5, total)
    home = draft.classes[draft.pupil_class[demo_pupil]]
    build_lesson_changes(draft, force_groups=[home.group_id])
    report(f"generate: {_STAGES[6]}", 6, total)
    info_guardian = demo["info"].info_guardian
    assert info_guardian is not None  # the "info" family is formed with that shape
    city.demo_people = {
        "demo-pupil": draft.pupil_person[demo_pupil],
        "demo-guardian": family.guardians[0],
        "demo-guardian-info": info_guardian,
        "demo-teacher": _demo_teacher(draft, home.school, home.group_id),
        "demo-principal": principals[home.school],
        "demo-admin": admins[0],
        "demo-pupil-moved": draft.pupil_person[movers[0]],
        "demo-turvakielto": demo["turvakielto"].guardians[0],
    }
    usernames = {person: name for name, person in city.demo_people.items()}
    password_hash = demo_password_hash(seed)
    city.account = [
        (row[0], row[0], usernames.get(row[0], f"u{row[0]}"), password_hash, False)
        for row in city.person
    ]
    report("generate: done", total, total)
    return city
