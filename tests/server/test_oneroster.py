"""OneRoster 1.2 CSV import and export, on the hand-written sets of tests/fixtures/oneroster.

The parsing tests need no database; the import tests run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from piccolo.engine.base import Engine

from server.cli import build_parser
from server.clock import school_today
from server.db.engine import write_transaction
from server.db.oneroster_tables import ExternalRef
from server.db.schema import EVERY_TABLE
from server.db.sync_tables import ChangeLog, SyncRecord
from server.db.tables import (
    Account,
    Guardianship,
    Lesson,
    LessonChange,
    Membership,
    Organisation,
    Person,
    SchoolGroup,
    StaffRole,
    Term,
)
from server.identity import hash_password
from server.live import parse_notification
from server.oneroster import (
    ImportRefused,
    Problem,
    export_oneroster,
    import_oneroster,
    parse_files,
    read_files,
)
from server.oneroster.apply import LEARNER_NUMBER, Summary
from server.oneroster.parse import DemographicRow, Mode, UserRow
from server.sync_store import _notify_payloads, write_records
from server.timetable import cover_writes
from tests.city import PASSWORD
from tests.conftest import _empty_all_tables
from tests.devices import device, records

FIXTURES = Path(__file__).parent.parent / "fixtures" / "oneroster"


def _set(tmp_path: Path, *overlays: str) -> Path:
    """A copy of the bulk set with the files of ``broken/<overlay>`` laid over it."""
    target = tmp_path / "set"
    shutil.copytree(FIXTURES / "bulk", target)
    for overlay in overlays:
        for file in (FIXTURES / "broken" / overlay).iterdir():
            shutil.copy(file, target / file.name)
    return target


def _problems(path: Path) -> list[Problem]:
    with pytest.raises(ImportRefused) as refused:
        parse_files(read_files(path))
    return refused.value.problems


async def _import(engine: Engine[Any], name: str | Path) -> Summary:
    path = name if isinstance(name, Path) else FIXTURES / name
    return await import_oneroster(engine, parse_files(read_files(path)), today=school_today())


async def _person(username: str) -> dict[str, Any]:
    account = await Account.select().where(Account.username == username).first()
    assert account is not None, username
    person = await Person.select().where(Person.id == account["person"]).first()
    assert person is not None
    return person


async def _table_counts() -> dict[str, int]:
    return {t._meta.tablename: await t.count() for t in EVERY_TABLE}


# -- parsing (no database) ----------------------------------------------------------------


def test_the_bulk_set_parses_every_file_with_the_finnish_columns() -> None:
    batch = parse_files(read_files(FIXTURES / "bulk"))
    assert batch.source == "primus-vantaa"
    assert {name: len(rows) for name, rows in batch.rows.items()} == {
        "orgs": 3,
        "academicSessions": 1,
        "courses": 3,
        "classes": 4,
        "users": 9,
        "roles": 9,
        "enrollments": 7,
        "demographics": 2,
    }
    assert set(batch.modes.values()) == {Mode.BULK}
    users = {r.sid: r for r in batch.of("users") if isinstance(r, UserRow)}
    assert users["u-aino"].agents == (("u-maria", "custodial"), ("u-mikko", "information_only"))
    assert users["u-aino"].oppijanumero == "1.2.246.562.24.10000000001"
    assert users["u-sara"].turvakielto is True
    assert users["u-sara"].language == "sv"
    assert users["u-maria"].turvakielto is False
    assert users["u-anna"].enabled is False
    births = {
        r.sid: r.birth_date for r in batch.of("demographics") if isinstance(r, DemographicRow)
    }
    assert births == {"u-aino": dt.date(2015, 3, 14), "u-olli": dt.date(2015, 11, 2)}


def test_the_same_zip_reads_as_the_folder(tmp_path: Path) -> None:
    archive = shutil.make_archive(str(tmp_path / "set"), "zip", FIXTURES / "bulk")
    assert (
        parse_files(read_files(Path(archive))).rows
        == parse_files(read_files(FIXTURES / "bulk")).rows
    )


@pytest.mark.parametrize(
    ("overlay", "expected"),
    [
        (
            "wrong_header",
            # surname is not a OneRoster column: ignored, as a sender's own column may be
            [Problem("users", 1, "familyName", "the header lacks this column")],
        ),
        (
            "bad_date",
            [Problem("enrollments", 3, "beginDate", "'2026-13-01' is not a date (YYYY-MM-DD)")],
        ),
        (
            "duplicate_id",
            [Problem("classes", 4, "sourcedId", "'k-5a' is also on line 2")],
        ),
        (
            "race",
            [
                Problem(
                    "demographics",
                    2,
                    "white",
                    "race and ethnicity are not taken: leave the column empty",
                )
            ],
        ),
    ],
)
def test_broken_files_are_refused_with_file_line_and_column(
    tmp_path: Path, overlay: str, expected: list[Problem]
) -> None:
    assert _problems(_set(tmp_path, overlay)) == expected


def test_the_report_names_file_line_column_and_problem() -> None:
    problem = Problem("enrollments", 3, "beginDate", "'2026-13-01' is not a date (YYYY-MM-DD)")
    assert str(problem) == (
        "enrollments.csv line 3, column beginDate: '2026-13-01' is not a date (YYYY-MM-DD)"
    )


def test_a_delta_line_needs_status_and_date(tmp_path: Path) -> None:
    target = _set(tmp_path)
    manifest = (target / "manifest.csv").read_text().replace("file.roles,bulk", "file.roles,delta")
    (target / "manifest.csv").write_text(manifest)
    roles = (target / "roles.csv").read_text()
    assert parse_files(read_files(target)).mode("roles") is Mode.DELTA  # every line has both
    (target / "roles.csv").write_text(
        roles.replace("r-olli,active,2026-08-01T08:00:00Z,", "r-olli,,,")
    )
    assert _problems(target) == [
        Problem("roles", 4, "status", "a delta file needs a status on every line"),
        Problem(
            "roles", 4, "dateLastModified", "a delta file needs dateLastModified on every line"
        ),
    ]


def test_a_manifest_naming_a_missing_file_or_another_version_is_refused(tmp_path: Path) -> None:
    target = _set(tmp_path)
    (target / "users.csv").unlink()
    manifest = (
        (target / "manifest.csv")
        .read_text()
        .replace("oneroster.version,1.2", "oneroster.version,1.1")
    )
    (target / "manifest.csv").write_text(manifest)
    assert _problems(target) == [
        Problem("manifest", 0, "oneroster.version", "'1.1': only 1.2 and 1.2.1 are read"),
        Problem("users", 0, "", "the manifest says bulk, the file is missing"),
    ]


def test_a_finnish_column_with_a_typo_and_a_bad_custody_list_are_refused(tmp_path: Path) -> None:
    target = _set(tmp_path)
    users = (target / "users.csv").read_text()
    (target / "users.csv").write_text(users.replace('"custodial,information_only"', "custodial"))
    problems = _problems(target)
    assert problems == [
        Problem("users", 2, "metadata.fi.custody", "lists 1 custody kinds for 2 agentSourcedIds")
    ]
    (target / "users.csv").write_text(users.replace("metadata.fi.turvakielto", "metadata.fi.turva"))
    assert _problems(target)[0] == Problem(
        "users", 1, "metadata.fi.turva", "not a column of the Finnish profile"
    )


def test_the_cli_has_import_and_export_oneroster() -> None:
    args = build_parser().parse_args(["import", "oneroster", "set.zip"])
    assert (args.command, args.format, args.path) == ("import", "oneroster", "set.zip")
    args = build_parser().parse_args(["export", "oneroster", "out"])
    assert (args.command, args.format, args.path) == ("export", "oneroster", "out")


# -- importing (SQLite and PostgreSQL) ----------------------------------------------------


async def test_a_bulk_import_writes_every_file(fx_db: Engine[Any]) -> None:
    summary = await _import(fx_db, "bulk")
    assert summary.counts["users"].created == 9
    assert summary.counts["guardianships"].created == 4

    orgs = {o["name"]: o for o in await Organisation.select()}
    assert orgs["Vantaa"]["kind"] == "municipality"
    assert orgs["Koivukylän koulu"]["parent"] == orgs["Vantaa"]["id"]
    assert orgs["Myyrmäen skola"]["language"] == "sv"
    (term,) = await Term.select()
    assert (term["organisation"], term["name"]) == (orgs["Vantaa"]["id"], "2026-2027")
    assert (term["starts_on"], term["ends_on"]) == (dt.date(2026, 8, 1), dt.date(2027, 7, 31))
    groups = {g["name"]: g for g in await SchoolGroup.select()}
    assert groups["5A"]["kind"] == "home_class"
    assert (groups["5A"]["grade"], groups["5A"]["subject"]) == (5, None)
    assert groups["MA5"]["kind"] == "teaching_group"
    assert groups["MA5"]["subject"] == "Matematiikka"
    assert groups["3C"]["school"] == orgs["Myyrmäen skola"]["id"]

    aino, sara, mikko = (
        await _person("aino.virtanen"),
        await _person("sara.korhonen"),
        await _person("mikko.lahtinen"),
    )
    assert aino["birth_date"] == dt.date(2015, 3, 14)
    assert (sara["turvakielto"], sara["language"]) == (True, "sv")
    assert (mikko["turvakielto"], mikko["language"]) == (False, "en")
    anna = await Account.select().where(Account.username == "anna.admin").first()
    assert anna is not None
    assert anna["disabled"] is True
    assert anna["password_hash"] == ""  # no password comes from OneRoster
    number = await ExternalRef.select().where(ExternalRef.source == LEARNER_NUMBER)
    assert [(n["source_id"], n["local_id"]) for n in number] == [
        ("1.2.246.562.24.10000000001", aino["id"]),
        ("1.2.246.562.24.10000000002", (await _person("eero.virtanen"))["id"]),
    ]

    staff = {(s["role"], s["organisation"]) for s in await StaffRole.select()}
    assert staff == {
        ("teacher", orgs["Koivukylän koulu"]["id"]),
        ("principal", orgs["Koivukylän koulu"]["id"]),
        ("admin", orgs["Vantaa"]["id"]),
    }
    members = {
        (m["group"], m["role"], m["valid_from"])
        for m in await Membership.select().where(Membership.person == aino["id"])
    }
    assert members == {
        (groups["5A"]["id"], "pupil", dt.date(2026, 8, 10)),
        (groups["MA5"]["id"], "pupil", dt.date(2026, 8, 10)),
    }
    kinds = {
        (g["pupil"], g["guardian"]): g["kind"]
        for g in await Guardianship.select().where(Guardianship.valid_to.is_null())
    }
    maria = (await _person("maria.virtanen"))["id"]
    assert kinds == {
        (aino["id"], maria): "custodial",
        (aino["id"], mikko["id"]): "information_only",
        ((await _person("eero.virtanen"))["id"], maria): "custodial",
        ((await _person("olli.korhonen"))["id"], sara["id"]): "custodial",
    }
    # The groups and their rosters went through the sync write path.
    synced = {(r["record_type"], r["record_id"]) for r in await SyncRecord.select()}
    assert synced == {(kind, g["id"]) for g in groups.values() for kind in ("group", "roster")}


async def test_importing_the_same_files_twice_changes_nothing(fx_db: Engine[Any]) -> None:
    await _import(fx_db, "bulk")
    before = await _table_counts()
    positions = await ChangeLog.count()
    again = await _import(fx_db, "bulk")
    assert again.changed == 0
    assert again.counts["users"].unchanged == 9
    assert await _table_counts() == before
    assert await ChangeLog.count() == positions


async def test_an_unknown_reference_refuses_the_whole_import(
    fx_db: Engine[Any], tmp_path: Path
) -> None:
    with pytest.raises(ImportRefused) as refused:
        await _import(fx_db, _set(tmp_path, "unknown_reference"))
    assert refused.value.problems == [
        Problem("enrollments", 3, "classSourcedId", "unknown reference 'k-5x' (no such class)")
    ]
    assert await Person.count() == 0
    assert await ExternalRef.count() == 0
    assert await ChangeLog.count() == 0


async def test_a_refused_import_leaves_an_earlier_one_as_it_was(
    fx_db: Engine[Any], tmp_path: Path
) -> None:
    await _import(fx_db, "bulk")
    before = await _table_counts()
    target = _set(tmp_path, "unknown_reference")
    # The same set with a renamed pupil: the users file is fine, enrollments are not.
    users = (target / "users.csv").read_text().replace(",Aino,Virtanen,", ",Aino,Mäkelä,")
    (target / "users.csv").write_text(users)
    with pytest.raises(ImportRefused):
        await _import(fx_db, target)
    assert await _table_counts() == before
    assert (await _person("aino.virtanen"))["family_name"] == "Virtanen"


async def test_a_username_of_someone_else_is_refused(fx_db: Engine[Any], tmp_path: Path) -> None:
    await Account(
        person=(await Person.insert(Person(given_name="Other", family_name="Person")))[0]["id"],
        username="olli.korhonen",
        password_hash="",
    ).save()
    with pytest.raises(ImportRefused) as refused:
        await _import(fx_db, "bulk")
    assert refused.value.problems == [
        Problem("users", 4, "username", "'olli.korhonen' is taken by another person")
    ]
    assert await ExternalRef.count() == 0


async def test_a_delta_moves_a_pupil_and_their_device_follows(
    fx_db: Engine[Any], fx_client: httpx.AsyncClient
) -> None:
    today = school_today()
    await _import(fx_db, "bulk")
    groups = {g["name"]: g["id"] for g in await SchoolGroup.select()}
    olli = (await _person("olli.korhonen"))["id"]
    tiina = (await _person("tiina.opettaja"))["id"]
    await Account.update({Account.password_hash: hash_password(PASSWORD)}).where(
        Account.username.is_in(["olli.korhonen", "tiina.opettaja", "sara.korhonen"])
    )
    pupil = await device(fx_client, "olli.korhonen")
    guardian = await device(fx_client, "sara.korhonen")
    teacher = await device(fx_client, "tiina.opettaja")
    for each in (pupil, guardian, teacher):
        await each.sync()
    assert set(records(pupil, "group")) == {groups["5A"]}
    assert set(records(guardian, "group")) == {groups["5A"]}
    rosters = records(teacher, "roster")
    assert olli in {p["id"] for p in rosters[groups["5A"]]["pupils"]}
    assert olli not in {p["id"] for p in rosters[groups["5B"]].get("pupils", [])}

    summary = await _import(fx_db, "delta_move")
    assert (summary.counts["enrollments"].created, summary.counts["enrollments"].ended) == (1, 1)
    # Tiina's new name is applied; Pekka's line is older than the bulk's and is skipped.
    assert (summary.counts["users"].updated, summary.counts["users"].unchanged) == (1, 1)
    assert (await _person("tiina.opettaja"))["family_name"] == "Opettaja-Laine"
    assert (await _person("pekka.rehtori"))["family_name"] == "Rehtori"

    periods = {
        m["group"]: (m["valid_from"], m["valid_to"])
        for m in await Membership.select().where(Membership.person == olli)
    }
    assert periods == {
        groups["5A"]: (dt.date(2026, 8, 10), today - dt.timedelta(days=1)),
        groups["5B"]: (today, None),
    }
    answer, mismatched = await pupil.pull()
    assert answer.removed == [f"group:{groups['5A']}"]
    assert answer.added == [f"group:{groups['5B']}"]
    assert mismatched == []
    assert set(records(pupil, "group")) == {groups["5B"]}
    answer, mismatched = await guardian.pull()
    assert f"group:{groups['5A']}" in answer.removed
    assert f"group:{groups['5B']}" in answer.added
    assert mismatched == []
    assert set(records(guardian, "group")) == {groups["5B"]}
    await teacher.sync()
    rosters = records(teacher, "roster")
    assert olli not in {p["id"] for p in rosters[groups["5A"]].get("pupils", [])}
    assert olli in {p["id"] for p in rosters[groups["5B"]]["pupils"]}
    assert {p["name"] for p in rosters[groups["5B"]]["pupils"]} == {"Olli Korhonen"}
    assert tiina not in {p["id"] for r in rosters.values() for p in r.get("pupils", [])}

    # The same delta again: nothing changes, no sync record is written.
    positions = await ChangeLog.count()
    again = await _import(fx_db, "delta_move")
    assert again.changed == 0
    assert await ChangeLog.count() == positions


async def test_a_bulk_file_ends_what_it_no_longer_lists(fx_db: Engine[Any], tmp_path: Path) -> None:
    await _import(fx_db, "bulk")
    # The guardianships began with the first import, today; as if that was in August:
    await Guardianship.update({Guardianship.valid_from: dt.date(2026, 8, 10)}, force=True)
    target = _set(tmp_path)
    users = [
        line
        for line in (target / "users.csv").read_text().splitlines()
        if not line.startswith("u-mikko,")
    ]
    (target / "users.csv").write_text("\n".join(users) + "\n")
    roles = [
        line
        for line in (target / "roles.csv").read_text().splitlines()
        if not line.startswith("r-mikko,")
    ]
    (target / "roles.csv").write_text("\n".join(roles) + "\n")
    # Aino's line still names Mikko as an agent: that reference is now unknown.
    with pytest.raises(ImportRefused) as refused:
        await _import(fx_db, target)
    assert refused.value.problems == [
        Problem("users", 2, "agentSourcedIds", "unknown reference 'u-mikko' (no such user)")
    ]
    users_text = (target / "users.csv").read_text()
    (target / "users.csv").write_text(
        users_text.replace('"u-maria,u-mikko"', "u-maria").replace(
            '"custodial,information_only"', "custodial"
        )
    )
    summary = await _import(fx_db, target)
    assert (summary.counts["users"].ended, summary.counts["roles"].ended) == (1, 1)
    assert summary.counts["guardianships"].ended == 1
    mikko = (await _person("mikko.lahtinen"))["id"]
    (link,) = await Guardianship.select().where(Guardianship.guardian == mikko)
    yesterday = school_today() - dt.timedelta(days=1)
    assert link["valid_to"] == yesterday
    account = await Account.select().where(Account.person == mikko).first()
    assert account is not None
    assert account["disabled"] is True


async def test_an_export_imports_into_an_empty_database_as_it_was(
    fx_db: Engine[Any], tmp_path: Path
) -> None:
    await _import(fx_db, "bulk")
    counts = await export_oneroster(fx_db, tmp_path / "out.zip")
    assert counts["users"] == 9
    assert counts["enrollments"] == 7

    def snapshot_of(rows: list[dict[str, Any]], *columns: str) -> list[tuple[Any, ...]]:
        return sorted(tuple(r[c] for c in columns) for r in rows)

    async def world() -> dict[str, Any]:
        people = {p["id"]: p for p in await Person.select()}

        def name(person_id: int) -> str:
            return f"{people[person_id]['given_name']} {people[person_id]['family_name']}"

        return {
            "people": snapshot_of(
                list(people.values()),
                "given_name",
                "family_name",
                "language",
                "birth_date",
                "turvakielto",
                "email",
            ),
            "guardians": sorted(
                (name(g["pupil"]), name(g["guardian"]), g["kind"])
                for g in await Guardianship.select()
            ),
            "staff": sorted((name(s["person"]), s["role"]) for s in await StaffRole.select()),
            "members": sorted(
                (name(m["person"]), m["role"], m["valid_from"]) for m in await Membership.select()
            ),
            "groups": snapshot_of(await SchoolGroup.select(), "name", "kind", "grade", "subject"),
            "accounts": snapshot_of(await Account.select(), "username", "disabled"),
            "numbers": sorted(
                r["source_id"]
                for r in await ExternalRef.select().where(ExternalRef.source == LEARNER_NUMBER)
            ),
        }

    before = await world()
    await _empty_all_tables(fx_db)
    summary = await _import(fx_db, tmp_path / "out.zip")
    assert summary.source == "reppu"
    assert await world() == before


def test_long_lists_of_partitions_are_announced_in_several_notifications() -> None:
    # PostgreSQL refuses a NOTIFY payload of 8000 bytes; an import touches thousands.
    names = [f"group-staff:{n}" for n in range(5000)]
    heads = {name: 1_000_000 + n for n, name in enumerate(names)}
    payloads = list(_notify_payloads(heads))
    assert len(payloads) > 1
    assert all(len(p.encode()) < 8000 for p in payloads)
    assert parse_notification(" ".join(payloads)) == heads


async def test_a_user_who_ends_and_comes_back_is_the_same_person(
    fx_db: Engine[Any], tmp_path: Path
) -> None:
    await _import(fx_db, "bulk")
    olli = await _person("olli.korhonen")
    (before,) = await Membership.select().where(Membership.person == olli["id"])
    delta = tmp_path / "delta"
    delta.mkdir()
    manifest = (FIXTURES / "bulk" / "manifest.csv").read_text().replace(",bulk", ",absent")
    (delta / "manifest.csv").write_text(manifest.replace("file.users,absent", "file.users,delta"))
    header, *lines = (FIXTURES / "bulk" / "users.csv").read_text().splitlines()
    (line,) = [x for x in lines if x.startswith("u-olli,")]
    ended = line.replace(",active,2026-08-01T08:00:00Z,", ",tobedeleted,2026-11-01T08:00:00Z,")
    (delta / "users.csv").write_text(f"{header}\n{ended}\n")

    summary = await _import(fx_db, delta)
    # His enrollment, role and guardian link end with him.
    assert [
        (name, summary.counts[name].ended)
        for name in ("users", "roles", "enrollments", "guardianships")
    ] == [("users", 1), ("roles", 1), ("enrollments", 1), ("guardianships", 1)]
    (membership,) = await Membership.select().where(Membership.person == olli["id"])
    assert membership["valid_to"] == school_today() - dt.timedelta(days=1)
    account = await Account.select().where(Account.person == olli["id"]).first()
    assert account is not None
    assert account["disabled"] is True

    summary = await _import(fx_db, "bulk")
    assert (summary.counts["users"].created, summary.counts["enrollments"].created) == (1, 1)
    assert (await _person("olli.korhonen"))["id"] == olli["id"]
    assert await Person.count() == 9
    (membership,) = await Membership.select().where(Membership.person == olli["id"])
    assert (membership["id"], membership["valid_to"]) == (before["id"], None)
    account = await Account.select().where(Account.person == olli["id"]).first()
    assert account is not None
    assert account["disabled"] is False


async def test_a_delta_that_ends_a_substitutes_job_takes_the_cover_off_their_phone(
    fx_db: Engine[Any], fx_client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Item 4 of issue 14, through an import: the principal stands in for 5A's lesson today;
    a roles delta ends his job, and the lesson, the change and 5A's roster leave his phone
    at once (the import places his cover afresh), while 5A's teacher keeps them."""
    today = school_today()
    await _import(fx_db, "bulk")
    groups = {g["name"]: g["id"] for g in await SchoolGroup.select()}
    tiina = (await _person("tiina.opettaja"))["id"]
    pekka = (await _person("pekka.rehtori"))["id"]
    await Account.update({Account.password_hash: hash_password(PASSWORD)}).where(
        Account.username.is_in(["tiina.opettaja", "pekka.rehtori"])
    )
    lesson = Lesson(
        group=groups["5A"],
        subject="MA",
        teacher=tiina,
        room="A1",
        weekday=today.isoweekday(),
        starts_at=dt.time(8, 15),
        ends_at=dt.time(9, 0),
        valid_from=today - dt.timedelta(days=30),
        valid_to=None,
    )
    await lesson.save()
    await LessonChange(lesson=lesson.id, on_date=today, substitute_teacher=pekka).save()
    async with write_transaction(fx_db):
        await write_records(fx_db, await cover_writes([pekka], today))
    principal = await device(fx_client, "pekka.rehtori")
    await principal.sync()
    assert set(records(principal, "lesson")) == {lesson.id}
    assert len(records(principal, "lesson_change")) == 1
    assert groups["5A"] in records(principal, "roster")

    delta = tmp_path / "delta"
    delta.mkdir()
    manifest = (FIXTURES / "delta_move" / "manifest.csv").read_text()
    (delta / "manifest.csv").write_text(
        manifest.replace("file.users,delta", "file.users,absent")
        .replace("file.roles,absent", "file.roles,delta")
        .replace("file.enrollments,delta", "file.enrollments,absent")
    )
    (delta / "roles.csv").write_text(
        "sourcedId,status,dateLastModified,userSourcedId,roleType,role,beginDate,endDate,"
        "orgSourcedId,userProfileSourcedId\n"
        "r-pekka,tobedeleted,2026-12-01T08:00:00Z,u-pekka,primary,principal,2026-08-01,,"
        "o-koivukyla,\n"
    )
    summary = await _import(fx_db, delta)
    assert summary.counts["roles"].ended == 1
    await principal.sync()
    assert records(principal, "lesson") == {}
    assert records(principal, "lesson_change") == {}
    assert records(principal, "roster") == {}
    teacher = await device(fx_client, "tiina.opettaja")
    await teacher.sync()
    assert lesson.id in records(teacher, "lesson")
    assert groups["5A"] in records(teacher, "roster")
