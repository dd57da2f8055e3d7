"""Running Piccolo's migrations from Reppu's own code: ``reppu migrate``, tests, scripts."""

from __future__ import annotations

import contextlib
import io

from piccolo.apps.migrations.commands.backwards import run_backwards
from piccolo.apps.migrations.commands.forwards import run_forwards
from piccolo.apps.migrations.tables import Migration

APP_NAME = "reppu"


class MigrationError(RuntimeError):
    """Piccolo reported that a migration did not apply."""


async def migrate(*, quiet: bool = False) -> None:
    """Apply every migration not yet applied to the bound engine (see ``bind_engine``)."""
    output = io.StringIO()
    with contextlib.redirect_stdout(output) if quiet else contextlib.nullcontext():
        result = await run_forwards(app_name=APP_NAME, migration_id="all")
    if not result.success:
        raise MigrationError(result.message or output.getvalue())


async def unmigrate(*, quiet: bool = False) -> None:
    """Reverse every migration (tests use this to prove that backwards works)."""
    output = io.StringIO()
    with contextlib.redirect_stdout(output) if quiet else contextlib.nullcontext():
        result = await run_backwards(app_name=APP_NAME, migration_id="all", auto_agree=True)
    if not result.success:
        raise MigrationError(result.message or output.getvalue())


async def schema_version() -> str | None:
    """The id of the newest applied migration, or None on an empty database."""
    if not await Migration.table_exists().run():
        return None
    row = (
        await Migration.select(Migration.name)
        .where(Migration.app_name == APP_NAME)
        .order_by(Migration.name, ascending=False)
        .first()
        .run()
    )
    return None if row is None else str(row["name"])


async def pending_migrations() -> list[str]:
    """Ids of the migrations in the code that the bound database has not applied."""
    from piccolo.apps.migrations.commands.base import BaseMigrationManager

    from server.db.piccolo_app import APP_CONFIG

    manager = BaseMigrationManager()
    known = manager.get_migration_ids(
        manager.get_migration_modules(APP_CONFIG.resolved_migrations_folder_path)
    )
    applied: set[str] = set()
    if await Migration.table_exists().run():
        applied = set(await Migration.get_migrations_which_ran(app_name=APP_NAME))
    return [m for m in known if m not in applied]
