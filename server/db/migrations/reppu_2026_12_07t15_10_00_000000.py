"""Native push: ``native_device``, a phone app's FCM or APNs token (written by hand).

``docs/notifications.md`` ("Native push") explains it: one row per registered app install,
tied to the auth token it registered with, so signing out removes it.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.engine.sqlite import SQLiteEngine

from server.db.ddl import ddl

ID = "2026-12-07T15:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Native push: native_device."


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
        "CREATE TABLE IF NOT EXISTS native_device ("
        f"{key}, "
        "person INTEGER NOT NULL REFERENCES person (id) ON DELETE RESTRICT, "
        "device INTEGER NOT NULL REFERENCES auth_token (id) ON DELETE RESTRICT, "
        "platform VARCHAR(8) NOT NULL, "
        "token VARCHAR(4096) NOT NULL, "
        "app_id VARCHAR(255) NOT NULL, "
        "created_at TIMESTAMPTZ NOT NULL)"
    )
    # One row per token and platform: a phone handed to another person moves with its token.
    await engine.run_ddl(
        "CREATE UNIQUE INDEX IF NOT EXISTS native_device_token ON native_device (platform, token)"
    )
    await engine.run_ddl(
        "CREATE INDEX IF NOT EXISTS native_device_person ON native_device (person)"
    )
    await engine.run_ddl(
        "CREATE INDEX IF NOT EXISTS native_device_device ON native_device (device)"
    )


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="reppu", description=DESCRIPTION)
    manager.add_raw(create)
    manager.add_raw_backwards(ddl("DROP TABLE IF EXISTS native_device"))
    return manager
