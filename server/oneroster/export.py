"""``reppu export oneroster PATH``: the database as a OneRoster 1.2 CSV bulk set.

Every file is written in bulk, with the Finnish profile's ``metadata.fi.*`` columns, so
that ``reppu import oneroster`` reads it back whole (the demo city's round trip is how
``scripts/bench_oneroster.py`` measures an import). sourcedIds are made from Reppu's ids
(``org-3``, ``person-42``, ``membership-7``); ties are exported as they stand today and
ahead (ended ones are history and stay behind). ``docs/oneroster.md`` lists the mapping.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from pathlib import Path
from typing import Any

from piccolo.engine.base import Engine

from server.clock import school_today, utc_now
from server.db.bulk import run_sql
from server.db.engine import read_snapshot
from server.demo.progress import Progress, no_progress
from server.oneroster.apply import LEARNER_NUMBER
from server.oneroster.parse import FILES, FINNISH, HEADERS

_ORGS = "SELECT id, kind, name, parent, language FROM organisation ORDER BY id"
_TERMS = "SELECT id, organisation, name, starts_on, ends_on FROM term ORDER BY id"
_GROUPS = (
    "SELECT g.id, g.school, g.term, g.name, g.kind, g.grade, g.subject FROM school_group g "
    "ORDER BY g.id"
)
_PEOPLE = (
    "SELECT p.id, p.given_name, p.family_name, p.language, p.birth_date, p.turvakielto, "
    "p.shares_contact_with_guardians, p.email, p.phone, a.username, a.disabled, "
    "r.source_id AS oppijanumero FROM person p "
    "LEFT JOIN account a ON a.person = p.id LEFT JOIN external_ref r ON r.source = {} "
    "AND r.kind = 'person' AND r.local_id = p.id ORDER BY p.id"
)
# Ties in force today or later (ended ones are history).
_GUARDIANS = (
    "SELECT t.pupil, t.guardian, t.kind FROM guardianship t "
    "WHERE (t.valid_to IS NULL OR t.valid_to >= {}) ORDER BY t.pupil, t.guardian"
)
_STAFF = (
    "SELECT t.id, t.person, t.organisation, t.role, t.valid_from, t.valid_to FROM staff_role t "
    "WHERE (t.valid_to IS NULL OR t.valid_to >= {}) ORDER BY t.id"
)
_MEMBERS = (
    'SELECT t.id, t."group", g.school, t.person, t.role, t.valid_from, t.valid_to '
    'FROM membership t JOIN school_group g ON g.id = t."group" '
    "WHERE (t.valid_to IS NULL OR t.valid_to >= {}) ORDER BY t.id"
)
_ORG_TYPES = {"municipality": "district", "school": "school"}
_STAFF_ROLES = {"teacher": "teacher", "principal": "principal", "admin": "districtAdministrator"}
_MEMBER_ROLES = {"pupil": "student", "teacher": "teacher"}


def _date(value: Any) -> str:
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, dt.date) else str(value)[:10]


def _grade(value: int | None) -> str:
    return "" if value is None else f"{value:02d}"


class _Files:
    """The CSV texts being written, each with its header."""

    def __init__(self, stamp: str) -> None:
        self.stamp = stamp
        self.buffers: dict[str, io.StringIO] = {}
        self.writers: dict[str, Any] = {}
        self.columns: dict[str, tuple[str, ...]] = {}
        self.counts: dict[str, int] = {}
        for name in FILES:
            self.columns[name] = HEADERS[name] + FINNISH.get(name, ())
            self.buffers[name] = io.StringIO()
            self.writers[name] = csv.writer(self.buffers[name], lineterminator="\n")
            self.writers[name].writerow(self.columns[name])
            self.counts[name] = 0

    def row(self, file: str, sid: str, /, **values: object) -> None:
        values.update(sourcedId=sid, status="active", dateLastModified=self.stamp)
        self.writers[file].writerow(
            ["" if (v := values.get(c)) is None else v for c in self.columns[file]]
        )
        self.counts[file] += 1

    def texts(self, source: str) -> dict[str, str]:
        manifest = [
            ("manifest.version", "1.0"),
            ("oneroster.version", "1.2.1"),
            *((f"file.{name}", "bulk") for name in FILES),
            ("source.systemName", "Reppu"),
            ("source.systemCode", source),
        ]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(("propertyName", "value"))
        writer.writerows(manifest)
        return {"manifest": out.getvalue(), **{n: b.getvalue() for n, b in self.buffers.items()}}


def _booleans(value: Any) -> str:
    return "true" if value else "false"


async def _collect(files: _Files, today: dt.date, progress: Progress) -> None:
    orgs = await run_sql(_ORGS)
    for o in orgs:
        files.row(
            "orgs",
            f"org-{o['id']}",
            name=o["name"],
            type=_ORG_TYPES[o["kind"]],
            parentSourcedId=f"org-{o['parent']}" if o["parent"] else None,
            **{"metadata.fi.language": o["language"]},
        )
    terms = await run_sql(_TERMS)
    for t in terms:
        files.row(
            "academicSessions",
            f"term-{t['id']}",
            title=t["name"],
            type="schoolYear",
            startDate=_date(t["starts_on"]),
            endDate=_date(t["ends_on"]),
            schoolYear=_date(t["ends_on"])[:4],
            **{"metadata.fi.orgSourcedId": f"org-{t['organisation']}"},
        )
    progress("export", 1, 4)
    fallback = f"term-{terms[0]['id']}" if terms else ""
    for g in await run_sql(_GROUPS):
        term = f"term-{g['term']}" if g["term"] else fallback
        grade = _grade(g["grade"])
        files.row(
            "courses",
            f"course-{g['id']}",
            schoolYearSourcedId=term,
            title=g["subject"] or g["name"],
            grades=grade,
            orgSourcedId=f"org-{g['school']}",
            subjects=g["subject"],
        )
        files.row(
            "classes",
            f"class-{g['id']}",
            title=g["name"],
            grades=grade,
            courseSourcedId=f"course-{g['id']}",
            classCode=g["name"],
            classType="homeroom" if g["kind"] == "home_class" else "scheduled",
            schoolSourcedId=f"org-{g['school']}",
            termSourcedIds=term,
            subjects=g["subject"],
        )
    progress("export", 2, 4)
    members = await run_sql(_MEMBERS, today)
    pupil_schools: dict[int, list[int]] = {}
    for m in members:
        if m["role"] == "pupil":
            schools = pupil_schools.setdefault(int(m["person"]), [])
            if int(m["school"]) not in schools:
                schools.append(int(m["school"]))
    guardians: dict[int, list[tuple[int, str]]] = {}
    guardian_schools: dict[int, list[int]] = {}
    for link in await run_sql(_GUARDIANS, today):
        pupil, guardian = int(link["pupil"]), int(link["guardian"])
        if pupil not in pupil_schools or guardian in pupil_schools:
            continue  # OneRoster links a student and a non-student
        guardians.setdefault(pupil, []).append((guardian, link["kind"]))
        schools = guardian_schools.setdefault(guardian, [])
        schools.extend(s for s in pupil_schools[pupil] if s not in schools)
    for p in await run_sql(_PEOPLE, LEARNER_NUMBER):
        agents = guardians.get(int(p["id"]), [])
        files.row(
            "users",
            f"person-{p['id']}",
            enabledUser=_booleans(not p["disabled"]),
            username=p["username"],
            givenName=p["given_name"],
            familyName=p["family_name"],
            email=p["email"],
            phone=p["phone"],
            agentSourcedIds=",".join(f"person-{g}" for g, _ in agents),
            **{
                "metadata.fi.language": p["language"],
                "metadata.fi.turvakielto": _booleans(p["turvakielto"]),
                "metadata.fi.oppijanumero": p["oppijanumero"],
                "metadata.fi.custody": ",".join(kind for _, kind in agents),
                "metadata.fi.shareContactWithGuardians": _booleans(
                    p["shares_contact_with_guardians"]
                ),
            },
        )
        if p["birth_date"] is not None:
            files.row("demographics", f"person-{p['id']}", birthDate=_date(p["birth_date"]))
    progress("export", 3, 4)
    for s in await run_sql(_STAFF, today):
        files.row(
            "roles",
            f"staff-{s['id']}",
            userSourcedId=f"person-{s['person']}",
            roleType="primary",
            role=_STAFF_ROLES[s["role"]],
            beginDate=_date(s["valid_from"]),
            endDate=_date(s["valid_to"]),
            orgSourcedId=f"org-{s['organisation']}",
        )
    for role, by_person in (("student", pupil_schools), ("guardian", guardian_schools)):
        for person, schools in by_person.items():
            for index, school in enumerate(schools):
                files.row(
                    "roles",
                    f"{role}-{person}-{school}",
                    userSourcedId=f"person-{person}",
                    roleType="primary" if index == 0 else "secondary",
                    role=role,
                    orgSourcedId=f"org-{school}",
                )
    for m in members:
        files.row(
            "enrollments",
            f"membership-{m['id']}",
            classSourcedId=f"class-{m['group']}",
            schoolSourcedId=f"org-{m['school']}",
            userSourcedId=f"person-{m['person']}",
            role=_MEMBER_ROLES[m["role"]],
            beginDate=_date(m["valid_from"]),
            endDate=_date(m["valid_to"]),
        )
    progress("export", 4, 4)


def _write(path: Path, texts: dict[str, str]) -> None:
    if path.suffix == ".zip":
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, text in texts.items():
                archive.writestr(f"{name}.csv", text)
        return
    path.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (path / f"{name}.csv").write_text(text, encoding="utf-8")


async def export_oneroster(
    engine: Engine[Any],
    path: Path,
    *,
    source: str = "reppu",
    today: dt.date | None = None,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Write the database to ``path`` (a folder, or a zip if it ends in ``.zip``) from one
    consistent snapshot; returns rows per file."""
    stamp = utc_now().replace(microsecond=0).isoformat().replace("+00:00", "Z")
    files = _Files(stamp)
    async with read_snapshot(engine):
        await _collect(files, today or school_today(), progress or no_progress)
    _write(path, files.texts(source))
    return dict(files.counts)
