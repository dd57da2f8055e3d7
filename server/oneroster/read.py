"""Reading a OneRoster set from a folder or a zip: streamed, bounded, every problem located.

Pure: no database, no network. The steps:

1. :func:`read_files` finds the set's files and checks the container before anything is
   decompressed: a zip's member count, each member's declared size and their sum, member
   names (no absolute names, no ``..``), and that each file of the set is there once (matched
   without regard to case, so ``Users.csv`` is ``users.csv``, and two of them are ambiguous)
   and in the folder of ``manifest.csv``. Zips inside the zip are never opened.
2. :class:`Records` reads one file as a byte stream (a zip member is decompressed as it is
   read, and the bytes are counted against the limits, since declared sizes can lie), line
   by line: each line is bounded, must be UTF-8 (a UTF-8 byte order mark is skipped; UTF-16
   and other encodings are refused with the line and byte), and the CSV records come out
   with the line each starts on. A CSV error names the line and, where it can be told, the
   column.

Problems are raised as :class:`Unreadable` (one file cannot be read further) or
``ImportRefused`` (the container is wrong); ``server/oneroster/parse.py`` turns the first into
a ``Problem`` of the file and carries on with the other files.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """What one import may hold. The full demo city (160,000 pupils) is a 17 MiB zip of
    about 200 MiB of CSV, its largest file about 70 MiB, so these leave room for a city
    several times larger while a zip bomb is stopped early."""

    members: int = 1000
    """Members of a zip (a OneRoster set has at most a few dozen files)."""
    file_bytes: int = 1024 * MIB
    """One file's size, uncompressed."""
    total_bytes: int = 2048 * MIB
    """All the files read, uncompressed."""
    line_bytes: int = 4 * MIB
    """One physical line."""
    record_bytes: int = 4 * MIB
    """One CSV record (a quoted value may span lines)."""


LIMITS = Limits()


def _size(count: int) -> str:
    return f"{count / MIB:,.0f} MiB" if count >= MIB else f"{count:,} bytes"


SAVE_AS = 'save it from Excel as "CSV UTF-8 (Comma delimited) (*.csv)"'


class Unreadable(Exception):  # noqa: N818 (a refusal, not a bug)
    """One file cannot be read on from here: ``line`` (0: the file as a whole), the field's
    index if known, and what is wrong."""

    def __init__(self, line: int, problem: str, field: int | None = None) -> None:
        super().__init__(problem)
        self.line, self.problem, self.field = line, problem, field


