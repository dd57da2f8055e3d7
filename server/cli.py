"""The ``reppu`` command: ``serve``, ``worker``, ``migrate``, ``demo``, ``compact``,
``retain``, ``import``/``export oneroster``, and ``backup``/``restore``/``new-epoch``.

Each command reads the settings from the environment once, and a setting that cannot be
used ends the command with its name in the message and exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from server.logs import configure as configure_logging
from server.settings import Settings, SettingsError, load_settings

log = logging.getLogger("reppu")


def _fail(message: str, code: int = 2) -> int:
    print(f"reppu: {message}", file=sys.stderr)
    return code


async def _migrate(settings: Settings) -> None:
    from server.db.engine import open_database
    from server.db.migrate import migrate, schema_version

    async with open_database(settings):
        await migrate()
        print(f"Database {settings.database_label} is at schema {await schema_version()}.")


async def _pending(settings: Settings) -> list[str]:
    from server.db.engine import open_database
    from server.db.migrate import pending_migrations

    async with open_database(settings):
        return await pending_migrations()


async def _demo(settings: Settings, *, pupils: int, seed: int, if_empty: bool) -> int:
    from server.clock import school_today
    from server.db.engine import open_database
    from server.demo import DEMO_LOGINS, DEMO_PASSWORD, DemoCityError, ensure_empty, load_demo_city
    from server.demo.progress import TextProgress

    async with open_database(settings) as engine:
        try:
            await ensure_empty(engine)
            summary = await load_demo_city(
                engine, pupils=pupils, seed=seed, today=school_today(), progress=TextProgress()
            )
        except DemoCityError as exc:
            if if_empty:
                print("The database already holds data; the demo city is not loaded again.")
                _print_logins(DEMO_LOGINS, DEMO_PASSWORD)
                return 0
            return _fail(f"{exc}; the demo city needs an empty database")
    print(summary.describe())
    _print_logins(DEMO_LOGINS, DEMO_PASSWORD)
    return 0


def _print_logins(logins: dict[str, str], password: str) -> None:
    print(f"\nDemo logins (password for all: {password}):")
    width = max(len(name) for name in logins)
    for username, description in logins.items():
        print(f"  {username:<{width}}  {description}")


async def _activation_code(settings: Settings, *, username: str | None, person: int | None) -> int:
    """``reppu activation-code``: a code for one person, printed once (docs/identity.md)."""
    from server.db.engine import open_database
    from server.db.tables import Person
    from server.errors import ReppuError
    from server.signin.accounts import issue_activation_code, person_of_username

    if await _pending(settings):
        return _fail("the database has migrations to apply: run `reppu migrate` first")
    async with open_database(settings) as engine:
        if username is not None:
            person = await person_of_username(username)
        if person is None or not await Person.exists().where(Person.id == person):
            return _fail("no such person (give --username of an account or --person <id>)")
        try:
            issued = await issue_activation_code(engine, settings, actor=None, person=person)
        except ReppuError as refused:
            return _fail(refused.message)
    print(f"Activation code for person {person}: {issued.code}")
    print(f"Valid until {issued.expires_at.isoformat(timespec='minutes')}; it works once.")
    return 0


async def _import_oneroster(settings: Settings, path: str) -> int:
    from pathlib import Path

    from server.db.engine import open_database
    from server.demo.progress import TextProgress
    from server.oneroster import ImportRefused, import_oneroster, parse_files, read_files

    source = Path(path)
    if not source.exists():
        return _fail(f"{path}: no such folder or zip")
    if await _pending(settings):
        return _fail("the database has migrations to apply: run `reppu migrate` first")
    try:
        progress = TextProgress()
        batch = parse_files(read_files(source), progress)
        async with open_database(settings) as engine:
            summary = await import_oneroster(
                engine, batch, progress=progress, identity=settings.signin
            )
    except ImportRefused as refused:
        shown = (
            "" if refused.total == len(refused.problems) else f", the first {len(refused.problems)}"
        )
        print(f"The import was refused; nothing was changed. {refused.total} problem(s){shown}:")
        for problem in refused.problems:
            print(f"  {problem}")
        return 1
    print(summary.describe())
    return 0


async def _export_oneroster(settings: Settings, path: str) -> int:
    from pathlib import Path

    from server.db.engine import open_database
    from server.demo.progress import TextProgress
    from server.oneroster import export_oneroster

    async with open_database(settings) as engine:
        counts = await export_oneroster(engine, Path(path), progress=TextProgress())
    print(f"OneRoster 1.2 bulk set written to {path}:")
    for name, count in counts.items():
        print(f"  {name:<18} {count:>10,}")
    return 0


async def _compact(settings: Settings, keep_positions: int) -> None:
    from server.compaction import compact
    from server.db.engine import open_database

    async with open_database(settings) as engine:
        report = await compact(engine, keep_positions=keep_positions)
    print(
        f"Compacted the change log: {report.superseded} superseded changes and "
        f"{report.tombstones} old deletions removed ({report.partitions_with_new_horizon} "
        f"partitions re-sent to clients behind them); {report.rows_left} rows left."
    )


async def _retain(settings: Settings, *, dry_run: bool) -> int:
    from server.clock import utc_now
    from server.db.engine import open_database
    from server.retention import RetentionPolicy, retain

    if await _pending(settings):
        return _fail("the database has migrations to apply: run `reppu migrate` first")

    def progress(table: str, done: int) -> None:
        print(f"  {table}: {done:,} removed so far", file=sys.stderr, flush=True)

    async with open_database(settings) as engine:
        report = await retain(
            engine,
            RetentionPolicy.from_settings(settings),
            utc_now(),
            dry_run=dry_run,
            progress=progress,
        )
    print("Would remove (dry run):" if dry_run else "Removed:")
    for table, count in report.removed.items():
        print(f"  {table:<16} {count:>10,}")
    return 0


async def _worker(settings: Settings, *, once: bool) -> int:
    from server.db.engine import open_database
    from server.deliver import Worker

    if await _pending(settings):
        return _fail("the database has migrations to apply: run `reppu migrate` first")
    async with open_database(settings) as engine:
        worker = Worker(engine, settings)
        if once:
            stats = await worker.drain()
            await worker.push.close()
            print(f"Delivered what was due: {dict(sorted(stats.by_status.items()))}")
            return 0
        print(f"Delivery worker on {settings.database_label}; stop with Ctrl-C")
        await worker.run()
    return 0


def _fresh_metrics_folder(settings: Settings) -> Path:
    """``<data dir>/metrics``, emptied: the files of an earlier run's processes would
    otherwise be added to this run's counts."""
    folder = settings.data_dir / "metrics"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def _backup(settings: Settings, path: str, *, force: bool) -> int:
    """``reppu backup PATH`` (docs/operations.md, "Backup and restore")."""
    from pathlib import Path

    from server.backup import BackupError, backup_postgres, backup_sqlite

    target = Path(path)
    try:
        if settings.is_sqlite:
            backup_sqlite(settings.sqlite_path, target, force=force, progress=_pages)
        else:
            print(f"pg_dump --format=custom of {settings.database_label} ...")
            backup_postgres(settings.database_url, target, force=force)
    except BackupError as exc:
        return _fail(str(exc), 1)
    print(f"Backup of {settings.database_label} written to {target}.")
    return 0


