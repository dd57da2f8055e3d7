"""OneRoster sets as they come from the real world: 1.2.1 sets with only the columns the
binding requires, Excel's encodings, broken CSV, and zips that are too big, ambiguous or
hostile. Each is refused whole with file, line and (where known) column, or read.

Files and zips are made in the test; the parsing tests need no database. The zip bombs are
small files (kilobytes) whose declared or actual size is large: reading is checked to stop
early, with little memory (tracemalloc), never by allocating what the zip claims.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import shutil
import struct
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import pytest
from piccolo.engine.base import Engine

from server.clock import school_today
from server.db.schema import EVERY_TABLE
from server.db.tables import Guardianship, Membership, Person
from server.oneroster import ImportRefused, Problem, import_oneroster, parse_files, read_files
from server.oneroster.parse import REQUIRED, Mode, UserRow
from server.oneroster.read import LIMITS, SAVE_AS, Budget, Limits, Records, SetFile, Unreadable

FIXTURES = Path(__file__).parent.parent / "fixtures" / "oneroster"
SAMPLE = FIXTURES / "v1p2p1"
"""A set shaped like a clean public 1.2.1 sample: manifest 1.2.1 listing every file of the
binding (most absent), users.csv without resourceSourcedIds, the other files with only the
columns the binding requires (and orgs' parentSourcedId), blank status and date (bulk)."""


def _problems(path: Path, limits: Limits = LIMITS) -> list[Problem]:
    with pytest.raises(ImportRefused) as refused:
        parse_files(read_files(path, limits), limits=limits)
    return refused.value.problems


def _copy(tmp_path: Path, source: Path = SAMPLE) -> Path:
    target = tmp_path / "set"
    shutil.copytree(source, target)
    return target


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _sample_members(folder: str = "") -> dict[str, bytes]:
    return {f"{folder}{f.name}": f.read_bytes() for f in sorted(SAMPLE.iterdir())}


# -- the 1.2.1 binding: required columns only ---------------------------------------------


def test_a_clean_1_2_1_sample_set_parses() -> None:
    batch = parse_files(read_files(SAMPLE))
    assert batch.source == "sample-sis"
    assert {name: len(rows) for name, rows in batch.rows.items()} == {
        "orgs": 2,
        "academicSessions": 1,
        "courses": 1,
        "classes": 1,
        "users": 3,
        "roles": 3,
        "enrollments": 2,
    }
    assert batch.mode("demographics") is Mode.ABSENT
    users = {r.sid: r for r in batch.of("users") if isinstance(r, UserRow)}
    assert users["user-pupil"].agents == (("user-parent", "custodial"),)
    assert users["user-parent"].phone == "+358401234567"


def test_the_sample_has_only_the_required_columns_outside_users() -> None:
    for name in ("academicSessions", "courses", "classes", "roles", "enrollments"):
        header = (SAMPLE / f"{name}.csv").read_text().splitlines()[0].split(",")
        assert set(header) == REQUIRED[name], name
    assert "resourceSourcedIds" not in (SAMPLE / "users.csv").read_text()


async def test_a_clean_1_2_1_sample_set_imports(fx_db: Engine[Any]) -> None:
    summary = await import_oneroster(fx_db, parse_files(read_files(SAMPLE)), today=school_today())
    assert summary.changed > 0
    assert await Person.count() == 3
    assert await Membership.count() == 2
    assert await Guardianship.count() == 1


@pytest.mark.parametrize("version", ["1.2", "1.2.0", "1.2.1"])
def test_manifest_versions_1_2_and_1_2_1_are_read(tmp_path: Path, version: str) -> None:
    target = _copy(tmp_path)
    manifest = (target / "manifest.csv").read_text()
    (target / "manifest.csv").write_text(manifest.replace(",1.2.1\n", f",{version}\n"))
    assert parse_files(read_files(target)).source == "sample-sis"


def test_another_version_is_refused(tmp_path: Path) -> None:
    target = _copy(tmp_path)
    manifest = (target / "manifest.csv").read_text()
    (target / "manifest.csv").write_text(manifest.replace(",1.2.1\n", ",1.1\n"))
    assert _problems(target) == [
        Problem("manifest", 0, "oneroster.version", "'1.1': only 1.2 and 1.2.1 are read")
    ]


def test_a_1_2_users_file_with_resource_sourced_ids_is_read_too(tmp_path: Path) -> None:
    target = _copy(tmp_path)
    lines = (target / "users.csv").read_text().splitlines()
    (target / "users.csv").write_text(
        "\n".join([lines[0] + ",resourceSourcedIds"] + [line + "," for line in lines[1:]]) + "\n"
    )
    assert len(parse_files(read_files(target)).of("users")) == 3


def test_a_missing_required_column_is_refused_by_name(tmp_path: Path) -> None:
    target = _copy(tmp_path)
    (target / "classes.csv").write_text(
        "sourcedId,title,courseSourcedId,classType,schoolSourcedId\n"
        "class-5a,5A,course-5,homeroom,org-school\n"
    )
    assert _problems(target) == [
        Problem("classes", 1, "termSourcedIds", "the header lacks this column")
    ]


def test_a_delta_file_needs_status_and_date_columns(tmp_path: Path) -> None:
    target = _copy(tmp_path)
    manifest = (target / "manifest.csv").read_text()
    (target / "manifest.csv").write_text(manifest.replace("file.roles,bulk", "file.roles,delta"))
    assert _problems(target) == [
        Problem("roles", 1, "status", "a delta file needs this column"),
        Problem("roles", 1, "dateLastModified", "a delta file needs this column"),
    ]


def test_unknown_columns_are_ignored_but_a_wrong_case_or_finnish_typo_is_not(
    tmp_path: Path,
) -> None:
    target = _copy(tmp_path)
    (target / "courses.csv").write_text(
        "sourcedId,title,orgSourcedId,sisCourseNumber,metadata.sis.level\n"
        "course-5,Grade 5,org-school,X-55,basic\n"
    )
    assert len(parse_files(read_files(target)).of("courses")) == 1
    (target / "courses.csv").write_text(
        "sourcedId,title,OrgSourcedId,metadata.fi.langauge\ncourse-5,Grade 5,org-school,fi\n"
    )
    assert _problems(target) == [
        Problem("courses", 1, "orgSourcedId", "the header lacks this column"),
        Problem(
            "courses", 1, "OrgSourcedId", "header names are case-sensitive: write orgSourcedId"
        ),
        Problem("courses", 1, "metadata.fi.langauge", "not a column of the Finnish profile"),
    ]


def test_semicolons_are_refused_with_what_to_do(tmp_path: Path) -> None:
    target = _copy(tmp_path)
    roles = (target / "roles.csv").read_text().replace(",", ";")
    (target / "roles.csv").write_text(roles)
    [problem] = _problems(target)
    assert (problem.file, problem.line) == ("roles", 1)
    assert problem.problem.startswith("the columns are separated by semicolons")


# -- encodings ----------------------------------------------------------------------------


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    target = _copy(tmp_path)
    for name in ("manifest", "users", "orgs"):
        path = target / f"{name}.csv"
        path.write_bytes(codecs.BOM_UTF8 + path.read_bytes())
    assert parse_files(read_files(target)).rows == parse_files(read_files(SAMPLE)).rows


def test_a_windows_1252_file_is_refused_with_line_byte_column_and_what_to_do(
    tmp_path: Path,
) -> None:
    target = _copy(tmp_path)
    users = (target / "users.csv").read_text().replace("Tea,Cher", "Tea,Mäkelä")
    (target / "users.csv").write_bytes(users.encode("cp1252"))
    [problem] = _problems(target)
    offset = users.encode("cp1252").index("ä".encode("cp1252"))
    assert (problem.file, problem.line, problem.column) == ("users", 4, "familyName")
    assert problem.problem.startswith(f"byte 0xE4 at byte {offset:,} of the file is not UTF-8;")
    assert "Windows-1252" in problem.problem
    assert problem.problem.endswith(SAVE_AS)
    assert str(problem).startswith("users.csv line 4, column familyName: byte 0xE4")


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: text.encode("utf-16"),  # Excel's "Unicode Text": a BOM, then UTF-16LE
        lambda text: text.encode("utf-16-le"),  # no BOM
        lambda text: text.encode("utf-16-be"),
    ],
)
def test_utf16_is_refused_with_what_to_do(tmp_path: Path, encode: Any) -> None:
    target = _copy(tmp_path)
    (target / "roles.csv").write_bytes(encode((target / "roles.csv").read_text()))
    assert _problems(target) == [
        Problem(
            "roles", 1, "", 'the file is UTF-16 (Excel\'s "Unicode Text"), not UTF-8: ' + SAVE_AS
        )
    ]