class ContainerRefused(Exception):  # noqa: N818 (a refusal, not a bug)
    """The folder or zip is refused as a whole: ``where`` (the zip's or folder's name) and
    what is wrong, one line each."""

    def __init__(self, where: str, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.where, self.problems = where, problems


@dataclass(frozen=True, slots=True)
class SetFile:
    """One file of the set, not yet read: where it is and how to open it as bytes."""

    name: str
    """The OneRoster name without ``.csv`` (``users``, ``manifest``)."""
    size: int
    """Its size in bytes, as declared (a zip member's) or found (a file's)."""
    open: Callable[[], contextlib.AbstractContextManager[IO[bytes]]]

    @staticmethod
    def from_text(name: str, text: str | bytes) -> SetFile:
        """A file held in memory (tests, and callers that already have the text)."""
        data = text.encode() if isinstance(text, str) else text
        return SetFile(name, len(data), lambda: contextlib.nullcontext(io.BytesIO(data)))


class Budget:
    """Bytes read so far from the whole set, against :attr:`Limits.total_bytes`."""

    def __init__(self, limits: Limits = LIMITS) -> None:
        self.limits = limits
        self.used = 0


class _Counted:
    """A byte stream whose bytes are counted as they are read, against one file's declared
    size and limit and the set's budget: a zip member that decompresses to more than it
    declared, or more than the limits allow, is stopped there."""

    def __init__(self, raw: IO[bytes], declared: int, budget: Budget) -> None:
        self.raw, self.declared, self.budget = raw, declared, budget
        self.read = 0

    def readline(self, limit: int) -> bytes:
        data = self.raw.readline(limit)
        self.read += len(data)
        self.budget.used += len(data)
        limits = self.budget.limits
        if self.read > limits.file_bytes:
            raise Unreadable(0, f"larger than {_size(limits.file_bytes)}: refused")
        if self.read > self.declared:
            raise Unreadable(0, f"holds more than the {self.declared:,} bytes it declares")
        if self.budget.used > limits.total_bytes:
            raise Unreadable(
                0, f"the set's files hold more than {_size(limits.total_bytes)}: refused"
            )
        return data


def _field_at_fault(text: str) -> int | None:
    """The index of the field where a CSV record goes wrong: a quoted value followed by
    something other than a comma, or a quoted value that never closes."""
    field, quoted, at_start, i = 0, False, True, 0
    while i < len(text):
        char = text[i]
        if quoted:
            if char == '"':
                if text[i + 1 : i + 2] == '"':
                    i += 2
                    continue
                quoted = False
                if text[i + 1 : i + 2] not in ("", ",", "\r", "\n"):
                    return field
        elif char == '"' and at_start:
            quoted = True
        elif char == ",":
            field += 1
            at_start = True
            i += 1
            continue
        at_start = False
        i += 1
    return field if quoted else None


class Records:
    """One file's CSV records, each with the line it starts on (line 1 is the header).

    Iterate once; :attr:`done` is how many bytes have been read (for progress)."""

    def __init__(self, file: SetFile, budget: Budget) -> None:
        self.file, self.budget = file, budget
        self.limits = budget.limits
        self.done = 0
        self._line = 0
        self._record: list[str] = []
        self._record_bytes = 0
        self._record_start = 1
        self._skipped = 0
        """Bytes of a byte order mark, skipped."""

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        if self.file.size > self.limits.file_bytes:
            raise Unreadable(0, f"larger than {_size(self.limits.file_bytes)}: refused")
        with self.file.open() as raw:
            stream = _Counted(raw, self.file.size, self.budget)
            reader = csv.reader(self._lines(stream), strict=True)
            while True:
                self._record.clear()
                self._record_bytes = 0
                self._record_start = self._line + 1
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    raise self._csv_problem(exc) from None
                yield self._record_start, cells

    def _lines(self, stream: _Counted) -> Iterator[str]:
        limit = self.limits.line_bytes
        while data := stream.readline(limit + 1):
            self._line += 1
            if len(data) > limit:
                raise Unreadable(
                    self._line,
                    f"a line longer than {_size(limit)}: is this a CSV file with "
                    "one record a line?",
                )
            if self._line == 1:
                data = self._first(data)
            if b"\x00" in data:
                raise Unreadable(self._line, "holds a NUL byte: this is not a text file")
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise self._not_utf8(data, exc) from None
            self.done += len(data)
            self._record_bytes += len(data)
            if self._record_bytes > self.limits.record_bytes:
                raise Unreadable(
                    self._record_start,
                    f"a record longer than {_size(self.limits.record_bytes)} "
                    "(a quoted value opened here is probably not closed)",
                    _field_at_fault("".join(self._record)),
                )
            self._record.append(text)
            yield text

    def _first(self, data: bytes) -> bytes:
        """The first line without a UTF-8 byte order mark; UTF-16 and UTF-32 refused."""
        if data.startswith(codecs.BOM_UTF8):
            self._skipped = len(codecs.BOM_UTF8)
            return data[self._skipped :]
        if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)) and data[:4].count(0) == 2:
            raise Unreadable(1, f"the file is UTF-32, not UTF-8: {SAVE_AS}")
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or data.count(0) > 1:
            raise Unreadable(
                1,
                'the file is UTF-16 (Excel\'s "Unicode Text"), not UTF-8: ' + SAVE_AS,
            )
        return data

    def _not_utf8(self, data: bytes, exc: UnicodeDecodeError) -> Unreadable:
        byte = data[exc.start]
        offset = self.done + self._skipped + exc.start
        try:
            data.decode("cp1252")
            around = data[max(0, exc.start - 20) : exc.start + 20].decode("cp1252", "replace")
            guess = (
                'it looks like Windows-1252 (Excel\'s "CSV (Comma delimited)"), where it '
                f"reads {around.strip()!r}"
            )
        except UnicodeDecodeError:
            guess = "it is in another encoding"
        field = None
        if self._record_start == self._line:
            prefix = data[: exc.start].decode("utf-8", errors="replace")
            field = len(next(csv.reader([prefix]), [""])) - 1
        return Unreadable(
            self._line,
            f"byte 0x{byte:02X} at byte {offset:,} of the file is not UTF-8; {guess}. "
            f"Reppu reads UTF-8 only: {SAVE_AS}",
            field,
        )

    def _csv_problem(self, exc: csv.Error) -> Unreadable:
        message = str(exc)
        field = _field_at_fault("".join(self._record))
        start = self._record_start
        if message.startswith("',' expected after '\"'"):
            return Unreadable(
                self._line,
                "a quoted value goes on after its closing quote: a quote inside a value is "
                'written "" and the value quoted',
                field,
            )
        if message == "unexpected end of data":
            return Unreadable(
                start, "a quoted value opened here is not closed before the end of the file", field
            )
        if message.startswith("field larger than field limit"):
            return Unreadable(
                start,
                f"a value longer than {csv.field_size_limit():,} characters (on line "
                f"{self._line}; a quoted value opened here is probably not closed)",
                field,
            )
        if message.startswith("new-line character seen in unquoted field"):
            return Unreadable(
                self._line,
                "a carriage return (CR) inside a value that is not quoted: end lines with CRLF "
                "or LF, and quote a value that holds a line break",
                field,
            )
        return Unreadable(self._line, f"not valid CSV: {message}", field)


