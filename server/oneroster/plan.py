"""What an import will do, decided before anything is written. Pure: no database.

:func:`make_plan` compares a parsed :class:`~server.oneroster.parse.Batch` with what earlier
imports of the same sending system stored (``external_ref`` rows, handed in as
:class:`Ref` s) and decides, per file, which rows are created, updated, ended or unchanged;
it checks every reference between rows (against this import and the stored ones) and the
rules of Reppu's model (a teacher works at a school, a class belongs to a school), and
derives the guardianships from ``agentSourcedIds``. Any problem refuses the import whole.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

import msgspec

from server.oneroster.parse import (
    FILES,
    ClassRow,
    CourseRow,
    DemographicRow,
    EnrollmentRow,
    Mode,
    OrgRow,
    Problem,
    RoleRow,
    Row,
    SessionRow,
    UserRow,
)

KINDS: dict[str, str] = {
    "orgs": "org",
    "academicSessions": "session",
    "courses": "course",
    "classes": "class",
    "users": "user",
    "roles": "role",
    "enrollments": "enrollment",
    "demographics": "demographic",
}
"""The ``external_ref.kind`` of each file's rows; guardianships are kind ``link``."""

STAFF_ROLES: dict[tuple[str, str], str] = {
    ("teacher", "school"): "teacher",
    ("principal", "school"): "principal",
    ("siteAdministrator", "school"): "principal",
    ("administrator", "school"): "principal",
    ("administrator", "municipality"): "admin",
    ("districtAdministrator", "municipality"): "admin",
    ("systemAdministrator", "municipality"): "admin",
}
"""OneRoster role at a kind of organisation -> Reppu's staff role."""
STAFF_ONLY_AT = {
    "teacher": "school",
    "principal": "school",
    "siteAdministrator": "school",
    "districtAdministrator": "municipality",
    "systemAdministrator": "municipality",
}
MEMBERSHIP_ROLES = {"student": "pupil", "teacher": "teacher"}
"""OneRoster enrollment role -> membership role; other enrollments are remembered only."""

_json = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Ref:
    """An ``external_ref`` row: a sourcedId an earlier import stored."""

    id: int
    local_id: int | None
    modified: str
    digest: str
    data: str
    ended: bool


@dataclass(slots=True)
class Ops:
    """What happens to one file's rows."""

    creates: list[Row] = field(default_factory=list)
    """New rows, and rows whose earlier row was ended (they come back as new)."""
    updates: list[tuple[Row, Ref]] = field(default_factory=list)
    ends: list[tuple[str, Ref]] = field(default_factory=list)
    unchanged: int = 0


@dataclass(frozen=True, slots=True)
class Link:
    """A guardianship derived from ``agentSourcedIds``."""

    pupil: str
    guardian: str
    kind: str
    """``custodial`` or ``information_only``."""

    @property
    def sid(self) -> str:
        return f"{self.pupil}>{self.guardian}"


@dataclass(slots=True)
class LinkOps:
    creates: list[Link] = field(default_factory=list)
    updates: list[tuple[Link, Ref]] = field(default_factory=list)
    ends: list[tuple[str, Ref]] = field(default_factory=list)
    unchanged: int = 0


@dataclass(slots=True)
class Plan:
    """Everything ``apply`` needs: operations per file, links, and resolved details."""

    source: str
    ops: dict[str, Ops] = field(default_factory=dict)
    links: LinkOps = field(default_factory=LinkOps)
    problems: list[Problem] = field(default_factory=list)
    org_kinds: dict[str, str] = field(default_factory=dict)
    """The kind of every organisation alive after the import."""
    courses: dict[str, tuple[str, int | None, str | None]] = field(default_factory=dict)
    """Every course alive after the import: (title, grade, subject)."""
    default_org: str | None = None
    """The organisation of terms that name none: the import's one municipality."""
    birth_dates: dict[str, dt.date | None] = field(default_factory=dict)
    """Users created now whose demographics row is in this import."""


