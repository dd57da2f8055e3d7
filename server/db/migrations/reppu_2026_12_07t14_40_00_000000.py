"""Admin over HTTP: the history of roster imports uploaded by admins (written by hand)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.engine.sqlite import SQLiteEngine

from server.db.ddl import ddl

ID = "2026-12-07T14:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Admin: roster_import."


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="reppu", description=DESCRIPTION)
    manager.add_raw(create)
    manager.add_raw_backwards(ddl("DROP TABLE IF EXISTS roster_import"))
    return manager


async def create() -> None:
    engine = engine_finder()
    assert engine is not None
    # SQLite gives a new id only to an INTEGER PRIMARY KEY (its rowid); SERIAL there would be
    # a column of its own that takes NULL.
    key = (
        "id INTEGER PRIMARY KEY AUTOINCREMENT"
        if isinstance(engine, SQLiteEngine)
        else "id SERIAL PRIMARY KEY"
    )
    await engine.run_ddl(
        "CREATE TABLE IF NOT EXISTS roster_import ("
        f"{key}, "
        "uploaded_by INTEGER NOT NULL, "
        "uploaded_at TIMESTAMPTZ NOT NULL, "
        "file_name VARCHAR(255) NOT NULL DEFAULT '', "
        "file_sha256 VARCHAR(64) NOT NULL, "
        "file_bytes BIGINT NOT NULL, "
        "status VARCHAR(12) NOT NULL, "
        "report TEXT NOT NULL DEFAULT '', "
        "applied_by INTEGER NULL, "
        "applied_at TIMESTAMPTZ NULL)"
    )