def _pages(done: int, total: int) -> None:
    # Progress for a big file only; a small one is done before anyone could read it.
    if total >= 4 * 4096:
        print(f"  {done:,} of {total:,} pages", file=sys.stderr)


def _restore(settings: Settings, path: str) -> int:
    """``reppu restore PATH``: the backup replaces the database, under a new sync epoch."""
    from pathlib import Path

    from server.backup import BackupError, restore_postgres, restore_sqlite

    try:
        if settings.is_sqlite:
            epoch, rewound = restore_sqlite(Path(path), settings.sqlite_path, progress=_pages)
        else:
            rewound = asyncio.run(restore_postgres(Path(path), settings.database_url))
            print(f"pg_restore of {path} done; giving the database a new sync epoch ...")
            epoch = asyncio.run(_renew_epoch(settings))
    except BackupError as exc:
        return _fail(str(exc), 1)
    print(f"Restored {path} into {settings.database_label}; new sync epoch {epoch[:8]}.")
    print("Every device starts its copy over at its next pull.")
    print(rewound.describe())
    print("Run `reppu migrate` if the backup is older than this version, then start the server.")
    return 0


async def _renew_epoch(settings: Settings) -> str:
    from server.db.engine import open_database
    from server.state import renew_sync_epoch

    async with open_database(settings) as engine:
        return await renew_sync_epoch(engine)


async def _new_epoch(settings: Settings) -> None:
    epoch = await _renew_epoch(settings)
    print(f"New sync epoch {epoch[:8]}: every device starts over at its next pull.")


