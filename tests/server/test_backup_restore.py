"""Backup and a restore under a running fleet, on SQLite and PostgreSQL (server/backup.py).

The fleet is the reference client on several devices. After a restore every device must come
to hold what a fresh pull gives, and nothing pushed after the backup may be silently lost: it
is sent again from the devices (their ``sent`` journal), or reported (``lost_before``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine

from clients.python import LocalStore, ReppuClient
from server import backup as backup_module
from server.app import create_app
from server.backup import (
    BackupError,
    Rewound,
    backup_postgres,
    backup_sqlite,
    postgres_connection,
    restore_postgres,
    restore_sqlite,
)
from server.db.engine import _SQLiteEngine, settle_writes, start_postgres_pool
from server.db.sync_tables import SyncEpoch
from server.db.tables import LessonChange
from server.settings import Settings
from server.state import renew_sync_epoch, sync_epoch
from tests.city import PASSWORD, City
from tests.devices import next_weekday, records

VERSION = 1


@asynccontextmanager
async def _server(settings: Settings, engine: Engine[Any]) -> AsyncIterator[httpx.AsyncClient]:
    """One run of the server: a fresh app (nothing in memory from an earlier run)."""
    app = create_app(settings, engine=engine)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://reppu.test") as http:
            yield http
    finally:
        await app.state.reppu.live.stop()  # its watch would outlive this run of the server


async def _device(http: httpx.AsyncClient, username: str, **store: Any) -> ReppuClient:
    answer = await http.post(
        "/auth/login", json={"username": username, "password": PASSWORD, "device_name": "t"}
    )
    assert answer.status_code == 200, answer.text
    return ReppuClient(http, answer.json()["token"], LocalStore(**store))


def _backup(settings: Settings, target: Path) -> None:
    if settings.is_sqlite:
        backup_sqlite(settings.sqlite_path, target)
    else:
        backup_postgres(settings.database_url, target)


async def _restore(settings: Settings, engine: Engine[Any], backup: Path) -> Rewound:
    """``reppu restore`` with the server stopped: its connections closed, then opened again."""
    if isinstance(engine, PostgresEngine):
        await engine.close_connection_pool()
        rewound = await restore_postgres(backup, settings.database_url)
        await start_postgres_pool(engine, 4)  # as the server starts it again
        await renew_sync_epoch(engine)
        return rewound
    assert isinstance(engine, _SQLiteEngine)
    await settle_writes(engine)  # the last write's connection closes in a task of its own
    await engine.close_read_pool()
    # A connection the test's app or client was still letting go of (each is closed in
    # aiosqlite's thread) holds the file a moment longer; the real restore runs with every
    # server stopped. Up to 10 s, then the refusal stands.
    for attempt in range(50):
        try:
            _, rewound = restore_sqlite(backup, settings.sqlite_path)
            break
        except BackupError as refused:
            if "open in another process" not in str(refused) or attempt == 49:
                raise
            await asyncio.sleep(0.2)
            await settle_writes(engine)
    engine.open_read_pool(settings.sqlite_read_connections)
    return rewound


async def _changes() -> set[tuple[int, str, bool, str | None]]:
    rows = await LessonChange.select(
        LessonChange.lesson, LessonChange.on_date, LessonChange.cancelled, LessonChange.room
    )
    return {(r["lesson"], r["on_date"].isoformat(), r["cancelled"], r["room"]) for r in rows}


def _queue(device: ReppuClient, lesson: int, on_date: dt.date, **args: Any) -> None:
    device.queue("lesson.change", {"lesson_id": lesson, "on_date": on_date.isoformat(), **args})


async def _notes() -> set[tuple[int, str | None, str | None]]:
    rows = await LessonChange.select(LessonChange.lesson, LessonChange.room, LessonChange.note)
    return {(r["lesson"], r["room"], r["note"]) for r in rows}


async def test_a_restore_under_a_running_fleet_converges_and_loses_nothing(
    fx_settings: Settings,
    fx_db: Engine[Any],
    fx_city: City,
    fx_timetable: dict[str, int],
    tmp_path: Path,
) -> None:
    c = fx_city
    monday, wednesday = next_weekday(c.today, 1), next_weekday(c.today, 3)
    backup = tmp_path / "reppu.backup"
    async with _server(fx_settings, fx_db) as http:
        fleet = {n: await _device(http, n) for n in ("teacher", "principal", "mother", "aino")}
        teacher, principal = fleet["teacher"], fleet["principal"]
        _queue(teacher, fx_timetable["5b-1"], monday, cancelled=True)
        assert [r["status"] for r in await teacher.push()] == ["applied"]
        for device in fleet.values():
            await device.sync()

        _backup(fx_settings, backup)
        before = await _changes()

        # After the backup: the teacher pushes twice more; the principal, registered with no
        # server yet, pushes for the first time. Everyone pulls it all.
        _queue(teacher, fx_timetable["5b-3"], wednesday, room="B2")
        _queue(teacher, fx_timetable["5b-1"], monday, room="C3")
        _queue(principal, fx_timetable["ma-1"], monday, cancelled=True)
        for device in (teacher, principal):
            assert {r["status"] for r in await device.push()} == {"applied"}
        for device in fleet.values():
            await device.sync()
        after = await _changes()
        assert len(after) == 3
        assert after != before
        old_cursor = fleet["mother"].store.cursor
        old_epoch = await sync_epoch(fx_db)

    rewound = await _restore(fx_settings, fx_db, backup)
    assert await _changes() == before  # the backup's state, the later pushes gone
    # The operator is told what the fleet must send again.
    assert rewound.gone == {teacher.client_id: 2, principal.client_id: 1}
    assert rewound.people == 2
    assert rewound.describe().startswith("3 mutation(s) pushed from 2 installation(s) of 2")
    assert await sync_epoch(fx_db) != old_epoch

    async with _server(fx_settings, fx_db) as http:
        for device in fleet.values():
            device.http = http  # the same devices, tokens and stores: the fleet kept running
        # A cursor from before the restore names positions of another history: start over.
        answer = await http.post(
            "/sync/pull",
            json={"schema_version": VERSION, "cursor": old_cursor},
            headers=fleet["mother"].headers,
        )
        assert (answer.status_code, answer.json()["code"]) == (400, "sync.bad_cursor")

        # The devices come back in any order: a pull first (the teacher) or a push first
        # (the principal, who has nothing new to send but must send what was lost).
        await teacher.sync()
        assert [r["status"] for r in await teacher.push()] == ["applied"] * 3
        assert await principal.push() == []  # nothing queued: the pull has not seen the epoch
        await principal.sync()
        assert [r["status"] for r in await principal.push()] == ["applied"]
        assert await _changes() == after  # nothing pushed after the backup was lost
        for device in fleet.values():
            await device.sync()

        for name, device in fleet.items():
            fresh = await _device(http, name)
            await fresh.sync()
            assert device.store.records() == fresh.store.records(), name
            assert device.store.partitions() == fresh.store.partitions(), name
            assert device.store.pending() == []
        assert {r.get("room") for r in records(fleet["aino"], "lesson_change").values()} == {
            "B2",
            "C3",
            None,
        }
        # Replays are answered as before and applied once: the mutations are not doubled.
        assert await teacher.push() == []
        assert teacher.lost_before is None
        assert principal.lost_before is None


async def test_a_push_first_after_a_restore_resends_what_was_lost(
    caplog: pytest.LogCaptureFixture,
    fx_settings: Settings,
    fx_db: Engine[Any],
    fx_city: City,
    fx_timetable: dict[str, int],
    tmp_path: Path,
) -> None:
    monday = next_weekday(fx_city.today, 1)
    lesson = fx_timetable["5a-1"]
    backup = tmp_path / "reppu.backup"
    async with _server(fx_settings, fx_db) as http:
        teacher = await _device(http, "teacher")
        _queue(teacher, lesson, monday, room="A2")
        await teacher.push()
        _backup(fx_settings, backup)
        _queue(teacher, lesson, monday, room="A3")
        await teacher.push()
    await _restore(fx_settings, fx_db, backup)
    async with _server(fx_settings, fx_db) as http:
        teacher.http = http
        # A new mutation, pushed before any pull: its id comes after a gap the server lost.
        wednesday = next_weekday(fx_city.today, 3)
        _queue(teacher, fx_timetable["5a-3"], wednesday, note="Trip")
        # Creating an app configures logging afresh (Litestar replaces the root logger's
        # handlers, the capture's among them): listen on the logger itself.
        logging.getLogger("reppu.push").addHandler(caplog.handler)
        try:
            results = await teacher.push()
        finally:
            logging.getLogger("reppu.push").removeHandler(caplog.handler)
        assert [(r["id"], r["status"]) for r in results] == [(1, "applied"), (2, "applied"),
                                                              (3, "applied")]  # fmt: skip
        assert await _notes() == {(lesson, "A3", None), (fx_timetable["5a-3"], None, "Trip")}
        assert teacher.lost_before is None
    # The server says so in its log, too: pushed from id 3 while it held up to 1.
    assert "pushed from id 3, but the database holds up to 1" in caplog.text


async def test_a_gap_the_device_cannot_fill_is_reported_and_the_outbox_goes_on(
    fx_settings: Settings,
    fx_db: Engine[Any],
    fx_city: City,
    fx_timetable: dict[str, int],
    tmp_path: Path,
) -> None:
    monday = next_weekday(fx_city.today, 1)
    lesson = fx_timetable["5a-1"]
    backup = tmp_path / "reppu.backup"
    async with _server(fx_settings, fx_db) as http:
        # A device that keeps nothing it has sent (a store pruned, or an old client).
        teacher = await _device(http, "teacher", keep_sent=0)
        _backup(fx_settings, backup)
        _queue(teacher, lesson, monday, room="A3")
        await teacher.push()
        old_client = teacher.client_id
    await _restore(fx_settings, fx_db, backup)
    async with _server(fx_settings, fx_db) as http:
        teacher.http = http
        await teacher.sync()
        _queue(teacher, lesson, monday, note="Trip")
        results = await teacher.push()
        # Mutation 1 is gone and cannot be sent: reported; mutation 2 goes on as a new
        # installation's first.
        assert [(r["id"], r["status"]) for r in results] == [(1, "applied")]
        assert teacher.lost_before == 2
        assert teacher.client_id != old_client
        assert await _notes() == {(lesson, None, "Trip")}


async def test_restore_gives_a_new_epoch_even_to_the_same_backup_twice(
    fx_settings: Settings, fx_db: Engine[Any], tmp_path: Path
) -> None:
    backup = tmp_path / "reppu.backup"
    await sync_epoch(fx_db)
    _backup(fx_settings, backup)
    epochs = set()
    for _ in range(2):
        await _restore(fx_settings, fx_db, backup)
        assert await SyncEpoch.count() == 1
        epochs.add(await sync_epoch(fx_db))
    assert len(epochs) == 2


async def test_restore_refuses_while_a_server_has_the_database_open(
    fx_settings: Settings, fx_db: Engine[Any], tmp_path: Path
) -> None:
    backup = tmp_path / "reppu.backup"
    _backup(fx_settings, backup)
    epoch = await sync_epoch(fx_db)  # a read: the engine's connections are open, idle
    if fx_settings.is_sqlite:
        with pytest.raises(BackupError, match="stop every `reppu serve`"):
            restore_sqlite(backup, fx_settings.sqlite_path)
    else:
        with pytest.raises(BackupError, match="stop every `reppu serve`"):
            await restore_postgres(backup, fx_settings.database_url)
    assert await sync_epoch(fx_db) == epoch


async def test_backup_refuses_to_overwrite_without_force(
    fx_settings: Settings, fx_db: Engine[Any], tmp_path: Path
) -> None:
    target = tmp_path / "reppu.backup"
    target.write_bytes(b"yesterday's backup")
    with pytest.raises(BackupError, match="give --force"):
        _backup(fx_settings, target)
    assert target.read_bytes() == b"yesterday's backup"
    if fx_settings.is_sqlite:
        backup_sqlite(fx_settings.sqlite_path, target, force=True)
    else:
        backup_postgres(fx_settings.database_url, target, force=True)
    assert target.read_bytes() != b"yesterday's backup"
    assert [p.name for p in tmp_path.iterdir()] == ["reppu.backup"]  # no partial file left


def test_a_file_that_is_not_a_reppu_backup_is_refused(tmp_path: Path) -> None:
    database = tmp_path / "reppu.sqlite3"
    database.write_bytes(b"")
    not_a_backup = tmp_path / "notes.txt"
    not_a_backup.write_text("not a database at all, but long enough to be read as one" * 100)
    with pytest.raises(BackupError, match="not a SQLite database"):
        restore_sqlite(not_a_backup, database)
    with pytest.raises(BackupError, match="no such backup file"):
        restore_sqlite(tmp_path / "missing", database)
    assert database.read_bytes() == b""


def test_backup_progress_is_reported_on_a_big_file(tmp_path: Path) -> None:
    database = _small_reppu_file(tmp_path / "big.sqlite3", rows=8000)
    seen: list[tuple[int, int]] = []
    backup_sqlite(
        database, tmp_path / "copy", progress=lambda done, total: seen.append((done, total))
    )
    assert len(seen) > 1
    assert seen[-1][0] == seen[-1][1]
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_missing_pg_dump_is_said_plainly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BackupError, match="pg_dump is not installed"):
        backup_postgres("postgresql://u@127.0.0.1/reppu", tmp_path / "b")


def test_the_password_goes_in_the_environment_not_the_command_line() -> None:
    dsn, env = postgres_connection("postgresql://reppu:s%40cret@db.example:5433/reppu")
    assert dsn == "postgresql://reppu@db.example:5433/reppu"
    assert env["PGPASSWORD"] == "s@cret"


def test_a_sqlite_backup_is_one_snapshot_while_another_connection_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backup_module, "PAGES_PER_STEP", 100)
    database = _small_reppu_file(tmp_path / "live.sqlite3", rows=4000)
    writer = sqlite3.connect(database, isolation_level=None)
    steps = 0

    def write_between_steps(done: int, total: int) -> None:
        # A commit by another connection between every two steps: without the snapshot held
        # for the whole copy, SQLite would restart the copy at each one and never finish.
        nonlocal steps
        steps += 1
        assert steps < 100, "the backup keeps starting over"
        writer.execute("INSERT INTO t VALUES (?)", (b"late" * 100,))

    backup_sqlite(database, tmp_path / "copy", progress=write_between_steps)
    writer.close()
    assert steps > 1
    with sqlite3.connect(tmp_path / "copy") as copy:
        assert copy.execute("SELECT count(*) FROM t").fetchone() == (4000,)  # as it began
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # one file
    copy.close()


def test_the_cli_backs_up_and_restores_a_sqlite_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from server.cli import main

    tmp_path = tmp_path / "a ?#% folder"  # read through a file: URI, so encoded
    tmp_path.mkdir()
    database = _small_reppu_file(tmp_path / "reppu.sqlite3", rows=10)
    monkeypatch.setenv("REPPU_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("REPPU_DATABASE_URL", f"sqlite:///{database}")
    target = tmp_path / "reppu.backup"
    assert main(["backup", str(target)]) == 0
    assert main(["backup", str(target)]) == 1
    assert "exists; give --force" in capsys.readouterr().err
    with sqlite3.connect(database) as db:
        db.execute("DELETE FROM t")
    db.close()
    assert main(["restore", str(target)]) == 0
    said = capsys.readouterr().out
    assert "new sync epoch" in said
    assert "No device's mutations were recorded after this backup." in said
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT count(*) FROM t").fetchone() == (10,)
        epochs = db.execute("SELECT epoch FROM sync_epoch").fetchall()
    db.close()
    assert len(epochs) == 1
    assert epochs != [("first",)]
    assert main(["restore", str(tmp_path / "missing")]) == 1
    assert "no such backup file" in capsys.readouterr().err


def _small_reppu_file(path: Path, *, rows: int) -> Path:
    """A SQLite file with the tables a restore looks for and ``rows`` rows of 3 KB in ``t``."""
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("CREATE TABLE t (x BLOB)")
        db.executemany("INSERT INTO t VALUES (?)", [(b"x" * 3000,) for _ in range(rows)])
        db.execute("CREATE TABLE sync_epoch (id INTEGER PRIMARY KEY, epoch TEXT)")
        db.execute("INSERT INTO sync_epoch (epoch) VALUES ('first')")
        db.execute("CREATE TABLE migration (id INTEGER PRIMARY KEY)")
    db.close()
    return path


def test_restore_refuses_a_database_a_running_server_holds(tmp_path: Path) -> None:
    database = _small_reppu_file(tmp_path / "reppu.sqlite3", rows=3)
    backup_sqlite(database, tmp_path / "reppu.backup")
    server = sqlite3.connect(database, isolation_level=None)  # a server's idle connection
    assert server.execute("SELECT count(*) FROM t").fetchone() == (3,)
    server.execute("DELETE FROM t")
    with pytest.raises(BackupError, match="stop every `reppu serve`"):
        restore_sqlite(tmp_path / "reppu.backup", database)
    assert server.execute("SELECT count(*) FROM t").fetchone() == (0,)  # untouched
    server.close()
    restore_sqlite(tmp_path / "reppu.backup", database)
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT count(*) FROM t").fetchone() == (3,)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.close()


def test_restore_over_a_damaged_database_says_to_move_it_aside(tmp_path: Path) -> None:
    backup = _small_reppu_file(tmp_path / "reppu.backup", rows=3)
    database = tmp_path / "reppu.sqlite3"
    database.write_bytes(b"this is no SQLite file, only damage " * 200)
    with pytest.raises(BackupError, match="move it"):
        restore_sqlite(backup, database)
    database.rename(tmp_path / "damaged.sqlite3")
    restore_sqlite(backup, database)
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT count(*) FROM t").fetchone() == (3,)
    db.close()
