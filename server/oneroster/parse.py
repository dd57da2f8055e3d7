"""OneRoster 1.2 CSV to typed rows, with every problem named by file, line and column.

Pure: no database, no network. :func:`read_files` finds the files of a folder or a zip
(``server/oneroster/read.py`` checks the container and streams each file, bounded);
:func:`parse_files` reads them into a :class:`Batch` or raises :class:`ImportRefused` with the
problems found (all of them, up to :data:`MAX_PROBLEMS`). References between files
are checked later, by ``server/oneroster/apply.py``, against this batch and what earlier
imports stored; they are reported in the same form. ``docs/oneroster.md`` is the reference.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from server.demo.progress import Progress
from server.oneroster.read import (
    LIMITS,
    Budget,
    ContainerRefused,
    Limits,
    Records,
    SetFile,
    Unreadable,
    find_files,
)
from server.signin.national_id import is_national_id

MAX_PROBLEMS = 200
"""Parsing stops collecting problems here: the first ones are enough to mend a file."""

FILES = (
    "orgs",
    "academicSessions",
    "courses",
    "classes",
    "users",
    "roles",
    "enrollments",
    "demographics",
)
"""The files Reppu reads, in the order they are applied (a file's references come first)."""

HEADERS: dict[str, tuple[str, ...]] = {
    name: tuple(columns.split())
    for name, columns in (
        ("orgs", "sourcedId status dateLastModified name type identifier parentSourcedId"),
        (
            "academicSessions",
            "sourcedId status dateLastModified title type startDate endDate parentSourcedId "
            "schoolYear",
        ),
        (
            "courses",
            "sourcedId status dateLastModified schoolYearSourcedId title courseCode grades "
            "orgSourcedId subjects subjectCodes",
        ),
        (
            "classes",
            "sourcedId status dateLastModified title grades courseSourcedId classCode classType "
            "location schoolSourcedId termSourcedIds subjects subjectCodes periods",
        ),
        (
            "users",
            "sourcedId status dateLastModified enabledUser username userIds givenName familyName "
            "middleName identifier email sms phone agentSourcedIds grades password "
            "userMasterIdentifier preferredGivenName preferredMiddleName "
            "preferredFamilyName primaryOrgSourcedId pronouns",
        ),
        (
            "roles",
            "sourcedId status dateLastModified userSourcedId roleType role beginDate endDate "
            "orgSourcedId userProfileSourcedId",
        ),
        (
            "enrollments",
            "sourcedId status dateLastModified classSourcedId schoolSourcedId userSourcedId role "
            "primary beginDate endDate",
        ),
        (
            "demographics",
            "sourcedId status dateLastModified birthDate sex americanIndianOrAlaskaNative asian "
            "blackOrAfricanAmerican nativeHawaiianOrOtherPacificIslander white "
            "demographicRaceTwoOrMoreRaces hispanicOrLatinoEthnicity countryOfBirthCode "
            "stateOfBirthAbbreviation cityOfBirth publicSchoolResidenceStatus",
        ),
    )
}
"""Each file's standard columns (OneRoster 1.2.1 CSV binding), in the binding's order: the
export writes them all. An import needs only :data:`REQUIRED`."""

DROPPED: dict[str, tuple[str, ...]] = {"users": ("resourceSourcedIds",)}
"""Columns of 1.2 that the corrected 1.2.1 binding leaves out: known, allowed, not read."""

REQUIRED: dict[str, frozenset[str]] = {
    name: frozenset(columns.split())
    for name, columns in (
        ("orgs", "sourcedId name type"),
        ("academicSessions", "sourcedId title type startDate endDate schoolYear"),
        ("courses", "sourcedId title orgSourcedId"),
        (
            "classes",
            "sourcedId title courseSourcedId classType schoolSourcedId termSourcedIds",
        ),
        ("users", "sourcedId enabledUser username givenName familyName"),
        ("roles", "sourcedId userSourcedId roleType role orgSourcedId"),
        ("enrollments", "sourcedId classSourcedId schoolSourcedId userSourcedId role"),
        ("demographics", "sourcedId"),
    )
}
"""The columns a header must hold: those whose value the 1.2.1 binding requires on every
line (Reppu needs no other). Any other column may be left out; status and dateLastModified
are required in a delta file only."""

DELTA_REQUIRED = frozenset({"status", "dateLastModified"})

FINNISH: dict[str, tuple[str, ...]] = {
    "orgs": ("metadata.fi.language",),
    "academicSessions": ("metadata.fi.orgSourcedId",),
    "users": (
        "metadata.fi.language",
        "metadata.fi.turvakielto",
        "metadata.fi.oppijanumero",
        "metadata.fi.custody",
        "metadata.fi.henkilotunnus",
        "metadata.fi.shareContactWithGuardians",
    ),
}
"""The Finnish profile's columns per file; another ``metadata.fi.*`` column is refused (a
typo would otherwise drop, say, a turvakielto silently). Other ``metadata.*`` columns are
OneRoster's extension point and are ignored."""

RACE_COLUMNS = (
    "americanIndianOrAlaskaNative",
    "asian",
    "blackOrAfricanAmerican",
    "nativeHawaiianOrOtherPacificIslander",
    "white",
    "demographicRaceTwoOrMoreRaces",
    "hispanicOrLatinoEthnicity",
)
"""US race and ethnicity columns: the header may name them, a value in them is refused."""

LANGUAGE = re.compile(r"^[a-z]{2,3}$")
"""A language is an ISO 639 code in lower case: ``fi``, ``sv``, ``se``, ``smn``, ``so``."""

OPPIJANUMERO = re.compile(r"^1\.2\.246\.562\.24\.\d{11}$")
"""The national learner number (oppijanumero) is an OID of the Finnish National Agency."""

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class Mode(StrEnum):
    """How the manifest delivers a file."""

    BULK = "bulk"
    """The whole set: what an earlier import had and this file lacks is ended."""
    DELTA = "delta"
    """Changes only, each row with ``status`` and ``dateLastModified``."""
    ABSENT = "absent"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the input, where it is."""

    file: str
    line: int
    """1 is the header; 0 means the file as a whole."""
    column: str
    problem: str

    def __str__(self) -> str:
        # A file of the set is named without ".csv"; a zip or a folder by its own name.
        where = self.file if "." in self.file or "/" in self.file else f"{self.file}.csv"
        if self.line:
            where += f" line {self.line}"
        if self.column:
            where += f", column {self.column}"
        return f"{where}: {self.problem}"


class ImportRefused(Exception):  # noqa: N818 (a refusal, not a bug)
    """The import is refused whole; nothing was written. The first :data:`MAX_PROBLEMS`
    problems are kept."""

    def __init__(self, problems: list[Problem]) -> None:
        self.total = len(problems)
        """How many problems were found (the checks stop early in places, so a lower bound
        of what is wrong with the set)."""
        self.problems = problems[:MAX_PROBLEMS]
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    """What every OneRoster row has."""

    sid: str
    """The sourcedId."""
    active: bool
    """``status`` is ``active`` (or blank in a bulk file), not ``tobedeleted``."""
    modified: dt.datetime | None
    line: int
    digest: str = ""
    """A hash of the row's content (not its status or date): equal digests, nothing to do."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OrgRow(Row):
    name: str
    kind: str
    """``municipality`` or ``school`` (``schemas.core.OrganisationKind``)."""
    parent: str | None
    language: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRow(Row):
    title: str
    starts_on: dt.date
    ends_on: dt.date
    org: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CourseRow(Row):
    title: str
    org: str
    grade: int | None
    subject: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassRow(Row):
    title: str
    kind: str
    """``home_class`` (classType homeroom) or ``teaching_group`` (scheduled)."""
    course: str
    school: str
    terms: tuple[str, ...]
    grade: int | None
    subject: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class UserRow(Row):
    enabled: bool
    username: str
    given_name: str
    family_name: str
    email: str | None
    phone: str | None
    agents: tuple[tuple[str, str], ...]
    """(agent sourcedId, custody): ``custodial``, ``information_only`` or ``none``."""
    language: str | None
    turvakielto: bool
    oppijanumero: str | None
    national_id: str | None = field(default=None, repr=False)
    """The henkilötunnus, to be hashed at once (``server/signin/identifiers.py``). Not part
    of ``digest``: that is an unkeyed hash, and a national identity number must not be
    guessable from it."""
    shares_contact: bool = False
    """``metadata.fi.shareContactWithGuardians``: the child's other guardians may see this
    person's contact details though they live elsewhere."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RoleRow(Row):
    user: str
    role: str
    """OneRoster's role (``teacher``, ``student``, ``guardian``, ...)."""
    org: str
    begins: dt.date | None
    ends: dt.date | None


@dataclass(frozen=True, slots=True, kw_only=True)
class EnrollmentRow(Row):
    klass: str
    school: str
    user: str
    role: str
    begins: dt.date | None
    ends: dt.date | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DemographicRow(Row):
    birth_date: dt.date | None


@dataclass(slots=True)
class Batch:
    """A parsed import: each file's mode and rows (files the manifest leaves out: absent)."""

    source: str = "oneroster"
    """The sending system (``source.systemCode``): sourcedIds are unique within it."""
    modes: dict[str, Mode] = field(default_factory=dict)
    rows: dict[str, list[Row]] = field(default_factory=dict)

    def mode(self, name: str) -> Mode:
        return self.modes.get(name, Mode.ABSENT)

    def of(self, name: str) -> list[Row]:
        return self.rows.get(name, [])


ORG_KINDS = {"district": "municipality", "local": "municipality", "school": "school"}
CLASS_KINDS = {"homeroom": "home_class", "scheduled": "teaching_group"}
ROLES = frozenset(
    {
        "administrator",
        "aide",
        "counselor",
        "districtAdministrator",
        "guardian",
        "parent",
        "principal",
        "proctor",
        "relativeOf",
        "siteAdministrator",
        "student",
        "systemAdministrator",
        "teacher",
    }
)
CUSTODY = frozenset({"custodial", "information_only", "none"})

T = TypeVar("T")
"""``progress(stage, done, total)``, as ``server/demo/progress.py`` draws it."""


class _Cells:
    """One data line's cells, with typed getters that note problems instead of raising."""

    def __init__(self, file: str, line: int, cells: Mapping[str, str], problems: list[Problem]):
        self.file, self.line, self.cells, self.problems = file, line, cells, problems
        self.bad = False

    def fail(self, column: str, problem: str) -> None:
        self.bad = True
        self.problems.append(Problem(self.file, self.line, column, problem))

    def text(self, column: str, *, required: bool = False, limit: int = 200) -> str | None:
        value = self.cells.get(column, "").strip()
        if not value:
            if required:
                self.fail(column, "a value is required")
            return None
        if "\x00" in value:
            self.fail(column, "NUL is not allowed")
            return None
        if len(value) > limit:
            self.fail(column, f"longer than {limit} characters")
            return None
        return value

    def required(self, column: str, *, limit: int = 200) -> str:
        return self.text(column, required=True, limit=limit) or ""

    def date(self, column: str, *, required: bool = False) -> dt.date | None:
        value = self.text(column, required=required)
        if value is None:
            return None
        try:
            if not _DATE.match(value):
                raise ValueError
            return dt.date.fromisoformat(value)
        except ValueError:
            self.fail(column, f"{value!r} is not a date (YYYY-MM-DD)")
            return None

    def choice(self, column: str, allowed: Mapping[str, T], *, required: bool = True) -> T | None:
        value = self.text(column, required=required)
        if value is None:
            return None
        if value not in allowed:
            self.fail(column, f"{value!r} is not one of {', '.join(sorted(allowed))}")
            return None
        return allowed[value]

    def boolean(self, column: str, *, default: bool) -> bool:
        value = self.text(column)
        if value is None:
            return default
        if value.lower() not in ("true", "false"):
            self.fail(column, f"{value!r} is not true or false")
            return default
        return value.lower() == "true"

    def language(self, column: str = "metadata.fi.language") -> str | None:
        value = self.text(column, limit=8)
        if value is not None and not LANGUAGE.match(value):
            self.fail(column, f"{value!r} is not an ISO 639 language code (fi, sv, ...)")
            return None
        return value

    def listed(self, column: str) -> tuple[str, ...]:
        value = self.text(column, limit=100_000) or ""
        return tuple(part.strip() for part in value.split(",") if part.strip())

    def grade(self, column: str) -> int | None:
        """The first grade listed, as a number (``05`` is 5); other codes (KG) carry none."""
        for grade in self.listed(column):
            if grade.isdigit():
                return int(grade)
        return None


def _digest(values: tuple[object, ...]) -> str:
    return hashlib.blake2b(repr(values).encode(), digest_size=8).hexdigest()


def _head(cells: _Cells, mode: Mode) -> dict[str, object] | None:
    """The common columns, or None if they are wrong."""
    sid = cells.required("sourcedId", limit=255)
    status = cells.text("status")
    active = True
    if status is not None and status not in ("active", "tobedeleted"):
        cells.fail("status", f"{status!r} is not active or tobedeleted")
    elif status == "tobedeleted":
        active = False
    elif status is None and mode is Mode.DELTA:
        cells.fail("status", "a delta file needs a status on every line")
    modified_text = cells.text("dateLastModified")
    modified = None
    if modified_text is not None:
        try:
            modified = dt.datetime.fromisoformat(modified_text)
            if modified.tzinfo is None:
                modified = modified.replace(tzinfo=dt.UTC)
        except ValueError:
            cells.fail("dateLastModified", f"{modified_text!r} is not an ISO 8601 date and time")
    elif mode is Mode.DELTA:
        cells.fail("dateLastModified", "a delta file needs dateLastModified on every line")
    return {"sid": sid, "active": active, "modified": modified, "line": cells.line}


def _org(c: _Cells, head: dict[str, object]) -> Row:
    values = (
        c.required("name"),
        c.choice("type", ORG_KINDS) or "",
        c.text("parentSourcedId", limit=255),
        c.language(),
    )
    return OrgRow(
        **head,  # type: ignore[arg-type]
        digest=_digest(values),
        name=values[0],
        kind=values[1],
        parent=values[2],
        language=values[3],
    )


def _session(c: _Cells, head: dict[str, object]) -> Row:
    title = c.required("title", limit=100)
    starts, ends = c.date("startDate", required=True), c.date("endDate", required=True)
    if starts and ends and ends < starts:
        c.fail("endDate", "ends before startDate")
    org = c.text("metadata.fi.orgSourcedId", limit=255)
    values = (title, starts, ends, org)
    return SessionRow(
        **head,  # type: ignore[arg-type]
        digest=_digest(values),
        title=title,
        starts_on=starts or dt.date.min,
        ends_on=ends or dt.date.min,
        org=org,
    )


def _course(c: _Cells, head: dict[str, object]) -> Row:
    subjects = c.listed("subjects")
    values = (
        c.required("title", limit=100),
        c.required("orgSourcedId", limit=255),
        c.grade("grades"),
        subjects[0][:100] if subjects else None,
    )
    return CourseRow(
        **head,  # type: ignore[arg-type]
        digest=_digest(values),
        title=values[0],
        org=values[1],
        grade=values[2],
        subject=values[3],
    )


def _class(c: _Cells, head: dict[str, object]) -> Row:
    subjects = c.listed("subjects")
    terms = c.listed("termSourcedIds")
    if not terms:
        c.fail("termSourcedIds", "a value is required")
    values = (
        c.required("title", limit=100),
        c.choice("classType", CLASS_KINDS) or "",
        c.required("courseSourcedId", limit=255),
        c.required("schoolSourcedId", limit=255),
        terms,
        c.grade("grades"),
        subjects[0][:100] if subjects else None,
    )
    return ClassRow(
        **head,  # type: ignore[arg-type]
        digest=_digest(values),
        title=values[0],
        kind=values[1],
        course=values[2],
        school=values[3],
        terms=values[4],
        grade=values[5],
        subject=values[6],
    )


def _user(c: _Cells, head: dict[str, object]) -> Row:
    agents = c.listed("agentSourcedIds")
    custody = c.listed("metadata.fi.custody")
    if custody and len(custody) != len(agents):
        c.fail(
            "metadata.fi.custody",
            f"lists {len(custody)} custody kinds for {len(agents)} agentSourcedIds",
        )
        custody = ()
    for kind in custody:
        if kind not in CUSTODY:
            c.fail("metadata.fi.custody", f"{kind!r} is not one of {', '.join(sorted(CUSTODY))}")
            custody = ()
            break
    if len(set(agents)) != len(agents):
        c.fail("agentSourcedIds", "lists an agent twice")
    oppijanumero = c.text("metadata.fi.oppijanumero", limit=40)
    if oppijanumero is not None and not OPPIJANUMERO.match(oppijanumero):
        c.fail("metadata.fi.oppijanumero", f"{oppijanumero!r} is not an oppijanumero")
        oppijanumero = None
    national_id = c.text("metadata.fi.henkilotunnus", limit=11)
    if national_id is not None:
        national_id = national_id.upper()
        if not is_national_id(national_id):
            # The value is not repeated: it may be a real person's number, mistyped.
            c.fail("metadata.fi.henkilotunnus", "is not a well-formed henkilötunnus")
            national_id = None
    values = (
        c.boolean("enabledUser", default=True),
        c.text("username", limit=100) or "",
        c.required("givenName", limit=100),
        c.required("familyName", limit=100),
        c.text("email", limit=200),
        c.text("phone", limit=40) or c.text("sms", limit=40),
        tuple(zip(agents, custody or ("custodial",) * len(agents), strict=True)),
        c.language(),
        c.boolean("metadata.fi.turvakielto", default=False),
        oppijanumero,
    )
    shares = c.boolean("metadata.fi.shareContactWithGuardians", default=False)
    return UserRow(
        **head,  # type: ignore[arg-type]
        # Hashed only when set, so that a line without it keeps the digest it had before
        # the column existed (re-importing the same files still changes nothing).
        digest=_digest((*values, "shares contact") if shares else values),
        shares_contact=shares,
        enabled=values[0],
        username=values[1],
        given_name=values[2],
        family_name=values[3],
        email=values[4],
        phone=values[5],
        agents=values[6],
        language=values[7],
        turvakielto=values[8],
        oppijanumero=values[9],
        national_id=national_id,
    )


def _dates(c: _Cells) -> tuple[dt.date | None, dt.date | None]:
    begins, ends = c.date("beginDate"), c.date("endDate")
    if begins and ends and ends < begins:
        c.fail("endDate", "ends before beginDate")
    return begins, ends


def _role(c: _Cells, head: dict[str, object]) -> Row:
    c.choice("roleType", {"primary": "primary", "secondary": "secondary"})
    values = (
        c.required("userSourcedId", limit=255),
        c.choice("role", {r: r for r in ROLES}) or "",
        c.required("orgSourcedId", limit=255),
        *_dates(c),
    )
    return RoleRow(
        **head,  # type: ignore[arg-type]
        digest=_digest(values),
        user=values[0],
        role=values[1],
        org=values[2],
        begins=values[3],
        ends=values[4],
    )


def _enrollment(c: _Cells, head: dict[str, object]) -> Row:
    values = (
        c.required("classSourcedId", limit=255),
        c.required("schoolSourcedId", limit=255),
        c.required("userSourcedId", limit=255),
        c.choice("role", {r: r for r in ROLES}) or "",
        *_dates(c),
    )
    return EnrollmentRow(
        **head,  # type: ignore[arg-type]
        digest=_digest(values),
        klass=values[0],
        school=values[1],
        user=values[2],
        role=values[3],
        begins=values[4],
        ends=values[5],
    )


def _demographic(c: _Cells, head: dict[str, object]) -> Row:
    for column in RACE_COLUMNS:
        if c.text(column) is not None:
            c.fail(column, "race and ethnicity are not taken: leave the column empty")
    birth = c.date("birthDate")
    return DemographicRow(
        **head,  # type: ignore[arg-type]
        digest=_digest((birth,)),
        birth_date=birth,
    )


_BUILDERS: dict[str, Callable[[_Cells, dict[str, object]], Row]] = {
    "orgs": _org,
    "academicSessions": _session,
    "courses": _course,
    "classes": _class,
    "users": _user,
    "roles": _role,
    "enrollments": _enrollment,
    "demographics": _demographic,
}


def _check_header(name: str, header: list[str], mode: Mode, problems: list[Problem]) -> bool:
    """The header holds the required columns, each column once. A column the binding does
    not know is ignored (a sender's own column does no harm), except one that differs from
    a known column only in case (header names are case-sensitive: ``Email`` would otherwise
    drop the email silently) and an unknown ``metadata.fi.*`` column (a typo would drop,
    say, a turvakielto)."""
    known = {*HEADERS[name], *DROPPED.get(name, ()), *FINNISH.get(name, ())}
    by_case = {column.lower(): column for column in known}
    required = REQUIRED[name] | (DELTA_REQUIRED if mode is Mode.DELTA else frozenset())
    if len(header) == 1 and ";" in header[0]:
        problems.append(
            Problem(
                name,
                1,
                "",
                "the columns are separated by semicolons (Excel's CSV where the decimal mark "
                "is a comma, as in Finland and Sweden); OneRoster's are separated by commas: "
                "export the file from the school system again, or set Windows' list "
                "separator to a comma before saving from Excel",
            )
        )
        return False
    ok = True
    for column in HEADERS[name]:
        if column in required and column not in header:
            why = (
                "a delta file needs this column"
                if column in DELTA_REQUIRED
                else ("the header lacks this column")
            )
            problems.append(Problem(name, 1, column, why))
            ok = False
    seen: set[str] = set()
    for column in header:
        if column in seen:
            problems.append(Problem(name, 1, column, "the header names this column twice"))
            ok = False
        seen.add(column)
        if column in known:
            continue
        if column.lower() in by_case:
            problems.append(
                Problem(
                    name,
                    1,
                    column,
                    f"header names are case-sensitive: write {by_case[column.lower()]}",
                )
            )
            ok = False
        elif column.startswith("metadata.fi."):
            problems.append(Problem(name, 1, column, "not a column of the Finnish profile"))
            ok = False
    return ok


def _unreadable(name: str, error: Unreadable, header: list[str]) -> Problem:
    column = ""
    if error.field is not None:
        column = header[error.field] if error.field < len(header) else f"#{error.field + 1}"
    return Problem(name, error.line, column, error.problem)


def parse_file(
    file: SetFile,
    mode: Mode,
    problems: list[Problem],
    budget: Budget,
    progress: Progress | None = None,
) -> list[Row]:
    """One file's rows, read as a stream; problems are appended to ``problems``."""
    name = file.name
    records = Records(file, budget)
    header: list[str] = []
    rows: list[Row] = []
    try:
        lines = iter(records)
        first = next(lines, None)
        if first is None:
            problems.append(Problem(name, 0, "", "the file is empty (it needs a header)"))
            return []
        header = [h.strip() for h in first[1]]
        if not _check_header(name, header, mode, problems):
            return []
        build = _BUILDERS[name]
        seen: dict[str, int] = {}
        for count, (line, values) in enumerate(lines):
            if progress is not None and count % 20_000 == 0:
                progress(f"read {name}", records.done, file.size)
            if len(problems) >= MAX_PROBLEMS:
                break
            if not values or (len(values) == 1 and not values[0].strip()):
                continue  # a blank line
            if len(values) != len(header):
                problems.append(
                    Problem(name, line, "", f"{len(values)} cells, the header has {len(header)}")
                )
                continue
            cells = _Cells(name, line, dict(zip(header, values, strict=True)), problems)
            head = _head(cells, mode)
            row = build(cells, head) if head is not None else None
            if cells.bad or row is None:
                continue
            if row.sid in seen:
                problems.append(
                    Problem(name, line, "sourcedId", f"{row.sid!r} is also on line {seen[row.sid]}")
                )
                continue
            seen[row.sid] = line
            rows.append(row)
    except Unreadable as error:
        problems.append(_unreadable(name, error, header))
        return []
    if progress is not None:
        progress(f"read {name}", file.size, file.size)
    return rows


VERSIONS = ("1.2", "1.2.0", "1.2.1")
"""The ``oneroster.version`` values read: 1.2 and its corrected binding 1.2.1."""


def parse_manifest(
    file: SetFile, problems: list[Problem], budget: Budget
) -> tuple[str, dict[str, Mode]]:
    """The sending system and each file's mode."""
    properties: dict[str, str] = {}
    header: list[str] = []
    try:
        for line, cells in Records(file, budget):
            if line == 1:
                header = [h.strip() for h in cells]
                if header != ["propertyName", "value"]:
                    problems.append(
                        Problem("manifest", 1, "", "the header must be propertyName,value")
                    )
                    return "", {}
                continue
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue
            if len(cells) != 2:
                problems.append(Problem("manifest", line, "", "a line needs two cells"))
                continue
            properties[cells[0].strip()] = cells[1].strip()
    except Unreadable as error:
        problems.append(_unreadable("manifest", error, header))
        return "", {}
    if not header:
        problems.append(Problem("manifest", 1, "", "the header must be propertyName,value"))
        return "", {}
    version = properties.get("oneroster.version")
    if version not in VERSIONS:
        problems.append(
            Problem("manifest", 0, "oneroster.version", f"{version!r}: only 1.2 and 1.2.1 are read")
        )
    modes: dict[str, Mode] = {}
    for name in FILES:
        value = properties.get(f"file.{name}", "absent")
        try:
            modes[name] = Mode(value)
        except ValueError:
            problems.append(
                Problem("manifest", 0, f"file.{name}", f"{value!r} is not bulk, delta or absent")
            )
    source = properties.get("source.systemCode") or "oneroster"
    return source[:64], modes


def parse_files(
    files: Mapping[str, SetFile | str | bytes],
    progress: Progress | None = None,
    *,
    limits: Limits = LIMITS,
) -> Batch:
    """Parse ``manifest.csv`` and the files it names (``files`` keyed by file name without
    ``.csv``: as :func:`read_files` finds them, or texts); raises :class:`ImportRefused`
    with every problem found. Each file is read as a stream, within ``limits``."""
    sources = {
        name: file if isinstance(file, SetFile) else SetFile.from_text(name, file)
        for name, file in files.items()
    }
    problems: list[Problem] = []
    if "manifest" not in sources:
        raise ImportRefused([Problem("manifest", 0, "", "there is no manifest.csv")])
    budget = Budget(limits)
    source, modes = parse_manifest(sources["manifest"], problems, budget)
    batch = Batch(source=source, modes=modes)
    for name in FILES:
        mode = batch.mode(name)
        if mode is Mode.ABSENT:
            continue
        if name not in sources:
            problems.append(
                Problem(name, 0, "", f"the manifest says {mode.value}, the file is missing")
            )
            continue
        batch.rows[name] = parse_file(sources[name], mode, problems, budget, progress)
    if problems:
        raise ImportRefused(problems)
    return batch


def read_files(path: Path, limits: Limits = LIMITS) -> dict[str, SetFile]:
    """The set's files in a folder or a zip, found but not yet read (:func:`parse_files`
    streams them); raises :class:`ImportRefused` if the folder or zip itself is wrong
    (``server/oneroster/read.py`` says what is checked)."""
    try:
        return find_files(path, frozenset({"manifest", *FILES}), limits)
    except ContainerRefused as refused:
        raise ImportRefused([Problem(refused.where, 0, "", p) for p in refused.problems]) from None
