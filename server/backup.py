"""``reppu backup`` and ``reppu restore``: a copy of the database, and a restore devices survive.

SQLite is copied with its online backup API (``sqlite3.Connection.backup``), page by page so
that a big file shows progress. The copy is read inside one read transaction held for the
whole backup: in WAL mode that snapshot does not block the server's writers, and a writer
committing meanwhile does not make SQLite restart the copy (without the held snapshot a
steady stream of writes restarts it at every step, and it never finishes; measured). The
copy goes to a ``.partial`` file beside the target and is renamed into place only when it is
complete, in rollback-journal mode, so that a backup is always one self-contained file.

PostgreSQL is dumped with ``pg_dump --format=custom`` and restored with ``pg_restore
--clean --if-exists --single-transaction``: the documented tools, which know PostgreSQL's
consistency rules better than we could (``docs/operations.md``).

A restore takes the database back in time, and the devices of the fleet are ahead of it: their
cursors name change-log positions the restored log will reuse for other changes. Every restore
therefore gives the database a new sync epoch (``server/state.py``): cursors are signed with
a key derived from it, so a cursor from before the restore is refused with
``sync.bad_cursor`` and the device starts over from an empty copy. On SQLite the new epoch is
written into the copy before it replaces the database, so the two cannot be separated; on
PostgreSQL ``reppu restore`` writes it right after ``pg_restore`` (``reppu new-epoch`` does it
alone, should that step ever be cut short).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg

Progress = Callable[[int, int], None]
"""Called with (pages copied, pages in all) as a SQLite copy goes on."""

PAGES_PER_STEP = 4096
"""Pages copied between progress reports (16 MiB at SQLite's default 4 KiB page)."""


class BackupError(Exception):
    """A backup or restore that could not be made; the message says why, for the operator."""


Heads = dict[str, tuple[int, int]]
"""Per installation (``sync_client.client_id``): its person and the last mutation id recorded."""

_HEADS = "SELECT client_id, person, last_mutation_id FROM sync_client"


@dataclass(frozen=True)
class Rewound:
    """What a restore took back of the devices' work: the mutations recorded after the backup.

    Read from ``sync_client`` before and after (each installation's ids are sequential, so
    its last id says how many it had), not from the devices: it is the operator's report of
    what the fleet must send again.
    """

    gone: dict[str, int]
    """Per installation: how many of its mutations the restore took back."""
    people: int

    @staticmethod
    def between(before: Heads, after: Heads) -> Rewound:
        gone = {
            client: last - after.get(client, (person, 0))[1]
            for client, (person, last) in before.items()
            if last > after.get(client, (person, 0))[1]
        }
        return Rewound(gone=gone, people=len({before[client][0] for client in gone}))

    def describe(self) -> str:
        if not self.gone:
            return "No device's mutations were recorded after this backup."
        return (
            f"{sum(self.gone.values())} mutation(s) pushed from {len(self.gone)} installation(s) "
            f"of {self.people} person(s) after this backup were taken back. Devices running "
            f"the reference client send them again when they come back; the server logs "
            f"each installation that pushes past such a gap (docs/operations.md)."
        )


def new_epoch() -> str:
    """A fresh sync epoch: 32 hex digits, as ``SyncEpoch.epoch`` holds them."""
    return secrets.token_hex(16)


def _refuse_existing(target: Path, force: bool) -> None:
    if target.is_dir():
        raise BackupError(f"{target} is a folder; give the backup's file name")
    if target.exists() and not force:
        raise BackupError(f"{target} exists; give --force to overwrite it")
    if not target.parent.is_dir():
        raise BackupError(f"{target.parent} is not a folder")


@contextmanager
def _partial(target: Path) -> Iterator[Path]:
    """A temporary file beside ``target`` that becomes ``target`` only if the block succeeds."""
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(handle)
    partial = Path(name)
    try:
        yield partial
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _read_only(path: Path) -> str:
    # A URI, percent-encoded: a file name may hold "?", "#" or "%".
    return f"{path.resolve().as_uri()}?mode=ro"


def _copy(
    source: sqlite3.Connection, target: sqlite3.Connection, progress: Progress | None
) -> None:
    def report(_status: int, remaining: int, total: int) -> None:
        if progress is not None:
            progress(total - remaining, total)

    source.backup(target, pages=PAGES_PER_STEP, progress=report)


def backup_sqlite(
    database: Path, target: Path, *, force: bool = False, progress: Progress | None = None
) -> None:
    """Copy the SQLite database ``database`` to ``target``, consistent while it is written."""
    if not database.is_file():
        raise BackupError(f"{database}: no such database file")
    _refuse_existing(target, force)
    with _partial(target) as partial:
        source = sqlite3.connect(_read_only(database), uri=True, isolation_level=None)
        copy = sqlite3.connect(partial, isolation_level=None)
        try:
            # One snapshot for the whole copy (see the module's docstring).
            source.execute("BEGIN")
            source.execute("SELECT count(*) FROM sqlite_master").fetchall()
            _copy(source, copy, progress)
            source.execute("COMMIT")
            # The copy keeps the source's WAL mode in its header; a backup is one file.
            copy.execute("PRAGMA journal_mode = DELETE")
            _check(copy, f"the copy of {database}")
        except sqlite3.Error as exc:
            raise BackupError(f"the backup of {database} failed: {exc}") from exc
        finally:
            copy.close()
            source.close()


def _check(db: sqlite3.Connection, what: str) -> None:
    """Refuse a file that is not a sound Reppu database."""
    try:
        verdict = db.execute("PRAGMA quick_check").fetchone()[0]
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{what} is not a SQLite database: {exc}") from exc
    if verdict != "ok":
        raise BackupError(f"{what} is damaged: {verdict}")
    if "sync_epoch" not in tables or "migration" not in tables:
        raise BackupError(f"{what} is not a Reppu database (no sync_epoch or migration table)")


def _sqlite_heads(db: sqlite3.Connection) -> Heads:
    try:
        return {c: (int(p), int(m)) for c, p, m in db.execute(_HEADS)}
    except sqlite3.OperationalError:  # no sync_client: a database never migrated
        return {}


def _refuse_if_open(database: Path) -> None:
    """Refuse a database another process has open (a server or worker still running).

    Leaving WAL mode needs the database to itself: every connection that has a WAL database
    open holds a shared lock on it, idle or not, so the switch fails while any is open.
    """
    probe = sqlite3.connect(database, isolation_level=None, timeout=0)
    try:
        probe.execute("PRAGMA journal_mode = DELETE").fetchone()
        probe.execute("PRAGMA journal_mode = WAL").fetchone()
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc) and "busy" not in str(exc):
            raise BackupError(f"{database} cannot be opened ({exc})") from exc
        raise BackupError(
            f"{database} is open in another process ({exc}): stop every `reppu serve` and "
            f"`reppu worker` first"
        ) from exc
    except sqlite3.DatabaseError as exc:
        # A damaged database is a reason to restore, but the backup API cannot write over
        # what is not a database: the operator moves it aside (and keeps it, for a look).
        raise BackupError(
            f"{database} is not a readable database ({exc}): move it (and any -wal and -shm "
            f"files beside it) aside, then restore again"
        ) from exc
    finally:
        probe.close()