def ref_data(row: Row) -> str:
    """What ``external_ref.data`` keeps of a row for later imports that lack it."""
    if isinstance(row, OrgRow):
        return row.kind
    if isinstance(row, CourseRow):
        return _json.encode([row.title, row.grade, row.subject]).decode()
    if isinstance(row, RoleRow):
        return _json.encode([row.user, row.role, row.org]).decode()
    if isinstance(row, EnrollmentRow):
        return _json.encode([row.user, row.role, row.klass]).decode()
    if isinstance(row, UserRow) and row.agents:
        return _json.encode([list(a) for a in row.agents]).decode()
    return ""


def stamp(modified: dt.datetime | None) -> str:
    """``dateLastModified`` as stored: UTC, ISO 8601."""
    return modified.astimezone(dt.UTC).isoformat() if modified is not None else ""


def _stale(row: Row, ref: Ref | None, mode: Mode) -> bool:
    """A delta row no newer than what was imported before it: skipped."""
    if mode is not Mode.DELTA or ref is None or not ref.modified or row.modified is None:
        return False
    return row.modified <= dt.datetime.fromisoformat(ref.modified)


class _Planner:
    def __init__(
        self,
        source: str,
        rows: Mapping[str, list[Row]],
        modes: Mapping[str, Mode],
        refs: Mapping[str, Mapping[str, Ref]],
    ) -> None:
        self.rows, self.modes, self.refs = rows, modes, refs
        self.plan = Plan(source=source)
        self.alive: dict[str, set[str]] = {}
        self.current: dict[str, dict[str, Row]] = {}
        """Per file, the active rows of this import that are applied (not stale)."""

    def fail(self, file: str, row: Row, column: str, problem: str) -> None:
        self.plan.problems.append(Problem(file, row.line, column, problem))

    def decide(self, file: str) -> None:
        kind = KINDS[file]
        mode = self.modes.get(file, Mode.ABSENT)
        refs = self.refs.get(kind, {})
        ops = Ops()
        alive = {sid for sid, ref in refs.items() if not ref.ended}
        current: dict[str, Row] = {}
        for row in self.rows.get(file, []):
            ref = refs.get(row.sid)
            if _stale(row, ref, mode):
                ops.unchanged += 1
            elif not row.active:
                if ref is not None and not ref.ended:
                    ops.ends.append((row.sid, ref))
                    alive.discard(row.sid)
                else:
                    ops.unchanged += 1
            else:
                current[row.sid] = row
                alive.add(row.sid)
                if ref is None or ref.ended:
                    ops.creates.append(row)
                elif ref.digest != row.digest:
                    ops.updates.append((row, ref))
                else:
                    ops.unchanged += 1
        if mode is Mode.BULK:
            listed = {row.sid for row in self.rows.get(file, [])}
            for sid, ref in refs.items():
                if sid not in listed and not ref.ended:
                    ops.ends.append((sid, ref))
                    alive.discard(sid)
        self.plan.ops[file] = ops
        self.alive[kind] = alive
        self.current[file] = current

    def cascade(self) -> None:
        """Roles and enrollments of an ended user, class or organisation end with it, so that
        a later import listing them again brings them back."""
        ended = {
            kind: {sid for sid, _ in self.plan.ops[file].ends}
            for file, kind in (("users", "user"), ("classes", "class"), ("orgs", "org"))
        }
        for file, kind, parent in (
            ("roles", "role", "org"),
            ("enrollments", "enrollment", "class"),
        ):
            refs = self.refs.get(kind, {})
            for sid in sorted(self.alive[kind] - set(self.current[file])):
                user, _, owner = msgspec.json.decode(refs[sid].data)
                if user in ended["user"] or owner in ended[parent]:
                    self.plan.ops[file].ends.append((sid, refs[sid]))
                    self.alive[kind].discard(sid)

    def _stored(self, kind: str, sid: str) -> str:
        ref = self.refs.get(kind, {}).get(sid)
        return ref.data if ref is not None else ""

    def need(self, file: str, row: Row, column: str, kind: str, sid: str) -> bool:
        if sid in self.alive[kind]:
            return True
        self.fail(file, row, column, f"unknown reference {sid!r} (no such {kind})")
        return False

    def check_orgs(self) -> None:
        kinds = self.plan.org_kinds
        for sid in self.alive["org"]:
            row = self.current["orgs"].get(sid)
            kinds[sid] = row.kind if isinstance(row, OrgRow) else self._stored("org", sid)
        for row in self.current["orgs"].values():
            assert isinstance(row, OrgRow)
            if row.parent is None:
                continue
            if row.parent == row.sid:
                self.fail(
                    "orgs", row, "parentSourcedId", "an organisation cannot be its own parent"
                )
            elif self.need("orgs", row, "parentSourcedId", "org", row.parent) and (
                row.kind != "school" or kinds[row.parent] != "municipality"
            ):
                self.fail(
                    "orgs",
                    row,
                    "parentSourcedId",
                    "only a school has a parent: its municipality",
                )
        municipalities = sorted(s for s, k in kinds.items() if k == "municipality")
        if len(municipalities) == 1:
            self.plan.default_org = municipalities[0]

    def check_sessions(self) -> None:
        for row in self.current["academicSessions"].values():
            assert isinstance(row, SessionRow)
            if row.org is not None:
                self.need("academicSessions", row, "metadata.fi.orgSourcedId", "org", row.org)
            elif self.plan.default_org is None:
                self.fail(
                    "academicSessions",
                    row,
                    "metadata.fi.orgSourcedId",
                    "needed: the organisations are not one municipality with its schools",
                )

    def check_courses(self) -> None:
        for sid in self.alive["course"]:
            row = self.current["courses"].get(sid)
            if isinstance(row, CourseRow):
                self.need("courses", row, "orgSourcedId", "org", row.org)
                self.plan.courses[sid] = (row.title, row.grade, row.subject)
            else:
                title, grade, subject = msgspec.json.decode(self._stored("course", sid))
                self.plan.courses[sid] = (title, grade, subject)

    def check_classes(self) -> None:
        for row in self.current["classes"].values():
            assert isinstance(row, ClassRow)
            self.need("classes", row, "courseSourcedId", "course", row.course)
            if (
                self.need("classes", row, "schoolSourcedId", "org", row.school)
                and self.plan.org_kinds[row.school] != "school"
            ):
                self.fail("classes", row, "schoolSourcedId", f"{row.school!r} is not a school")
            for term in row.terms:
                self.need("classes", row, "termSourcedIds", "session", term)

    def check_users(self) -> None:
        usernames: dict[str, int] = {}
        for row in self.current["users"].values():
            assert isinstance(row, UserRow)
            for agent, _ in row.agents:
                if agent == row.sid:
                    self.fail("users", row, "agentSourcedIds", "a user cannot be their own agent")
                else:
                    self.need("users", row, "agentSourcedIds", "user", agent)
            if row.username:
                if row.username in usernames:
                    self.fail(
                        "users",
                        row,
                        "username",
                        f"{row.username!r} is also on line {usernames[row.username]}",
                    )
                usernames[row.username] = row.line

    def check_roles(self) -> None:
        for row in self.current["roles"].values():
            assert isinstance(row, RoleRow)
            self.need("roles", row, "userSourcedId", "user", row.user)
            if not self.need("roles", row, "orgSourcedId", "org", row.org):
                continue
            org_kind = self.plan.org_kinds[row.org]
            wanted = STAFF_ONLY_AT.get(row.role)
            if wanted is not None and org_kind != wanted:
                self.fail("roles", row, "orgSourcedId", f"a {row.role} works at a {wanted}")

    def check_enrollments(self) -> None:
        for row in self.current["enrollments"].values():
            assert isinstance(row, EnrollmentRow)
            self.need("enrollments", row, "classSourcedId", "class", row.klass)
            self.need("enrollments", row, "schoolSourcedId", "org", row.school)
            self.need("enrollments", row, "userSourcedId", "user", row.user)
            klass = self.current["classes"].get(row.klass)
            if isinstance(klass, ClassRow) and klass.school != row.school:
                self.fail(
                    "enrollments",
                    row,
                    "schoolSourcedId",
                    f"the class {row.klass!r} is at {klass.school!r}",
                )

    def check_demographics(self) -> None:
        created = {row.sid for row in self.plan.ops["users"].creates}
        for row in self.current["demographics"].values():
            assert isinstance(row, DemographicRow)
            if self.need("demographics", row, "sourcedId", "user", row.sid) and row.sid in created:
                self.plan.birth_dates[row.sid] = row.birth_date

    def _students(self) -> set[str]:
        """Users with a living ``student`` role or enrollment."""
        students: set[str] = set()
        for file, kind in (("roles", "role"), ("enrollments", "enrollment")):
            for sid in self.alive[kind]:
                row = self.current[file].get(sid)
                if isinstance(row, RoleRow | EnrollmentRow):
                    user, role = row.user, row.role
                else:
                    user, role = msgspec.json.decode(self._stored(kind, sid))[:2]
                if role == "student":
                    students.add(user)
        return students

    def derive_links(self) -> None:
        """Guardianships from every living user's ``agentSourcedIds``, either direction."""
        students = self._students()
        wanted: dict[str, Link] = {}
        for sid in self.alive["user"]:
            row = self.current["users"].get(sid)
            if isinstance(row, UserRow):
                agents: list[tuple[str, str]] = list(row.agents)
            else:
                stored = self._stored("user", sid)
                agents = [tuple(a) for a in msgspec.json.decode(stored)] if stored else []
            for agent, custody in agents:
                if agent not in self.alive["user"] or custody == "none":
                    continue
                if sid in students and agent not in students:
                    link = Link(sid, agent, custody)
                elif agent in students and sid not in students:
                    link = Link(agent, sid, custody)
                else:
                    if isinstance(row, UserRow):
                        self.fail(
                            "users",
                            row,
                            "agentSourcedIds",
                            f"of {sid!r} and its agent {agent!r}, exactly one must be a student",
                        )
                    continue
                earlier = wanted.get(link.sid)
                if earlier is not None and earlier.kind != link.kind and isinstance(row, UserRow):
                    self.fail(
                        "users",
                        row,
                        "metadata.fi.custody",
                        f"{custody} here, {earlier.kind} on the other user's line",
                    )
                wanted[link.sid] = link
        refs = self.refs.get("link", {})
        ops = self.plan.links
        for sid, link in sorted(wanted.items()):
            ref = refs.get(sid)
            if ref is None or ref.ended:
                ops.creates.append(link)
            elif ref.data != link.kind:
                ops.updates.append((link, ref))
            else:
                ops.unchanged += 1
        for sid, ref in refs.items():
            if sid not in wanted and not ref.ended:
                ops.ends.append((sid, ref))


def make_plan(
    source: str,
    rows: Mapping[str, list[Row]],
    modes: Mapping[str, Mode],
    refs: Mapping[str, Mapping[str, Ref]],
) -> Plan:
    """Decide the import. ``refs`` are the stored ``external_ref`` rows of ``source`` by kind
    and sourcedId. Check ``plan.problems`` before applying."""
    planner = _Planner(source, rows, modes, refs)
    for file in FILES:
        planner.decide(file)
    planner.cascade()
    planner.check_orgs()
    planner.check_sessions()
    planner.check_courses()
    planner.check_classes()
    planner.check_users()
    planner.check_roles()
    planner.check_enrollments()
    planner.check_demographics()
    planner.derive_links()
    return planner.plan