# -- finding the set's files --------------------------------------------------------------


def _match(path: str, wanted: frozenset[str]) -> tuple[str, str] | None:
    """(OneRoster name, found name) if ``names`` is one of the set's files; without regard to
    case, as Windows, where most of these files are made, does not tell case apart."""
    basename = PurePosixPath(path).name
    if not basename.lower().endswith(".csv") or basename.startswith("._"):
        return None  # "._users.csv" is a macOS resource fork, not a file of the set
    stem = basename[: -len(".csv")].lower()
    for name in wanted:
        if name.lower() == stem:
            return name, path
    return None


def _bad_name(name: str) -> str | None:
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return f"{name!r} is an absolute path"
    if ".." in name.replace("\\", "/").split("/"):
        return f"{name!r} climbs out of the zip (..)"
    return None


def _choose(found: list[tuple[str, str]], problems: list[str]) -> dict[str, str]:
    """Each OneRoster name to its one path; two of one name, or files outside the
    manifest's folder, are problems."""
    by_name: dict[str, list[str]] = {}
    for name, path in found:
        by_name.setdefault(name, []).append(path)
    chosen: dict[str, str] = {}
    for name, paths in sorted(by_name.items()):
        if len(paths) > 1:
            problems.append(
                f"holds {len(paths)} files for {name}.csv ({', '.join(sorted(paths))}): "
                "which one is meant is not clear; leave one"
            )
        else:
            chosen[name] = paths[0]
    manifest = chosen.get("manifest")
    if manifest is not None:
        folder = PurePosixPath(manifest).parent
        for path in sorted(chosen.values()):
            if PurePosixPath(path).parent != folder:
                problems.append(f"{path} is not in the folder of {manifest}: a set is one folder")
    return chosen


def _declared_members(path: Path) -> int | None:
    """The member count in a zip's end record, read before zipfile builds an object for
    every member (a small zip can list a great many); None if the end record is not found
    (zipfile then says what is wrong)."""
    with path.open("rb") as file:
        size = file.seek(0, io.SEEK_END)
        tail_size = min(size, 22 + 65_535 + 20)  # end record, its comment, the zip64 locator
        file.seek(size - tail_size)
        tail = file.read(tail_size)
        end = tail.rfind(b"PK\x05\x06")
        if end < 0 or end + 22 > len(tail):
            return None
        count = int.from_bytes(tail[end + 10 : end + 12], "little")
        locator = end - 20
        if count == 0xFFFF and locator >= 0 and tail[locator : locator + 4] == b"PK\x06\x07":
            file.seek(int.from_bytes(tail[locator + 8 : locator + 16], "little"))
            record = file.read(56)
            if record[:4] == b"PK\x06\x06" and len(record) == 56:
                count = int.from_bytes(record[32:40], "little")
        return count