def restore_sqlite(
    backup: Path, database: Path, *, progress: Progress | None = None
) -> tuple[str, Rewound]:
    """Replace ``database`` with the backup ``backup`` under a new sync epoch; the epoch, and
    what the restore took back.

    The backup is first copied to a scratch file and given its new epoch there; only then is
    it copied over ``database`` in one step of the backup API, which SQLite does atomically
    (a reader sees the old database or the new one). The server must be stopped: a running
    one would go on answering from what it holds in memory (the key its cursors are signed
    with among it), so a database another process has open is refused.
    """
    if not backup.is_file():
        raise BackupError(f"{backup}: no such backup file")
    if not database.parent.is_dir():
        raise BackupError(f"{database.parent} is not a folder")
    before: Heads = {}
    if database.exists() and database.stat().st_size > 0:
        _refuse_if_open(database)
        current = sqlite3.connect(_read_only(database), uri=True)
        try:
            before = _sqlite_heads(current)
        finally:
            current.close()
    epoch = new_epoch()
    with tempfile.TemporaryDirectory(dir=database.parent) as scratch:
        staged = Path(scratch) / "restore.sqlite3"
        source = sqlite3.connect(_read_only(backup), uri=True, isolation_level=None)
        copy = sqlite3.connect(staged, isolation_level=None)
        try:
            _check(source, str(backup))
            _copy(source, copy, progress)
            copy.execute("BEGIN IMMEDIATE")
            copy.execute("DELETE FROM sync_epoch")
            copy.execute("INSERT INTO sync_epoch (epoch) VALUES (?)", (epoch,))
            copy.execute("COMMIT")
            after = _sqlite_heads(copy)
            target = sqlite3.connect(database, isolation_level=None)
            try:
                copy.backup(target, pages=-1)
                target.execute("PRAGMA journal_mode = WAL")
            finally:
                target.close()
        except sqlite3.Error as exc:
            raise BackupError(f"the restore of {backup} failed: {exc}") from exc
        finally:
            copy.close()
            source.close()
    return epoch, Rewound.between(before, after)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} is not installed; install the PostgreSQL client tools of the server's "
            f"major version or newer (Debian: apt install postgresql-client)"
        )
    return found