def test_a_nul_byte_is_refused(tmp_path: Path) -> None:
    target = _copy(tmp_path)
    (target / "roles.csv").write_bytes((target / "roles.csv").read_bytes() + b"x\x00y\n")
    assert _problems(target) == [
        Problem("roles", 5, "", "holds a NUL byte: this is not a text file")
    ]


# -- CSV syntax ---------------------------------------------------------------------------


def test_an_unterminated_quote_names_the_line_and_column_it_opens(tmp_path: Path) -> None:
    target = _copy(tmp_path)
    (target / "roles.csv").write_text(
        "sourcedId,userSourcedId,roleType,role,orgSourcedId\n"
        "role-pupil,user-pupil,primary,student,org-school\n"
        'role-parent,user-parent,primary,"guardian,org-school\n'
        "role-teacher,user-teacher,primary,teacher,org-school\n"
    )
    assert _problems(target) == [
        Problem(
            "roles",
            3,
            "role",
            "a quoted value opened here is not closed before the end of the file",
        )
    ]


def test_a_stray_quote_names_its_line_and_column(tmp_path: Path) -> None:
    target = _copy(tmp_path)
    (target / "courses.csv").write_text(
        'sourcedId,title,orgSourcedId\ncourse-5,"Grade "5" basic",org-school\n'
    )
    assert _problems(target) == [
        Problem(
            "courses",
            2,
            "title",
            "a quoted value goes on after its closing quote: a quote inside a value is written "
            '"" and the value quoted',
        )
    ]