def _serve(settings: Settings, host: str, port: int, workers: int, access_log: bool) -> int:
    import uvicorn

    from server.calendar import uvicorn_log_config
    from server.logs import uvicorn_config
    from server.metrics import MULTIPROC_VARIABLE
    from server.signin.logs import with_signin_redaction

    pending = asyncio.run(_pending(settings))
    if pending:
        return _fail(
            f"the database has {len(pending)} migration(s) to apply: run `reppu migrate` first"
        )
    if settings.metrics_token and workers > 1:
        # Before any worker starts (and before they import prometheus_client): each
        # process's numbers go to files there, and a scrape of any worker adds all up.
        os.environ[MULTIPROC_VARIABLE] = str(_fresh_metrics_folder(settings))
    print(f"Reppu on http://{host}:{port} ({workers} worker(s), {settings.database_label})")
    uvicorn.run(
        "server.asgi:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # Only the operator's own proxies may say who the client is.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=",".join(settings.trusted_proxies) or None,
        log_level="info",
        access_log=access_log,
        # The access log without calendar feeds' secret tokens (they are in the path).
        # Nor sign-in's one-time codes (in the query).
        log_config=uvicorn_config(with_signin_redaction(uvicorn_log_config()), settings.log_format),
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reppu", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the API (and later the PWA)")
    serve.add_argument("--host", help="address to listen on (REPPU_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (REPPU_PORT, default 8000)")
    serve.add_argument("--workers", type=int, help="worker processes (REPPU_WORKERS, default 1)")
    serve.add_argument(
        "--no-access-log",
        action="store_true",
        help="no line per request (the access log costs about a third of a trivial request)",
    )

    worker = commands.add_parser(
        "worker", help="send notifications (also runs inside `reppu serve` by default)"
    )
    worker.add_argument("--once", action="store_true", help="deliver what is due now, then exit")

    commands.add_parser("migrate", help="apply the database migrations")

    compact = commands.add_parser("compact", help="compact the sync change log")
    compact.add_argument(
        "--keep-positions",
        type=int,
        default=1_000_000,
        help="keep deletions among this many newest changes (default 1000000)",
    )

    retain = commands.add_parser(
        "retain", help="remove what the REPPU_RETAIN_* settings no longer keep (docs/retention.md)"
    )
    retain.add_argument(
        "--dry-run", action="store_true", help="count what would be removed; remove nothing"
    )

    for verb, helptext in (
        ("import", "import a OneRoster 1.2 CSV set (a folder or a zip) in one transaction"),
        ("export", "export the database as a OneRoster 1.2 CSV bulk set (a folder or a .zip)"),
    ):
        command = commands.add_parser(verb, help=helptext)
        formats = command.add_subparsers(dest="format", required=True)
        oneroster = formats.add_parser("oneroster", help=helptext)
        oneroster.add_argument("path", help="folder, or zip file (docs/oneroster.md)")

    backup = commands.add_parser(
        "backup", help="copy the database to PATH (SQLite online backup, or pg_dump)"
    )
    backup.add_argument("path", help="the backup file to write")
    backup.add_argument("--force", action="store_true", help="overwrite PATH if it exists")
    restore = commands.add_parser(
        "restore",
        help="replace the database with a backup, under a new sync epoch (server stopped)",
    )
    restore.add_argument("path", help="a file written by `reppu backup`")
    commands.add_parser(
        "new-epoch",
        help="make every device's cursor start over (after restoring the database by hand)",
    )

    code = commands.add_parser(
        "activation-code",
        help="issue a one-time activation code for a person (the first admin's way in)",
    )
    who = code.add_mutually_exclusive_group(required=True)
    who.add_argument("--username", help="the person's account's username")
    who.add_argument("--person", type=int, help="the person's id")

    demo = commands.add_parser("demo", help="load a generated demo city into an empty database")
    demo.add_argument("--pupils", type=int, default=2000, help="pupils (full city: 160000)")
    demo.add_argument("--seed", type=int, default=1, help="random seed (same seed, same city)")
    demo.add_argument(
        "--if-empty", action="store_true", help="do nothing if the database holds people"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        configure_logging("text")
        return _fail(f"bad setting {exc}")
    configure_logging(settings.log_format)
    if args.command == "migrate":
        asyncio.run(_migrate(settings))
        return 0
    if args.command == "compact":
        asyncio.run(_compact(settings, max(0, args.keep_positions)))
        return 0
    if args.command == "retain":
        return asyncio.run(_retain(settings, dry_run=args.dry_run))
    if args.command == "backup":
        return _backup(settings, args.path, force=args.force)
    if args.command == "restore":
        return _restore(settings, args.path)
    if args.command == "new-epoch":
        asyncio.run(_new_epoch(settings))
        return 0
    if args.command == "worker":
        try:
            return asyncio.run(_worker(settings, once=args.once))
        except KeyboardInterrupt:
            return 0
    if args.command == "import":
        return asyncio.run(_import_oneroster(settings, args.path))
    if args.command == "export":
        return asyncio.run(_export_oneroster(settings, args.path))
    if args.command == "activation-code":
        return asyncio.run(_activation_code(settings, username=args.username, person=args.person))
    if args.command == "demo":
        if args.pupils < 500:
            return _fail("--pupils must be at least 500 (a school of classes of 18 to 25)")
        return asyncio.run(
            _demo(settings, pupils=args.pupils, seed=args.seed, if_empty=args.if_empty)
        )
    host = args.host or settings.host
    port = args.port or settings.port
    workers = args.workers or settings.workers
    # Worker processes build their own settings from the environment: keep them in step.
    os.environ.update(REPPU_HOST=host, REPPU_PORT=str(port), REPPU_WORKERS=str(workers))
    return _serve(settings, host, port, workers, access_log=not args.no_access_log)


if __name__ == "__main__":
    sys.exit(main())