def postgres_connection(url: str) -> tuple[str, dict[str, str]]:
    """``url`` without its password, and the environment that passes the password instead.

    A password on a command line is visible to every user of the machine (``ps``); libpq
    reads ``PGPASSWORD`` from the environment of the tool alone.
    """
    parts = urlsplit(url)
    env = dict(os.environ)
    if parts.password is None:
        return url, env
    env["PGPASSWORD"] = unquote(parts.password)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}{host}{port}")), env


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    # No shell; the tool is found on PATH by name and the arguments are ours.
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip() or f"exit code {done.returncode}"
        raise BackupError(f"{what} failed: {detail}")


def backup_postgres(url: str, target: Path, *, force: bool = False) -> None:
    """``pg_dump --format=custom`` of the database at ``url`` into ``target``."""
    _refuse_existing(target, force)
    pg_dump = _tool("pg_dump")
    dsn, env = postgres_connection(url)
    with _partial(target) as partial:
        _run(
            [pg_dump, "--format=custom", f"--file={partial}", f"--dbname={dsn}"],
            env,
            "pg_dump",
        )


async def _postgres_heads(dsn: str, env: dict[str, str], *, alone: bool) -> Heads:
    """The installations' heads; with ``alone``, first refuse a database other sessions are
    connected to (servers still running).

    ``pg_restore --clean`` would not wait for idle connections (they hold no locks), and the
    servers behind them would go on with what they hold in memory, the key their cursors are
    signed with among it.
    """
    try:
        connection = await asyncpg.connect(dsn, password=env.get("PGPASSWORD"), timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise BackupError(f"cannot connect to the database: {exc}") from exc
    try:
        others = await connection.fetch(
            "SELECT application_name, client_addr::text AS addr FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        try:
            heads = {r[0]: (int(r[1]), int(r[2])) for r in await connection.fetch(_HEADS)}
        except asyncpg.UndefinedTableError:  # a database never migrated
            heads = {}
    finally:
        await connection.close()
    if others and alone:
        seen = ", ".join(sorted({f"{r['application_name'] or '?'}@{r['addr']}" for r in others}))
        raise BackupError(
            f"{len(others)} other session(s) are connected to the database ({seen}): stop "
            f"every `reppu serve` and `reppu worker` first"
        )
    return heads


async def restore_postgres(backup: Path, url: str) -> Rewound:
    """``pg_restore`` of ``backup`` over the database at ``url``, in one transaction; what it
    took back.

    The caller then gives the database a new epoch (``server.state.renew_sync_epoch``).
    """
    if not backup.is_file():
        raise BackupError(f"{backup}: no such backup file")
    pg_restore = _tool("pg_restore")
    dsn, env = postgres_connection(url)
    before = await _postgres_heads(dsn, env, alone=True)
    command = [
        pg_restore,
        "--clean",
        "--if-exists",
        "--no-owner",
        "--single-transaction",
        "--exit-on-error",
        f"--dbname={dsn}",
        str(backup),
    ]
    await asyncio.to_thread(_run, command, env, "pg_restore")
    return Rewound.between(before, await _postgres_heads(dsn, env, alone=False))