def test_an_oversized_field_names_the_line_it_starts_on(tmp_path: Path) -> None:
    target = _copy(tmp_path)
    runaway = "".join(f"line {n},{n},x\n" for n in range(20_000))  # over 131,072 characters
    (target / "courses.csv").write_text(
        'sourcedId,title,orgSourcedId\ncourse-5,Grade 5,org-school\ncourse-6,"Grade 6\n' + runaway
    )
    [problem] = _problems(target)
    assert (problem.file, problem.line, problem.column) == ("courses", 3, "title")
    assert problem.problem.startswith("a value longer than 131,072 characters (on line ")


def test_lines_and_records_are_bounded(tmp_path: Path) -> None:
    limits = Limits(line_bytes=1000, record_bytes=3000)
    target = _copy(tmp_path)
    (target / "courses.csv").write_text(
        "sourcedId,title,orgSourcedId\n" + "course-5," + "x" * 2000 + ",org-school\n"
    )
    assert _problems(target, limits) == [
        Problem(
            "courses",
            2,
            "",
            "a line longer than 1,000 bytes: is this a CSV file with one record a line?",
        )
    ]
    (target / "courses.csv").write_text(
        'sourcedId,title,orgSourcedId\ncourse-5,"' + ("x" * 500 + "\n") * 10 + '",org-school\n'
    )
    [problem] = _problems(target, limits)
    assert (problem.file, problem.line, problem.column) == ("courses", 2, "title")
    assert problem.problem.startswith("a record longer than")


def test_a_file_that_holds_more_than_it_declares_is_stopped() -> None:
    data = b"sourcedId,title,orgSourcedId\n" + b"c,t,o\n" * 100
    lying = SetFile("courses", 50, lambda: contextlib.nullcontext(io.BytesIO(data)))
    with pytest.raises(Unreadable, match="holds more than the 50 bytes it declares"):
        list(Records(lying, Budget()))


# -- zips ---------------------------------------------------------------------------------


def test_a_zip_with_the_set_in_one_folder_reads_as_the_folder(tmp_path: Path) -> None:
    archive = _zip(
        tmp_path / "set.zip",
        {
            **_sample_members("export/"),
            "__MACOSX/export/._users.csv": b"\x00\x05\x16\x07",
            "export/README.txt": b"not read",
        },
    )
    assert parse_files(read_files(archive)).rows == parse_files(read_files(SAMPLE)).rows