def _read_zip(path: Path, wanted: frozenset[str], limits: Limits) -> dict[str, SetFile]:
    where = path.name
    try:
        declared = _declared_members(path)
        if declared is not None and declared > limits.members:
            raise ContainerRefused(
                where, [f"holds {declared:,} members, more than {limits.members:,}: refused"]
            )
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ContainerRefused(where, [f"not a folder or a readable zip file ({exc})"]) from None
    with archive:
        infos = archive.infolist()
    if len(infos) > limits.members:
        raise ContainerRefused(
            where, [f"holds {len(infos):,} members, more than {limits.members:,}: refused"]
        )
    problems: list[str] = []
    found: list[tuple[str, str]] = []
    by_path: dict[str, zipfile.ZipInfo] = {}
    nested: list[str] = []
    for info in infos:
        if (bad := _bad_name(info.filename)) is not None:
            problems.append(f"member {bad}: refused")
            continue
        if info.is_dir() or info.filename.startswith("__MACOSX/"):
            continue
        if info.filename.lower().endswith(".zip"):
            nested.append(info.filename)
        hit = _match(info.filename, wanted)
        if hit is not None:
            found.append(hit)
            by_path[info.filename] = info
    chosen = _choose(found, problems)
    total = 0
    for member in sorted(chosen.values()):
        info = by_path[member]
        total += info.file_size
        if info.file_size > limits.file_bytes:
            problems.append(
                f"{member} declares {info.file_size:,} bytes uncompressed, more than "
                f"{_size(limits.file_bytes)}: refused before reading it"
            )
        if info.flag_bits & 0x1:
            problems.append(f"{member} is encrypted: zip the set without a password")
        if info.compress_type not in (
            zipfile.ZIP_STORED,
            zipfile.ZIP_DEFLATED,
            zipfile.ZIP_BZIP2,
            zipfile.ZIP_LZMA,
        ):
            problems.append(
                f"{member} is compressed with method {info.compress_type}, which Reppu cannot "
                "read: zip it again with ordinary (deflate) compression"
            )
    if total > limits.total_bytes:
        problems.append(
            f"the set's files declare {total:,} bytes uncompressed, more than "
            f"{_size(limits.total_bytes)}: refused before reading them"
        )
    if "manifest" not in chosen and nested and not problems:
        problems.append(
            f"holds no manifest.csv but another zip ({', '.join(nested[:3])}): Reppu does not "
            "open a zip inside a zip; import the inner one"
        )
    if problems:
        raise ContainerRefused(where, problems)

    def opener(info: zipfile.ZipInfo) -> Callable[[], contextlib.AbstractContextManager[IO[bytes]]]:
        @contextlib.contextmanager
        def open_member() -> Iterator[IO[bytes]]:
            with zipfile.ZipFile(path) as again, again.open(info) as member:
                try:
                    yield member
                except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                    # A CRC that does not match (also when the declared size was too
                    # small, as zipfile stops there) or a broken compressed stream.
                    raise Unreadable(0, f"the zip member is damaged: {exc}") from None

        return open_member

    return {
        name: SetFile(name, by_path[member].file_size, opener(by_path[member]))
        for name, member in chosen.items()
    }


def _read_folder(path: Path, wanted: frozenset[str]) -> dict[str, SetFile]:
    found: list[tuple[str, str]] = []
    for entry in sorted(path.iterdir()):
        if entry.is_file():
            hit = _match(entry.name, wanted)
            if hit is not None:
                found.append(hit)
    problems: list[str] = []
    chosen = _choose(found, problems)
    if problems:
        raise ContainerRefused(f"{path.name}/", problems)

    def opener(file: Path) -> Callable[[], contextlib.AbstractContextManager[IO[bytes]]]:
        return lambda: file.open("rb")

    return {
        name: SetFile(name, (path / found_name).stat().st_size, opener(path / found_name))
        for name, found_name in chosen.items()
    }


def find_files(path: Path, wanted: frozenset[str], limits: Limits = LIMITS) -> dict[str, SetFile]:
    """The files of the set in a folder or a zip, keyed by OneRoster name, not yet read;
    raises :class:`ContainerRefused` if the container itself is wrong."""
    if path.is_dir():
        return _read_folder(path, wanted)
    return _read_zip(path, wanted, limits)