def test_two_files_of_one_name_in_different_folders_are_refused(tmp_path: Path) -> None:
    members = _sample_members()
    archive = _zip(tmp_path / "set.zip", {**members, "old/users.csv": members["users.csv"]})
    assert _problems(archive) == [
        Problem(
            "set.zip",
            0,
            "",
            "holds 2 files for users.csv (old/users.csv, users.csv): which one is meant is not "
            "clear; leave one",
        )
    ]


def test_the_same_member_name_twice_is_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "set.zip", _sample_members())
    with (
        pytest.warns(UserWarning, match="Duplicate name"),
        zipfile.ZipFile(archive, "a") as again,
    ):
        again.writestr("users.csv", b"sourcedId\n")
    assert _problems(archive) == [
        Problem(
            "set.zip",
            0,
            "",
            "holds 2 files for users.csv (users.csv, users.csv): which one is meant is not "
            "clear; leave one",
        )
    ]


def test_names_are_matched_without_case_and_two_cases_are_ambiguous(tmp_path: Path) -> None:
    members = _sample_members()
    renamed = {("Users.csv" if k == "users.csv" else k): v for k, v in members.items()}
    assert len(parse_files(read_files(_zip(tmp_path / "one.zip", renamed))).of("users")) == 3
    both = _zip(tmp_path / "both.zip", {**renamed, "users.csv": members["users.csv"]})
    assert [p.problem for p in _problems(both)] == [
        "holds 2 files for users.csv (Users.csv, users.csv): which one is meant is not clear; "
        "leave one"
    ]


def test_a_file_outside_the_manifests_folder_is_refused(tmp_path: Path) -> None:
    members = _sample_members("set/")
    members["roles.csv"] = members.pop("set/roles.csv")
    assert [p.problem for p in _problems(_zip(tmp_path / "set.zip", members))] == [
        "roles.csv is not in the folder of set/manifest.csv: a set is one folder"
    ]


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../users.csv", "'../users.csv' climbs out of the zip (..)"),
        ("set/../../etc/users.csv", "'set/../../etc/users.csv' climbs out of the zip (..)"),
        ("/users.csv", "'/users.csv' is an absolute path"),
        ("C:/temp/users.csv", "'C:/temp/users.csv' is an absolute path"),
    ],
)
def test_absolute_and_climbing_member_names_are_refused(
    tmp_path: Path, name: str, why: str
) -> None:
    members = _sample_members()
    members[name] = members.pop("users.csv")
    assert _problems(_zip(tmp_path / "set.zip", members)) == [
        Problem("set.zip", 0, "", f"member {why}: refused")
    ]


def test_a_zip_inside_the_zip_is_not_opened(tmp_path: Path) -> None:
    inner = _zip(tmp_path / "inner.zip", _sample_members())
    outer = _zip(tmp_path / "outer.zip", {"roster/inner.zip": inner.read_bytes()})
    assert [p.problem for p in _problems(outer)] == [
        "holds no manifest.csv but another zip (roster/inner.zip): Reppu does not open a zip "
        "inside a zip; import the inner one"
    ]


def test_too_many_members_are_refused_before_reading(tmp_path: Path) -> None:
    members = {**_sample_members(), **{f"extra/{n}.txt": b"" for n in range(20)}}
    assert [
        p.problem for p in _problems(_zip(tmp_path / "set.zip", members), Limits(members=25))
    ] == ["holds 28 members, more than 25: refused"]


def test_an_encrypted_member_is_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "set.zip", _sample_members())
    data = archive.read_bytes()
    start = data.index(b"PK\x01\x02")
    while data[start + 46 : start + 46 + len(b"roles.csv")] != b"roles.csv":
        start = data.index(b"PK\x01\x02", start + 46)
    flags, method = struct.unpack_from("<HH", data, start + 8)
    _patch_central(archive, "roles.csv", 8, (method << 16) | flags | 0x1)  # "encrypted"
    assert [p.problem for p in _problems(archive)] == [
        "roles.csv is encrypted: zip the set without a password"
    ]


def test_not_a_zip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    path.write_text("sourcedId\n")
    [problem] = _problems(path)
    assert problem.file == "users.csv"
    assert problem.problem.startswith("not a folder or a readable zip file")


def _bomb(path: Path, megabytes: int) -> Path:
    """A zip of the sample whose users.csv goes on with ``megabytes`` MiB of identical
    lines: a few kilobytes compressed, written in chunks so the test holds little."""
    members = _sample_members()
    users = members.pop("users.csv")
    line = users.splitlines(keepends=True)[-1]
    chunk = line * (1024 * 1024 // len(line))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        with archive.open("users.csv", "w", force_zip64=True) as member:
            member.write(users)
            for _ in range(megabytes):
                member.write(chunk)
    return path


def _patch_central(path: Path, member: str, offset: int, value: int) -> None:
    """Rewrite a 4-byte field of ``member``'s entry in the zip's central directory, where
    zipfile (and most readers) take it from: a size that lies, a flag that was not set."""
    data = bytearray(path.read_bytes())
    start = data.index(b"PK\x01\x02")  # the first central directory entry
    while start != -1:
        name_length = struct.unpack_from("<H", data, start + 28)[0]
        if bytes(data[start + 46 : start + 46 + name_length]).decode() == member:
            struct.pack_into("<I", data, start + offset, value)
            path.write_bytes(bytes(data))
            return
        start = data.find(b"PK\x01\x02", start + 46)
    raise AssertionError(member)


def _set_declared_size(path: Path, member: str, size: int) -> None:
    _patch_central(path, member, 24, size)  # the uncompressed size


def _peak_while(call: Any) -> int:
    tracemalloc.start()
    try:
        call()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_a_zip_bomb_is_refused_early_with_little_memory(tmp_path: Path) -> None:
    archive = _bomb(tmp_path / "bomb.zip", 64)
    assert archive.stat().st_size < 1024 * 1024  # 64 MiB of CSV in well under 1 MiB
    limits = Limits(file_bytes=8 * 1024 * 1024)
    problems: list[Problem] = []

    def refuse() -> None:
        problems.extend(_problems(archive, limits))

    assert _peak_while(refuse) < 16 * 1024 * 1024
    [problem] = problems
    assert problem.file == "bomb.zip"
    assert problem.problem.startswith("users.csv declares 67,")
    assert problem.problem.endswith("more than 8 MiB: refused before reading it")


def test_a_zip_declaring_gigabytes_is_refused_before_reading(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "set.zip", _sample_members())
    _set_declared_size(archive, "users.csv", 0xFFFF_FFF0)  # 4 GiB, under the default limits
    first, total = _problems(archive)
    assert first == Problem(
        "set.zip",
        0,
        "",
        "users.csv declares 4,294,967,280 bytes uncompressed, more than 1,024 MiB: "
        "refused before reading it",
    )
    assert total.problem.endswith(
        "bytes uncompressed, more than 2,048 MiB: refused before reading them"
    )


def test_a_zip_declaring_less_than_it_holds_is_stopped_at_the_declared_size(
    tmp_path: Path,
) -> None:
    archive = tmp_path / "bomb.zip"
    members = _sample_members()
    users = members.pop("users.csv")
    line = users.splitlines(keepends=True)[-1]
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for name, data in members.items():
            out.writestr(name, data)
        out.writestr("users.csv", users + line * 200_000)  # about 20 MiB
    _set_declared_size(archive, "users.csv", len(users))
    problems: list[Problem] = []

    def refuse() -> None:
        problems.extend(_problems(archive))

    assert _peak_while(refuse) < 8 * 1024 * 1024
    [problem] = problems
    assert (problem.file, problem.line) == ("users", 0)
    assert problem.problem.startswith("the zip member is damaged: Bad CRC-32")


def test_the_total_of_a_folder_is_counted_while_reading(tmp_path: Path) -> None:
    target = _copy(tmp_path)
    total = sum(f.stat().st_size for f in target.iterdir())
    limits = Limits(total_bytes=total - 100)
    problems = _problems(target, limits)
    assert problems[-1].problem == f"the set's files hold more than {total - 100:,} bytes: refused"


# -- nothing is stored on a refusal --------------------------------------------------------


async def test_a_refused_set_stores_nothing(fx_db: Engine[Any], tmp_path: Path) -> None:
    counts = {t._meta.tablename: await t.count() for t in EVERY_TABLE}
    target = _copy(tmp_path)
    (target / "users.csv").write_bytes((target / "users.csv").read_text().encode("utf-16"))
    with pytest.raises(ImportRefused):
        await import_oneroster(fx_db, parse_files(read_files(target)), today=school_today())
    assert {t._meta.tablename: await t.count() for t in EVERY_TABLE} == counts
